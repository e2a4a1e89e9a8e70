"""State-space latent models: EM behaviour, capability errors, save/load, masks and ragged trials."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mbrila
from mbrila.core import LatentSpec, MultiRegionData
from mbrila.inference.kalman_em import KalmanEMEngine, OverRelaxation
from mbrila.metrics import delay_rmse, match_latents
from mbrila.synthetic import MultiRegionScenario


def small_data(seed=0, n_trials=20, T=40, delays=(2.0, 0.7)):
    sc = MultiRegionScenario(
        n_trials=n_trials,
        T=T,
        y_dims=(20, 15, 18),
        n_across=2,
        n_within=1,
        timescales_across=(3.0, 1.5),
        timescales_within=3.0,
        delay_amplitude=delays,
        snr=5.0,
        seed=seed,
    )
    return sc.sample()


@pytest.mark.parametrize("overrelax", [None, 2.0], ids=["plain", "overrelaxed"])
def test_em_objective_never_decreases_without_gradient_steps(overrelax):
    data, _ = small_data()
    engine = KalmanEMEngine(grad_steps=0, overrelax=overrelax)
    model = mbrila.DLAG(LatentSpec(2, 1), data.y_dims, data.T, engine=engine)
    res = model.fit(data, max_iter=25, progress=False)
    trace = np.array(res.score_trace)
    assert np.all(np.diff(trace) >= -1e-8 * np.abs(trace[:-1])), np.diff(trace).min()
    assert trace[-1] > trace[0]


def test_overrelaxed_em_reaches_the_same_optimum_in_fewer_iterations():
    data, _ = small_data(seed=3)
    traces = {}
    for eta in (None, 2.0):
        model = mbrila.DLAG(LatentSpec(2, 1), data.y_dims, data.T, engine=KalmanEMEngine(grad_steps=0, overrelax=eta))
        traces[eta] = np.array(model.fit(data, max_iter=150, tol=0.0, progress=False).score_trace)
    plain, fast = traces[None], traces[2.0]
    assert fast[0] == pytest.approx(plain[0], rel=1e-12)  # same initialisation
    assert fast[-1] == pytest.approx(plain[-1], abs=1e-2)  # same optimum (plain EM still 0.004 short)
    best = max(plain[-1], fast[-1])
    reach = {name: int(np.argmax(tr > best - 0.1)) for name, tr in (("plain", plain), ("fast", fast))}
    assert 0 < reach["fast"] <= reach["plain"] / 2, reach


def test_overrelaxation_restores_the_plain_update_when_the_likelihood_falls():
    obs = mbrila.DLAG(LatentSpec(1, 0), (3, 2), 10).observation
    obs.R_floor = torch.full((5,), 0.1)
    relax = OverRelaxation(growth=2.0)
    before = (torch.zeros(5, 2), torch.zeros(5), torch.ones(5))
    obs.C, obs.d, obs.R = torch.ones(5, 2), torch.ones(5), torch.full((5,), 0.5)
    relax.step(obs, before)  # ω = 1 on the first step: the plain update stands
    torch.testing.assert_close(obs.C, torch.ones(5, 2))
    assert relax.omega == 2.0 and not relax.reject(obs, score=-1.0, previous=0.0)
    plain = (torch.full((5, 2), 3.0), torch.full((5,), 2.0), torch.full((5,), 0.4))
    obs.C, obs.d, obs.R = (t.clone() for t in plain)
    relax.step(obs, (torch.ones(5, 2), torch.ones(5), torch.full((5,), 0.5)))
    torch.testing.assert_close(obs.C, torch.full((5, 2), 5.0))  # 1 + 2 · (3 − 1)
    torch.testing.assert_close(obs.R, torch.full((5,), 0.3))  # 0.5 + 2 · (0.4 − 0.5), above the floor
    assert not relax.reject(obs, score=1.0, previous=0.0)  # the likelihood rose: keep it
    relax.step(obs, (obs.C.clone(), obs.d.clone(), obs.R.clone()))
    obs.C, obs.d, obs.R = (t.clone() for t in plain)
    relax.step(obs, (torch.zeros(5, 2), torch.zeros(5), torch.ones(5)))
    assert relax.reject(obs, score=float("nan"), previous=0.0)  # NaN counts as a fall
    for got, want in zip((obs.C, obs.d, obs.R), plain, strict=True):
        torch.testing.assert_close(got, want)
    assert relax.omega == 1.0
    with pytest.raises(ValueError, match="overrelax"):
        OverRelaxation(growth=1.0)


@pytest.mark.parametrize("lr", [0.05, 5.0], ids=["default-lr", "reckless-lr"])
def test_em_with_gradient_steps_never_lowers_the_likelihood(lr):
    # Generalised EM: the closed-form step and the guarded optimiser steps each keep the expected complete-data
    # objective from falling, so the marginal likelihood cannot fall either, whatever the learning rate.
    data, _ = small_data(seed=1)
    model = mbrila.DLAG(LatentSpec(2, 1), data.y_dims, data.T, engine=KalmanEMEngine(lr=lr))
    trace = np.array(model.fit(data, max_iter=40, tol=0.0, progress=False).score_trace)
    assert np.all(np.diff(trace) >= -1e-8 * np.abs(trace[:-1])), np.diff(trace).min()
    assert trace[-1] > trace[0]


def test_adm_map_objective_never_decreases():
    # ADM's optimiser steps are MAP steps (delay smoothness prior), so the objective is log p(y) + log p(δ).
    data, _ = small_data(seed=1)
    model = mbrila.build_model("adm", latent_spec=LatentSpec(2, 1), y_dims=data.y_dims, T=data.T)
    log_prior: list[float] = []  # of the delays the E-step just scored

    def record(it, score):
        with torch.no_grad():
            log_prior.append(float(model.delay.log_prior()))

    res = model.fit(data, max_iter=40, tol=0.0, progress=False, callback=record)
    objective = np.array(res.score_trace) + np.array(log_prior)
    assert np.all(np.diff(objective) >= -1e-8 * np.abs(objective[:-1])), np.diff(objective).min()
    assert np.ptp(log_prior) > 0  # the delays did move


@pytest.mark.parametrize("name", ["dlag", "dlag_ssm"])
def test_em_with_gradient_steps_converges_and_recovers_delays(name):
    data, truth = small_data(seed=1, n_trials=30, T=60)
    model = mbrila.build_model(name, latent_spec=LatentSpec(2, 1), y_dims=data.y_dims, T=data.T)
    res = model.fit(data, max_iter=150, tol=1e-6, progress=False)
    assert res.converged, res.n_iter
    post = model.infer(data)
    m = match_latents(post.region(0)[..., :2], truth.latents_across[:, :, 0, :])
    assert m.corr.min() > 0.9
    assert delay_rmse(model.delays(), truth.delays, m) < 0.15


#: Every preset and engine name, with the latent counts it is built with in the model tests.
ALL_MODELS = [
    ("dlag", LatentSpec(2, 1)),
    ("dlag_ssm", LatentSpec(2, 1)),
    ("gpfa_exact", LatentSpec(2, 1)),
    ("adm", LatentSpec(2, 1)),
    ("lds", LatentSpec(2, 1)),
    ("mdlag_time", LatentSpec(3)),
    ("mdlag_freq", LatentSpec(3)),
    ("mdlag_ssm", LatentSpec(3)),
]


@pytest.mark.parametrize(("name", "spec"), ALL_MODELS)
def test_fit_is_deterministic(name, spec):
    data, _ = small_data(seed=2)
    runs = []
    for _ in range(2):
        model = mbrila.build_model(name, latent_spec=spec, y_dims=data.y_dims, T=data.T)
        runs.append(model.fit(data, max_iter=5, progress=False).score_trace)
    assert runs[0] == runs[1]


@pytest.mark.parametrize(("name", "spec"), ALL_MODELS)
def test_save_load_round_trip(tmp_path, name, spec):
    data, _ = small_data(seed=3)
    model = mbrila.build_model(name, latent_spec=spec, y_dims=data.y_dims, T=data.T)
    model.fit(data, max_iter=5, progress=False)
    path = tmp_path / "m.pt"
    model.save(path)
    again = mbrila.load(path)
    assert type(again.engine) is type(model.engine)
    keep = torch.ones(data.N, dtype=torch.bool)
    keep[::4] = False
    assert torch.equal(model.predict(data, observed=keep), again.predict(data, observed=keep))
    assert torch.equal(model.delays().nan_to_num(-99.0), again.delays().nan_to_num(-99.0))
    torch.save({"something": 1}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not an mbrila model"):
        mbrila.load(tmp_path / "bad.pt")


def test_build_model_and_capabilities():
    with pytest.raises(ValueError, match=r"unknown model.*available"):
        mbrila.build_model("nope", latent_spec=LatentSpec(1), y_dims=(3, 3), T=10)
    with pytest.raises(ValueError, match=r"unknown engine 'nope'.*\['exact', 'kalman'\]"):
        mbrila.DLAG(LatentSpec(1, 1), (3, 3), 10, engine="nope")

    class NeedsKernel(KalmanEMEngine):
        requires = frozenset({"state_space", "kernel"})

    with pytest.raises(ValueError, match=r"needs a model with \['kernel'\].*LDS"):
        mbrila.LDS(LatentSpec(1, 1), (3, 3), 10, engine=NeedsKernel())
    assert isinstance(mbrila.build_model("gpfa", latent_spec=LatentSpec(2), y_dims=(3, 3), T=10), mbrila.GPFA)


def test_fit_with_missing_entries_and_ragged_trials():
    data, truth = small_data(seed=4, n_trials=30, T=60)
    g = torch.Generator().manual_seed(0)
    keep = torch.rand(data.y.shape, generator=g) > 0.1
    masked = data.with_mask(keep)
    model = mbrila.DLAG(LatentSpec(2, 1), data.y_dims, data.T, engine="kalman")
    model.fit(masked, max_iter=100, progress=False)
    m = match_latents(model.infer(masked).region(0)[..., :2], truth.latents_across[:, :, 0, :])
    assert delay_rmse(model.delays(), truth.delays, m) < 0.2
    lengths = torch.full((data.n_trials,), data.T)
    lengths[::3] = data.T - 15
    ragged = MultiRegionData(data.y, data.y_dims, data.region_names, lengths=lengths)
    res = mbrila.DLAG(LatentSpec(2, 1), data.y_dims, data.T, engine="kalman").fit(ragged, max_iter=10, progress=False)
    assert np.isfinite(res.score_trace).all()


def test_lds_and_gpfa_fit():
    data, truth = small_data(seed=5)
    for model in (
        mbrila.LDS(LatentSpec(2, 1), data.y_dims, data.T),
        mbrila.GPFA(LatentSpec(2, 1), data.y_dims, data.T),
    ):
        res = model.fit(data, max_iter=30, progress=False)
        assert res.score_trace[-1] > res.score_trace[0]
        rmse = float((model.predict(data) - truth.clean).pow(2).mean().sqrt())
        assert rmse < truth.noise_floor_rmse  # denoised estimate beats the raw data


def test_bad_data_for_model():
    model = mbrila.DLAG(LatentSpec(1, 1), (3, 3), 10)
    with pytest.raises(ValueError, match="MultiRegionData"):
        model.fit(torch.zeros(2, 10, 6))
    other = MultiRegionData(torch.zeros(2, 10, 5), (3, 2))
    with pytest.raises(ValueError, match="y_dims"):
        model.fit(other)


def test_initialisation_respects_a_tight_delay_bound():
    # True delays reach 2 bins; a model bounded at 0.5 bins must start (and stay) inside its bound.
    data, _ = small_data(seed=3, n_trials=10, T=40)
    for name in ("dlag", "adm"):
        model = mbrila.build_model(name, latent_spec=LatentSpec(2, 1), y_dims=data.y_dims, T=data.T, max_delay=0.5)
        model.fit(data, max_iter=2, progress=False)
        assert float(model.delays().abs().max()) < 0.5


@pytest.mark.parametrize("preset", ["dlag", "dlag_ssm", "adm", "mdlag_time", "mdlag_ssm"])
@pytest.mark.parametrize("missing", [False, True])
def test_per_neuron_observed_mask_matches_the_entrywise_mask(preset, missing):
    # (N,) masks drop the hidden neurons (covariances shared by trials); (trials, T, N) masks run one filter per
    # trial. Both are E[y | observed entries] and must agree.
    data, _ = small_data(seed=5, n_trials=6, T=20)
    if missing:
        mask = torch.rand(data.y.shape, generator=torch.Generator().manual_seed(0)) > 0.1
        data = MultiRegionData(data.y, data.y_dims, mask=mask, region_names=data.region_names)
    spec = LatentSpec(3) if preset.startswith("mdlag") else LatentSpec(2, 1)
    model = mbrila.build_model(preset, latent_spec=spec, y_dims=data.y_dims, T=data.T)
    model.fit(data, max_iter=3, progress=False)
    keep = torch.ones(data.N, dtype=torch.bool)
    keep[1::3] = False
    by_neuron = model.predict(data, observed=keep)
    by_entry = model.predict(data, observed=keep.expand(data.y.shape))
    torch.testing.assert_close(by_neuron, by_entry, rtol=1e-9, atol=1e-10)
    with pytest.raises(ValueError, match="observed"):
        model.predict(data, observed=keep[:-1])


def test_a_callback_returning_true_stops_the_fit():
    data, _ = small_data(seed=2, n_trials=6, T=20)
    model = mbrila.DLAG(LatentSpec(2, 1), data.y_dims, data.T)
    seen: list[int] = []
    fit = model.fit(data, max_iter=50, progress=False, callback=lambda it, s: seen.append(it) or it == 3)
    assert fit.n_iter == 3 and seen == [0, 1, 2, 3] and len(fit.score_trace) == 4 and not fit.converged


def _log_likelihood(model, data) -> float:
    return float(model.infer(data).log_likelihood.sum())


def test_the_callback_sees_the_parameters_its_score_belongs_to():
    # With over-relaxation an M-step may leave an extrapolated state that the next E-step rejects; callbacks such
    # as validation checkpointing must only ever see parameters EM has scored (and kept).
    data, _ = small_data(seed=1)
    model = mbrila.DLAG(LatentSpec(2, 1), data.y_dims, data.T)
    gaps: list[float] = []

    def check(it, score):
        gaps.append(abs(_log_likelihood(model, data) - score) / abs(score))

    fit = model.fit(data, max_iter=30, tol=0.0, progress=False, callback=check)
    assert len(gaps) == len(fit.score_trace) == fit.n_iter + 1 == 31
    assert max(gaps) < 1e-10, max(gaps)
    # The fit ends on a scored state too: the model holds the parameters of the last score.
    assert abs(_log_likelihood(model, data) - fit.score_trace[-1]) < 1e-10 * abs(fit.score_trace[-1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_timescales_follow_the_model_dtype(dtype):
    model = mbrila.DLAG(LatentSpec(2, 1), (4, 3), 10, dtype=dtype)
    ts = model.timescales()
    assert ts["across"].dtype == dtype and ts["across"].shape == (2,)
    assert all(w.dtype == dtype and w.shape == (1,) for w in ts["within"])
    assert not ts["across"].requires_grad and not any(w.requires_grad for w in ts["within"])  # values, not graph
    ts["across"][0] = -1.0  # a copy: editing it leaves the kernel alone
    assert float(model.across[0].kernel.timescale.detach()) > 0


def test_noise_floor_neurons_names_the_neuron_a_latent_was_spent_on():
    data, truth = small_data(seed=2)
    y = data.y.clone()
    # Region 1's neuron 4 becomes a noise-free copy of that region's within latent (scaled up so it stands out):
    # factor analysis explains all its variance, so its noise variance must end on the floor; no other neuron's.
    y[..., 20 + 4] = 3.0 * truth.latents_within[1][..., 0]
    copied = MultiRegionData(y, y_dims=data.y_dims)
    model = mbrila.DLAG(LatentSpec(2, 1), data.y_dims, data.T)
    assert model.noise_floor_neurons() == [[], [], []]  # before a fit there is no floor to sit on
    model.fit(copied, max_iter=40, progress=False)
    assert model.noise_floor_neurons() == [[], [4], []]
    obs = model.observation
    torch.testing.assert_close(obs.R[24], obs.R_floor[24])
    clean = mbrila.DLAG(LatentSpec(2, 1), data.y_dims, data.T)
    clean.fit(data, max_iter=40, progress=False)
    assert clean.noise_floor_neurons() == [[], [], []]


def test_parameter_relaxation_extrapolates_and_restores_the_plain_update_when_the_likelihood_falls():
    from mbrila.inference.overrelax import ParameterRelaxation

    p = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    relax = ParameterRelaxation([p], growth=2.0)
    relax.begin()
    with torch.no_grad():
        p += 0.5  # the plain update
    relax.step()  # ω = 1: it stands
    torch.testing.assert_close(p.detach(), torch.tensor([1.5, 2.5]))
    assert relax.omega == 2.0 and not relax.reject(score=-1.0, previous=0.0)
    relax.begin()
    with torch.no_grad():
        p += 0.25
    relax.step()  # 1.5 + 2 · 0.25
    torch.testing.assert_close(p.detach(), torch.tensor([2.0, 3.0]))
    assert relax.reject(score=float("nan"), previous=0.0)  # NaN counts as a fall: back to the plain update
    torch.testing.assert_close(p.detach(), torch.tensor([1.75, 2.75]))
    assert relax.omega == 1.0 and not relax.reject(score=-5.0, previous=0.0)  # nothing left to restore
    with pytest.raises(ValueError, match="sde_overrelax"):
        ParameterRelaxation([p], growth=0.5)


def test_overrelaxed_sde_timescales_reach_the_truth_where_plain_em_crawls():
    # An RBF latent's SDE state holds its derivatives, so plain EM moves its timescale in small steps; in the same
    # number of iterations the over-relaxed update reaches the dense GP's maximum-likelihood timescales (the
    # independent reference), and the likelihood never falls.
    sc = MultiRegionScenario(
        n_trials=30, T=80, y_dims=(30,), n_across=2, n_within=0, timescales_across=(2.0, 10.0),
        delay_amplitude=(0.0, 0.0), snr=10.0, seed=4,
    )  # fmt: skip
    data, _ = sc.sample()
    dense = mbrila.build_model("gpfa_exact", latent_spec=LatentSpec(2, 0), y_dims=data.y_dims, T=data.T)
    dense.fit(data, progress=False)
    ref = sorted(dense.timescales()["across"].tolist())  # 1.96 and 10.38 bins (truth 2 and 10)
    found = {}
    for relax in (None, 2.0):
        model = mbrila.GPFA(LatentSpec(2, 0), data.y_dims, data.T, engine=KalmanEMEngine(sde_overrelax=relax))
        assert all(blk.uses_sde for blk, _, _ in model.blocks())
        trace = np.array(model.fit(data, max_iter=150, tol=0.0, progress=False).score_trace)
        assert np.all(np.diff(trace) >= -1e-8 * np.abs(trace[:-1])), np.diff(trace).min()
        found[relax] = sorted(model.timescales()["across"].tolist())
    err = {k: max(abs(v[0] / ref[0] - 1), abs(v[1] / ref[1] - 1)) for k, v in found.items()}
    assert err[2.0] < 0.05 and err[None] > 4 * err[2.0], (found, ref)
