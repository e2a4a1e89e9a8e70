"""Kalman filter for per-trial observation precisions that touch only a few state entries.

A read-out of the lifted state sees the current lag of each latent only: ``J_{b,t} = E J^a_{b,t} Eᵀ`` with
``E`` the ``(D, k)`` selection of the ``k`` read-out entries (``idx``) and ``J^a`` a ``(k, k)`` block that differs
between trials and time steps (the Laplace pseudo-observations of a Poisson read-out). With ``P`` the predicted
covariance, ``P_E = P E`` and ``M = I_k + J^a Eᵀ P E``, Woodbury's identity gives::

    P⁺ = (P⁻¹ + E J^a Eᵀ)⁻¹ = P − P_E (M⁻¹ J^a) P_Eᵀ,    P⁺ E = P_E M⁻¹
    m⁺ = m + P_E M⁻¹ (h^a − J^a m_E),                     log|I + P J| = log|M|

so the update factorises a ``k × k`` matrix instead of a ``D × D`` one and never builds the ``(B, T, D, D)``
precision. Same outputs as :func:`.sequential.filter_info` with ``J = E J^a Eᵀ``, ``h = E h^a`` (the tests check
one against the other); the backward pass is :func:`.sequential.smooth`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mbrila.inference.kalman.sequential import _at
from mbrila.inference.kalman.steps import predict
from mbrila.utils.linalg import symmetrize


def filter_selected(
    A: Tensor,
    Q: Tensor,
    m0: Tensor,
    P0: Tensor,
    idx: Tensor,
    Ja: Tensor,
    ha: Tensor,
    workspace: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Kalman filter with observations ``(E J^a Eᵀ, E h^a)`` (see the module docstring).

    Parameters
    ----------
    A, Q : ``(D, D)`` or ``(T-1, D, D)``; m0 ``(D,)``; P0 ``(D, D)``;
    idx : ``(k,)`` long, the state entries the observation sees;
    Ja : ``(B, T, k, k)`` PSD; ha : ``(B, T, k)``;
    workspace : two ``(T, B, D, D)`` tensors the filtered and predicted covariances are written into (returned as
        ``(B, T, D, D)`` views), so that repeated calls (Newton steps) reuse memory instead of faulting in new pages.

    Returns
    -------
    mean ``(B, T, D)``, cov ``(B, T, D, D)``, log_likelihood ``(B,)`` (information route), pred_mean ``(B, T, D)``,
    pred_cov ``(B, T, D, D)`` — as :func:`.sequential.filter_info`.
    """
    B, T, k = ha.shape
    D = m0.shape[-1]
    eye_k = torch.eye(k, dtype=ha.dtype, device=ha.device)
    m_pred, P_pred = m0.expand(B, D), P0.expand(B, D, D)
    # Outputs written in place: stacking per-step lists would hold every (B, D, D) covariance twice.
    means, pmeans = ha.new_empty(B, T, D), ha.new_empty(B, T, D)
    # Time-major storage: each step writes one contiguous (B, D, D) block.
    ws = workspace if workspace is not None else (ha.new_empty(T, B, D, D), ha.new_empty(T, B, D, D))
    if any(tuple(w.shape) != (T, B, D, D) for w in ws):
        raise ValueError(
            f"workspace must be two tensors of shape (T, B, D, D) = {(T, B, D, D)}; got {[tuple(w.shape) for w in ws]}."
        )
    covs, pcovs = ws[0].transpose(0, 1), ws[1].transpose(0, 1)
    ll = ha.new_zeros(B)
    for t in range(T):
        Jt, ht = Ja[:, t], ha[:, t]
        PE = P_pred[..., idx]  # (B, D, k)
        mE = m_pred[:, idx]
        Jm = (Jt @ mE.unsqueeze(-1)).squeeze(-1)
        g = ht - Jm
        M = eye_k + Jt @ PE[:, idx, :]
        LU, piv = torch.linalg.lu_factor(M)
        # M⁻¹ [J^a, g] in one solve with k + 1 right-hand sides (not D): P⁺ = P − P_E (M⁻¹ J^a) P_Eᵀ, P⁺ E g = P_E M⁻¹ g.
        KV = torch.linalg.lu_solve(LU, piv, torch.cat([Jt, g.unsqueeze(-1)], dim=-1))
        K, v = symmetrize(KV[..., :k]), KV[..., k]
        P = symmetrize(P_pred - (PE @ K) @ PE.mT)
        Zg = (PE @ v.unsqueeze(-1)).squeeze(-1)  # P⁺ E g
        m = m_pred + Zg
        logdet = LU.diagonal(dim1=-2, dim2=-1).abs().log().sum(-1)
        ll = ll - 0.5 * logdet + 0.5 * (g * Zg[:, idx]).sum(-1) + (ht * mE).sum(-1) - 0.5 * (mE * Jm).sum(-1)
        pmeans[:, t], pcovs[:, t], means[:, t], covs[:, t] = m_pred, P_pred, m, P
        if t + 1 < T:
            m_pred, P_pred = predict(m, P, _at(A, t), _at(Q, t))
    return means, covs, ll, pmeans, pcovs
