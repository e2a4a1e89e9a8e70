"""mDLAG's variational ARD read-out and its time-domain engines: ELBO bookkeeping against a dense reference,
coordinate-ascent updates that never lower the ELBO, engine names and capability errors, and pruning (float64)."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch

import mbrila
from mbrila import LatentSpec, MultiRegionData
from mbrila.dynamics import ExactGPLatent, MarkovianGPLatent
from mbrila.experiments.synthetic import run_synthetic
from mbrila.inference.exact_em import ExactEMEngine, dense_e_step, second_moments
from mbrila.inference.kalman_em import KalmanEMEngine
from mbrila.inference.vem_ard import VEMARDEngine, VEMKalmanARDEngine
from mbrila.inference.vem_ard_freq import VEMARDFreqEngine
from mbrila.models.mdlag import ARD_ENGINES
from mbrila.models.presets import LINEAR_ENGINES
from mbrila.synthetic import MultiRegionScenario
from tests.reference.dense_gp import information_posterior, prior_covariance, row_layout, time_blocks
from tests.unit.test_kernels import RationalQuadratic

F64 = torch.float64
TOL = 1e-8


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.broadcast_tensors(a, b)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def small_data(seed: int = 0, masked: bool = False, T: int = 15, y_dims=(5, 4)) -> MultiRegionData:
    sc = MultiRegionScenario(
        n_trials=5,
        T=T,
        y_dims=y_dims,
        n_across=1,
        n_within=1,
        timescales_across=(3.0,),
        timescales_within=2.0,
        delay_amplitude=(1.0,),
        snr=4.0,
        seed=seed,
    )
    data, _ = sc.sample()
    if not masked:
        return data
    mask = torch.rand(data.y.shape, generator=torch.Generator().manual_seed(seed + 1)) > 0.15
    return MultiRegionData(data.y, data.y_dims, mask=mask)


def fitted_mdlag(masked: bool, n_iter: int = 4):
    """A time-engine MDLAG after a few iterations, with its data in the engine's form."""
    data = small_data(masked=masked)
    model = mbrila.MDLAG(LatentSpec(3), data.y_dims, data.T, engine="time")
    model.fit(data, max_iter=n_iter, tol=0.0, progress=False)
    y, mask = model._data(data)
    return model, data, y, mask


def fixed_q_x(masked: bool):
    """A fitted time-engine MDLAG and its optimal ``q(X)``: ``(model, y, mask, stats, post, Exx, moments)``."""
    model, _, y, mask = fitted_mdlag(masked)
    obs = model.observation
    with torch.no_grad():
        stats = obs.data_statistics(y, mask)
        J, h, _ = obs.information(y, mask, None, stats)
        post = dense_e_step(model, y, mask, J, h)
        Exx = second_moments(post, mask)
        moments = obs._moments(y, mask, post.mean, Exx)
    return model, y, mask, stats, post, Exx, moments


def make_kernel(kernel_cls, timescale: float):
    kernel = kernel_cls(timescale).double()
    kernel.timescale = timescale  # built in the default dtype: set again in float64
    return kernel


def reference_prior(model, kernel_cls=mbrila.RBFKernel) -> torch.Tensor:
    """The dense reference prior of an MDLAG model's ``x`` (fresh kernels with the model's timescales)."""
    K = model.latent_spec.n_across
    ts = [float(t) for t in model.timescales()["across"]]
    kernels = [make_kernel(kernel_cls, t) for t in ts]
    # One region has no delays (region 0 is the reference); read them from the delay module otherwise.
    delays = None if model.n_regions == 1 else model.delay.region_delays().detach()
    eps = float(model.across[0].eps)
    return prior_covariance(kernels, row_layout(K, [0] * model.n_regions), delays, eps, model.T)


@torch.no_grad()
def general_elbo(obs, y, mask, post, stats) -> float:
    """``E_q[log p(y | ·)] − KL(q(X) ‖ p(X)) + Σ_θ (E[log p(θ)] + H[q(θ)])`` for any ``q(X)``."""
    ell = obs.expected_log_likelihood(y, mask, post.mean, second_moments(post, mask), stats)
    return float(ell - post.kl_to_prior() + obs.prior_terms())


# ------------------------------------------------------------------------------------------------ C1
@pytest.mark.parametrize("masked", [False, True])
def test_e_step_elbo_equals_general_elbo_and_kl_matches_dense_reference(masked):
    model, _, y, mask = fitted_mdlag(masked)
    obs = model.observation
    assert not bool(obs.pruned.any())
    with torch.no_grad():
        stats = obs.data_statistics(y, mask)
        J, h, c = obs.information(y, mask, None, stats)
        post = dense_e_step(model, y, mask, J, h)
        e_step = float((c + post.log_z).sum() + obs.prior_terms())
        kl = float(post.kl_to_prior())
    general = general_elbo(obs, y, mask, post, stats)
    assert abs(e_step - general) < 1e-9 * abs(e_step), (e_step, general)
    # Independent dense q(X) from the reference prior and the same information form.
    ref = information_posterior(reference_prior(model), J, h)
    _, T, Kx = h.shape
    assert abs(kl - float(ref.kl.sum())) < 1e-9 * abs(float(ref.kl.sum())), (kl, float(ref.kl.sum()))
    assert rel_err(post.mean, ref.mean) < TOL
    assert rel_err(post.trial_cov(), time_blocks(ref.full_cov, T, Kx)) < TOL
    assert rel_err(post.log_z, ref.log_z) < TOL


# ------------------------------------------------------------------------------------------------ C2
@pytest.mark.parametrize("masked", [False, True])
def test_every_closed_form_update_and_q_x_leave_the_elbo_no_lower(masked):
    model, y, mask, stats, post, _, moments = fixed_q_x(masked)
    obs = model.observation
    with torch.no_grad():
        start = prev = general_elbo(obs, y, mask, post, stats)
        steps = {
            "d": lambda: obs.update_d(moments, stats),
            "c": lambda: obs.update_c(moments),
            "alpha": obs.update_alpha,
            "phi": lambda: obs.update_phi(moments, stats),
        }
        for name, step in steps.items():
            step()
            now = general_elbo(obs, y, mask, post, stats)
            assert now >= prev - 1e-8 * abs(prev), (name, prev, now)
            prev = now
        J, h, _ = obs.information(y, mask, None, stats)
        post = dense_e_step(model, y, mask, J, h)
        now = general_elbo(obs, y, mask, post, stats)
        assert now >= prev - 1e-8 * abs(prev), ("q(X)", prev, now)
    assert now > start  # the sweep did something


# ------------------------------------------------------------------------------------------------ C3
@pytest.mark.parametrize("masked", [False, True])
def test_q_c_update_solves_the_normal_equations(masked):
    model, y, mask, _, post, _, moments = fixed_q_x(masked)
    obs = model.observation
    with torch.no_grad():
        phi = (obs.phi_a / obs.phi_b).clone()
        alpha = (obs.alpha_a[:, None] / obs.alpha_b).clone()
        d = obs.d_mean.clone()
        obs.update_c(moments)
    B, T, N = y.shape
    K = model.latent_spec.n_across
    cov = post.trial_cov().expand(B, T, -1, -1)
    w = torch.ones(B, T, N, dtype=torch.bool) if mask is None else mask
    n0 = 0
    for r, n_r in enumerate(model.y_dims):
        lat = slice(r * K, (r + 1) * K)
        for n in range(n0, n0 + n_r):
            XX = torch.zeros(K, K, dtype=F64)
            Sxy = torch.zeros(K, dtype=F64)
            for b in range(B):
                for t in range(T):
                    if not w[b, t, n]:
                        continue
                    m = post.mean[b, t, lat]
                    XX += cov[b, t, lat, lat] + torch.outer(m, m)
                    Sxy += m * (y[b, t, n] - d[n])
            prec = torch.diag(alpha[r]) + phi[n] * XX
            Sigma = torch.linalg.inv(prec)
            mu = Sigma @ (phi[n] * Sxy)
            assert rel_err(obs.C_cov[n], Sigma) < 1e-9, n
            assert rel_err(obs.C_mean[n, lat], mu) < 1e-9, n
            others = torch.ones(obs.C_mean.shape[1], dtype=torch.bool)
            others[lat] = False
            assert bool((obs.C_mean[n, others] == 0).all()), n  # loadings only on its own region's columns
        n0 += n_r


# ------------------------------------------------------------------------------------------------ C4
@pytest.mark.parametrize("engine", ["time", "kalman"])
def test_mdlag_fit_never_lowers_the_elbo(engine):
    data = small_data(seed=2)
    model = mbrila.MDLAG(LatentSpec(3), data.y_dims, data.T, engine=engine)
    trace = np.array(model.fit(data, max_iter=20, tol=0.0, progress=False).score_trace)
    assert len(trace) == 21
    assert np.all(np.diff(trace) >= -1e-8 * np.abs(trace[:-1])), np.diff(trace).min()
    assert trace[-1] > trace[0]


# ------------------------------------------------------------------------------------------------ C5
def _random_ard_state(model, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    obs = model.observation
    N, Kx = obs.C_mean.shape
    K = obs.K
    obs.C_mean = torch.randn(N, Kx, generator=g, dtype=F64) * obs.support
    A = torch.randn(N, K, K, generator=g, dtype=F64) / K
    obs.C_cov = A @ A.mT + 0.05 * torch.eye(K, dtype=F64)
    obs.alpha_a = 1.0 + torch.rand(obs.alpha_a.shape, generator=g, dtype=F64)
    obs.alpha_b = 0.5 + torch.rand(obs.alpha_b.shape, generator=g, dtype=F64)
    obs.phi_a = 5.0 + 10 * torch.rand(N, generator=g, dtype=F64)
    obs.phi_b = 2.0 + 10 * torch.rand(N, generator=g, dtype=F64)
    obs.d_mean = torch.randn(N, generator=g, dtype=F64)
    obs.d_var = 0.01 + 0.1 * torch.rand(N, generator=g, dtype=F64)
    for blk in model.across:
        blk.kernel.timescale = 1.5 + 3 * float(torch.rand((), generator=g, dtype=F64))


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_mdlag_time_equals_mdlag_kalman_on_matern32_one_region(masked, eps):
    # One region: a single-view, undelayed Matérn latent is lifted by its exact SDE (smooth part (1 − ε) k, no white
    # part) and its dense covariance drops the white part too, so both engines describe the same prior.
    T, y_dims = 12, (6,)
    kw = {"kernel_factory": lambda: mbrila.Matern32Kernel(3.0), "eps": eps}
    data = small_data(seed=4, masked=masked, T=T, y_dims=y_dims)
    tm = mbrila.MDLAG(LatentSpec(3), y_dims, T, engine="time", **kw)
    km = mbrila.MDLAG(LatentSpec(3), y_dims, T, engine="kalman", **kw)
    assert type(tm.engine) is VEMARDEngine and type(km.engine) is VEMKalmanARDEngine
    assert all(blk.uses_sde for blk in km.across)
    _random_ard_state(tm, seed=5)
    km.observation.load_state_dict(tm.observation.state_dict())
    for a, b in zip(tm.across, km.across, strict=True):
        b.kernel.timescale = float(a.kernel.timescale.detach())
    a, b = tm.infer(data), km.infer(data)
    assert rel_err(a.mean, b.mean) < TOL
    assert rel_err(a.cov, b.cov) < TOL
    assert rel_err(a.log_likelihood, b.log_likelihood) < TOL
    # both are the reference's q(X)
    y, mask = tm._data(data)
    with torch.no_grad():
        J, h, c = tm.observation.information(y, mask)
    ref = information_posterior(reference_prior(tm, mbrila.Matern32Kernel), J, h)
    assert rel_err(b.mean, ref.mean) < TOL
    assert rel_err(b.cov, time_blocks(ref.full_cov, T, h.shape[-1])) < TOL
    assert rel_err(b.log_likelihood, c + ref.log_z) < TOL


# ------------------------------------------------------------------------------------------------ C6
#: What each engine name must build (the published library once ran another engine under some names).
EXPECTED_ARD = {"time": VEMARDEngine, "freq": VEMARDFreqEngine, "kalman": VEMKalmanARDEngine}
EXPECTED_LINEAR = {"exact": ExactEMEngine, "kalman": KalmanEMEngine}
FORMS = {VEMARDEngine: ExactGPLatent, VEMARDFreqEngine: ExactGPLatent, VEMKalmanARDEngine: MarkovianGPLatent}


def test_engine_mappings_are_the_specified_ones():
    assert ARD_ENGINES == EXPECTED_ARD
    assert LINEAR_ENGINES == EXPECTED_LINEAR


@pytest.mark.parametrize("name", sorted(EXPECTED_ARD))
def test_mdlag_engine_names_build_exactly_that_engine(name):
    for spelled in (name, name.upper()):
        model = mbrila.MDLAG(LatentSpec(2), (3, 3), 10, engine=spelled)
        cls = EXPECTED_ARD[name]
        assert type(model.engine) is cls, (spelled, type(model.engine))
        assert type(model.engine) is ARD_ENGINES[name]
        assert all(type(blk) is FORMS[cls] for blk in model.across)


@pytest.mark.parametrize("name", sorted(EXPECTED_LINEAR))
@pytest.mark.parametrize("preset", [mbrila.DLAG, mbrila.GPFA])
def test_linear_preset_engine_names_build_exactly_that_engine(preset, name):
    model = preset(LatentSpec(1, 1), (3, 3), 10, engine=name)
    assert type(model.engine) is EXPECTED_LINEAR[name] is LINEAR_ENGINES[name]
    form = ExactGPLatent if name == "exact" else MarkovianGPLatent
    assert all(type(blk) is form for blk, _, _ in model.blocks())


@pytest.mark.parametrize(
    ("preset", "cls"),
    [
        ("mdlag", VEMARDEngine),
        ("mdlag_time", VEMARDEngine),
        ("mdlag_freq", VEMARDFreqEngine),
        ("mdlag_ssm", VEMKalmanARDEngine),
        ("dlag", ExactEMEngine),
        ("dlag_exact", ExactEMEngine),
        ("dlag_ssm", KalmanEMEngine),
        ("gpfa", KalmanEMEngine),
        ("gpfa_exact", ExactEMEngine),
        ("gpfa_ssm", KalmanEMEngine),
    ],
)
def test_build_model_names_build_exactly_that_engine(preset, cls):
    spec = LatentSpec(2) if preset.startswith("mdlag") else LatentSpec(1, 1)
    model = mbrila.build_model(preset, latent_spec=spec, y_dims=(3, 3), T=10)
    assert type(model.engine) is cls


def test_an_engine_instance_is_kept():
    engine = VEMKalmanARDEngine(max_iter=3)
    model = mbrila.MDLAG(LatentSpec(2), (3, 3), 10, engine=engine)
    assert model.engine is engine
    assert all(type(blk) is MarkovianGPLatent for blk in model.across)


# ------------------------------------------------------------------------------------------------ C7
def _listed_engines(message: str, model_name: str) -> set[str]:
    m = re.search(rf"Engines that can fit {model_name}: ([A-Za-z, ]+)\.", message)
    assert m is not None, message
    return {s.strip() for s in m.group(1).split(",")}


@pytest.mark.parametrize(
    ("build", "model_name", "missing", "works"),
    [
        (
            lambda: mbrila.MDLAG(LatentSpec(2), (3, 3), 10, engine="exact"),
            "MDLAG",
            "linear_observation",
            {"VEMARDEngine", "VEMARDFreqEngine", "VEMKalmanARDEngine"},
        ),
        (
            lambda: mbrila.DLAG(LatentSpec(1, 1), (3, 3), 10, engine="time"),
            "DLAG",
            "ard_observation",
            {"ExactEMEngine", "KalmanEMEngine"},
        ),
        (
            lambda: mbrila.DLAG(LatentSpec(1, 1), (3, 3), 10, engine="freq"),
            "DLAG",
            "ard_observation",
            {"ExactEMEngine", "KalmanEMEngine"},
        ),
        (
            lambda: mbrila.GPFA(LatentSpec(1, 1), (3, 3), 10, engine="time"),
            "GPFA",
            "ard_observation",
            {"ExactEMEngine", "KalmanEMEngine"},
        ),
        (
            lambda: mbrila.GPFA(LatentSpec(1, 1), (3, 3), 10, engine="freq"),
            "GPFA",
            "ard_observation",
            {"ExactEMEngine", "KalmanEMEngine"},
        ),
        (
            lambda: mbrila.MDLAG(LatentSpec(2), (3, 3), 10, engine="freq", kernel_factory=RationalQuadratic),
            "MDLAG",
            "spectral_density",
            {"VEMARDEngine", "VEMKalmanARDEngine"},
        ),
        (
            lambda: mbrila.LDS(LatentSpec(1, 1), (3, 3), 10, engine="exact"),
            "LDS",
            "dense_gp",
            {"KalmanEMEngine"},
        ),
    ],
    ids=["mdlag-exact", "dlag-time", "dlag-freq", "gpfa-time", "gpfa-freq", "mdlag-freq-rq", "lds-exact"],
)
def test_capability_errors_name_what_is_missing_and_what_would_work(build, model_name, missing, works):
    with pytest.raises(ValueError, match=re.escape(f"['{missing}']")) as err:
        build()
    assert _listed_engines(str(err.value), model_name) == works


def test_rational_quadratic_has_no_spectral_density():
    k = RationalQuadratic()
    assert not k.has_spectral_density
    with pytest.raises(NotImplementedError, match="spectral_density"):
        k.spectral_density(torch.zeros(3))


# ------------------------------------------------------------------------------------------------ C8
def test_mdlag_rejects_bad_latent_specs():
    with pytest.raises(ValueError, match="n_across"):
        mbrila.MDLAG(LatentSpec(n_across=0), (3, 3), 10)
    with pytest.raises(ValueError, match="n_within"):
        mbrila.MDLAG(LatentSpec(n_across=2, n_within=1), (3, 3), 10)


def test_mdlag_fit_rejects_data_of_other_regions():
    data = small_data()
    model = mbrila.MDLAG(LatentSpec(2), (4, 5), data.T)
    with pytest.raises(ValueError, match="y_dims"):
        model.fit(data, max_iter=1, progress=False)


def test_nan_without_a_mask_is_refused():
    y = torch.zeros(2, 10, 6, dtype=F64)
    y[1, 3, 4] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        MultiRegionData(y, (3, 3))


@pytest.mark.parametrize("y_dims", [(4, 0), (0, 4), (4, -1)])
def test_data_with_a_region_without_neurons_is_refused(y_dims):
    with pytest.raises(ValueError, match="y_dims"):
        MultiRegionData(torch.zeros(2, 10, 4, dtype=F64), y_dims)


@pytest.mark.parametrize("y_dims", [(4, 0), (0, 4), (4, -1)])
def test_mdlag_with_a_region_without_neurons_is_refused(y_dims):
    with pytest.raises(ValueError, match="y_dims"):
        mbrila.MDLAG(LatentSpec(2), y_dims, 10)


# ------------------------------------------------------------------------------------------------ C9
def test_pruned_latents_have_nan_delays_and_the_summary_reports_the_model():
    scenario = MultiRegionScenario(
        n_trials=10,
        T=30,
        y_dims=(8, 8, 8),
        n_across=2,
        n_within=0,
        timescales_across=(3.0, 1.5),
        delay_amplitude=(1.5, 0.8),
        snr=20.0,
        seed=0,
    )
    # ARD switches the two spare latents off (below 2 % of every region's shared variance) within ~5 iterations
    # and prunes them (posterior power below PRUNE_TOL) by ~35.
    run = run_synthetic(
        "mdlag_time", scenario=scenario, latent_spec=LatentSpec(4), max_iter=50, tol=0.0, progress=False
    )
    model = run.model
    assert type(model.engine) is VEMARDEngine
    active = model.active_latents()
    assert active.shape == (3, 4)
    off = ~active.any(0)
    assert bool(off.any()), active  # the checks below are not vacuous
    pruned = model.observation.pruned
    assert bool(pruned.any()), pruned
    assert bool(off[pruned].all())  # a pruned latent is inactive everywhere
    delays = model.delays()
    assert delays.shape == (30, 3, 4)
    assert bool(delays[:, :, off].isnan().all())
    assert torch.equal(delays.isnan(), (~active)[None].expand_as(delays))
    summary = run.summary
    assert summary["n_active_latents"] == int(active.any(0).sum())
    table = summary["active_latents"]
    assert list(table) == list(run.data.region_names)
    assert [table[name] for name in run.data.region_names] == active.tolist()


def test_pruned_latents_leave_q_x_exact_in_the_kalman_engine():
    # After pruning, the Kalman ARD engine drops the pruned latents' blocks from the state. With an AR lift of order
    # T − 1 (exact for any window of T steps) its q(X) must still equal the dense time engine's, pruned rows included
    # (they keep their prior marginals).
    scenario = MultiRegionScenario(
        n_trials=6,
        T=12,
        y_dims=(6, 6, 6),
        n_across=1,
        n_within=0,
        timescales_across=(3.0,),
        delay_amplitude=(1.0,),
        snr=20.0,
        seed=1,
    )
    data, _ = scenario.sample()
    time = mbrila.MDLAG(LatentSpec(3), data.y_dims, data.T, engine="time")
    time.fit(data, max_iter=60, tol=0.0, progress=False)
    pruned = time.observation.pruned
    assert bool(pruned.any()) and not bool(pruned.all()), pruned  # some, not all, latents pruned
    kalman = mbrila.MDLAG(LatentSpec(3), data.y_dims, data.T, engine="kalman", order=data.T - 1)
    kalman.load_state_dict(time.state_dict())
    assert kalman.inactive_blocks() == time.inactive_blocks()
    a, b = time.infer(data), kalman.infer(data)
    assert rel_err(b.mean, a.mean) < TOL
    assert rel_err(b.cov, a.cov) < TOL
    assert rel_err(b.log_likelihood, a.log_likelihood) < TOL


# ------------------------------------------------------------------------------------------------ read-out sweeps
@pytest.mark.parametrize("masked", [False, True])
def test_read_out_sweeps_raise_the_elbo_each_time_and_stop_on_the_tolerance(masked):
    model, y, mask, stats, post, Exx, moments = fixed_q_x(masked)
    obs = model.observation
    with torch.no_grad():
        state = {k: v.clone() for k, v in obs.state_dict().items()}
        # readout_objective is the ELBO's read-out part: the ELBO minus it does not depend on q(θ).
        rest = general_elbo(obs, y, mask, post, stats) - float(obs.readout_objective(moments, stats))
        values = [general_elbo(obs, y, mask, post, stats)]
        for _ in range(6):
            assert obs.update(y, mask, post.mean, Exx, stats) == 1
            values.append(general_elbo(obs, y, mask, post, stats))
            assert abs(values[-1] - rest - float(obs.readout_objective(moments, stats))) < 1e-9 * abs(values[-1])
        assert all(b >= a - 1e-9 * abs(a) for a, b in itertools.pairwise(values)), values
        assert values[-1] > values[1]  # sweeps after the first still gain
        one_by_one = {k: v.clone() for k, v in obs.state_dict().items()}
        obs.load_state_dict(state)
        assert obs.update(y, mask, post.mean, Exx, stats, sweeps=6, tol=0.0) == 6
        for k, v in obs.state_dict().items():
            assert torch.equal(v, one_by_one[k]), k  # six sweeps at once are six single updates
        obs.load_state_dict(state)
        # A tolerance no sweep's gain can exceed stops after the first sweep.
        assert obs.update(y, mask, post.mean, Exx, stats, sweeps=6, tol=1.0) == 1


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_readout_sweeps_must_be_a_positive_int(bad):
    for engine in (VEMARDEngine, VEMKalmanARDEngine, VEMARDFreqEngine):
        with pytest.raises(ValueError, match="readout_sweeps must be an int"):
            engine(readout_sweeps=bad)


@pytest.mark.parametrize("prune", [False, True])
def test_update_c_returns_the_log_determinant_the_elbo_uses(prune):
    """The sweeps' objective takes log|Σ_n| from update_c's Cholesky factor instead of a determinant of C_cov."""
    model, *_, moments = fixed_q_x(False)
    obs = model.observation
    with torch.no_grad():
        if prune:
            obs.pruned[1] = True
            obs._zero_pruned()
        logdet = obs.update_c(moments)
        on = ~obs.pruned
        assert rel_err(logdet, torch.linalg.slogdet(obs.C_cov[:, on][:, :, on])[1]) < 1e-10
        cc = obs.c_second()
        assert abs(float(obs.prior_terms(cc, logdet)) - float(obs.prior_terms())) < 1e-10 * abs(
            float(obs.prior_terms())
        )
