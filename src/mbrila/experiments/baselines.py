"""Trivial predictors every co-smoothing score is shown beside (DESIGN.md §5), scored by the same function.

* ``psth``: each held-out neuron predicted, at every time bin of every test trial, by its own mean over the training
  trials at that bin (its training PSTH). It uses nothing of the test trials, yet on the V1/V2 data it beats every
  published model's PSTH RMSE: zero-mean latents with a constant offset cannot carry a stimulus-locked mean.
* ``mean``: each held-out neuron predicted by its training mean over trials and bins (a constant).

Neither looks at the observed neurons of the test trials, so their trial-by-trial RMSE is what the latents'
single-trial information has to beat.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from mbrila.core import MultiRegionData


def _weights(data: MultiRegionData) -> Tensor:
    return data.observed_mask().to(data.y.dtype)


def psth_prediction(train: MultiRegionData, test: MultiRegionData) -> Tensor:
    """``(test trials, T, N)``: every neuron's training-trial mean at each bin (observed entries only; a bin no
    training trial observed falls back to the neuron's overall training mean)."""
    w = _weights(train)
    count = w.sum(0)
    psth = (train.y * w).sum(0) / count.clamp_min(1)
    psth = torch.where(count > 0, psth, mean_prediction(train, test)[0])
    return psth.to(test.y).expand(test.n_trials, -1, -1).clone()


def mean_prediction(train: MultiRegionData, test: MultiRegionData) -> Tensor:
    """``(test trials, T, N)``: every neuron's mean over all observed training entries."""
    w = _weights(train)
    mean = (train.y * w).sum((0, 1)) / w.sum((0, 1)).clamp_min(1)
    return mean.to(test.y).expand(test.n_trials, test.T, -1).clone()


#: The baselines by name.
BASELINES: dict[str, Callable[[MultiRegionData, MultiRegionData], Tensor]] = {
    "psth": psth_prediction,
    "mean": mean_prediction,
}
