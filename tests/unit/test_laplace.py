"""Laplace smoother == dense Laplace reference, for Poisson counts of a linear-Gaussian state path (float64).

For the prior ``s ~ N(0, S)`` (a state-space model stacked over time) and ``y ~ Poisson(f(C s + d))`` the mode ``ŝ``
of ``log p(s | y)``, the covariance ``(S⁻¹ + C_bigᵀ W C_big)⁻¹`` at the mode and the Laplace evidence
``Σ ℓ(η̂) − ½ ŝᵀ S⁻¹ ŝ − ½ log det(I + S C_bigᵀ W C_big)`` are computed densely in
:mod:`tests.reference.dense_laplace` (by Newton's method on ``s = L z``, which also covers a singular ``S``) and
compared to :func:`mbrila.inference.laplace.laplace_smoother`'s Newton iteration on the Kalman smoother.
"""

from __future__ import annotations

import math

import pytest
import torch

import mbrila
from mbrila.inference.kalman import LGSSM
from mbrila.inference.laplace import laplace_smoother
from tests.reference.dense_gaussian import state_moments
from tests.reference.dense_laplace import dense_laplace, dense_laplace_from_cov, poisson_terms, prior_factor

F64 = torch.float64
TOL = 1e-8
LINKS = ("exp", "softplus")


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.broadcast_tensors(a, b)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def random_model(D: int, N: int, T: int, tv: bool, seed: int) -> LGSSM:
    """A stable random prior (``m0 = 0``) and a read-out with its last column zero (the selected path)."""
    g = torch.Generator().manual_seed(seed)

    def stable() -> torch.Tensor:
        q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=F64))
        return q * (0.5 + 0.45 * torch.rand(D, generator=g, dtype=F64))

    def psd(scale: float) -> torch.Tensor:
        G = torch.randn(D, D, generator=g, dtype=F64) / D**0.5
        return scale * (G @ G.T + 0.1 * torch.eye(D, dtype=F64))

    n = max(T - 1, 0)
    if tv:
        A = torch.stack([stable() for _ in range(n)]) if n else torch.zeros(0, D, D, dtype=F64)
        Q = torch.stack([psd(0.3) for _ in range(n)]) if n else torch.zeros(0, D, D, dtype=F64)
    else:
        A, Q = stable(), psd(0.3)
    C = torch.randn(N, D, generator=g, dtype=F64) / D**0.5
    C[:, -1] = 0.0
    return LGSSM(
        A=A,
        Q=Q,
        m0=torch.zeros(D, dtype=F64),
        P0=psd(0.5),
        C=C,
        d=0.3 * torch.randn(N, generator=g, dtype=F64),
    )


def rate(eta: torch.Tensor, link: str) -> torch.Tensor:
    return torch.exp(eta) if link == "exp" else torch.nn.functional.softplus(eta)


def sample_counts(S: torch.Tensor, C: torch.Tensor, d: torch.Tensor, B: int, T: int, link: str, seed: int):
    """Counts from the model: a prior path ``L ξ`` (``S = L Lᵀ``), then Poisson draws of its rates."""
    g = torch.Generator().manual_seed(seed + 10_000)
    L = prior_factor(S)
    s = (torch.randn(B, L.shape[1], generator=g, dtype=F64) @ L.T).reshape(B, T, -1)
    return torch.poisson(rate(s @ C.T + d, link), generator=g)


def random_mask(B: int, T: int, N: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed + 20_000)
    mask = torch.rand(B, T, N, generator=g) > 0.3
    mask[:, T // 2] = False  # a step with no counts at all
    mask[-1, :, 0] = False  # a neuron never observed in one trial
    return mask


def check_against_reference(res, ref) -> None:
    assert res.converged
    assert rel_err(res.mean, ref.mean) < TOL
    assert rel_err(res.cov, ref.cov) < TOL
    assert res.cross_cov.shape == ref.cross_cov.shape
    if ref.cross_cov.numel():
        assert rel_err(res.cross_cov, ref.cross_cov) < TOL
    assert rel_err(res.log_likelihood, ref.log_likelihood) < TOL


def with_garbage(y: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """``y`` with NaN in the masked entries: they must not reach any result."""
    return y if mask is None else torch.where(mask, y, torch.full_like(y, float("nan")))


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("deriv", [1, 2])
def test_reference_link_derivatives_match_autograd(link, deriv):
    # The reference's hand-written g and w must be the derivatives of its own ℓ, or it proves nothing.
    y = torch.tensor([0.0, 1.0, 3.0, 7.0], dtype=F64)[:, None].expand(4, 9).reshape(-1)
    eta = torch.linspace(-3, 2.5, 9, dtype=F64).repeat(4).requires_grad_()
    ll, g, w = poisson_terms(y, eta, link)
    (dl,) = torch.autograd.grad(ll.sum(), eta, create_graph=True)
    if deriv == 1:
        torch.testing.assert_close(g, dl.detach(), rtol=1e-12, atol=1e-12)
    else:
        (d2,) = torch.autograd.grad(dl.sum(), eta)
        torch.testing.assert_close(w, -d2, rtol=1e-10, atol=1e-12)
        assert bool((w > 0).all())  # ℓ strictly concave: the Newton matrix is positive definite


@pytest.mark.parametrize("T", [1, 2, 7, 8])
@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("tv", [False, True])
def test_matches_dense_reference_on_random_models(T, link, masked, tv):
    D, N, B = 3, 4, 2
    seed = 100 * T + 10 * masked + tv
    params = random_model(D, N, T, tv, seed)
    _, S = state_moments(params.A, params.Q, params.m0, params.P0, T)
    y = sample_counts(S, params.C, params.d, B, T, link, seed)
    mask = random_mask(B, T, N, seed) if masked else None
    res = laplace_smoother(params, with_garbage(y, mask), mask, link=link, tol=1e-12)
    ref = dense_laplace(params.A, params.Q, params.P0, params.C, params.d, y, mask, link)
    assert res.mean.shape == (B, T, D) and res.cov.shape == (B, T, D, D)
    assert res.log_likelihood.shape == (B,)
    check_against_reference(res, ref)


def lifted_params(m, T: int, seed: int) -> LGSSM:
    """``m.lgssm(T)`` after random loadings on the read-out's support and small random offsets."""
    g = torch.Generator().manual_seed(seed)
    obs = m.observation
    with torch.no_grad():
        obs.C.copy_(torch.randn(obs.C.shape, generator=g, dtype=F64) * obs.support)
        obs.d.copy_(0.2 * torch.randn(obs.d.shape, generator=g, dtype=F64))
        p = m.lgssm(T)
    return LGSSM(A=p.A, Q=p.Q, m0=p.m0, P0=p.P0, C=p.C, d=p.d)


def dlag_params(T: int, seed: int) -> LGSSM:
    m = mbrila.build_model("dlag", latent_spec=mbrila.LatentSpec(1, 1), y_dims=(3, 3), T=T, engine="kalman").double()
    with torch.no_grad():
        m.delay.set_delays(torch.tensor([[0.0], [1.7]], dtype=F64))
    for blk, ts in zip([b for b, _, _ in m.blocks()], (3.0, 2.0, 4.0), strict=True):
        blk.kernel.timescale = ts
    assert float(m.delay.region_delays().detach()[1, 0]) == pytest.approx(1.7)
    return lifted_params(m, T, seed)


def adm_params(T: int, seed: int) -> LGSSM:
    m = mbrila.build_model("adm", latent_spec=mbrila.LatentSpec(1, 0), y_dims=(3, 3), T=T).double()
    t = torch.arange(T, dtype=F64)
    traj = torch.zeros(T, 2, 1, dtype=F64)
    traj[:, 1, 0] = 1.0 + 0.8 * torch.sin(2 * math.pi * t / T)
    with torch.no_grad():
        m.delay.set_delays(traj)
        delays = m.delay.delays(T)[:, 1, 0]
    assert float(delays.max() - delays.min()) > 0.5  # the delay does move within the trial
    m.across[0].kernel.timescale = 3.0
    return lifted_params(m, T, seed)


@pytest.mark.parametrize("preset", ["dlag", "adm"])
@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("masked", [False, True])
def test_matches_dense_reference_on_lifted_gp_priors(preset, link, masked):
    T, B = 12, 2
    seed = 7 + masked
    params = dlag_params(T, seed) if preset == "dlag" else adm_params(T, seed)
    if preset == "adm":
        assert params.A.ndim == 3 and params.Q.ndim == 3
        assert float((params.A[0] - params.A[-1]).abs().max()) > 1e-3  # time-varying in value, not only in form
    D = params.state_dim
    assert bool((params.C.abs().sum(0) == 0).any())  # the lags are not read out
    _, S = state_moments(params.A, params.Q, params.m0, params.P0, T)
    evals = torch.linalg.eigvalsh(S)
    assert int((evals > 1e-10 * evals.max()).sum()) < T * D  # the lift's shift constraints: S is singular
    y = sample_counts(S, params.C, params.d, B, T, link, seed)
    mask = random_mask(B, T, y.shape[-1], seed) if masked else None
    res = laplace_smoother(params, with_garbage(y, mask), mask, link=link, tol=1e-12)
    ref = dense_laplace_from_cov(S, params.C, params.d, y, mask, link)
    check_against_reference(res, ref)


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("preset", ["random", "dlag"])
def test_warm_start(link, preset):
    if preset == "random":
        params, T = random_model(3, 4, 7, tv=True, seed=3), 7
    else:
        params, T = dlag_params(12, seed=3), 12
    _, S = state_moments(params.A, params.Q, params.m0, params.P0, T)
    y = sample_counts(S, params.C, params.d, 2, T, link, seed=3)
    cold = laplace_smoother(params, y, link=link, tol=1e-12)
    assert cold.converged and cold.n_newton > 1
    # From the mode the first Newton step is already below the tolerance.
    warm = laplace_smoother(params, y, link=link, init=cold.mean, tol=1e-12)
    assert warm.converged and warm.n_newton == 1
    for f in ("mean", "cov", "cross_cov", "log_likelihood"):
        assert rel_err(getattr(warm, f), getattr(cold, f)) < 1e-10, f
    # From anywhere (concave objective) the same mode. The random path breaks a lift's shift constraints, which
    # the first full Newton step restores.
    g = torch.Generator().manual_seed(4)
    init = 2.0 * torch.randn(cold.mean.shape, generator=g, dtype=F64)
    far = laplace_smoother(params, y, link=link, init=init, tol=1e-12)
    assert far.converged
    for f in ("mean", "cov", "cross_cov", "log_likelihood"):
        assert rel_err(getattr(far, f), getattr(cold, f)) < TOL, f


def test_input_errors_say_what_is_wrong():
    params = random_model(3, 4, 5, tv=False, seed=0)
    y = torch.ones(2, 5, 4, dtype=F64)
    with pytest.raises(ValueError, match=r"y must have shape \(B, T, N\)"):
        laplace_smoother(params, y[0])
    with pytest.raises(ValueError, match=r"neurons but params\.C has 4 rows"):
        laplace_smoother(params, y[..., :3])
    with pytest.raises(ValueError, match="init must be a state path of shape"):
        laplace_smoother(params, y, init=torch.zeros(2, 5, 2, dtype=F64))
    with pytest.raises(ValueError, match="link must be one of"):
        laplace_smoother(params, y, link="log")
    with pytest.raises(ValueError, match="mask must have the shape of y"):
        laplace_smoother(params, y, torch.ones(2, 5, 3, dtype=torch.bool))


@pytest.mark.parametrize("link", LINKS)
def test_vanishing_prior_gives_the_poisson_likelihood_at_the_offsets(link):
    # With S → 0 the path is pinned at 0, so log p(y) → Σ log Poisson(y | f(d)); the gap is O(S).
    T, B = 6, 2
    base = random_model(3, 4, T, tv=False, seed=5)
    _, S = state_moments(base.A, base.Q, base.m0, base.P0, T)
    y = sample_counts(S, base.C, base.d, B, T, link, seed=5)
    exact = torch.distributions.Poisson(rate(base.d, link).expand(B, T, -1)).log_prob(y).sum((1, 2))
    gaps = []
    for scale in (1e-4, 1e-6, 1e-8):
        params = LGSSM(A=base.A, Q=scale * base.Q, m0=base.m0, P0=scale * base.P0, C=base.C, d=base.d)
        res = laplace_smoother(params, y, link=link, tol=1e-12)
        assert res.converged
        gaps.append(float((res.log_likelihood - exact).abs().max()))
    assert gaps[2] < 1e-6 * float(exact.abs().max())
    assert gaps[1] < 1e-1 * gaps[0] and gaps[2] < 1e-1 * gaps[1]
