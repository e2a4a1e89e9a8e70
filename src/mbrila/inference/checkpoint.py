"""Keep the parameters that score best on held-out data while a model fits (early stopping by selection).

The EM objective is the training log-likelihood; a held-out criterion such as validation co-smoothing need not
peak where it does. :class:`BestCheckpoint` is a ``fit`` callback: every ``every`` iterations it calls
``score_fn(model)`` (lower is better) on the parameters EM has just scored (so never on an over-relaxed step that
EM goes on to reject), copies them when the score improves, optionally asks ``fit`` to stop once ``patience``
scores in a row have not improved on the best, and :meth:`restore` puts the best copy back after the fit.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


class BestCheckpoint:
    """``fit`` callback that remembers the best-scoring parameters.

    Parameters
    ----------
    model : the module being fitted (its ``state_dict`` is what is kept).
    score_fn : ``model → float``, lower is better; called under ``torch.no_grad()``.
    every : score the parameters after ``0, every, 2·every, …`` EM updates (0: the initialised parameters).
    patience : stop the fit after this many scores in a row without a new best (None: run to the end).

    Attributes
    ----------
    trace : ``[(EM updates, score), …]`` in the order scored.
    best_iter, best_score : the selected checkpoint (``best_iter`` counts the EM updates behind it).
    """

    def __init__(
        self, model: nn.Module, score_fn: Callable[[Any], float], every: int = 5, patience: int | None = None
    ) -> None:
        if every < 1:
            raise ValueError(f"every must be a positive number of iterations; got {every}.")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be a positive number of scores or None; got {patience}.")
        self.model, self.score_fn, self.every, self.patience = model, score_fn, int(every), patience
        self._stale = 0  # scores since the last new best
        self.trace: list[tuple[int, float]] = []
        self.best_iter, self.best_score = 0, math.inf
        self._best_state: dict[str, torch.Tensor] | None = None

    def _score(self, n_done: int) -> None:
        with torch.no_grad():
            value = float(self.score_fn(self.model))
        self.trace.append((n_done, value))
        value = math.inf if math.isnan(value) else value  # a diverged checkpoint is never preferred
        if self._best_state is None or value < self.best_score:
            self.best_iter, self.best_score = n_done, value
            self._best_state = copy.deepcopy(self.model.state_dict())
            self._stale = 0
        else:
            self._stale += 1

    def state_dict(self) -> dict[str, Any]:
        """What the callback has seen (a fit checkpoint stores it, so a resumed fit selects the same iterate)."""
        return {
            "trace": [list(t) for t in self.trace],
            "best_iter": self.best_iter,
            "best_score": self.best_score,
            "stale": self._stale,
            "best_state": self._best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trace = [(int(i), float(v)) for i, v in state["trace"]]
        self.best_iter, self.best_score = int(state["best_iter"]), float(state["best_score"])
        self._stale = int(state["stale"])
        self._best_state = state["best_state"]

    def __call__(self, it: int, score: float) -> bool:
        """Score ``θ_it`` when due; return True (stop the fit) once ``patience`` scores brought no new best."""
        if it % self.every == 0:
            self._score(it)
        return self.patience is not None and self._stale >= self.patience

    def restore(self, n_iter: int) -> int:
        """Score the final parameters (``θ_{n_iter}``) if not yet scored, load the best; return the number of EM
        updates behind the checkpoint loaded."""
        if not self.trace or self.trace[-1][0] != n_iter:
            self._score(n_iter)
        assert self._best_state is not None  # the first scored state is always kept
        self.model.load_state_dict(self._best_state)
        return self.best_iter
