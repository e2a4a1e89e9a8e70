"""The real-data protocol every method is scored by: held-out-neuron co-smoothing (DESIGN.md §5).

1. Split the trials by ``split_seed`` into train / validation / test (300 / 50 / 50 for the V1/V2 data).
2. Fit on the training trials.
3. For each holdout seed, hide ``round(fraction · n_r)`` neurons of every region on the test trials, infer the
   latents from the remaining neurons, and predict the hidden ones as ``E[y | observed neurons]``.
4. Report per region the PSTH RMSE and the trial-by-trial RMSE over the hidden neurons, averaged over the
   holdout seeds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbrila.core import FitResult, MultiRegionData, holdout_neuron_mask, split_trials
from mbrila.metrics import cosmoothing


@dataclass
class CosmoothingResult:
    """What :func:`run_cosmoothing` measured."""

    metrics: dict[str, float]  # averaged over holdout seeds
    per_seed: list[dict[str, float]]
    fit: FitResult
    model: Any
    train_idx: np.ndarray
    test_idx: np.ndarray
    heldout: np.ndarray  # (N,) bool of the first holdout seed
    prediction: torch.Tensor  # (test trials, T, N) for the first holdout seed
    wall_time_s: float


def split_sizes(n_trials: int) -> tuple[int, int, int]:
    """300 / 50 / 50 for 400 trials; the same 75 / 12.5 / 12.5 % proportions otherwise."""
    n_val = n_test = max(1, round(0.125 * n_trials))
    return n_trials - n_val - n_test, n_val, n_test


def run_cosmoothing(
    make_model: Callable[[MultiRegionData], Any],
    data: MultiRegionData,
    *,
    split_seed: int = 0,
    holdout_seed: int = 0,
    n_holdout_seeds: int = 3,
    fraction: float = 0.2,
    fit_kwargs: dict[str, Any] | None = None,
) -> CosmoothingResult:
    """Run the protocol (module docstring) for one split.

    Parameters
    ----------
    make_model : builds an unfitted model for the data (``T``, ``y_dims``).
    data : all trials.
    split_seed, holdout_seed, n_holdout_seeds, fraction : see the protocol; holdout seeds are
        ``holdout_seed, holdout_seed + 1, …``.
    fit_kwargs : passed to ``model.fit``.
    """
    t0 = time.perf_counter()
    n_train, n_val, n_test = split_sizes(data.n_trials)
    train_idx, _, test_idx = split_trials(data.n_trials, n_train, n_val, n_test, split_seed)
    train, test = data[train_idx], data[test_idx]
    model = make_model(train)
    fit = model.fit(train, **(fit_kwargs or {}))
    per_seed, first_pred, first_held = [], None, None
    for s in range(holdout_seed, holdout_seed + n_holdout_seeds):
        keep = holdout_neuron_mask(data.y_dims, fraction, s)
        pred = model.predict(test, observed=torch.as_tensor(keep))
        per_seed.append(cosmoothing(test.y, pred, ~keep, data.y_dims, data.region_names))
        if first_pred is None:
            first_pred, first_held = pred.cpu(), ~keep
    assert first_pred is not None and first_held is not None
    metrics = {k: float(np.mean([m[k] for m in per_seed])) for k in per_seed[0]}
    return CosmoothingResult(
        metrics=metrics,
        per_seed=per_seed,
        fit=fit,
        model=model,
        train_idx=train_idx,
        test_idx=test_idx,
        heldout=first_held,
        prediction=first_pred,
        wall_time_s=time.perf_counter() - t0,
    )
