"""Markovian (AR(P)) lift of a delayed multi-output GP to a linear-Gaussian state-space model.

One latent is a vector process ``z_t ∈ R^V`` (``V`` views: the regions that observe it, each at its own
delay) with covariance

    Cov(z^r_t, z^s_u) = (1 − ε) k((t − δ^r(t)) − (u − δ^s(u))) + ε 1[r = s, t = u].

The state is ``s_t = [z_t, z_{t−1}, …, z_{t−P+1}]`` (``P·V`` entries, lag-major). For each ``t`` the joint
covariance ``Σ_t`` of ``(z_t, z_{t−1}, …, z_{t−P})`` is built from the kernel, and Gaussian conditioning gives
the AR(P) transition (the block-Toeplitz Yule–Walker solution when the delays are constant)::

    z_t = Σ_p A_{t,p} z_{t−p} + w_t,  w_t ~ N(0, Q_t)
    [A_{t,1} … A_{t,P}] = Σ_t[0, 1:] Σ_t[1:, 1:]⁻¹,    Q_t = Σ_t[0, 0] − [A_{t,·}] Σ_t[1:, 0]

and the first state ``s_0`` is drawn from its exact marginal ``Σ_0[:P, :P]``. Every consecutive window of
``P + 1`` steps then has exactly the GP's joint covariance; longer-range dependence is approximated, and the
approximation becomes exact as ``P`` reaches ``T − 1``. Delays before ``t = 0`` are held at their ``t = 0`` value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mbrila.utils.linalg import symmetrize

if TYPE_CHECKING:
    from mbrila.kernels import BaseKernel


def window_times(delays: Tensor, order: int) -> Tensor:
    """Delayed sample times of every window ``(t, t−1, …, t−P)``.

    Parameters
    ----------
    delays : ``(T, V)`` delay of each view at each time step, or ``(V,)`` for constant delays.
    order : ``P``.

    Returns
    -------
    ``(T, (P+1)·V)`` (or ``((P+1)·V,)`` for constant delays) with entry ``(i, r)`` = ``(t − i) − δ^r(t − i)``,
    lag-major. Times before 0 reuse the delay at 0. For constant delays the window is taken at ``t = 0`` (only
    differences of these times matter).
    """
    lags = torch.arange(order + 1, device=delays.device)
    if delays.ndim == 1:
        return (-lags.to(delays.dtype)[:, None] - delays[None, :]).reshape(-1)
    T = delays.shape[0]
    idx = torch.arange(T, device=delays.device)[:, None] - lags  # (T, P+1): the time t − i
    win_delay = delays[idx.clamp_min(0)]  # (T, P+1, V)
    return (idx.to(delays.dtype)[..., None] - win_delay).reshape(T, -1)


def window_covariance(kernel: BaseKernel, times: Tensor, eps: float) -> Tensor:
    """Joint covariance of a window: ``(1 − ε) k(τ_a − τ_b) + ε 1[a = b]`` for sample times ``(..., M)``.

    The nugget sits on the diagonal only, i.e. on same-view, same-time pairs.
    """
    tau = times[..., :, None] - times[..., None, :]
    eye = torch.eye(tau.shape[-1], dtype=tau.dtype, device=tau.device)
    return (1.0 - eps) * kernel.cov(tau) + eps * eye


def condition_windows(Sigma: Tensor, n_views: int) -> tuple[Tensor, Tensor]:
    """Gaussian conditioning of ``z_t`` on the past ``P`` values within each window covariance.

    Parameters
    ----------
    Sigma : ``(..., (P+1)V, (P+1)V)`` joint covariance of ``(z_t, z_{t−1}, …, z_{t−P})``.

    Returns
    -------
    coef : ``(..., V, P·V)`` the AR coefficients ``[A_1 … A_P]``
    noise : ``(..., V, V)`` the innovation covariance ``Q``
    """
    V = n_views
    past = Sigma[..., V:, V:]
    cross = Sigma[..., :V, V:]
    L, info = torch.linalg.cholesky_ex(past)
    if bool((info != 0).any()):
        raise ValueError(
            "the kernel's lagged covariance is not positive definite for this AR order; "
            "increase the nugget eps or lower the order."
        )
    coef = torch.cholesky_solve(cross.mT, L).mT
    noise = symmetrize(Sigma[..., :V, :V] - coef @ cross.mT)
    return coef, noise


def companion(coef: Tensor, noise: Tensor) -> tuple[Tensor, Tensor]:
    """Lift AR coefficients to the state ``s_t = [z_t, …, z_{t−P+1}]``.

    ``coef (..., V, P·V)``, ``noise (..., V, V)`` → ``A (..., P·V, P·V)`` (coefficients on top, a shift below)
    and ``Q (..., P·V, P·V)`` (``noise`` in the top-left block, zero elsewhere).
    """
    V, PV = coef.shape[-2:]
    batch = coef.shape[:-2]
    shift = torch.eye(PV - V, PV, dtype=coef.dtype, device=coef.device).expand(*batch, PV - V, PV)
    A = torch.cat([coef, shift], dim=-2)
    Q = torch.zeros(*batch, PV, PV, dtype=coef.dtype, device=coef.device)
    Q = torch.cat(
        [torch.cat([noise, Q[..., :V, V:]], -1), Q[..., V:, :]],
        dim=-2,
    )
    return A, Q


def lift(kernel: BaseKernel, delays: Tensor, order: int, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """State-space form ``(A, Q, P0)`` of one delayed GP latent (see the module docstring).

    Parameters
    ----------
    kernel : the latent's kernel (only ``cov`` is used).
    delays : ``(V,)`` constant delays (time-invariant model) or ``(T, V)`` delays at each step.
    order : AR order ``P ≥ 1``.
    eps : nugget ``ε`` in ``[0, 1)``.

    Returns
    -------
    A, Q : ``(P·V, P·V)`` for constant delays, else ``(T−1, P·V, P·V)`` with ``A[t]`` mapping ``s_t`` to ``s_{t+1}``.
    P0 : ``(P·V, P·V)`` covariance of the first state.
    """
    V = delays.shape[-1]
    Sigma = window_covariance(kernel, window_times(delays, order), eps)
    windows, P0 = transition_windows(Sigma, delays.ndim == 1, order * V)
    coef, noise = condition_windows(windows, V)
    A, Q = companion(coef, noise)
    return A, Q, P0


def transition_windows(Sigma: Tensor, constant: bool, state_dim: int) -> tuple[Tensor, Tensor]:
    """The window covariances of the transitions and the first state's covariance ``P0``.

    ``Sigma``: ``(..., M, M)`` for constant delays (one window serves every transition) or ``(..., T, M, M)``,
    whose window ``t`` conditions ``z_t`` on ``z_{t−1..t−P}``, i.e. belongs to the transition ``t−1 → t``.
    Returns ``(..., M, M)`` or ``(..., T−1, M, M)``, and ``(..., S, S)`` with ``S = state_dim``.
    """
    if constant:
        return Sigma, Sigma[..., :state_dim, :state_dim]
    return Sigma[..., 1:, :, :], Sigma[..., 0, :state_dim, :state_dim]
