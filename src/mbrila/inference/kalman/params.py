"""The linear-Gaussian state-space model and the result containers of the Kalman core.

Generative model, for trials ``b`` and time steps ``t = 0 … T-1``::

    x_0     ~ N(m0, P0)
    x_{t+1} = A_t x_t + w_t,          w_t ~ N(0, Q_t)
    y_t     = C x_t + d + e_t,        e_t ~ N(0, diag(R))

``A, Q`` are ``(D, D)`` (time-invariant) or ``(T-1, D, D)`` with ``A[t]`` mapping ``x_t`` to ``x_{t+1}``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch
from torch import Tensor


@dataclass(frozen=True)
class LGSSM:
    """Parameters of a linear-Gaussian state-space model (see the module docstring for the equations).

    Parameters
    ----------
    A, Q : Tensor
        Transition matrix and process-noise covariance, ``(D, D)`` or time-varying ``(T-1, D, D)``.
    m0, P0 : Tensor
        Mean ``(D,)`` and covariance ``(D, D)`` of the first state.
    C, d, R : Tensor, optional
        Loadings ``(N, D)``, offsets ``(N,)`` and diagonal noise variances ``(N,)``. They may be left out
        when the observation is passed in latent information form (``J, h``) instead.
    """

    A: Tensor
    Q: Tensor
    m0: Tensor
    P0: Tensor
    C: Tensor | None = None
    d: Tensor | None = None
    R: Tensor | None = None

    @property
    def state_dim(self) -> int:
        return int(self.m0.shape[-1])

    @property
    def time_varying(self) -> bool:
        return self.A.ndim == 3 or self.Q.ndim == 3

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> LGSSM:
        """Return a copy with every tensor moved to ``device`` / cast to ``dtype``."""
        moved: dict = {
            f.name: (
                getattr(self, f.name).to(device=device, dtype=dtype) if getattr(self, f.name) is not None else None
            )
            for f in fields(self)
        }
        return replace(self, **moved)


@dataclass(frozen=True)
class FilterResult:
    """Filtered marginals ``p(x_t | y_0 … y_t)``.

    Attributes
    ----------
    mean : Tensor ``(B, T, D)``
    cov : Tensor broadcastable to ``(B, T, D, D)`` — ``(1, T, D, D)`` when it is shared by all trials.
    log_likelihood : Tensor ``(B,)``
        ``log p(observed y)``; in the information route, up to the terms that depend on y alone.
    pred_mean, pred_cov : Tensor
        One-step predictions ``p(x_t | y_0 … y_{t-1})`` (``t = 0`` holds ``m0, P0``), same shapes as above.
    """

    mean: Tensor
    cov: Tensor
    log_likelihood: Tensor
    pred_mean: Tensor
    pred_cov: Tensor


@dataclass(frozen=True)
class SmootherResult:
    """Smoothed marginals ``p(x_t | y)`` and lag-one cross-covariances.

    Attributes
    ----------
    mean : Tensor ``(B, T, D)``
    cov : Tensor broadcastable to ``(B, T, D, D)``
    cross_cov : Tensor broadcastable to ``(B, T-1, D, D)``; ``cross_cov[:, t] = Cov(x_{t+1}, x_t | y)``.
    log_likelihood : Tensor ``(B,)``
    filtered : FilterResult
    """

    mean: Tensor
    cov: Tensor
    cross_cov: Tensor
    log_likelihood: Tensor
    filtered: FilterResult
