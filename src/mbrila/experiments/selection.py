"""The model-selection protocols on synthetic data, where the answer is known.

- :func:`cv_recovery`: draw a scenario with known ``(n_across, n_within)``, cross-validate a grid around it
  (:func:`mbrila.selection.cross_validate` at the preset's defaults) and report whether the one-standard-error
  choice is the truth.
- :func:`bootstrap_coverage`: draw a scenario, fit the preset with the true latent counts, bootstrap it
  (:func:`mbrila.selection.bootstrap_delays`), match the fitted latents to the true ones, and report for every
  delay of a non-reference region whether the interval covers the truth (pointwise in time for time-varying
  delays), the interval widths, and a warm-started replicate's cost beside the cold fit's.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from mbrila.core import LatentSpec, split_trials
from mbrila.experiments.cosmoothing import split_sizes
from mbrila.experiments.v1v2 import run_v1v2
from mbrila.metrics import match_latents
from mbrila.models.registry import build_model
from mbrila.selection import bootstrap_delays, cross_validate
from mbrila.synthetic import headline_scenario


def neighbour_grid(n_across: int, n_within: int) -> list[tuple[int, int]]:
    """``(a, w)`` for ``a`` in ``n_across ± 1`` and ``w`` in ``n_within ± 1`` (non-negative, at least one latent)."""
    return [
        (a, w)
        for a in range(max(0, n_across - 1), n_across + 2)
        for w in range(max(0, n_within - 1), n_within + 2)
        if a + w > 0
    ]


def cv_recovery(
    model_name: str = "dlag_ssm",
    *,
    seed: int = 0,
    scenario: str = "dlag",
    scenario_overrides: dict[str, Any] | None = None,
    n_folds: int = 5,
    n_workers: int = 1,
    threads_per_worker: int | None = None,
    fit_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Cross-validate the grid around a scenario's true latent counts (module docstring); returns a summary."""
    scen = headline_scenario(scenario, seed=seed, **(scenario_overrides or {}))
    if len(set(scen.n_within_per_region)) != 1:
        raise ValueError("cv_recovery needs the same number of within latents in every region.")
    truth = (scen.n_across, scen.n_within_per_region[0])
    data, _ = scen.sample()
    cv = cross_validate(
        data,
        model_name,
        neighbour_grid(*truth),
        n_folds=n_folds,
        seed=seed,
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        fit_kwargs=fit_kwargs,
    )
    return {
        "seed": seed,
        "truth": list(truth),
        "one_se_choice": list(cv.one_se_choice),
        "best": list(cv.best),
        "correct": tuple(cv.one_se_choice) == truth,
        "cv": cv.to_dict(),
        "y_dims": list(data.y_dims),
        "n_trials": data.n_trials,
        "T": data.T,
    }


def bootstrap_coverage(
    model_name: str = "dlag_ssm",
    *,
    seed: int = 0,
    scenario: str = "dlag",
    scenario_overrides: dict[str, Any] | None = None,
    n_boot: int = 100,
    level: float = 0.95,
    n_workers: int = 1,
    threads_per_worker: int | None = None,
    fit_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Bootstrap a preset fitted with the true latent counts and score its intervals (module docstring);
    ``fit_kwargs`` go to the replicates' fits only."""
    scen = headline_scenario(scenario, seed=seed, **(scenario_overrides or {}))
    data, truth = scen.sample()
    model = build_model(model_name, latent_spec=LatentSpec(scen.n_across, scen.n_within), y_dims=data.y_dims, T=data.T)
    t0 = time.perf_counter()
    fit = model.fit(data, progress=False)
    cold_s = time.perf_counter() - t0
    boot = bootstrap_delays(
        model,
        data,
        n_boot,
        seed=seed,
        level=level,
        fit_kwargs=fit_kwargs,
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
    )
    post = model.infer(data)
    perm = match_latents(post.region(0)[..., : scen.n_across].cpu(), truth.latents_across[:, :, 0, :]).perm
    true = truth.delays.cpu().numpy()  # (T, R, K_true)
    lower, upper = boot.delays.lower[..., perm], boot.delays.upper[..., perm]
    estimate = boot.delays.estimate[..., perm]
    covered = (lower <= true) & (true <= upper)  # (T, R, K)
    out: dict[str, Any] = {
        "seed": seed,
        "model": model_name,
        "n_boot": n_boot,
        "level": level,
        "replicate_fit_kwargs": dict(fit_kwargs or {}),
        "constant_delays": boot.constant,
        "cold_fit_s": cold_s,
        "cold_n_iter": fit.n_iter,
        "replicate_s": boot.wall_time_s,
        "replicate_n_iter": boot.n_iter,
        "replicate_over_cold": float(np.mean(boot.wall_time_s) / cold_s),
        "min_match_corr": float(np.nanmin(boot.match_corr)),
    }
    if boot.constant:
        out["delays"] = [
            {
                "region": r,
                "latent": k,
                "true": float(true[0, r, k]),
                "estimate": float(estimate[0, r, k]),
                "lower": float(lower[0, r, k]),
                "upper": float(upper[0, r, k]),
                "covered": bool(covered[0, r, k]),
            }
            for r in range(1, true.shape[1])
            for k in range(true.shape[2])
        ]
    else:
        out["fraction_of_bins_covered"] = float(covered[:, 1:].mean())
        out["fraction_of_bins_covered_per_delay"] = covered[:, 1:].mean(0).tolist()
        out["mean_band_width"] = float((upper - lower)[:, 1:].mean())
    return out


def synthetic_selection(
    model_name: str = "dlag_ssm",
    *,
    seed: int = 0,
    scenario_overrides: dict[str, Any] | None = None,
    n_folds: int = 5,
    n_boot: int = 100,
    n_workers: int = 1,
    threads_per_worker: int | None = None,
    fit_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> dict[str, Any]:
    """Cross-validate the latent counts on the headline DLAG scenario, fit the one-SE choice on all trials and
    bootstrap its delays; returns the summary plus the objects the figures need (``cv``, ``boot``, ``true_delays``
    in the fitted latents' order, or None when the choice has fewer across latents than the truth)."""
    scen = headline_scenario("dlag", seed=seed, **(scenario_overrides or {}))
    data, truth = scen.sample(dtype=dtype)
    truth_counts = (scen.n_across, scen.n_within_per_region[0])
    cv = cross_validate(
        data,
        model_name,
        neighbour_grid(*truth_counts),
        n_folds=n_folds,
        seed=seed,
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        fit_kwargs=fit_kwargs,
        model_kwargs={"device": device, "dtype": dtype},
    )
    a, w = cv.one_se_choice
    model = build_model(
        model_name,
        latent_spec=LatentSpec(a, w),
        y_dims=data.y_dims,
        T=data.T,
        device=device,
        dtype=dtype,
    )
    fit = model.fit(data, progress=False, **(fit_kwargs or {}))
    boot = bootstrap_delays(
        model,
        data,
        n_boot,
        seed=seed,
        fit_kwargs=fit_kwargs,
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
    )
    true_delays = None
    if a >= scen.n_across:
        post = model.infer(data)
        m = match_latents(post.region(0)[..., :a].cpu(), truth.latents_across[:, :, 0, :])
        true_delays = np.full(boot.delays.estimate.shape, np.nan)
        true_delays[..., m.perm] = truth.delays.cpu().numpy()  # fitted latents with no true match stay NaN
    summary = {
        "method": model_name,
        "seed": seed,
        "truth": list(truth_counts),
        "one_se_choice": [a, w],
        "best": list(cv.best),
        "correct": (a, w) == truth_counts,
        "cv": cv.to_dict(),
        "fit_n_iter": fit.n_iter,
        "fit_wall_time_s": fit.wall_time_s,
        "bootstrap": boot.to_dict(),
        "bootstrap_wall_time_s": boot.total_time_s,
        "true_delays": None if true_delays is None else true_delays[0].tolist(),
        "n_trials": data.n_trials,
        "T": data.T,
        "y_dims": list(data.y_dims),
        "device": str(device),
    }
    return {"summary": summary, "cv": cv, "boot": boot, "true_delays": true_delays, "region_names": data.region_names}


def v1v2_selection(
    data: Any,
    model_name: str = "dlag_ssm",
    *,
    grid: list[tuple[int, int]] | None = None,
    default: tuple[int, int] = (2, 2),
    split_seed: int = 0,
    n_folds: int = 5,
    n_workers: int = 1,
    threads_per_worker: int | None = None,
    holdout_seed: int = 0,
    n_holdout_seeds: int = 3,
    fit_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    dtype: torch.dtype = torch.float64,
) -> dict[str, Any]:
    """Cross-validate latent counts on a split's training trials only, then score the one-SE choice and the
    ``default`` (2 + 2, the published size) by the co-smoothing protocol on that split's test trials, beside
    the baselines. The test trials take no part in the choice."""
    grid = grid if grid is not None else neighbour_grid(*default)
    n_train, n_val, n_test = split_sizes(data.n_trials)
    train_idx, _, _ = split_trials(data.n_trials, n_train, n_val, n_test, split_seed)
    extra = {"device": device, "dtype": dtype}
    cv = cross_validate(
        data[train_idx],
        model_name,
        grid,
        n_folds=n_folds,
        seed=split_seed,
        n_workers=n_workers,
        threads_per_worker=threads_per_worker,
        fit_kwargs=fit_kwargs,
        model_kwargs=extra,
    )
    choice = tuple(cv.one_se_choice)
    targets = {f"{model_name} CV-selected {choice[0]}+{choice[1]}": choice}
    if choice != tuple(default):
        targets[f"{model_name} default {default[0]}+{default[1]}"] = tuple(default)
    runs, baselines = {}, {}
    for label, counts in targets.items():
        run = run_v1v2(
            model_name,
            data,
            latent_spec=LatentSpec(*counts),
            label=label,
            split_seeds=[split_seed],
            holdout_seed=holdout_seed,
            n_holdout_seeds=n_holdout_seeds,
            fit_kwargs={**(fit_kwargs or {}), "progress": False},
            device=device,
            dtype=dtype,
        )
        keep = ("method", "latent_spec", "wall_time_s")
        runs[label] = {k: v for k, v in run.summary.items() if k.startswith("holdout_") or k in keep}
        baselines = run.summary["baselines"]  # the same trials and neurons for every model
    return {
        "cv": cv.to_dict(),
        "cv_result": cv,
        "one_se_choice": list(choice),
        "choice_is_default": choice == tuple(default),
        "runs": runs,
        "baselines": baselines,
        "split_seed": split_seed,
        "region_names": list(data.region_names),
    }
