"""Expected log prior of AR(P)-lifted GP latents straight from their window covariances, with an analytic gradient.

For one transition of the lift (:mod:`mbrila.dynamics.lift`), the window ``w_t = (z_t, s_{t−1})`` (the current
views, then the ``P`` lags of the previous state) has covariance ``Σ_t`` and the AR step is the conditional
``p(z_t | s_{t−1}) = N(w_t; 0, Σ_t) / N(s_{t−1}; 0, Σ_t^{pp})``, ``Σ^{pp}`` the trailing ``P·V`` block. So, with
``W_t = Σ_trials E[w_t w_tᵀ]`` over ``n`` residuals,

    F_t = −½ [n (log|Σ_t| − log|Σ^{pp}_t|) + tr(Σ_t⁻¹ W_t) − tr((Σ^{pp}_t)⁻¹ W^{pp}_t) + n V log 2π]
    ∂F_t/∂Σ_t = ½ (Σ⁻¹ W Σ⁻¹ − n Σ⁻¹) − ½ embed(Σ^{pp,−1} W^{pp} Σ^{pp,−1} − n Σ^{pp,−1})

which is the Yule–Walker objective of :func:`~mbrila.dynamics.block.expected_log_prior` without forming the AR
coefficients. The gradient costs two inverses per window (one Cholesky each, computed in the forward pass)
instead of a reverse pass through the conditioning, and the kernel's own derivative is left to autograd.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def _inverse_and_logdet(S: Tensor) -> tuple[Tensor, Tensor]:
    L, info = torch.linalg.cholesky_ex(S)
    if bool((info != 0).any()):
        raise ValueError(
            "the kernel's lagged covariance is not positive definite for this AR order; "
            "increase the nugget eps or lower the order."
        )
    return torch.cholesky_inverse(L), 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)


class _WindowObjective(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, Sigma: Tensor, W: Tensor, n_views: int, count: int) -> Tensor:
        V = n_views
        inv, logdet = _inverse_and_logdet(Sigma)
        inv_p, logdet_p = _inverse_and_logdet(Sigma[..., V:, V:])
        quad = (inv * W).sum((-2, -1)) - (inv_p * W[..., V:, V:]).sum((-2, -1))
        value = -0.5 * (count * (logdet - logdet_p + V * math.log(2 * math.pi)) + quad).sum()
        ctx.save_for_backward(inv, inv_p, W)
        ctx.n_views, ctx.count = V, count
        return value

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        inv, inv_p, W = ctx.saved_tensors
        V, n = ctx.n_views, ctx.count
        d = 0.5 * (inv @ W @ inv - n * inv)
        d[..., V:, V:] -= 0.5 * (inv_p @ W[..., V:, V:] @ inv_p - n * inv_p)
        return grad * d, None, None, None


def window_expected_log_prior(Sigma: Tensor, W: Tensor, n_views: int, count: int) -> Tensor:
    """``Σ_t F_t`` (module docstring), summed over every leading dimension.

    Parameters
    ----------
    Sigma : ``(..., (P+1)V, (P+1)V)`` window covariances, lag-major (current views first); differentiable.
    W : same shape, the summed second moments of the windows (a constant).
    n_views : ``V``; count : residuals summed into each ``W``.
    """
    return _WindowObjective.apply(Sigma, W.detach(), n_views, count)


def window_moments(cur: Tensor, cross: Tensor, prev: Tensor, n_views: int) -> Tensor:
    """``W = [[E uuᵀ, E u sᵀ], [E s uᵀ, E s sᵀ]]`` from a block's moments (``u`` = the first ``V`` rows of ``s_t``,
    ``s = s_{t−1}``): ``cur``, ``cross``, ``prev`` ``(..., S, S)`` → ``(..., (P+1)V, (P+1)V)``."""
    V = n_views
    uu = cur[..., :V, :V]
    us = cross[..., :V, :]
    top = torch.cat([uu, us], dim=-1)
    bottom = torch.cat([us.mT, prev], dim=-1)
    return torch.cat([top, bottom], dim=-2)
