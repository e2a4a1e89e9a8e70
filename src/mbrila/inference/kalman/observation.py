"""Projection of a diagonal-noise linear observation into latent information form.

For ``y_t = C x_t + d + e_t``, ``e_t ~ N(0, diag(R))``, with observed entries ``o_t`` (the mask)::

    J_t = Cᵀ diag(o_t / R) C                  (D, D) — shared by all trials when nothing is missing
    h_t = Cᵀ diag(o_t / R) (y_t − d)          (D,)
    c_t = Σ_{i ∈ o_t} [−½ log(2π R_i) − ½ (y_ti − d_i)² / R_i]

so that ``log N(y_t | C x + d, R)`` restricted to observed entries equals ``c_t + h_tᵀx − ½ xᵀJ_t x``. This is
the only place that touches the ``N``-dimensional data; everything downstream works in the ``D``-dimensional
latent space, which is what makes ``N ≫ D`` cheap.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def data_sums(y: Tensor) -> tuple[Tensor, Tensor]:
    """``(Σ_t y_t, Σ_t y_t²)``, each ``(B, N)``: all that ``c`` needs of complete data (computed once per fit)."""
    return y.sum(-2), y.square().sum(-2)


def project_observations(
    C: Tensor, d: Tensor, R: Tensor, y: Tensor, mask: Tensor | None, sums: tuple[Tensor, Tensor] | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Return ``J``, ``h`` and the y-only log-density terms ``c`` summed over time.

    Parameters
    ----------
    C : ``(N, D)``; d : ``(N,)``; R : ``(N,)`` positive variances; y : ``(B, T, N)``;
    mask : ``(B, T, N)`` bool (True = observed) or None.
    sums : :func:`data_sums` of ``y`` (complete data only); with them ``c`` costs ``O(B·N)`` instead of a pass
        over the squared data, which at ``N`` of a few hundred costs more than the projection itself.

    Returns
    -------
    J : ``(D, D)`` without a mask, else ``(B, T, D, D)``
    h : ``(B, T, D)``
    c : ``(B,)``
    """
    inv_R = 1.0 / R
    if mask is None:
        # Expand (y − d) algebraically so that only y² is ever materialised at the data's size.
        Cw = C * inv_R[:, None]
        J = C.mT @ Cw
        h = y @ Cw - d @ Cw
        T = y.shape[-2]
        s1, s2 = data_sums(y) if sums is None else sums
        quad = s2 @ inv_R - 2 * (s1 @ (d * inv_R)) + T * (d.square() * inv_R).sum()
        c = -0.5 * (quad + T * torch.log(2 * math.pi * R).sum())
        return J, h, c
    resid = y - d
    w = mask.to(y.dtype) * inv_R
    # Masked entries may hold anything (NaN included): zero them so they carry no information.
    resid = torch.where(mask, resid, torch.zeros((), dtype=y.dtype, device=y.device))
    B, T, N = y.shape
    D = C.shape[-1]
    # Σ_n w_n C_n C_nᵀ as one (B·T, N) × (N, D²) product: never materialises a (B, T, N, D) tensor.
    outer = (C.unsqueeze(-1) * C.unsqueeze(-2)).reshape(N, D * D)
    J = (w.reshape(B * T, N) @ outer).reshape(B, T, D, D)
    h = (resid * w) @ C
    log_terms = torch.log(2 * math.pi * R) + resid**2 * inv_R
    c = -0.5 * (log_terms * mask.to(y.dtype)).sum((-1, -2))
    return J, h, c
