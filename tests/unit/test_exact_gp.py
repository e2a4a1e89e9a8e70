"""Exact dense-GP DLAG / GPFA == an independent dense reference (float64), and == the state-space engines where
those describe the same model exactly (Matérn SDE; AR lift of order T − 1)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mbrila
from mbrila import LatentSpec, MultiRegionData
from mbrila.dynamics.exact_gp import ExactGPLatent
from mbrila.inference.exact_em import ExactEMEngine
from mbrila.inference.kalman_em import KalmanEMEngine
from mbrila.synthetic import MultiRegionScenario
from tests.reference.dense_gp import dense_gp_posterior, prior_covariance, row_layout, view_covariance

F64 = torch.float64
TOL = 1e-8


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.broadcast_tensors(a, b)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def set_parameters(model, seed: int, delays: torch.Tensor | None = None) -> dict:
    """Random read-out (block-structured C, d, R > 0), timescales and delays, set directly on ``model``.

    Returns the timescales set, ``{"across": [...], "within": [[...] per region]}``.
    """
    g = torch.Generator().manual_seed(seed)
    obs = model.observation
    N, K = obs.C.shape
    obs.C = torch.randn(N, K, generator=g, dtype=F64) * obs.support
    obs.d = torch.randn(N, generator=g, dtype=F64)
    obs.R = 0.3 + 1.2 * torch.rand(N, generator=g, dtype=F64)
    ts_across = [1.2 + 2.5 * float(torch.rand((), generator=g, dtype=F64)) for _ in model.across]
    ts_within = [[0.8 + 3.0 * float(torch.rand((), generator=g, dtype=F64)) for _ in blks] for blks in model.within]
    for blk, ts in zip(model.across, ts_across, strict=True):
        blk.kernel.timescale = ts
    for blks, tss in zip(model.within, ts_within, strict=True):
        for blk, ts in zip(blks, tss, strict=True):
            blk.kernel.timescale = ts
    if delays is not None:
        model.delay.set_delays(delays)
    return {"across": ts_across, "within": ts_within}


def copy_parameters(src, dst) -> None:
    """The same read-out, timescales and delays in ``dst`` as in ``src``."""
    for name in ("C", "d", "R"):
        setattr(dst.observation, name, getattr(src.observation, name).clone())
    for a, b in zip(src.across, dst.across, strict=True):
        b.kernel.timescale = float(a.kernel.timescale.detach())
    for wa, wb in zip(src.within, dst.within, strict=True):
        for a, b in zip(wa, wb, strict=True):
            b.kernel.timescale = float(a.kernel.timescale.detach())
    if hasattr(src.delay, "region_delays"):
        dst.delay.set_delays(src.delay.region_delays().detach())


def make_kernel(kernel_cls, timescale: float):
    """A fresh float64 kernel (built in the default dtype, so the timescale is set again after the cast)."""
    kernel = kernel_cls(timescale).double()
    kernel.timescale = timescale
    return kernel


def reference_prior(model, ts: dict, kernel_cls, eps: float, T: int, delays: torch.Tensor | None) -> torch.Tensor:
    """The reference prior covariance, from fresh kernels with the timescales set (not the model's blocks)."""
    spec = model.latent_spec
    n_within = [spec.n_within_for(r) for r in range(model.n_regions)]
    kernels = [make_kernel(kernel_cls, t) for t in ts["across"]] + [
        make_kernel(kernel_cls, t) for w in ts["within"] for t in w
    ]
    return prior_covariance(kernels, row_layout(spec.n_across, n_within), delays, eps, T)


def random_data(B: int, T: int, y_dims, seed: int, case: str) -> MultiRegionData:
    g = torch.Generator().manual_seed(seed + 1000)
    y = 2 * torch.randn(B, T, sum(y_dims), generator=g, dtype=F64)
    if case == "full":
        return MultiRegionData(y, y_dims)
    if case == "masked":
        mask = torch.rand(y.shape, generator=g) > 0.15
        return MultiRegionData(y, y_dims, mask=mask)
    lengths = torch.full((B,), T)
    lengths[1] = T - 2
    lengths[2] = max(1, T - 3)
    return MultiRegionData(y, y_dims, lengths=lengths)


# ------------------------------------------------------------------------------------------------ B1
@pytest.mark.parametrize("T", [5, 6])
@pytest.mark.parametrize("case", ["full", "masked", "ragged"])
def test_exact_dlag_matches_dense_reference(T, case):
    spec, y_dims, B, eps = LatentSpec(2, 1), (4, 3), 4, 1e-3
    model = mbrila.DLAG(spec, y_dims, T)
    assert type(model.engine) is ExactEMEngine
    delays = torch.tensor([[0.0, 0.0], [0.7, -0.45]], dtype=F64)
    ts = set_parameters(model, seed=10 * T, delays=delays)
    data = random_data(B, T, y_dims, seed=T, case=case)
    post = model.infer(data)
    obs = model.observation
    prior = reference_prior(model, ts, mbrila.RBFKernel, eps, T, delays)
    ref = dense_gp_posterior(prior, obs.C, obs.d, obs.R, data.y, data.mask)
    K = sum(model.latent_dims)
    assert post.mean.shape == (B, T, K)
    assert post.cov.shape[1:] == (T, K, K)
    assert rel_err(post.mean, ref.mean) < TOL
    assert rel_err(post.cov, ref.cov) < TOL
    assert rel_err(post.log_likelihood, ref.log_likelihood) < TOL


# ------------------------------------------------------------------------------------------------ B2
@pytest.mark.parametrize("kernel_cls", [mbrila.RBFKernel, mbrila.Matern32Kernel])
@pytest.mark.parametrize("kind", ["none", "constant", "time_varying"])
@pytest.mark.parametrize("V", [1, 3])
def test_exact_gp_latent_covariance_matches_reference(kernel_cls, kind, V):
    T, eps = 7, 2e-3
    g = torch.Generator().manual_seed(V)
    kernel = make_kernel(kernel_cls, 2.3)
    if kind == "none":
        delays = None
    elif kind == "constant":
        delays = torch.cat([torch.zeros(1, dtype=F64), 2 * torch.rand(V - 1, generator=g, dtype=F64) - 1])
    else:
        delays = 2 * torch.rand(T, V, generator=g, dtype=F64) - 1
        delays[:, 0] = 0.0
    for sde in (True, False):
        latent = ExactGPLatent(kernel, n_views=V, eps=eps, exact_sde=sde)
        with torch.no_grad():
            got = latent.covariance(delays, T)
        want = view_covariance(make_kernel(kernel_cls, 2.3), delays, V, eps, T, sde=sde)
        assert got.shape == (V * T, V * T)
        assert rel_err(got, want) < 1e-12


# ------------------------------------------------------------------------------------------------ B3
@pytest.mark.parametrize("T", [7, 10])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_gpfa_exact_equals_gpfa_kalman_on_matern32(T, masked, eps):
    # One region: every latent has a single view, so the Kalman path uses the exact Matérn-3/2 SDE, which carries
    # the smooth part (1 − ε) k and no white part; the dense form drops the white part for such latents too.
    spec, y_dims, B = LatentSpec(2, 1), (6,), 3
    kw = {
        "eps": eps,
        "kernel_factory_across": lambda: mbrila.Matern32Kernel(3.0),
        "kernel_factory_within": lambda: mbrila.Matern32Kernel(3.0),
    }
    exact = mbrila.GPFA(spec, y_dims, T, engine="exact", **kw)
    kalman = mbrila.GPFA(spec, y_dims, T, engine="kalman", **kw)
    assert type(exact.engine) is ExactEMEngine and type(kalman.engine) is KalmanEMEngine
    assert all(blk.uses_sde for blk, _, _ in kalman.blocks())
    ts = set_parameters(exact, seed=T)
    copy_parameters(exact, kalman)
    data = random_data(B, T, y_dims, seed=T, case="masked" if masked else "full")
    a, b = exact.infer(data), kalman.infer(data)
    assert rel_err(a.mean, b.mean) < TOL
    assert rel_err(a.cov, b.cov) < TOL
    assert rel_err(a.log_likelihood, b.log_likelihood) < TOL
    # and both equal the dense reference
    obs = exact.observation
    prior = reference_prior(exact, ts, mbrila.Matern32Kernel, eps, T, None)
    ref = dense_gp_posterior(prior, obs.C, obs.d, obs.R, data.y, data.mask)
    assert rel_err(a.mean, ref.mean) < TOL and rel_err(b.mean, ref.mean) < TOL
    assert rel_err(a.cov, ref.cov) < TOL and rel_err(b.cov, ref.cov) < TOL
    assert rel_err(b.log_likelihood, ref.log_likelihood) < TOL


# ------------------------------------------------------------------------------------------------ B4
@pytest.mark.parametrize("T", [5, 8])
@pytest.mark.parametrize("masked", [False, True])
def test_dlag_ssm_of_order_t_minus_1_equals_exact_dlag(T, masked):
    spec, y_dims, B, eps = LatentSpec(2, 1), (4, 3), 3, 1e-3
    exact = mbrila.DLAG(spec, y_dims, T, engine="exact", eps=eps)
    ssm = mbrila.DLAG(spec, y_dims, T, engine="kalman", order=T - 1, eps=eps)
    assert type(ssm.engine) is KalmanEMEngine
    assert all(blk.order == T - 1 and not blk.uses_sde for blk, _, _ in ssm.blocks())
    delays = torch.tensor([[0.0, 0.0], [0.6, -0.35]], dtype=F64)
    set_parameters(exact, seed=3 * T, delays=delays)
    copy_parameters(exact, ssm)
    data = random_data(B, T, y_dims, seed=2 * T, case="masked" if masked else "full")
    a, b = exact.infer(data), ssm.infer(data)
    assert rel_err(a.mean, b.mean) < TOL
    assert rel_err(a.cov, b.cov) < TOL
    assert rel_err(a.log_likelihood, b.log_likelihood) < TOL


# ------------------------------------------------------------------------------------------------ B5
def _small_data(seed: int = 0):
    sc = MultiRegionScenario(
        n_trials=6,
        T=20,
        y_dims=(6, 5),
        n_across=1,
        n_within=1,
        timescales_across=(3.0,),
        timescales_within=2.0,
        delay_amplitude=(1.5,),
        snr=4.0,
        seed=seed,
    )
    return sc.sample()


def test_exact_em_never_lowers_the_likelihood_and_the_callback_sees_its_parameters():
    data, _ = _small_data()
    model = mbrila.DLAG(LatentSpec(1, 1), data.y_dims, data.T)
    assert type(model.engine) is ExactEMEngine
    gaps: list[float] = []

    def check(it, score):
        gaps.append(abs(float(model.infer(data).log_likelihood.sum()) - score) / abs(score))

    fit = model.fit(data, max_iter=15, tol=0.0, progress=False, callback=check)
    trace = np.array(fit.score_trace)
    assert len(trace) == fit.n_iter + 1 == 16 == len(gaps)
    assert np.all(np.diff(trace) >= -1e-8 * np.abs(trace[:-1])), np.diff(trace).min()
    assert trace[-1] > trace[0]
    assert max(gaps) < 1e-10, max(gaps)
    assert abs(float(model.infer(data).log_likelihood.sum()) - trace[-1]) < 1e-10 * abs(trace[-1])


# ------------------------------------------------------------------------------------------------ reused factors
def _spd(n: int, seed: int) -> torch.Tensor:
    A = torch.randn(n, n, generator=torch.Generator().manual_seed(seed), dtype=F64)
    return A @ A.mT + n * torch.eye(n, dtype=F64)


def test_prior_factors_reuse_only_an_equal_matrix():
    from mbrila.inference.dense import PriorFactors

    cache = PriorFactors()
    K = _spd(6, 0)
    Kinv, logdet = cache.get(0, K)
    assert rel_err(Kinv, torch.linalg.inv(K)) < TOL
    assert abs(float(logdet) - float(torch.linalg.slogdet(K)[1])) < 1e-10
    again = cache.get(0, K.clone())
    assert again is not None and again[0] is Kinv  # an equal matrix under the same key: the stored factorisation
    K2 = K.clone()
    K2[0, 0] += 1e-9  # one entry differs: recomputed, not reused
    Kinv2, _ = cache.get(0, K2)
    assert Kinv2 is not Kinv and rel_err(Kinv2, torch.linalg.inv(K2)) < TOL
    assert cache.get(1, K)[0] is not Kinv  # another block's key never sees block 0's entry
    assert cache.get(0, -K) is None  # not positive definite
    with pytest.raises(ValueError, match="prior covariance of a GP latent is not positive definite"):
        from mbrila.inference.dense import prior_factors

        prior_factors([-K], [0], PriorFactors())


def test_fisher_scoring_with_the_e_step_factors_takes_the_same_step():
    """The fit shares one factorisation cache between the E-step and the Fisher step; the step must be the one a
    fresh computation gives, and a cache primed at other parameters must not leak into it."""
    import copy

    from mbrila.inference.dense import PriorFactors
    from mbrila.inference.exact_em import dense_e_step, reduce_blocks
    from mbrila.inference.fisher import fisher_scoring
    from mbrila.inference.kalman.observation import project_observations

    data, _ = MultiRegionScenario(n_trials=4, T=12, y_dims=(4, 3), seed=3).sample()
    model = mbrila.DLAG(LatentSpec(1, 1), data.y_dims, data.T, engine="exact")
    model.fit(data, max_iter=2, progress=False)
    y, mask = model._data(data)
    obs = model.observation
    with torch.no_grad():
        J, h, _ = project_observations(obs.C, obs.d, obs.R, y, mask)
        primed = PriorFactors()
        post = reduce_blocks(dense_e_step(model, y, mask, J, h, primed))
    stale = PriorFactors()
    other = copy.deepcopy(model)
    for blk in other.across:
        blk.kernel.timescale = 2.0 * float(blk.kernel.timescale.detach())
    for b, K in enumerate(other.dense_covariances()):
        stale.get(b, K)  # factorisations at other parameters under the same keys
    results = []
    for cache in (None, primed, stale):
        m = copy.deepcopy(model)
        fisher_scoring(m, post.block_second, y.shape[0], data.T, n_steps=2, cache=cache)
        results.append(torch.cat([p.detach().reshape(-1) for p in m.parameters()]))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])
    assert not torch.equal(results[0], torch.cat([p.detach().reshape(-1) for p in model.parameters()]))
