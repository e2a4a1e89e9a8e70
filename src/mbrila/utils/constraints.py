"""Constrained parameters: stored raw, mapped through a smooth transform, exposed as settable attributes.

One mechanism serves the whole library (as gpytorch's ``raw_lengthscale`` / ``lengthscale``)::

    class MyKernel(BaseKernel):
        timescale = Positive("raw_timescale")

        def __init__(self, timescale=5.0):
            super().__init__()
            self.raw_timescale = positive_parameter(timescale, "timescale")

``k.timescale`` is ``softplus(raw) + lower_bound`` (differentiable); ``k.timescale = 3.0`` writes the raw value
in place, keeping its device and dtype, so optimisers holding the parameter keep working.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def softplus_inverse(x: Tensor) -> Tensor:
    """Inverse of ``softplus(r) = log(1 + e^r)`` for ``x > 0``, accurate for tiny and huge ``x``."""
    # For large x, softplus(r) ≈ r; for small x, log(expm1(x)) is exact and expm1 keeps precision.
    return torch.where(x > 20.0, x, torch.log(torch.expm1(torch.clamp(x, max=20.0))))


def _as_positive(value: Any, name: str, lower: float, like: Tensor | None = None) -> Tensor:
    t = torch.as_tensor(
        value,
        dtype=like.dtype if like is not None else torch.get_default_dtype(),
        device=like.device if like is not None else None,
    )
    if not bool(torch.isfinite(t).all()) or bool((t <= lower).any()):
        raise ValueError(f"{name} must be finite and greater than {lower}; got {value!r}.")
    return t


def positive_parameter(value: Any, name: str, lower_bound: float = 0.0) -> nn.Parameter:
    """A raw parameter whose :class:`Positive` transform equals ``value`` (validated, default dtype)."""
    t = _as_positive(value, name, lower_bound)
    return nn.Parameter(softplus_inverse(t - lower_bound))


class Positive:
    """Descriptor exposing ``softplus(raw) + lower_bound`` for the raw parameter named ``raw_name``."""

    def __init__(self, raw_name: str, lower_bound: float = 0.0) -> None:
        self.raw_name = raw_name
        self.lower_bound = float(lower_bound)
        self.name = raw_name.removeprefix("raw_")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        raw = getattr(obj, self.raw_name)
        return torch.nn.functional.softplus(raw) + self.lower_bound

    def __set__(self, obj: Any, value: Any) -> None:
        raw = getattr(obj, self.raw_name)
        t = _as_positive(value, self.name, self.lower_bound, like=raw)
        with torch.no_grad():
            raw.copy_(softplus_inverse(t - self.lower_bound).expand_as(raw))


def bounded(raw: Tensor, bound: float | None) -> Tensor:
    """``bound · tanh(raw / bound)``: identity near 0, strictly inside ``(−bound, bound)``; ``raw`` when unbounded."""
    return raw if bound is None else bound * torch.tanh(raw / bound)


def unbounded(value: Tensor, bound: float | None, name: str, bound_name: str = "bound") -> Tensor:
    """Inverse of :func:`bounded`, with a ``ValueError`` naming ``name`` for non-finite or out-of-bound values."""
    if not bool(torch.isfinite(value).all()):
        raise ValueError(f"{name} must be finite; got {value.tolist()}.")
    if bound is None:
        return value
    if bool((value.abs() >= bound).any()):
        raise ValueError(f"{name} must lie strictly inside ±{bound_name} = ±{bound}; got {value.tolist()}.")
    return bound * torch.atanh(value / bound)


class Bounded:
    """Descriptor exposing ``bound · tanh(raw / bound)`` (identity near 0, inside ``(−bound, bound)``).

    The bound is read from the attribute ``bound_name`` of the owner; when that is None the value is ``raw``.
    """

    def __init__(self, raw_name: str, bound_name: str) -> None:
        self.raw_name = raw_name
        self.bound_name = bound_name
        self.name = raw_name.removeprefix("raw_")

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        return bounded(getattr(obj, self.raw_name), getattr(obj, self.bound_name))

    def __set__(self, obj: Any, value: Any) -> None:
        raw = getattr(obj, self.raw_name)
        t = torch.as_tensor(value, dtype=raw.dtype, device=raw.device)
        t = unbounded(t, getattr(obj, self.bound_name), self.name, self.bound_name)
        with torch.no_grad():
            raw.copy_(t.expand_as(raw))


__all__ = ["Bounded", "Positive", "bounded", "positive_parameter", "softplus_inverse", "unbounded"]
