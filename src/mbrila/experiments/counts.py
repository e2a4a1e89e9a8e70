"""Spike counts: Poisson DLAG-SSM against Gaussian DLAG-SSM on square-root counts, on the same generated counts.

1. Draw the headline DLAG scenario (5 regions × 100 neurons, 2 across + 1 within latent per region, T = 200) with
   Poisson observations (:class:`~mbrila.synthetic.MultiRegionScenario`, ``observation="poisson"``): ``n_trials``
   training trials and ``n_test`` test trials from the same loadings and rates.
2. Fit ``build_model("dlag", engine="kalman", observation="poisson")`` to the counts and the Gaussian DLAG-SSM to
   ``√y``, both at their defaults, and score each as the synthetic protocol does (delay RMSE after matching).
3. Co-smoothing on the test trials (held-out neurons, :func:`mbrila.metrics.co_bps`, the NLB definition): the
   Poisson model predicts rates; the Gaussian model predicts ``ẑ = E[√y | observed]``, turned into a rate by its
   own read-out, ``E[y] = E[z²] = max(ẑ, 0)² + R_n`` (clipped at the runner's rate floor). Beside them, the
   training-PSTH baseline's co-bps on the same neurons (the mean-rate predictor scores 0 by definition).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch

from mbrila.core import MultiRegionData, holdout_neuron_mask
from mbrila.experiments.baselines import psth_prediction
from mbrila.experiments.cosmoothing import RATE_FLOOR
from mbrila.experiments.synthetic import SyntheticRun, fit_and_score
from mbrila.metrics import co_bps
from mbrila.synthetic import ScenarioTruth, headline_scenario

#: Test trials drawn beside the training trials for the co-smoothing score.
N_TEST_TRIALS = 25
#: Share of each region's neurons held out on the test trials, and the holdout seeds averaged over.
HOLDOUT_FRACTION = 0.2
HOLDOUT_SEEDS = (0, 1, 2)


def _trials(truth: ScenarioTruth, idx: slice) -> ScenarioTruth:
    """The truth of a subset of trials (delays and loadings are shared by all trials)."""
    return replace(
        truth,
        latents_across=truth.latents_across[idx],
        latents_within=[x[idx] for x in truth.latents_within],
        clean=truth.clean[idx],
    )


def _sqrt(data: MultiRegionData) -> MultiRegionData:
    return MultiRegionData(data.y.sqrt(), data.y_dims, data.region_names, mask=data.mask, dtype=data.y.dtype)


def _co_bps(test: MultiRegionData, rate_of: Any, keep_seeds: list[np.ndarray]) -> dict[str, float]:
    """Co-bps averaged over the holdout seeds; ``rate_of(keep)`` predicts the rates with neurons ``keep`` seen."""
    scores = [
        co_bps(test.y, rate_of(keep).clamp_min(RATE_FLOOR), ~keep, test.y_dims, test.region_names, test.mask)
        for keep in keep_seeds
    ]
    return {k: float(np.mean([s[k] for s in scores])) for k in scores[0]}


def run_count_comparison(
    *,
    seed: int = 0,
    n_trials: int = 50,
    n_test: int = N_TEST_TRIALS,
    scenario_overrides: dict[str, Any] | None = None,
    max_iter: int | None = None,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float64,
    progress: bool = True,
) -> tuple[dict[str, Any], SyntheticRun, SyntheticRun]:
    """Run the comparison of the module docstring.

    Returns ``(summary, poisson_run, gaussian_run)``; ``summary`` holds both models' scores (``poisson`` and
    ``gaussian_sqrt``), the PSTH baseline's co-bps, and the data's mean rate and fraction of zeros.
    """
    scen = headline_scenario(
        "dlag", seed=seed, observation="poisson", **{**(scenario_overrides or {}), "n_trials": n_trials + n_test}
    )
    data_all, truth_all = scen.sample(dtype=dtype)
    train_idx = slice(0, n_trials)
    train, test = data_all[np.arange(n_trials)], data_all[np.arange(n_trials, n_trials + n_test)]
    truth = _trials(truth_all, train_idx)

    def fit(data: MultiRegionData, model_kwargs: dict[str, Any] | None) -> SyntheticRun:
        return fit_and_score(
            "dlag_ssm",
            scen,
            data,
            truth,
            seed=seed,
            scenario_label="dlag_poisson",
            model_kwargs=model_kwargs,
            max_iter=max_iter,
            device=device,
            dtype=dtype,
            progress=progress,
        )

    poisson = fit(train, {"observation": "poisson"})
    gaussian = fit(_sqrt(train), None)
    keeps = [holdout_neuron_mask(test.y_dims, HOLDOUT_FRACTION, s) for s in HOLDOUT_SEEDS]
    test_sqrt = _sqrt(test)
    R = gaussian.model.observation.R

    def poisson_rates(keep: np.ndarray) -> torch.Tensor:
        return poisson.model.predict(test, observed=torch.as_tensor(keep)).cpu()

    def gaussian_rates(keep: np.ndarray) -> torch.Tensor:
        z = gaussian.model.predict(test_sqrt, observed=torch.as_tensor(keep))
        return (z.clamp_min(0).square() + R).cpu()

    psth = psth_prediction(train, test)
    keys = ("delay_rmse", "delay_rmse_per_latent", "y_rmse", "n_iter", "converged", "wall_time_s", "init_time_s")
    summary: dict[str, Any] = {
        "scenario": "dlag_poisson",
        "seed": seed,
        "n_trials": n_trials,
        "n_test_trials": n_test,
        "mean_rate": float(train.y.mean()),
        "fraction_zeros": float((train.y == 0).to(train.y.dtype).mean()),
        "poisson": {
            **{k: poisson.summary[k] for k in keys},
            "per_iter_s": poisson.summary["per_iter_s"],
            "peak_memory_mb": poisson.summary["peak_memory_mb"],
            **_co_bps(test, poisson_rates, keeps),
        },
        "gaussian_sqrt": {
            **{k: gaussian.summary[k] for k in keys},
            "per_iter_s": gaussian.summary["per_iter_s"],
            "peak_memory_mb": gaussian.summary["peak_memory_mb"],
            **_co_bps(test, gaussian_rates, keeps),
        },
        "baseline_psth": _co_bps(test, lambda keep: psth, keeps),
        "holdout_fraction": HOLDOUT_FRACTION,
        "holdout_seeds": list(HOLDOUT_SEEDS),
        "note": (
            "co-bps on held-out neurons of the test trials (NLB definition; the mean-rate predictor scores 0). "
            "The Gaussian model is fitted to sqrt(y); its rate is max(z, 0)^2 + R_n."
        ),
    }
    return summary, poisson, gaussian
