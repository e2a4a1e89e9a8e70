"""Fidelity of the state-space priors against the dense GP, swept over the timescale (independent dense reference).

The measure is the Kullback–Leibler divergence per observation from the dense GP to the state-space prior, both
observed with white noise of variance 0.1: ``KL(N(0, K + σ²I) ‖ N(0, K_ss + σ²I)) / (T·V)``. It is the expected
log-likelihood gap per observation on data drawn from the GP, computed exactly rather than from draws.
"""

from __future__ import annotations

import math

import pytest
import torch

from mbrila.dynamics import MarkovianGPLatent
from mbrila.kernels import RBFKernel, check_kernel
from mbrila.kernels.rbf_state_space import rbf_state_space_error, unit_rbf_state_space

EPS = 1e-3
NOISE = 0.1
T = 100
TIMESCALES = (1.0, 3.0, 10.0, 30.0)


def dense_cov(kernel, delays: torch.Tensor, eps: float) -> torch.Tensor:
    """``(1 − ε) k(τ) + ε 1[same view, same time]`` of ``z(t − δ^v)``, time-major, from the definition."""
    times = (torch.arange(T, dtype=torch.float64)[:, None] - delays[None, :]).reshape(-1)
    K = kernel.cov(times[:, None] - times[None, :])
    return (1 - eps) * K + eps * torch.eye(times.numel(), dtype=torch.float64)


def state_space_cov(latent: MarkovianGPLatent, delays: torch.Tensor | None) -> torch.Tensor:
    """Covariance of the views ``H s_t`` over ``t < T`` implied by the block's ``(A, Q, P0)``, time-major."""
    tr = latent.transition(delays)
    A, Q, H = tr.A, tr.Q, tr.H
    V = H.shape[0]
    marg = [tr.P0]
    for _ in range(1, T):
        marg.append(A @ marg[-1] @ A.T + Q)
    out = torch.zeros(T * V, T * V, dtype=torch.float64)
    for u in range(T):
        cross = marg[u]  # Cov(s_t, s_u) for t = u, u + 1, …
        for t in range(u, T):
            blk = H @ cross @ H.T
            out[t * V : (t + 1) * V, u * V : (u + 1) * V] = blk
            out[u * V : (u + 1) * V, t * V : (t + 1) * V] = blk.T
            cross = A @ cross
    if latent.uses_sde:  # the SDE path scales the smooth part by 1 − ε and leaves the white part to the noise
        out = out + EPS * torch.eye(T * V, dtype=torch.float64)
    return out


def kl_per_observation(dense: torch.Tensor, approx: torch.Tensor) -> float:
    n = dense.shape[0]
    eye = torch.eye(n, dtype=torch.float64)
    ratio = torch.linalg.solve(approx + NOISE * eye, dense + NOISE * eye)
    return float(0.5 * (ratio.diagonal().sum() - n - torch.linalg.slogdet(ratio)[1]) / n)


@torch.no_grad()
def fidelity(ell: float, delays: list[float], *, approximate_sde: bool, order: int = 4) -> float:
    d = torch.tensor(delays, dtype=torch.float64)
    kernel = RBFKernel(timescale=ell).double()
    latent = MarkovianGPLatent(kernel, n_views=len(delays), order=order, eps=EPS, approximate_sde=approximate_sde)
    return kl_per_observation(dense_cov(kernel, d, EPS), state_space_cov(latent, None if latent.uses_sde else d))


@pytest.fixture(scope="module")
def sweep() -> dict[str, list[float]]:
    return {
        "ar4": [fidelity(ell, [0.0], approximate_sde=False) for ell in TIMESCALES],
        "ar4_delayed": [fidelity(ell, [0.0, 1.5, -2.2], approximate_sde=False) for ell in TIMESCALES],
        "sde": [fidelity(ell, [0.0], approximate_sde=True) for ell in TIMESCALES],
    }


def test_the_rbf_state_space_form_is_a_function_of_lag_over_timescale():
    # k_ss(τ; ℓ) = g(τ/ℓ): the approximation error is the same at every timescale.
    tau = torch.linspace(0, 4, 9, dtype=torch.float64)
    vals = []
    for ell in (0.7, 3.0, 41.0):
        kernel = RBFKernel().double()
        kernel.timescale = ell  # set in float64: a float32 softplus round trip would differ by 1e-8
        sde = kernel.state_space_form()
        stack = torch.linalg.matrix_exp(sde.F[None] * (tau * ell)[:, None, None])
        vals.append((sde.H @ stack @ sde.Pinf @ sde.H.T)[:, 0, 0])
    torch.testing.assert_close(vals[0], vals[1], rtol=0, atol=1e-12)
    torch.testing.assert_close(vals[0], vals[2], rtol=0, atol=1e-12)


@pytest.mark.parametrize("order", [2, 4, 6, 8])
def test_the_stated_error_bounds_the_covariance_error_and_the_whitened_form_is_stationary(order):
    kernel = RBFKernel(timescale=2.0, state_order=order).double()
    check_kernel(kernel)  # verifies |k_ss − k| ≤ state_space_error on 41 lags up to 10 ℓ
    F, H = unit_rbf_state_space(order)
    # P∞ = I solves the Lyapunov equation with a positive semi-definite diffusion F + Fᵀ ≤ 0.
    assert float(torch.linalg.eigvalsh(-torch.tensor(F + F.T)).min()) > -1e-10
    assert math.isclose(float((H @ H.T)[0, 0]), 1.0, rel_tol=1e-12)
    errors = [rbf_state_space_error(n) for n in (2, 4, 6, 8)]
    assert errors == sorted(errors, reverse=True), errors


def test_the_state_order_is_checked():
    for bad in (0, 13, 2.5, "6", True):
        with pytest.raises(ValueError, match="state_order"):
            RBFKernel(state_order=bad)


def test_the_sde_fidelity_does_not_depend_on_the_timescale(sweep):
    sde = sweep["sde"]
    # Stated tolerance: 2e-4 nats per observation at every timescale (order 8: measured 1.8e-5 – 4.4e-5; AR(4):
    # 1.7e-3, 1.1e-2, 2.4e-2, 1.8e-2 at 1, 3, 10, 30 bins).
    assert max(sde) < 2e-4, sde
    assert max(sde) / min(sde) < 3.0, sde


def test_the_ar4_lift_loses_fidelity_at_long_timescales_where_the_sde_does_not(sweep):
    ar4, sde = sweep["ar4"], sweep["sde"]
    # The AR(4) lift matches the first 4 lags only: at 10 and 30 bins it is an order of magnitude off.
    assert ar4[2] > 10 * sde[2] and ar4[3] > 10 * sde[3], (ar4, sde)
    # Delayed views help the AR(4) lift (each view's lags add information) but it still degrades with ℓ.
    delayed = sweep["ar4_delayed"]
    assert delayed[3] > delayed[0], delayed


def test_undelayed_latents_with_several_views_read_one_sde_state():
    kernel = RBFKernel(timescale=4.0).double()
    latent = MarkovianGPLatent(kernel, n_views=3, approximate_sde=True, delayed=False)
    assert latent.uses_sde and latent.state_dim == kernel.state_order
    tr = latent.transition(torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(tr.H, tr.H[:1].expand(3, -1))
    with pytest.raises(ValueError, match="no delays"):
        latent.transition(torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    # A delayed latent keeps the AR(P) lift, and the RBF's approximation can be turned off.
    assert not MarkovianGPLatent(kernel, n_views=3, approximate_sde=True).uses_sde
    assert not MarkovianGPLatent(kernel, n_views=1, approximate_sde=False).uses_sde
    assert MarkovianGPLatent(kernel, n_views=1).uses_sde
