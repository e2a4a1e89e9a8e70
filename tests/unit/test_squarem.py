"""SQUAREM (mbrila.inference.squarem): the extrapolation on maps with a known fixed point, its safeguard, and
EM fits with it (monotone, the same optimum, fewer iterations, resumable)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import mbrila
from mbrila.core import LatentSpec
from mbrila.inference.squarem import ParameterSlot, Squarem, linear_observation_slots, parameter_slots
from mbrila.synthetic import MultiRegionScenario


def run_map(theta: torch.Tensor, update, n_maps: int, accelerate: bool) -> list[float]:
    """Iterate ``θ ← update(θ)`` as the EM loop does (begin, update, step), returning the distance to the fixed
    point 0 after each map. The safeguard's score is −|θ|."""
    p = torch.nn.Parameter(theta.clone())
    sq = Squarem(parameter_slots([p])) if accelerate else None
    dist = []
    for _ in range(n_maps):
        if sq is not None:
            if sq.reject(-float(p.detach().norm())):
                assert sq.n_rejected > 0
            sq.scored(-float(p.detach().norm()))
            sq.begin()
        with torch.no_grad():
            p.copy_(update(p.detach()))
        if sq is not None:
            sq.step()
        dist.append(float(p.detach().norm()))
    return dist


def test_one_slow_direction_is_removed_by_the_jump():
    # θ ← a θ with a = 0.99: plain iteration needs ~2300 maps to reach 1e-10; the squared extrapolation is exact
    # for a scalar linear map once α_max has grown past 1/(1 − a) = 100.
    def update(t):
        return 0.99 * t

    plain = run_map(torch.tensor([1.0], dtype=torch.float64), update, 60, accelerate=False)
    fast = run_map(torch.tensor([1.0], dtype=torch.float64), update, 60, accelerate=True)
    assert plain[-1] > 0.5
    assert fast[-1] < 1e-10, fast[-10:]


def test_a_mixed_contraction_converges_far_faster():
    A = torch.diag(torch.tensor([0.995, 0.9, 0.3], dtype=torch.float64))
    Q = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    M = Q @ A @ Q.T

    def update(t):
        return M @ t

    start = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    plain = run_map(start, update, 300, accelerate=False)
    fast = run_map(start, update, 300, accelerate=True)
    assert plain[-1] > 0.05
    assert fast[-1] < 1e-6 * plain[-1], (fast[-1], plain[-1])


def test_a_jump_that_lowers_the_score_is_undone_and_the_step_shrinks():
    p = torch.nn.Parameter(torch.tensor([0.0]))
    sq = Squarem(parameter_slots([p]))
    sq.step_max = 16.0
    for value in (1.0, 1.5):  # θ0 = 0 → θ1 = 1 → θ2 = 1.5: r = 1, v = −0.5, α = −2 → θ' = 0 + 4 + 4·(−0.5) = 2
        sq.begin()
        with torch.no_grad():
            p.fill_(value)
        sq.step()
    assert float(p.detach()) == pytest.approx(2.0) and sq.n_jumps == 1
    sq.scored(-1.0)  # θ1's objective (set in the loop by the E-step that scored θ1)
    state = sq.state_dict()
    assert sq.reject(-5.0)  # below θ1's score: θ2 comes back
    assert float(p.detach()) == pytest.approx(1.5) and sq.step_max == 4.0 and sq.n_rejected == 1
    assert not sq.reject(-5.0)  # nothing pending any more
    again = Squarem(parameter_slots([p]))
    again.load_state_dict(state)
    with torch.no_grad():
        p.fill_(2.0)
    assert again.reject(float("nan"))  # NaN counts as a fall
    assert float(p.detach()) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="growth"):
        Squarem([], growth=1.0)


def test_observation_slots_keep_the_loadings_on_their_blocks_and_the_noise_on_its_floor():
    obs = mbrila.DLAG(LatentSpec(1, 0), (3, 2), 10).observation
    obs.R_floor = torch.full((5,), 0.1)
    C, d, R = linear_observation_slots(obs)
    C.put(torch.ones(5, 2))
    R.put(torch.tensor([0.5, -1.0, 0.2, 0.0, 3.0]))
    d.put(torch.arange(5.0))
    assert torch.equal(obs.C, obs.support.to(obs.C.dtype))
    torch.testing.assert_close(obs.R, torch.tensor([0.5, 0.1, 0.2, 0.1, 3.0]))
    torch.testing.assert_close(obs.d, torch.arange(5.0))
    assert isinstance(C, ParameterSlot)


def small_data(seed=0):
    return MultiRegionScenario(
        n_trials=20,
        T=40,
        y_dims=(12, 10),
        n_across=2,
        n_within=1,
        timescales_across=(4.0, 1.5),
        timescales_within=3.0,
        delay_amplitude=(2.0, 0.7),
        snr=3.0,
        seed=seed,
    ).sample()[0]


@pytest.mark.parametrize("name", ["dlag_ssm", "dlag", "adm", "gpfa"])
def test_accelerated_fits_never_lower_the_score_and_reach_the_plain_optimum(name):
    # 120 iterations of each on the same data. DLAG (both engines) and ADM creep towards their optimum along the
    # delays and timescales, which SQUAREM jumps along; GPFA's SDE latents keep their own over-relaxation.
    data = small_data(seed=2)
    spec = LatentSpec(2, 0) if name == "gpfa" else LatentSpec(2, 1)
    traces = {}
    for accelerate in (None, "squarem"):
        model = mbrila.build_model(name, latent_spec=spec, y_dims=data.y_dims, T=data.T)
        model.engine = dataclasses.replace(model.engine, accelerate=accelerate)
        prior: list[float] = []
        res = model.fit(
            data,
            max_iter=120,
            tol=0.0,
            progress=False,
            callback=lambda it, s, m=model, p=prior: p.append(float(m.delay.log_prior().detach())) and None,
        )
        traces[accelerate] = np.asarray(res.score_trace) + np.asarray(prior)  # ADM: the MAP objective
    plain, fast = traces[None], traces["squarem"]
    if name != "adm":  # ADM's initialisation runs short fits with the engine, so it starts elsewhere
        assert fast[0] == pytest.approx(plain[0], rel=1e-12)
    assert np.all(np.diff(fast) >= -1e-8 * np.abs(fast[:-1])), np.diff(fast).min()
    assert fast[-1] >= plain[-1] - 1e-2
    if name != "gpfa":
        assert fast[-1] > plain[-1] + 0.5  # plain EM is still well short after 120 iterations
        reach = int(np.argmax(fast >= plain[-1]))
        assert 0 < reach <= 0.8 * len(plain), reach


def test_an_unknown_accelerator_is_refused_by_name():
    from mbrila.inference.kalman_em import KalmanEMEngine

    with pytest.raises(ValueError, match=r"accelerate must be None or 'squarem'; got 'anderson'"):
        KalmanEMEngine(accelerate="anderson")
    data = small_data()
    model = mbrila.build_model("dlag_ssm", latent_spec=LatentSpec(1, 1), y_dims=data.y_dims, T=data.T)
    model.engine.accelerate = "anderson"  # set after construction: refused when the fit starts
    with pytest.raises(ValueError, match=r"accelerate must be None or 'squarem'; got 'anderson'"):
        model.fit(data, max_iter=2, progress=False)


def test_an_interrupted_accelerated_fit_resumes_to_the_same_trace(tmp_path):
    data = small_data(seed=1)

    def build():
        model = mbrila.build_model("dlag_ssm", latent_spec=LatentSpec(2, 1), y_dims=data.y_dims, T=data.T)
        model.engine = dataclasses.replace(model.engine, accelerate="squarem")
        return model

    full = build().fit(data, max_iter=20, tol=0.0, progress=False)

    class Stop(Exception):
        pass

    def stop(it, score):
        if it == 13:
            raise Stop

    ckpt = tmp_path / "run.ckpt"
    with pytest.raises(Stop):
        build().fit(data, max_iter=20, tol=0.0, progress=False, checkpoint=ckpt, checkpoint_every=4, callback=stop)
    resumed = build().fit(data, max_iter=20, tol=0.0, progress=False, resume=ckpt)
    assert resumed.score_trace == full.score_trace


def test_the_delayed_presets_accelerate_by_default_and_user_settings_merge_over_theirs():
    from mbrila.models.presets import ADM_TOL

    def engine(name, **kw):
        return mbrila.build_model(name, latent_spec=LatentSpec(1, 1), y_dims=(4, 3), T=12, **kw).engine

    for name in ("dlag_ssm", "adm"):
        assert engine(name).accelerate == "squarem", name
    assert engine("dlag").accelerate is None  # the exact engine: opt-in
    assert engine("dlag", engine_defaults={"accelerate": "squarem"}).accelerate == "squarem"
    assert engine("adm").tol == ADM_TOL
    merged = engine("adm", engine_defaults={"tol": 1e-5})  # the user's tol, the preset's accelerator
    assert merged.tol == 1e-5 and merged.accelerate == "squarem"
    assert engine("dlag_ssm", engine_defaults={"accelerate": None}).accelerate is None
    assert engine("gpfa").accelerate is None and engine("lds").accelerate is None
    counts = engine("adm", observation="poisson")  # Laplace EM: the preset's tol, no SQUAREM
    assert counts.accelerate is None and counts.tol == ADM_TOL
