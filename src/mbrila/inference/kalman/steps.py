"""Single-step Gaussian operations shared by the sequential and the parallel Kalman code.

All functions broadcast over leading dimensions, so one call can serve one time step of every trial, or
every time step at once. Observations always arrive in latent information form: at a step, the observation
contributes ``exp(hᵀx − ½ xᵀJx)`` to the state's density, with ``J = CᵀR⁻¹C`` (masked) and
``h = CᵀR⁻¹(y − d)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mbrila.utils.linalg import eye_like, mv, symmetrize


def info_update(m: Tensor, P: Tensor, J: Tensor, h: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Condition ``N(m, P)`` on an information-form observation ``(J, h)``.

    With ``M = I + P J`` (invertible for PSD ``P`` and ``J``, even when either is singular)::

        P⁺ = M⁻¹ P = (P⁻¹ + J)⁻¹
        m⁺ = m + P⁺ (h − J m)
        ℓ  = log E_{x~N(m,P)} exp(hᵀx − ½ xᵀJx)
           = −½ log|M| + ½ gᵀP⁺g + hᵀm − ½ mᵀJm,   g = h − J m

    Parameters
    ----------
    m : ``(..., D)``; P : ``(..., D, D)``; J : ``(..., D, D)``; h : ``(..., D)`` — broadcast together.

    Returns
    -------
    m⁺ ``(..., D)``, P⁺ ``(..., D, D)``, ℓ ``(...)``.
    """
    P_post, logdet = info_update_cov(P, J)
    Jm = mv(J, m)
    g = h - Jm
    m_post = m + mv(P_post, g)
    ll = -0.5 * logdet + 0.5 * (g * mv(P_post, g)).sum(-1) + (h * m).sum(-1) - 0.5 * (m * Jm).sum(-1)
    return m_post, P_post, ll


def info_update_cov(P: Tensor, J: Tensor) -> tuple[Tensor, Tensor]:
    """The covariance half of :func:`info_update`: ``P⁺ = (I + P J)⁻¹ P`` and ``log|I + P J|`` (``(..., D, D)``, ``(...)``)."""
    M = eye_like(P) + P @ J
    LU, pivots = torch.linalg.lu_factor(M)
    P_post = symmetrize(torch.linalg.lu_solve(LU, pivots, P.expand_as(M)))
    # log|M| from the LU diagonal: M is similar to I + P^½ J P^½, so its determinant is positive.
    return P_post, LU.diagonal(dim1=-2, dim2=-1).abs().log().sum(-1)


def predict(m: Tensor, P: Tensor, A: Tensor, Q: Tensor) -> tuple[Tensor, Tensor]:
    """Push ``N(m, P)`` through ``x' = A x + w``, ``w ~ N(0, Q)``: returns ``(A m, A P Aᵀ + Q)``."""
    return mv(A, m), symmetrize(A @ P @ A.mT + Q)


def smoother_gain(P_filt: Tensor, A: Tensor, P_pred_next: Tensor) -> Tensor:
    """RTS gain ``G = P_filt Aᵀ P_pred_next⁻¹`` (``(..., D, D)``), by a Cholesky solve of the predicted covariance."""
    L, _info = torch.linalg.cholesky_ex(P_pred_next)
    # G = P Aᵀ S⁻¹  ⇔  Gᵀ = S⁻¹ A P  (S and P symmetric).
    return torch.cholesky_solve(A @ P_filt, L).mT


def gaussian_loglik_const(n_observed: Tensor, dtype: torch.dtype) -> Tensor:
    """``−½ n log 2π`` for ``n`` observed scalars."""
    return -0.5 * math.log(2 * math.pi) * n_observed.to(dtype)
