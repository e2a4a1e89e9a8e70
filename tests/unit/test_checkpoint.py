"""BestCheckpoint: the fit callback that keeps the parameters scoring best on held-out data."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mbrila.inference.checkpoint import BestCheckpoint


def _drive(scores: list[float], every: int, n_iter: int | None = None) -> tuple[BestCheckpoint, nn.Linear]:
    """Pretend to fit: after k updates the weight equals k and its score is ``scores[k]``; the callback sees
    ``θ_0 … θ_{n_iter}``."""
    model = nn.Linear(1, 1, bias=False)
    ckpt = BestCheckpoint(model, lambda m: scores[int(m.weight.item())], every=every)
    n_iter = len(scores) - 1 if n_iter is None else n_iter
    for it in range(n_iter + 1):
        with torch.no_grad():
            model.weight.fill_(it)
        ckpt(it, 0.0)
    return ckpt, model


def test_restores_the_best_scored_iterate():
    scores = [9.0, 5.0, 4.0, 3.0, 1.0, 2.0, 6.0, 0.5, 7.0]
    ckpt, model = _drive(scores, every=2)
    # Scored after 0, 2, 4, 6, 8 updates: the minimum among those is 1.0 after 4 (0.5 after 7 is never seen).
    assert [i for i, _ in ckpt.trace] == [0, 2, 4, 6, 8]
    assert ckpt.restore(8) == 4 and model.weight.item() == 4.0 and ckpt.best_score == 1.0
    assert len(ckpt.trace) == 5  # the last iterate had been scored already


def test_final_iterate_is_scored_when_the_fit_stops_between_scores():
    scores = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
    ckpt, model = _drive(scores, every=4, n_iter=5)  # scored after 0 and 4 updates; the fit ended after 5
    assert ckpt.restore(5) == 5 and model.weight.item() == 5.0
    assert [i for i, _ in ckpt.trace] == [0, 4, 5]


def test_nan_scores_are_never_preferred_and_bad_every_is_refused():
    ckpt, model = _drive([math.nan, 3.0, math.nan, math.nan], every=1)
    assert ckpt.restore(3) == 1 and model.weight.item() == 1.0
    with pytest.raises(ValueError, match="every"):
        BestCheckpoint(nn.Linear(1, 1), lambda m: 0.0, every=0)


def test_patience_asks_the_fit_to_stop_after_stale_scores():
    model = nn.Linear(1, 1, bias=False)
    scores = iter([3.0, 2.0, 2.5, 2.0, 2.1, 1.0])
    ckpt = BestCheckpoint(model, lambda m: next(scores), every=1, patience=3)
    # 3.0 (new), 2.0 (new), 2.5, 2.0 (a tie is not a new best), 2.1 → three stale scores: stop.
    assert [ckpt(it, 0.0) for it in range(5)] == [False, False, False, False, True]
    assert ckpt.best_iter == 1
    with pytest.raises(ValueError, match="patience"):
        BestCheckpoint(model, lambda m: 0.0, patience=0)
