"""Parallel-scan Kalman filter and smoother (Särkkä & García-Fernández, 2021), ``O(log T)`` depth.

Filtering elements, for ``t ≥ 1`` with transition ``(F, Q) = (A_{t-1}, Q_{t-1})`` and observation ``(J_t, h_t)``,
describe ``p(x_t | x_{t-1}, y_t) = N(Ā x_{t-1} + b, C̄)`` and ``p(y_t | x_{t-1}) ∝ exp(ηᵀx_{t-1} − ½ x_{t-1}ᵀ J̄ x_{t-1})``.
With ``M = I + Q J_t``::

    Ā = M⁻¹F,   b = C̄ h_t,   C̄ = M⁻¹Q,   η = Āᵀ h_t,   J̄ = Fᵀ J_t Ā

(no inverse of ``Q`` is needed, so singular process noise — as in lifted AR models — is fine). Element 0 is the
prior conditioned on ``y_0``, with ``Ā = 0``. Composition of an earlier element ``i`` with a later ``j``,
``W = (I + C̄_i J̄_j)⁻¹``::

    Ā = Ā_j W Ā_i                     b = Ā_j W (b_i + C̄_i η_j) + b_j
    C̄ = Ā_j W C̄_i Ā_jᵀ + C̄_j          η = Ā_iᵀ Wᵀ (η_j − J̄_j b_i) + η_i
    J̄ = Ā_iᵀ Wᵀ J̄_j Ā_i + J̄_i

Smoothing elements ``(E, g, L)`` with the RTS gain ``E_t``: ``g = m_t − E_t m^-_{t+1}``, ``L = P_t − E_t P^-_{t+1} E_tᵀ``
(last: ``E = 0, g = m_{T-1}, L = P_{T-1}``), composed from the end backwards. The log-likelihood is the sum
over t of the one-step predictive terms, evaluated for all t at once from the filtered moments.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mbrila.inference.kalman.scan import associative_scan
from mbrila.inference.kalman.steps import info_update, predict, smoother_gain
from mbrila.utils.linalg import eye_like, mv, symmetrize

_FILTER_AXES = (-3, -2, -3, -2, -3)  # Ā, b, C̄, η, J̄: matrices carry time at -3, vectors at -2
_SMOOTH_AXES = (-3, -2, -3)  # E, g, L


def _filter_combine(earlier: tuple[Tensor, ...], later: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    A_i, b_i, C_i, eta_i, J_i = earlier
    A_j, b_j, C_j, eta_j, J_j = later
    M = eye_like(C_i) + C_i @ J_j
    # Expand the identity to M's batch shape: a (D, D) right-hand side would be read as a batch of vectors
    # whenever D equals the time length of this level.
    W = torch.linalg.solve(M, eye_like(C_i).expand_as(M))
    AjW = A_j @ W
    A = AjW @ A_i
    b = mv(AjW, b_i + mv(C_i, eta_j)) + b_j
    C = symmetrize(AjW @ C_i @ A_j.mT + C_j)
    AiWt = A_i.mT @ W.mT
    eta = mv(AiWt, eta_j - mv(J_j, b_i)) + eta_i
    J = symmetrize(AiWt @ J_j @ A_i + J_i)
    return A, b, C, eta, J


def _smooth_combine(later: tuple[Tensor, ...], earlier: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    # Scanned over reversed time, so the running prefix holds the later steps.
    E_l, g_l, L_l = later
    E_e, g_e, L_e = earlier
    return E_e @ E_l, mv(E_e, g_l) + g_e, symmetrize(E_e @ L_l @ E_e.mT + L_e)


def _time_stack(M: Tensor, T: int) -> Tensor:
    """Transition parameters for steps ``0 … T-2`` as a ``(T-1, D, D)`` stack (a broadcast view if invariant)."""
    return M if M.ndim == 3 else M.expand(T - 1, *M.shape)


def filter_info(
    A: Tensor, Q: Tensor, m0: Tensor, P0: Tensor, J: Tensor, h: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Parallel counterpart of :func:`mbrila.inference.kalman.sequential.filter_info` (same signature and outputs)."""
    B, T, D = h.shape
    J_t = J if J.ndim == 4 else J.expand(T, D, D)  # (B, T, D, D) or shared (T, D, D)
    # Element 0: the prior conditioned on y_0.
    m_first, P_first, _ = info_update(m0, P0, J_t[..., 0, :, :], h[:, 0])
    if T > 1:
        F = _time_stack(A, T)
        Qs = _time_stack(Q, T)
        J_rest = J_t[..., 1:, :, :]
        M = eye_like(Qs) + Qs @ J_rest
        A_el = torch.linalg.solve(M, F.expand_as(M))
        C_el = symmetrize(torch.linalg.solve(M, Qs.expand_as(M)))
        h_rest = h[:, 1:]
        b_el = mv(C_el, h_rest)
        eta_el = mv(A_el.mT, h_rest)
        J_el = symmetrize(F.mT @ J_rest @ A_el)
        zeros = torch.zeros_like(P_first)
        elems = (
            torch.cat([zeros.unsqueeze(-3).expand(*A_el.shape[:-3], 1, D, D), A_el], -3),
            torch.cat([m_first.expand(B, D).unsqueeze(1), b_el.expand(B, T - 1, D)], 1),
            torch.cat([P_first.unsqueeze(-3).expand(*C_el.shape[:-3], 1, D, D), C_el], -3),
            torch.cat([h.new_zeros(B, 1, D), eta_el.expand(B, T - 1, D)], 1),
            torch.cat([zeros.unsqueeze(-3).expand(*J_el.shape[:-3], 1, D, D), J_el], -3),
        )
        _, mean, cov, _, _ = associative_scan(_filter_combine, elems, _FILTER_AXES)
        # One-step predictions for all t ≥ 1 at once, then every log-likelihood term in one batched update.
        pm_rest, pc_rest = predict(mean[:, :-1], cov[..., :-1, :, :], F, Qs)
        pred_mean = torch.cat([m0.expand(B, 1, D), pm_rest], 1)
        pred_cov = torch.cat([P0.expand(*pc_rest.shape[:-3], 1, D, D), pc_rest], -3)
    else:
        mean, cov = m_first.expand(B, D).unsqueeze(1), P_first.unsqueeze(-3)
        pred_mean, pred_cov = m0.expand(B, 1, D), P0.unsqueeze(-3)
    _, _, ll_t = info_update(pred_mean, pred_cov, J_t, h)
    if cov.ndim == 3:
        cov, pred_cov = cov.unsqueeze(0), pred_cov.unsqueeze(0)
    return mean, cov, ll_t.sum(-1), pred_mean, pred_cov


def smooth(A: Tensor, mean_f: Tensor, cov_f: Tensor, mean_p: Tensor, cov_p: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Parallel counterpart of :func:`mbrila.inference.kalman.sequential.smooth` (same signature and outputs)."""
    _B, T, D = mean_f.shape
    if T == 1:
        return mean_f, cov_f, cov_f.new_zeros(cov_f.shape[0], 0, D, D)
    F = _time_stack(A, T)
    P_f = cov_f[:, :-1]
    E = smoother_gain(P_f, F, cov_p[:, 1:])
    g = mean_f[:, :-1] - mv(E, mean_p[:, 1:])
    L = symmetrize(P_f - E @ cov_p[:, 1:] @ E.mT)
    elems = (
        torch.cat([E, torch.zeros_like(E[:, :1])], 1),
        torch.cat([g, mean_f[:, -1:]], 1),
        torch.cat([L, cov_f[:, -1:]], 1),
    )
    flipped = tuple(e.flip(1) for e in elems)
    _, mean_rev, cov_rev = associative_scan(_smooth_combine, flipped, _SMOOTH_AXES)
    mean, cov = mean_rev.flip(1), cov_rev.flip(1)
    cross = cov[:, 1:] @ E.mT
    return mean, cov, cross
