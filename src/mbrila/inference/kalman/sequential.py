"""Sequential Kalman filter and Rauch–Tung–Striebel smoother (one step at a time, batched over trials).

This is the reference recursion: ``O(T)`` depth, cheapest total work. It shares its signature and its
single-step maths (:mod:`.steps`) with :mod:`.parallel`, so each tests the other. Covariances broadcast
over trials: when ``J`` carries no trial dimension (no missing data), every covariance is computed once and
shared by all trials.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mbrila.inference.kalman.steps import info_update, predict, smoother_gain
from mbrila.utils.linalg import mv, symmetrize


def _at(M: Tensor, t: int) -> Tensor:
    """Transition parameter for step ``t → t+1``: ``M[t]`` if time-varying, else ``M``."""
    return M[t] if M.ndim == 3 else M


def _obs_at(J: Tensor, t: int) -> Tensor:
    """Observation precision at step ``t``: ``J`` is ``(D, D)`` or ``(B, T, D, D)``."""
    return J[:, t] if J.ndim == 4 else J


def filter_info(
    A: Tensor, Q: Tensor, m0: Tensor, P0: Tensor, J: Tensor, h: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Kalman filter with information-form observations.

    Parameters
    ----------
    A, Q : ``(D, D)`` or ``(T-1, D, D)``; m0 ``(D,)``; P0 ``(D, D)``;
    J : ``(D, D)`` or ``(B, T, D, D)``; h : ``(B, T, D)``.

    Returns
    -------
    mean ``(B, T, D)``, cov ``(B', T, D, D)``, log_likelihood ``(B,)`` (information route: without
    y-only terms), pred_mean ``(B, T, D)``, pred_cov ``(B', T, D, D)``; ``B' = 1`` when covariances are shared.
    """
    B, T, D = h.shape
    m_pred, P_pred = m0.expand(B, D), P0
    means, covs, pmeans, pcovs = [], [], [], []
    ll = h.new_zeros(B)
    for t in range(T):
        m, P, ll_t = info_update(m_pred, P_pred, _obs_at(J, t), h[:, t])
        ll = ll + ll_t
        pmeans.append(m_pred)
        pcovs.append(P_pred.expand(*P.shape))
        means.append(m)
        covs.append(P)
        if t + 1 < T:
            m_pred, P_pred = predict(m, P, _at(A, t), _at(Q, t))
    cov = torch.stack(covs, dim=-3)
    pred_cov = torch.stack(pcovs, dim=-3)
    if cov.ndim == 3:
        cov, pred_cov = cov.unsqueeze(0), pred_cov.unsqueeze(0)
    return torch.stack(means, 1), cov, ll, torch.stack(pmeans, 1), pred_cov


def smooth(
    A: Tensor, mean_f: Tensor, cov_f: Tensor, mean_p: Tensor, cov_p: Tensor, *, in_place: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """RTS backward pass over filtered and predicted moments (shapes as returned by :func:`filter_info`).

    Returns smoothed ``mean (B, T, D)``, ``cov (B', T, D, D)`` and ``cross_cov (B', T-1, D, D)`` with
    ``cross_cov[:, t] = Cov(x_{t+1}, x_t | y) = P^s_{t+1} G_tᵀ``.

    ``in_place``: write the smoothed covariances over ``cov_f`` and the cross-covariances over ``cov_p[:, 1:]``
    (each step reads its slots before writing them), so that per-trial covariances are not held twice; the
    filter's outputs are consumed.
    """
    T = mean_f.shape[1]
    m_s, P_s = mean_f[:, -1], cov_f[:, -1]
    Bc, D = cov_f.shape[0], cov_f.shape[-1]
    means = mean_f.new_empty(mean_f.shape)
    if in_place:
        covs, cross = cov_f, cov_p[:, 1:]
    else:
        # Preallocated outputs filled step by step (stacking per-step lists would hold every covariance twice),
        # time-major so that each step writes one contiguous block.
        covs = cov_f.new_empty(T, Bc, D, D).transpose(0, 1)
        cross = cov_f.new_empty(T - 1, Bc, D, D).transpose(0, 1)
        covs[:, -1] = P_s
    means[:, -1] = m_s
    for t in range(T - 2, -1, -1):
        G = smoother_gain(cov_f[:, t], _at(A, t), cov_p[:, t + 1])
        m_s = mean_f[:, t] + mv(G, m_s - mean_p[:, t + 1])
        P_next = symmetrize(cov_f[:, t] + G @ (P_s - cov_p[:, t + 1]) @ G.mT)
        cross[:, t] = P_s @ G.mT  # after the last read of cov_p[:, t + 1], which it may overwrite
        means[:, t], covs[:, t] = m_s, P_next
        P_s = P_next
    return means, covs, cross


def smooth_means(A: Tensor, mean_f: Tensor, cov_f: Tensor, mean_p: Tensor, cov_p: Tensor) -> Tensor:
    """The smoothed means of :func:`smooth` alone (same arguments), ``(B, T, D)``.

    ``m^s_t = m_t + P_t A_tᵀ P⁻¹_{t+1|t} (m^s_{t+1} − m_{t+1|t})``: one Cholesky factorisation and a solve with one
    vector per step, instead of the gain matrix and the covariance recursion (what a Newton step needs).
    """
    T = mean_f.shape[1]
    means = mean_f.new_empty(mean_f.shape)
    m_s = mean_f[:, -1]
    means[:, -1] = m_s
    for t in range(T - 2, -1, -1):
        L, _info = torch.linalg.cholesky_ex(cov_p[:, t + 1])
        x = torch.cholesky_solve((m_s - mean_p[:, t + 1]).unsqueeze(-1), L).squeeze(-1)
        m_s = mean_f[:, t] + mv(cov_f[:, t], mv(_at(A, t).mT, x))
        means[:, t] = m_s
    return means
