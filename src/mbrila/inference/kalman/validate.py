"""Input checks for the Kalman core: every problem becomes a ``ValueError`` that names the argument.

Checks cost a few small factorisations and one host synchronisation; callers in inner loops (EM engines
that built the parameters themselves) can skip them with ``validate=False``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from mbrila.inference.kalman.params import LGSSM
from mbrila.utils.linalg import is_psd


def _shape(name: str, x: Tensor, allowed: Sequence[tuple[int, ...]], meaning: str) -> None:
    if tuple(x.shape) not in allowed:
        want = " or ".join(str(a) for a in allowed)
        raise ValueError(f"{name} must have shape {want} ({meaning}); got {tuple(x.shape)}.")


def all_finite(x: Tensor) -> bool:
    """Whether every entry of ``x`` is finite.

    One reduction instead of an elementwise mask: any NaN or ±inf makes the sum non-finite, and the rare
    false alarm (finite values summing past the float range) is settled by the exact test.
    """
    if bool(torch.isfinite(x.sum())):
        return True
    return bool(torch.isfinite(x).all())


def _finite(name: str, x: Tensor) -> None:
    if all_finite(x):
        return
    bad = ~torch.isfinite(x)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"{name} has {int(bad.sum())} non-finite entries (first at index {first}); parameters must be finite."
        )


def _psd(name: str, M: Tensor) -> None:
    ok, reason = is_psd(M.detach())
    if not ok:
        raise ValueError(f"{name} must be a symmetric positive semi-definite covariance, but it is {reason}.")


def check_tensors(**tensors: Tensor | None) -> tuple[torch.dtype, torch.device]:
    """All given tensors must be tensors sharing one floating dtype and device."""
    dtype = device = None
    first = ""
    for name, x in tensors.items():
        if x is None:
            continue
        if not isinstance(x, Tensor):
            raise ValueError(f"{name} must be a torch.Tensor; got {type(x).__name__}. Convert with torch.as_tensor.")
        if not x.is_floating_point():
            raise ValueError(f"{name} must be a floating-point tensor; got dtype {x.dtype}.")
        if dtype is None:
            dtype, device, first = x.dtype, x.device, name
        elif x.dtype != dtype or x.device != device:
            raise ValueError(
                f"{name} is {x.dtype} on {x.device} but {first} is {dtype} on {device}; move all inputs to one "
                "dtype and device (e.g. with .to(...))."
            )
    assert dtype is not None and device is not None
    return dtype, device


def check_dynamics(params: LGSSM, T: int) -> int:
    """Validate ``A, Q, m0, P0`` for ``T`` time steps; returns the state dimension ``D``."""
    if params.m0.ndim != 1:
        raise ValueError(f"m0 must have shape (D,); got {tuple(params.m0.shape)}.")
    D = params.m0.shape[0]
    _shape("P0", params.P0, [(D, D)], "initial state covariance")
    for name in ("A", "Q"):
        x = getattr(params, name)
        allowed = [(D, D)] + ([(T - 1, D, D)] if T > 1 else [(0, D, D)])
        _shape(name, x, allowed, "time-invariant, or time-varying with one matrix per transition t → t+1")
    for name in ("A", "Q", "m0", "P0"):
        _finite(name, getattr(params, name))
    _psd("Q", params.Q)
    _psd("P0", params.P0)
    return D


def check_observation(params: LGSSM, y: Tensor, mask: Tensor | None, D: int) -> None:
    """Validate ``C, d, R, y, mask`` for the observation route."""
    if params.C is None or params.R is None:
        raise ValueError(
            "the observation route needs params.C and params.R (and optionally d); "
            "or pass J and h instead of y for the information route."
        )
    if y.ndim != 3:
        raise ValueError(f"y must have shape (B, T, N) = (trials, time, neurons); got {tuple(y.shape)}.")
    _B, _T, N = y.shape
    _shape("C", params.C, [(N, D)], "loadings, neurons × state dimension")
    if params.d is not None:
        _shape("d", params.d, [(N,)], "one offset per neuron")
        _finite("d", params.d)
    _shape("R", params.R, [(N,)], "diagonal observation-noise variances")
    _finite("C", params.C)
    _finite("R", params.R)
    if bool((params.R <= 0).any()):
        raise ValueError(f"R must be strictly positive variances; its smallest entry is {float(params.R.min()):.3g}.")
    if mask is not None:
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
            kind = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f"mask must be a bool tensor (True = observed); got {kind}.")
        if mask.shape != y.shape:
            raise ValueError(f"mask must have the shape of y {tuple(y.shape)}; got {tuple(mask.shape)}.")
        if mask.device != y.device:
            raise ValueError(f"mask is on {mask.device} but y is on {y.device}; move them to one device.")
        bad = ~torch.isfinite(y) & mask
    elif all_finite(y):
        return
    else:
        bad = ~torch.isfinite(y)
    if bool(bad.any()):
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"y has {int(bad.sum())} non-finite observed entries (first at (trial, t, neuron) = {first}); "
            "mark missing entries False in mask."
        )


def check_information(J: Tensor, h: Tensor, D: int) -> None:
    """Validate the information-form observation ``J, h``."""
    if h.ndim != 3 or h.shape[-1] != D:
        raise ValueError(f"h must have shape (B, T, D) with D = {D}; got {tuple(h.shape)}.")
    B, T, _ = h.shape
    _shape("J", J, [(D, D), (B, T, D, D)], "observation precision, shared or per trial and step")
    _finite("h", h)
    _finite("J", J)
    _psd("J", J)
