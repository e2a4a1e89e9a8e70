"""Input checks for count observations: a Poisson read-out needs ``y_{itn} ∈ {0, 1, 2, …}``.

The Poisson likelihood ``p(y | λ) = λ^y e^{−λ} / y!`` is defined for non-negative integers only. Fed rates,
z-scored or square-root transformed counts, a Poisson model would still run (``lgamma(y + 1)`` accepts any
``y > −1``) and silently fit the wrong likelihood, so the data are checked before fitting. Only observed entries
(mask True) are checked: a missing entry may hold anything.
"""

from __future__ import annotations

import torch
from torch import Tensor

_COUNT_HINT = "spike counts must be non-negative integers; pass raw counts, not rates or square-root transformed counts"
_MISSING_HINT = "mark missing entries with a mask (MultiRegionData(mask=...) or nan_as_missing=True)"


def _observed(y: Tensor, mask: Tensor | None, name: str) -> Tensor | None:
    """``mask`` broadcast to ``y.shape`` on ``y``'s device, or None when every entry is observed."""
    if mask is None:
        return None
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        kind = mask.dtype if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"the mask of {name} must be a bool tensor (True = observed); got {kind}.")
    try:
        return torch.broadcast_to(mask.to(device=y.device), y.shape)
    except RuntimeError as err:
        raise ValueError(
            f"the mask of {name} has shape {tuple(mask.shape)}, which does not broadcast to {name}'s shape "
            f"{tuple(y.shape)}; pass one flag per (trial, time, neuron) entry."
        ) from err


def _raise_first(y: Tensor, bad: Tensor, name: str, problem: str, hint: str) -> None:
    """Raise for the first True entry of ``bad`` in row-major order, if there is one."""
    if not bool(bad.any()):
        return
    # nonzero lists indices in row-major order, so its first row is the first offending entry.
    idx = tuple(int(i) for i in torch.nonzero(bad)[0].tolist())
    label = "(trial, time, neuron) index" if y.ndim == 3 else "index"
    raise ValueError(
        f"{name} must hold Poisson counts, but {int(bad.sum())} observed entries are {problem}; the first is at "
        f"{label} {idx} with value {y[idx].item()}: {hint}."
    )


def check_counts(y: Tensor, mask: Tensor | None = None, name: str = "data.y") -> None:
    """Raise ValueError unless every observed entry of ``y`` is a finite, non-negative integer.

    The checks run in the order non-finite, negative, non-integer (exact: ``y ≠ round(y)``); the message names
    the kind of problem, how many entries have it, and the first such entry in row-major order. ``y`` is not
    modified.

    Parameters
    ----------
    y : counts, typically ``(trials, T, N)``; any float or integer dtype.
    mask : optional bool tensor broadcastable to ``y.shape``, True = observed; unobserved entries are not checked.
    name : what ``y`` is called in the error message.
    """
    if y.is_complex():
        raise ValueError(f"{name} must hold real spike counts; got dtype {y.dtype}. {_COUNT_HINT}.")
    observed = _observed(y, mask, name)

    def keep(bad: Tensor) -> Tensor:
        return bad if observed is None else bad & observed

    if y.is_floating_point():
        _raise_first(y, keep(~torch.isfinite(y)), name, "not finite (NaN or ±inf)", _MISSING_HINT)
    _raise_first(y, keep(y < 0), name, "negative", _COUNT_HINT)
    if y.is_floating_point():
        # Non-finite entries were rejected above, or are unobserved: leave them out of the comparison.
        _raise_first(y, keep(torch.isfinite(y) & (y != torch.round(y))), name, "not integers", _COUNT_HINT)


def are_counts(y: Tensor, mask: Tensor | None = None) -> bool:
    """Whether every observed entry of ``y`` is a finite, non-negative integer (what :func:`check_counts` accepts).

    Parameters
    ----------
    y : the data, typically ``(trials, T, N)``.
    mask : optional bool tensor broadcastable to ``y.shape``, True = observed; unobserved entries are not looked at.
    """
    try:
        check_counts(y, mask)
    except ValueError:
        return False
    return True
