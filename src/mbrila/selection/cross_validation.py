"""Cross-validated choice of a model (typically its latent counts) by held-out-neuron co-smoothing.

The trials are split into ``K`` folds (a seeded permutation, :func:`numpy.array_split`). For fold ``k`` and
candidate ``c``, the model ``model_factory(c)`` is fitted with its defaults on the other folds; on fold ``k``'s
trials each region's neurons are hidden a group at a time (``round(1/fraction)`` groups), inferred from the rest,
and predicted (:func:`~mbrila.metrics.heldout.leave_group_out_prediction`). The fold's score ``s_{ck}`` is
the mean over regions of the chosen metric of :func:`mbrila.metrics.cosmoothing` (default the trial-by-trial RMSE
of the hidden neurons, where single-trial latents show; or ``co_bps`` for spike counts, higher is better).

Per candidate: ``mean_c = (1/K) Σ_k s_{ck}`` and standard error ``se_c = sd_k(s_{ck}) / √K`` (sd with ddof = 1).
``best`` minimises the mean (maximises it for co-bps); ``one_se_choice`` is the smallest model (fewest latents,
``n_across + Σ_r n_within_r``) whose mean lies within ``se_best`` of the best mean — the usual guard against
choosing a larger model on noise (ties in size go to the better mean).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbrila.core import MultiRegionData
from mbrila.inference.em import quiet_fits
from mbrila.metrics import co_bps, cosmoothing
from mbrila.metrics.heldout import leave_group_out_prediction
from mbrila.metrics.spikes import RATE_FLOOR
from mbrila.observations.counts import are_counts
from mbrila.selection.factory import check_candidate, n_latents, resolve_factory
from mbrila.selection.workers import check_workers, run_tasks

#: Metrics a cross-validation can score, with whether higher is better.
CV_METRICS = {"trial_rmse": False, "psth_rmse": False, "co_bps": True}


@dataclass
class CVResult:
    """What :func:`cross_validate` measured.

    Attributes
    ----------
    candidates : the grid, in the order given.
    table : one row per candidate: ``candidate``, ``n_latents``, ``mean``, ``se``, ``per_fold`` scores, per-region
        means ``per_region``, ``n_iter`` and ``wall_time_s`` per fold.
    best, one_se_choice : candidates (module docstring).
    metric, higher_is_better : the score used.
    folds : the held-out trial indices of each fold.
    n_workers, wall_time_s : worker processes used and the seconds the whole cross-validation took.
    """

    candidates: list[Any]
    table: list[dict[str, Any]]
    best: Any
    one_se_choice: Any
    metric: str
    higher_is_better: bool
    folds: list[np.ndarray]
    n_workers: int
    wall_time_s: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (candidates written as lists)."""

        def plain(c: Any) -> Any:
            if isinstance(c, (tuple, list)):
                return [plain(v) for v in c]
            return c if isinstance(c, (int, float, str)) else repr(c)

        return {
            "metric": self.metric,
            "higher_is_better": self.higher_is_better,
            "best": plain(self.best),
            "one_se_choice": plain(self.one_se_choice),
            "n_folds": len(self.folds),
            "se": "standard deviation over folds (ddof=1) / sqrt(n_folds)",
            "n_workers": self.n_workers,
            "wall_time_s": self.wall_time_s,
            "table": [{**row, "candidate": plain(row["candidate"])} for row in self.table],
        }


def trial_folds(n_trials: int, n_folds: int, seed: int) -> list[np.ndarray]:
    """The held-out trials of each fold: ``numpy.random.default_rng(seed).permutation(n_trials)`` cut into
    ``n_folds`` nearly equal parts."""
    perm = np.random.default_rng(seed).permutation(n_trials)
    return [np.sort(part) for part in np.array_split(perm, n_folds)]


def _check_grid(grid: Any) -> list[Any]:
    if isinstance(grid, (str, bytes)) or not isinstance(grid, Sequence):
        raise ValueError(
            f"grid must be a list of candidates, e.g. [(1, 1), (2, 1), (2, 2)]; got {type(grid).__name__}."
        )
    grid = list(grid)
    if not grid:
        raise ValueError("grid is empty: give at least one candidate (e.g. [(2, 1)]) to cross-validate.")
    keys = [repr(c) for c in grid]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"grid lists candidates more than once: {', '.join(dup)}; list each candidate once.")
    return grid


def _fold_task(shared: dict[str, Any], task: tuple[int, int]) -> dict[str, Any]:
    """Fit candidate ``c`` on the training folds of fold ``k`` and score the held-out fold (runs in a worker)."""
    c, k = task
    data: MultiRegionData = shared["data"]
    test_idx = shared["folds"][k]
    train_idx = np.setdiff1d(np.arange(data.n_trials), test_idx)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(shared["seed"] * 1_000_003 + 7919 * c + k)  # anything random in a fit: one stream per task
        model = shared["factory"](shared["candidates"][c])
        with quiet_fits():  # the table reports each fit's iterations
            fit = model.fit(data[train_idx], progress=False, **shared["fit_kwargs"])
    test = data[test_idx]
    pred, held = leave_group_out_prediction(model, test, shared["fraction"], shared["seed"])
    if shared["metric"] == "co_bps":
        scores = co_bps(test.y, pred.clamp_min(RATE_FLOOR), held, data.y_dims, data.region_names, mask=test.mask)
        prefix = "co_bps_"
    else:
        scores = cosmoothing(test.y, pred, held, data.y_dims, data.region_names, mask=test.mask)
        prefix = f"holdout_{shared['metric']}_"
    per_region = {name: float(scores[prefix + name]) for name in data.region_names if prefix + name in scores}
    return {
        "candidate": c,
        "fold": k,
        "score": float(np.mean(list(per_region.values()))),
        "per_region": per_region,
        "n_iter": int(fit.n_iter),
        "wall_time_s": float(fit.wall_time_s),
    }


def cross_validate(
    data: MultiRegionData,
    model_factory: str | Callable[[Any], Any],
    grid: Sequence[Any],
    *,
    n_folds: int = 5,
    seed: int = 0,
    fraction: float = 0.2,
    metric: str = "trial_rmse",
    fit_kwargs: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    n_workers: int = 1,
    threads_per_worker: int | None = None,
) -> CVResult:
    """K-fold cross-validation of ``grid`` by held-out-neuron co-smoothing (module docstring).

    Parameters
    ----------
    data : all trials used for selection (keep test trials you will report on out of it).
    model_factory : ``candidate → unfitted model``, or a preset name (then candidates are ``(n_across, n_within)``
        pairs or LatentSpecs and ``model_kwargs`` go to :func:`mbrila.build_model`).
    grid : the candidates, e.g. ``[(a, w) for a in (1, 2, 3) for w in (0, 1, 2)]``.
    n_folds : folds over trials (≥ 2).
    seed : decides the trial folds, the neuron groups and every fit's random stream; a seed gives the same result.
    fraction : share of each region's neurons hidden at a time.
    metric : ``"trial_rmse"`` (default), ``"psth_rmse"`` or, for spike counts, ``"co_bps"``.
    fit_kwargs : passed to every ``model.fit`` (default: the preset's defaults).
    n_workers, threads_per_worker : fits run in ``n_workers`` processes (:mod:`mbrila.selection.workers`).
    """
    t0 = time.perf_counter()
    if not isinstance(data, MultiRegionData):
        raise ValueError(f"data must be a mbrila.MultiRegionData; got {type(data).__name__}.")
    grid = _check_grid(grid)
    check_workers(n_workers, threads_per_worker)
    if isinstance(n_folds, bool) or not isinstance(n_folds, int) or not 2 <= n_folds <= data.n_trials:
        raise ValueError(f"n_folds must be an int between 2 and the {data.n_trials} trials; got {n_folds!r}.")
    if metric not in CV_METRICS:
        raise ValueError(f"metric must be one of {sorted(CV_METRICS)}; got {metric!r}.")
    if metric == "co_bps" and not are_counts(data.y, data.mask):
        raise ValueError("metric='co_bps' scores spike counts, but data.y holds values that are not counts.")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must lie in (0, 1); got {fraction}.")
    factory = resolve_factory(model_factory, tuple(data.y_dims), data.T, model_kwargs)
    sizes = []
    for c in grid:
        model = factory(c)  # built once here so a bad candidate fails now, not inside a worker
        check_candidate(model, c, tuple(data.y_dims), tuple(data.region_names))
        sizes.append(n_latents(model))
    folds = trial_folds(data.n_trials, n_folds, seed)
    shared = {
        "data": data.to("cpu") if n_workers > 1 else data,
        "folds": folds,
        "factory": factory,
        "candidates": grid,
        "fit_kwargs": dict(fit_kwargs or {}),
        "fraction": fraction,
        "metric": metric,
        "seed": int(seed),
    }
    tasks = [(c, k) for c in range(len(grid)) for k in range(n_folds)]
    results = run_tasks(_fold_task, tasks, shared, n_workers, threads_per_worker)
    higher = CV_METRICS[metric]
    table = _table(grid, sizes, results, n_folds)
    best, choice = _choose(table, higher)
    return CVResult(
        candidates=grid,
        table=table,
        best=grid[best],
        one_se_choice=grid[choice],
        metric=metric,
        higher_is_better=higher,
        folds=folds,
        n_workers=n_workers,
        wall_time_s=time.perf_counter() - t0,
    )


def _table(grid: list[Any], sizes: list[int], results: list[dict[str, Any]], n_folds: int) -> list[dict[str, Any]]:
    rows = []
    for c, cand in enumerate(grid):
        mine = sorted((r for r in results if r["candidate"] == c), key=lambda r: r["fold"])
        scores = np.array([r["score"] for r in mine])
        regions = mine[0]["per_region"].keys()
        rows.append(
            {
                "candidate": cand,
                "n_latents": sizes[c],
                "mean": float(scores.mean()),
                "se": float(scores.std(ddof=1) / math.sqrt(n_folds)),
                "per_fold": scores.tolist(),
                "per_region": {name: float(np.mean([r["per_region"][name] for r in mine])) for name in regions},
                "n_iter": [r["n_iter"] for r in mine],
                "wall_time_s": [r["wall_time_s"] for r in mine],
            }
        )
    return rows


def _choose(table: list[dict[str, Any]], higher: bool) -> tuple[int, int]:
    """Indices of the best candidate and of the one-standard-error choice."""
    sign = -1.0 if higher else 1.0  # work with "lower is better"
    means = np.array([sign * row["mean"] for row in table])
    best = int(np.argmin(means))
    bound = means[best] + table[best]["se"]
    within = [i for i in range(len(table)) if means[i] <= bound]
    choice = min(within, key=lambda i: (table[i]["n_latents"], means[i]))
    return best, choice
