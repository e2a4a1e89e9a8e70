"""Associative scan over the time axis of a tuple of tensors (log-depth, no Python loop over time).

Each element of the tuple carries time at its own axis (counted from the end, e.g. ``-3`` for a stack of
matrices ``(..., T, D, D)`` and ``-2`` for a stack of vectors ``(..., T, D)``), so matrices shared by all trials
and per-trial vectors can be scanned together and broadcast inside the combine function.

The recursion is the classic odd/even one: combine neighbouring pairs, scan the half-length sequence,
then fill in the even positions. Depth is ``O(log T)``; total work ``O(T)`` combines.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

Elems = tuple[Tensor, ...]


def _slice(x: Tensor, axis: int, start: int | None, stop: int | None, step: int | None = None) -> Tensor:
    index: list[slice] = [slice(None)] * x.ndim
    index[x.ndim + axis] = slice(start, stop, step)
    return x[tuple(index)]


def _broadcast_batch(a: Tensor, b: Tensor, axis: int) -> tuple[Tensor, Tensor]:
    """Broadcast ``a`` and ``b`` over every dimension except the time axis."""
    lead = torch.broadcast_shapes(a.shape[: a.ndim + axis], b.shape[: b.ndim + axis])
    return (
        a.expand(*lead, *a.shape[a.ndim + axis :]),
        b.expand(*lead, *b.shape[b.ndim + axis :]),
    )


def _interleave(even: Tensor, odd: Tensor, axis: int) -> Tensor:
    """Merge ``even`` (positions 0, 2, …) and ``odd`` (1, 3, …) along ``axis``; ``len(even) - len(odd) ∈ {0, 1}``."""
    even, odd = _broadcast_batch(even, odd, axis)
    n_odd = odd.shape[axis]
    dim = even.ndim + axis
    pairs = torch.stack([_slice(even, axis, 0, n_odd), odd], dim=dim + 1).flatten(dim, dim + 1)
    if even.shape[axis] > n_odd:
        pairs = torch.cat([pairs, _slice(even, axis, n_odd, None)], dim=dim)
    return pairs


def associative_scan(combine: Callable[[Elems, Elems], Elems], elems: Elems, axes: Sequence[int]) -> Elems:
    """Inclusive prefix scan: ``out[t] = e[0] ∘ e[1] ∘ … ∘ e[t]`` for an associative ``combine(earlier, later)``.

    Parameters
    ----------
    combine : callable taking two tuples of tensors (earlier, later) and returning their composition.
    elems : tuple of tensors sharing the length ``T`` of their time axes.
    axes : time axis of each tensor, negative (counted from the end).
    """
    T = elems[0].shape[axes[0]]
    if T < 2:
        return elems
    left = tuple(_slice(e, a, 0, -1, 2) for e, a in zip(elems, axes, strict=True))
    right = tuple(_slice(e, a, 1, None, 2) for e, a in zip(elems, axes, strict=True))
    odd = associative_scan(combine, combine(left, right), axes)
    # Even positions t = 2, 4, …: prefix up to t-1 (an odd result) composed with element t.
    tail = tuple(_slice(e, a, 2, None, 2) for e, a in zip(elems, axes, strict=True))
    if T % 2 == 0:
        prev = tuple(_slice(o, a, 0, -1) for o, a in zip(odd, axes, strict=True))
    else:
        prev = odd
    even_rest = combine(prev, tail)
    even = tuple(
        torch.cat(_broadcast_batch(_slice(e, a, 0, 1), r, a), dim=r.ndim + a)
        for e, r, a in zip(elems, even_rest, axes, strict=True)
    )
    return tuple(_interleave(ev, od, a) for ev, od, a in zip(even, odd, axes, strict=True))
