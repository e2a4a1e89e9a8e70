"""Public entry points of the Kalman core: :func:`kalman_filter` and :func:`kalman_smoother`."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from mbrila.inference.kalman import fused, parallel, sequential
from mbrila.inference.kalman.observation import project_observations
from mbrila.inference.kalman.params import LGSSM, FilterResult, SmootherResult
from mbrila.inference.kalman.validate import (
    all_finite,
    check_dynamics,
    check_information,
    check_observation,
    check_tensors,
)

Method = Literal["auto", "fused", "parallel", "sequential"]
_METHODS = {"fused": fused, "parallel": parallel, "sequential": sequential}


def resolve_method(method: str, device: torch.device) -> Method:
    """``"auto"`` picks the parallel scan on accelerators and the fused recursion on CPU.

    On a CPU the recursions do less total work than the scan and win for the trial lengths of neural data; the
    fused one (:mod:`.fused`: covariances once, every trial's means in one product per step) is the sequential
    one with its per-step overhead removed, and falls back to it when the observation precision differs between
    trials (see ``benchmarks/kalman.py``). On a GPU the log-depth scan wins.
    """
    if method == "auto":
        return "fused" if device.type == "cpu" else "parallel"
    if method in ("fused", "parallel", "sequential"):
        return method  # type: ignore[return-value]
    raise ValueError(f"method must be 'auto', 'fused', 'parallel' or 'sequential'; got {method!r}.")


def _prepare(
    params: LGSSM,
    y: Tensor | None,
    mask: Tensor | None,
    J: Tensor | None,
    h: Tensor | None,
    validate: bool,
    sums: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """Return the information-form observation ``(J, h)`` and the y-only log-density terms (None for J/h input)."""
    if y is not None:
        if J is not None or h is not None:
            raise ValueError("pass either y (with params.C, d, R and optional mask) or J and h, not both.")
        if sums is not None and mask is not None:
            raise ValueError("sums (data_sums(y)) are for complete data; pass mask=None or leave sums out.")
        check_tensors(A=params.A, Q=params.Q, m0=params.m0, P0=params.P0, C=params.C, d=params.d, R=params.R, y=y)
        if validate:
            if y.ndim != 3:
                raise ValueError(f"y must have shape (B, T, N) = (trials, time, neurons); got {tuple(y.shape)}.")
            D = check_dynamics(params, y.shape[1])
            check_observation(params, y, mask, D)
            expected = (y.shape[0], y.shape[2])
            if sums is not None and any(tuple(s.shape) != expected for s in sums):
                raise ValueError(
                    f"sums must be data_sums(y): two tensors of shape (B, N) = {expected}; "
                    f"got {[tuple(s.shape) for s in sums]}."
                )
        assert params.C is not None and params.R is not None
        d = params.d if params.d is not None else params.C.new_zeros(params.C.shape[0])
        return project_observations(params.C, d, params.R, y, mask, sums)
    if sums is not None:
        raise ValueError("sums belong to the observation route (y); the information route has no y-only terms.")
    if J is None or h is None:
        raise ValueError("pass y (observation route) or both J and h (information route).")
    if mask is not None:
        raise ValueError("mask applies to y; in the information route, fold missing data into J and h.")
    check_tensors(A=params.A, Q=params.Q, m0=params.m0, P0=params.P0, J=J, h=h)
    if validate:
        if h.ndim != 3:
            raise ValueError(f"h must have shape (B, T, D); got {tuple(h.shape)}.")
        D = check_dynamics(params, h.shape[1])
        check_information(J, h, D)
    return J, h, None


def _check_result(*tensors: Tensor) -> None:
    for x in tensors:
        if not all_finite(x):
            raise ValueError(
                "the Kalman recursion produced non-finite values: the model is numerically degenerate "
                "(check that Q, P0 and R are well conditioned, or use float64)."
            )


def kalman_filter(
    params: LGSSM,
    y: Tensor | None = None,
    mask: Tensor | None = None,
    *,
    J: Tensor | None = None,
    h: Tensor | None = None,
    method: Method = "auto",
    validate: bool = True,
    sums: tuple[Tensor, Tensor] | None = None,
) -> FilterResult:
    """Filtered marginals ``p(x_t | y_0 … y_t)`` and ``log p(y)`` of a linear-Gaussian state-space model.

    Model (see :class:`LGSSM`): ``x_{t+1} = A_t x_t + w_t``, ``y_t = C x_t + d + e_t``. Either give ``y``
    ``(B, T, N)`` with an optional bool ``mask`` (True = observed; masked entries may hold anything, NaN
    included) or the latent information form ``J`` ``(D, D)`` / ``(B, T, D, D)`` and ``h`` ``(B, T, D)``
    (``J = CᵀR⁻¹C``, ``h = CᵀR⁻¹(y − d)``), in which case the log-likelihood omits the terms that depend on y
    alone.

    Parameters
    ----------
    method : ``"auto"`` (fused on CPU, parallel elsewhere), ``"fused"`` (shared covariances computed once,
        means for all trials per step), ``"parallel"`` (associative scan, log depth) or ``"sequential"``.
    validate : check shapes, finiteness and PSD-ness of the inputs first (costs one host sync).
    sums : :func:`~mbrila.inference.kalman.observation.data_sums` of ``y`` (complete data), when the same ``y``
        is smoothed many times (EM): the y-only likelihood terms then cost ``O(B·N)`` per call.
    """
    J_, h_, c = _prepare(params, y, mask, J, h, validate, sums)
    impl = _METHODS[resolve_method(method, h_.device)]
    mean, cov, ll, pmean, pcov = impl.filter_info(params.A, params.Q, params.m0, params.P0, J_, h_)
    if c is not None:
        ll = ll + c
    if validate:
        _check_result(mean, cov, ll)
    return FilterResult(mean=mean, cov=cov, log_likelihood=ll, pred_mean=pmean, pred_cov=pcov)


def kalman_smoother(
    params: LGSSM,
    y: Tensor | None = None,
    mask: Tensor | None = None,
    *,
    J: Tensor | None = None,
    h: Tensor | None = None,
    method: Method = "auto",
    validate: bool = True,
    sums: tuple[Tensor, Tensor] | None = None,
) -> SmootherResult:
    """Smoothed marginals ``p(x_t | y)``, lag-one cross-covariances and ``log p(y)``.

    Same inputs as :func:`kalman_filter`. Returns a :class:`SmootherResult` with ``mean (B, T, D)``,
    ``cov`` broadcastable to ``(B, T, D, D)``, ``cross_cov`` broadcastable to ``(B, T-1, D, D)`` where
    ``cross_cov[:, t] = Cov(x_{t+1}, x_t | y)``, and ``log_likelihood (B,)``. Covariances carry a leading
    dimension of 1 when they are shared by all trials (no missing data), and are then computed once.
    """
    filt = kalman_filter(params, y, mask, J=J, h=h, method=method, validate=validate, sums=sums)
    impl = _METHODS[resolve_method(method, filt.mean.device)]
    mean, cov, cross = impl.smooth(params.A, filt.mean, filt.cov, filt.pred_mean, filt.pred_cov)
    if validate:
        _check_result(mean, cov, cross)
    return SmootherResult(mean=mean, cov=cov, cross_cov=cross, log_likelihood=filt.log_likelihood, filtered=filt)
