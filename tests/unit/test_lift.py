"""AR(P) lift of delayed GP latents vs the dense delayed GP (independent dense reference)."""

from __future__ import annotations

import math

import pytest
import torch

from mbrila.dynamics import MarkovianGPLatent
from mbrila.dynamics.lift import lift
from mbrila.inference.kalman import LGSSM, kalman_filter
from mbrila.kernels import Matern32Kernel, Matern52Kernel, RBFKernel

EPS = 1e-3


def dense_delayed_cov(kernel, delays: torch.Tensor, T: int, eps: float) -> torch.Tensor:
    """Covariance of ``z^v(t − δ^v(t))`` for all (t, v), time-major, written directly from the definition."""
    V = delays.shape[-1]
    d = delays if delays.ndim == 2 else delays.expand(T, V)
    times = torch.arange(T, dtype=d.dtype)[:, None] - d
    flat = times.reshape(-1)
    K = kernel.cov(flat[:, None] - flat[None, :])
    return (1 - eps) * K + eps * torch.eye(T * V, dtype=d.dtype)


@torch.no_grad()  # a value to compare, not a graph
def lifted_loglik(kernel, delays, order, y, noise, eps=EPS):
    A, Q, P0 = lift(kernel, delays, order, eps)
    V = y.shape[-1]
    D = order * V
    C = torch.eye(V, D, dtype=y.dtype)
    params = LGSSM(
        A=A,
        Q=Q,
        m0=torch.zeros(D, dtype=y.dtype),
        P0=P0,
        C=C,
        d=torch.zeros(V, dtype=y.dtype),
        R=torch.full((V,), noise, dtype=y.dtype),
    )
    return kalman_filter(params, y, method="sequential").log_likelihood


@torch.no_grad()
def _problem(T: int, tv: bool, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(T, dtype=torch.float64)
    if tv:
        delays = torch.stack(
            [torch.zeros(T, dtype=torch.float64), 1.5 * torch.exp(-((t - T / 3) ** 2) / 20), -0.8 + 0.02 * t],
            1,
        )
    else:
        delays = torch.tensor([0.0, 1.3, -2.2], dtype=torch.float64)
    kernel = RBFKernel(timescale=3.0).double()
    S = dense_delayed_cov(kernel, delays, T, EPS)
    noise = 0.1
    cov = S + noise * torch.eye(S.shape[0], dtype=torch.float64)
    z = torch.linalg.cholesky(cov) @ torch.randn(S.shape[0], 3, generator=gen, dtype=torch.float64)
    y = z.T.reshape(3, T, 3)
    dense = torch.distributions.MultivariateNormal(torch.zeros(S.shape[0], dtype=torch.float64), cov).log_prob(
        y.reshape(3, -1)
    )
    return kernel, delays, y, noise, dense


@pytest.mark.parametrize("tv", [False, True])
def test_lift_is_exact_when_order_covers_the_trial(tv):
    T = 10
    kernel, delays, y, noise, dense = _problem(T, tv)
    ll = lifted_loglik(kernel, delays, T - 1, y, noise)
    torch.testing.assert_close(ll, dense, rtol=0, atol=1e-8)


@pytest.mark.parametrize("tv", [False, True])
def test_lift_error_shrinks_with_order(tv):
    T = 40
    kernel, delays, y, noise, dense = _problem(T, tv)
    errs = [float((lifted_loglik(kernel, delays, P, y, noise) - dense).abs().mean()) for P in (1, 4, 16, 39)]
    assert errs[-1] < 1e-7
    assert errs[0] > errs[1] > errs[2] > errs[3], errs


def test_default_order_error_is_small_per_observation():
    # At the presets' default order the lifted log-likelihood is close to the dense GP's.
    from mbrila.models.presets import DEFAULT_ORDER

    T = 60
    kernel, delays, y, noise, dense = _problem(T, False)
    err = float((lifted_loglik(kernel, delays, DEFAULT_ORDER, y, noise) - dense).abs().mean())
    assert err / (T * 3) < 5e-3, err


@pytest.mark.parametrize("kernel_cls", [Matern32Kernel, Matern52Kernel])
@pytest.mark.parametrize("T", [1, 2, 33])
def test_matern_exact_sde_equals_dense_gp(kernel_cls, T):
    kernel = kernel_cls(timescale=2.5).double()
    latent = MarkovianGPLatent(kernel, n_views=1, eps=EPS)
    assert latent.uses_sde
    tr = latent.transition()
    D = tr.A.shape[-1]
    gen = torch.Generator().manual_seed(1)
    y = torch.randn(2, T, 1, generator=gen, dtype=torch.float64)
    noise = 0.3
    params = LGSSM(
        A=tr.A,
        Q=tr.Q,
        m0=torch.zeros(D, dtype=torch.float64),
        P0=tr.P0,
        C=tr.H,
        d=torch.zeros(1, dtype=torch.float64),
        R=torch.full((1,), noise, dtype=torch.float64),
    )
    ll = kalman_filter(params, y, method="parallel").log_likelihood
    t = torch.arange(T, dtype=torch.float64)
    cov = (1 - EPS) * kernel.cov(t[:, None] - t[None, :]) + noise * torch.eye(T, dtype=torch.float64)
    dense = torch.distributions.MultivariateNormal(torch.zeros(T, dtype=torch.float64), cov).log_prob(y[..., 0])
    torch.testing.assert_close(ll, dense, rtol=0, atol=1e-8 * max(1.0, math.fabs(float(dense.detach().abs().max()))))
