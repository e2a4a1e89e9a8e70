"""The synthetic recovery protocol every demo runs (DESIGN.md §5).

1. Sample a scenario with known delays, latents and loadings from the exact delayed GP.
2. Build a preset by name with the library's defaults and fit it (initialisation included).
3. Match the fitted across latents to the true ones (permutation and sign, by correlation of region 0's
   posterior means), then score: delay RMSE in bins over time, non-reference regions and latents;
   reconstruction RMSE of ``E[y | y]`` against the noisy data beside its floor ``sqrt(1/snr)``; timescales.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbrila.core import FitResult, LatentSpec, MultiRegionData, Posterior
from mbrila.distributed import shard
from mbrila.experiments.resources import PeakMemory
from mbrila.metrics import (
    Matching,
    apply_matching,
    delay_rmse,
    delay_rmse_per_latent,
    match_latents,
    reconstruction_rmse,
)
from mbrila.models.registry import build_model
from mbrila.synthetic import MultiRegionScenario, ScenarioTruth, headline_scenario


@dataclass
class SyntheticRun:
    """Everything one synthetic run produced; ``summary`` is what the demos write to ``summary.json``."""

    summary: dict[str, Any]
    model: Any
    fit: FitResult
    data: MultiRegionData
    truth: ScenarioTruth
    posterior: Posterior
    prediction: torch.Tensor
    matching: Matching | None
    scenario: MultiRegionScenario


def _floats(x: Any) -> list[float]:
    return [float(v) for v in np.asarray(torch.as_tensor(x).detach().cpu()).reshape(-1)]


def run_synthetic(
    model_name: str,
    *,
    scenario: str | MultiRegionScenario = "dlag",
    seed: int = 0,
    scenario_overrides: dict[str, Any] | None = None,
    model_kwargs: dict[str, Any] | None = None,
    latent_spec: LatentSpec | None = None,
    max_iter: int | None = None,
    tol: float | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = True,
    fit_kwargs: dict[str, Any] | None = None,
) -> SyntheticRun:
    """Sample, fit ``build_model(model_name, …)`` with its defaults, and score (module docstring).

    Parameters
    ----------
    model_name : a preset name (:func:`mbrila.build_model`).
    scenario : a headline scenario kind (:func:`mbrila.synthetic.headline_scenario`) or a scenario instance.
    seed : the data seed of a headline scenario.
    scenario_overrides : fields of the headline scenario to change (e.g. ``{"delay_shape": "sine"}``).
    model_kwargs : extra preset arguments (kernel factories, …); the demos pass none that tune the fit.
    latent_spec : the model's latent counts (default: the scenario's true counts; mDLAG demos start with more
        latents than the truth and let ARD prune them).
    max_iter, tol : EM iterations and tolerance (the engine's defaults when None).
    device, dtype : where and in which precision the model is fitted.
    fit_kwargs : more ``model.fit`` arguments (e.g. ``checkpoint`` / ``resume``).
    """
    scen = (
        scenario
        if isinstance(scenario, MultiRegionScenario)
        else headline_scenario(scenario, seed=seed, **(scenario_overrides or {}))
    )
    data, truth = scen.sample(dtype=dtype)
    label = scen.delay_shape if isinstance(scenario, MultiRegionScenario) else scenario
    return fit_and_score(
        model_name,
        scen,
        data,
        truth,
        seed=seed,
        scenario_label=label,
        model_kwargs=model_kwargs,
        latent_spec=latent_spec,
        max_iter=max_iter,
        tol=tol,
        device=device,
        dtype=dtype,
        progress=progress,
        fit_kwargs=fit_kwargs,
    )


def fit_and_score(
    model_name: str,
    scen: MultiRegionScenario,
    data: MultiRegionData,
    truth: ScenarioTruth,
    *,
    seed: int,
    scenario_label: str,
    model_kwargs: dict[str, Any] | None = None,
    latent_spec: LatentSpec | None = None,
    max_iter: int | None = None,
    tol: float | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = True,
    fit_kwargs: dict[str, Any] | None = None,
) -> SyntheticRun:
    """Steps 2–3 of the protocol on data already drawn from ``scen`` (``truth`` belongs to ``data``'s trials);
    the parameters are those of :func:`run_synthetic`."""
    model = build_model(
        model_name,
        latent_spec=scen.latent_spec if latent_spec is None else latent_spec,
        y_dims=data.y_dims,
        T=data.T,
        dtype=dtype,
        device=device,
        **(model_kwargs or {}),
    )
    with PeakMemory(torch.device(device)) as mem:
        # Under torchrun: this process's shard of the trials (mbrila.distributed); all of them in one process.
        fit = model.fit(shard(data), max_iter=max_iter, tol=tol, progress=progress, **(fit_kwargs or {}))
        post = model.infer(data)
        pred = model.predict(data)
    n_a = scen.latent_spec.n_across
    true_acr = truth.latents_across[:, :, 0, :]
    candidates = _candidate_latents(model)
    fit_acr = post.region(0)[..., candidates].cpu()
    matching = _lift_matching(match_latents(fit_acr, true_acr), candidates) if n_a and len(candidates) >= n_a else None
    # Delay scores only for models that learn delays (GPFA and LDS have none to score).
    fitted_delays = model.delays().cpu() if model.delay.learns_delays and n_a else None
    if fitted_delays is not None and matching is None:
        fitted_delays = None  # fewer active latents than true ones: no delay to compare
    recon = reconstruction_rmse(data.y, pred.cpu(), data.y_dims, mask=data.mask, region_names=data.region_names)
    ts = model.timescales()
    summary: dict[str, Any] = {
        "method": model_name,
        "scenario": scenario_label,
        "delay_shape": scen.delay_shape,
        "seed": seed,
        "delay_rmse": None if fitted_delays is None else delay_rmse(fitted_delays, truth.delays, matching),
        "delay_rmse_per_latent": (
            None if fitted_delays is None else _floats(delay_rmse_per_latent(fitted_delays, truth.delays, matching))
        ),
        "y_rmse": recon["overall"],
        "y_rmse_per_region": {str(k): v for k, v in recon.items() if k != "overall"},
        "noise_floor_rmse": truth.noise_floor_rmse,
        "y_rmse_over_floor": recon["overall"] / truth.noise_floor_rmse,
        "latent_corr": _floats(matching.corr) if matching is not None else None,
        # One timescale per across latent for GP presets (a free LDS has none).
        "timescales_across_fit": (
            _floats(ts["across"][matching.perm])
            if matching is not None and len(ts["across"]) == model.latent_spec.n_across
            else None
        ),
        "timescales_across_true": _floats(truth.timescales_across),
        "noise_floor_neurons": dict(zip(data.region_names, model.noise_floor_neurons(), strict=True)),
        **ard_summary(model, data.region_names),
        "n_iter": fit.n_iter,
        "converged": fit.converged,
        "final_score": fit.score_trace[-1] if fit.score_trace else None,
        "wall_time_s": fit.wall_time_s,
        "init_time_s": fit.init_time_s,
        "timings_s": dict(fit.timings),
        "per_iter_s": _per_iteration(fit),
        "peak_memory_mb": mem.peak_mb,
        "device": str(device),
        "dtype": str(dtype).replace("torch.", ""),
        "n_trials": data.n_trials,
        "T": data.T,
        "y_dims": list(data.y_dims),
    }
    return SyntheticRun(
        summary=summary,
        model=model,
        fit=fit,
        data=data,
        truth=truth,
        posterior=post,
        prediction=pred.cpu(),
        matching=matching,
        scenario=scen,
    )


def _candidate_latents(model: Any) -> list[int]:
    """Fitted across latents that may be matched to true ones: all of them, or the active ones of an ARD model."""
    n_a = model.latent_spec.n_across
    active = getattr(model, "active_latents", None)
    if active is None:
        return list(range(n_a))
    return torch.nonzero(active().any(0)).flatten().tolist()


def _lift_matching(m: Matching, candidates: list[int]) -> Matching:
    """A matching over a subset of the fitted latents, re-indexed to all of them."""
    perm = np.asarray(candidates, dtype=np.int64)[m.perm]
    return Matching(perm=perm, signs=m.signs, corr=m.corr, corr_matrix=m.corr_matrix)


def ard_summary(model: Any, region_names: Any) -> dict[str, Any]:
    """For ARD models: the active-latent table, the ARD precisions and the number of latents kept."""
    active = getattr(model, "active_latents", None)
    if active is None:
        return {}
    table = active().cpu()
    return {
        "active_latents": {name: [bool(v) for v in row] for name, row in zip(region_names, table, strict=True)},
        "n_active_latents": int(table.any(0).sum()),
        "ard_precisions": {
            name: [float(v) for v in row] for name, row in zip(region_names, model.ard_precisions().cpu(), strict=True)
        },
        "shared_variance_fraction": {
            name: [float(v) for v in row]
            for name, row in zip(region_names, model.shared_variance_fraction().cpu(), strict=True)
        },
    }


def matched_across_latents(run: SyntheticRun) -> tuple[torch.Tensor, torch.Tensor]:
    """Region 0's fitted across latents reordered and flipped onto the truth, and the true ones."""
    n_a = run.scenario.latent_spec.n_across
    true = run.truth.latents_across[:, :, 0, :]
    if run.matching is None:
        return run.posterior.region(0)[..., :n_a].cpu(), true
    fitted = run.posterior.region(0)[..., : run.model.latent_spec.n_across].cpu()
    return apply_matching(fitted, run.matching), true


def matched_delays(run: SyntheticRun) -> torch.Tensor:
    """The fitted delays ``(T, R, n_across)`` with latents in the true order."""
    d = run.model.delays().cpu()
    return d if run.matching is None else d[:, :, torch.as_tensor(run.matching.perm)]


def _per_iteration(fit: FitResult) -> dict[str, float]:
    """Seconds per EM iteration of each stage: ``n_iter + 1`` E-steps (the last scores the final update),
    ``n_iter`` M-steps."""
    counts = {"e_step": len(fit.score_trace)}
    return {k: v / max(counts.get(k, fit.n_iter), 1) for k, v in fit.timings.items() if not k.startswith("init_")}
