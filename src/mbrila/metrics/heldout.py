"""Held-out-neuron predictions: every neuron predicted from the others, a group at a time.

Works with any model that has ``predict(data, observed=mask)`` (every mbrila preset); the scores of these
predictions are :func:`mbrila.metrics.cosmoothing` and :func:`mbrila.metrics.co_bps`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mbrila.core import MultiRegionData, holdout_neuron_folds


def leave_group_out_prediction(
    model: Any, data: MultiRegionData, fraction: float, seed: int
) -> tuple[torch.Tensor, np.ndarray]:
    """Predict every neuron while it is hidden: ``(prediction (trials, T, N), held (N,) bool)``.

    Each region's neurons are split into ``round(1 / fraction)`` groups
    (:func:`~mbrila.core.holdout_neuron_folds`, drawn by ``seed``); for each group, the model infers the latents
    from the other neurons and predicts the hidden ones. ``held`` marks the neurons that were hidden in some
    group (a region's lone neuron never is).

    Parameters
    ----------
    model : anything with ``predict(data, observed=mask)``; data : the trials to predict.
    fraction : share of each region's neurons hidden at a time; seed : draws the groups.
    """
    keeps = holdout_neuron_folds(data.y_dims, fraction, seed)
    held = ~np.logical_and.reduce(keeps)
    pred: torch.Tensor | None = None
    for keep_np in keeps:
        keep = torch.as_tensor(keep_np)
        p = model.predict(data, observed=keep)
        pred = p if pred is None else torch.where(~keep.to(p.device), p, pred)
    assert pred is not None
    return pred, held
