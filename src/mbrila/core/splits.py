"""Reproducible splits: train/validation/test trials and held-out neurons, each from a seed."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def split_trials(
    n_trials: int, n_train: int, n_val: int, n_test: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Disjoint trial indices from ``numpy.random.default_rng(seed).permutation(n_trials)``.

    The first ``n_train`` of the permutation train, the next ``n_val`` validate, the next ``n_test`` test.
    """
    if min(n_train, n_val, n_test) < 0:
        raise ValueError(f"split sizes must be non-negative; got {n_train}, {n_val}, {n_test}.")
    if n_train + n_val + n_test > n_trials:
        raise ValueError(
            f"n_train + n_val + n_test = {n_train + n_val + n_test} exceeds the {n_trials} trials available."
        )
    perm = np.random.default_rng(seed).permutation(n_trials)
    return perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val : n_train + n_val + n_test]


def holdout_neuron_mask(y_dims: Sequence[int], fraction: float, seed: int) -> np.ndarray:
    """Bool ``(N,)``: True = neuron kept for inference, False = held out for co-smoothing.

    Region ``r`` holds out ``round(fraction · n_r)`` neurons (at least 1 when ``fraction > 0`` and ``n_r > 1``,
    never all of them), drawn by ``numpy.random.default_rng(seed)``.

    Parameters
    ----------
    y_dims : neurons per region; fraction : share of each region's neurons to hold out; seed : the draw's seed.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must lie in [0, 1); got {fraction}.")
    rng = np.random.default_rng(seed)
    keep = []
    for n in y_dims:
        k = round(fraction * n)
        if fraction > 0 and n > 1:
            k = min(max(k, 1), n - 1)
        mask = np.ones(n, dtype=bool)
        mask[rng.choice(n, size=k, replace=False)] = False
        keep.append(mask)
    return np.concatenate(keep)


def holdout_neuron_folds(y_dims: Sequence[int], fraction: float, seed: int) -> list[np.ndarray]:
    """Leave-group-out masks: each region's neurons split into ``round(1 / fraction)`` groups, hidden in turn.

    Returns a list of bool ``(N,)`` masks (True = kept for inference); across the list every neuron is hidden
    exactly once, together with about ``fraction`` of its region. The grouping follows
    ``numpy.random.default_rng(seed)``. A region with a single neuron is never hidden.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1); got {fraction}.")
    n_folds = max(2, round(1.0 / fraction))
    rng = np.random.default_rng(seed)
    keeps = [[np.ones(int(n), dtype=bool) for n in y_dims] for _ in range(n_folds)]
    for r, n in enumerate(y_dims):
        if n < 2:
            continue
        # A region with fewer neurons than folds hides one neuron in each of its first n folds.
        for f, group in enumerate(np.array_split(rng.permutation(int(n)), min(n_folds, int(n)))):
            keeps[f][r][group] = False
    return [np.concatenate(k) for k in keeps]
