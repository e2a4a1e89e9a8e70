"""Aggregating scores over split seeds: one convention for every summary, table and figure.

A score reported over several split seeds is the mean with the sample standard deviation (``ddof = 1``) beside it;
a single split has no spread, written as None (``null`` in JSON), never as 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

#: Degrees of freedom of every spread over split seeds (sample standard deviation).
STD_DDOF = 1


def mean_and_spread(values: Sequence[float]) -> tuple[float, float | None]:
    """``(mean, sample std)`` of ``values``; the spread is None for fewer than two values."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        raise ValueError("no values to aggregate.")
    return float(arr.mean()), (float(arr.std(ddof=STD_DDOF)) if arr.size > 1 else None)


def format_mean_spread(mean: float, std: float | None, digits: int = 4) -> str:
    """``"mean ± std"`` with ``digits`` decimals; the mean alone when there is no spread (one split)."""
    return f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")


def aggregate(per_split: Sequence[Mapping[str, Any]], keys: Iterable[str]) -> dict[str, float | None]:
    """For each key: ``key`` → mean over the splits, ``key_std`` → their sample std (None for one split)."""
    out: dict[str, float | None] = {}
    for k in keys:
        out[k], out[f"{k}_std"] = mean_and_spread([float(s[k]) for s in per_split])
    return out
