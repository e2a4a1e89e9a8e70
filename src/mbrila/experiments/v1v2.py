"""The V1/V2 co-smoothing protocol over several split seeds: one call behind the CLI demos and the notebooks.

Each split runs :func:`mbrila.experiments.cosmoothing.run_cosmoothing` (fit on the training trials, checkpoint
selected on the validation trials, held-out neurons of the test trials predicted from the rest) and the summary
aggregates the per-split scores, the baselines' scores on the same trials and neurons, iterations, wall times and
memory (:mod:`mbrila.experiments.summaries`: mean and sample std over splits, null spread for one split).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbrila.core import LatentSpec, MultiRegionData
from mbrila.experiments.cosmoothing import CosmoothingResult, run_cosmoothing
from mbrila.experiments.resources import PeakMemory
from mbrila.experiments.summaries import STD_DDOF, aggregate
from mbrila.experiments.synthetic import ard_summary
from mbrila.models.registry import build_model


@dataclass
class V1V2Run:
    """A run of the protocol: the summary the demos write, and each split's :class:`CosmoothingResult`."""

    summary: dict[str, Any]
    results: list[CosmoothingResult]


def split_entry(res: CosmoothingResult, split: int, data: MultiRegionData, peak_mb: float) -> dict[str, Any]:
    """One split's entry of the summary."""
    return {
        "split_seed": split,
        **res.metrics,
        "n_iter": res.fit.n_iter,
        "selected_iter": res.selected_iter,
        "converged": res.fit.converged,
        "fit_wall_time_s": res.fit.wall_time_s,
        "wall_time_s": res.wall_time_s,
        "timings_s": dict(res.fit.timings),
        "peak_memory_mb": peak_mb,
        "noise_floor_neurons": dict(zip(data.region_names, res.model.noise_floor_neurons(), strict=True)),
        "baselines": res.baselines,
        **ard_summary(res.model, data.region_names),
        "validation_trace": res.validation_trace,
    }


def run_v1v2(
    model_name: str,
    data: MultiRegionData,
    *,
    latent_spec: LatentSpec,
    model_kwargs: dict[str, Any] | None = None,
    label: str | None = None,
    split_seeds: Sequence[int] = (0,),
    holdout_seed: int = 0,
    n_holdout_seeds: int = 3,
    select_on_validation: bool = True,
    subtract_train_psth: bool = False,
    fit_kwargs: dict[str, Any] | None = None,
    split_fit_kwargs: Callable[[int], dict[str, Any]] | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    on_split: Callable[[int, CosmoothingResult, dict[str, Any]], None] | None = None,
) -> V1V2Run:
    """Run the protocol for every split seed (module docstring).

    Parameters
    ----------
    model_name, model_kwargs : the preset (:func:`mbrila.build_model`) and its extra arguments.
    data : all trials (the shipped recordings, or any region dict loaded with :func:`mbrila.data.load_data`).
    latent_spec : the model's latent counts.
    label : the ``method`` in the summary (default ``model_name``; ``+train_psth`` is appended with that option).
    split_seeds, holdout_seed, n_holdout_seeds, select_on_validation, subtract_train_psth, fit_kwargs : see
        :func:`~mbrila.experiments.cosmoothing.run_cosmoothing`.
    split_fit_kwargs : ``split_seed → more fit arguments`` for that split's fit (e.g. its checkpoint file).
    device, dtype : of the models.
    on_split : called as ``on_split(i, result, entry)`` after each split (printing, figures).
    """
    extra = dict(model_kwargs or {})

    def make(train: MultiRegionData) -> Any:
        return build_model(
            model_name, latent_spec=latent_spec, y_dims=train.y_dims, T=train.T, dtype=dtype, device=device, **extra
        )

    per_split: list[dict[str, Any]] = []
    results: list[CosmoothingResult] = []
    for i, split in enumerate(split_seeds):
        with PeakMemory(torch.device(device)) as mem:
            res = run_cosmoothing(
                make,
                data,
                split_seed=split,
                holdout_seed=holdout_seed,
                n_holdout_seeds=n_holdout_seeds,
                select_on_validation=select_on_validation,
                subtract_train_psth=subtract_train_psth,
                fit_kwargs={**(fit_kwargs or {}), **(split_fit_kwargs(split) if split_fit_kwargs else {})},
            )
        entry = split_entry(res, split, data, mem.peak_mb)
        per_split.append(entry)
        results.append(res)
        if on_split is not None:
            on_split(i, res, entry)
    metric_keys = [k for k in per_split[0] if k.startswith("holdout_")]
    baselines = {
        name: aggregate([s["baselines"][name] for s in per_split], per_split[0]["baselines"][name])
        for name in per_split[0]["baselines"]
    }
    label = label or model_name
    summary: dict[str, Any] = {
        "method": f"{label}+train_psth" if subtract_train_psth else label,
        "subtract_train_psth": subtract_train_psth,
        "model": model_name,
        "region_names": list(data.region_names),
        "latent_spec": {"n_across": latent_spec.n_across, "n_within": latent_spec.n_within},
        "validation_select": select_on_validation,
        "split_seeds": list(split_seeds),
        **aggregate(per_split, metric_keys),
        "std_ddof": STD_DDOF,
        "baselines": baselines,
        "n_iter": [s["n_iter"] for s in per_split],
        "selected_iter": [s["selected_iter"] for s in per_split],
        "wall_time_s": float(np.sum([s["wall_time_s"] for s in per_split])),
        "wall_time_per_split_s": [s["wall_time_s"] for s in per_split],
        "peak_memory_mb": float(np.max([s["peak_memory_mb"] for s in per_split])),
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "per_split": per_split,
    }
    return V1V2Run(summary=summary, results=results)
