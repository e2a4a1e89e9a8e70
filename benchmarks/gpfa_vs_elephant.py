"""mbrila's GPFA against Elephant's (exact GP, its own defaults) on the same data, each fit in its own process.

    uv run --extra bench python benchmarks/gpfa_vs_elephant.py                # data seeds 0, 1, 2
    uv run --extra bench python benchmarks/gpfa_vs_elephant.py --seeds 0 --models mbrila_gpfa

Data (mbrila's generator, one population): 3 RBF latents with timescales 3, 6 and 12 bins, 80 neurons, Gaussian
noise (snr 20), 60 training trials and 20 test trials of 100 bins. Each method fits the training trials at its
defaults (mbrila: ``build_model(name, ...)`` and ``fit``; Elephant 1.2.1: ``gpfa_core.fit`` with x_dim = 3). On the
test trials:

* latent R²: the true latents regressed on the posterior means (one affine map over all test bins), the mean R²
  over the three true latents;
* held-out-neuron RMSE: the neurons split into 5 groups; each group predicted from the posterior means given the
  other neurons (each method's own inference: mbrila's ``predict(observed=...)``, Elephant's
  ``exact_inference_with_ll`` on the remaining neurons' parameters), RMSE over all held-out entries;
* timescales (bins, sorted), EM iterations, fit wall time and the process's peak RSS (MiB, ``VmHWM``, Linux; includes the
  imports: torch for mbrila, numpy/scipy/sklearn for Elephant).

Writes ``benchmarks/results/gpfa_vs_elephant.json`` after every run. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, run_isolated, write_json

RESULTS = Path(__file__).resolve().parent / "results" / "gpfa_vs_elephant.json"
MODELS = ("elephant_gpfa", "mbrila_gpfa", "mbrila_gpfa_exact")
N_TRAIN, N_TEST, N_FOLDS = 60, 20, 5


def make_data(seed: int, path: Path) -> None:
    """Sample the scenario and save ``y (trials, T, N)`` and the true latents ``x (trials, T, 3)``."""
    from mbrila.synthetic import MultiRegionScenario

    scenario = MultiRegionScenario(
        n_trials=N_TRAIN + N_TEST,
        T=100,
        y_dims=(80,),
        n_across=3,
        n_within=0,
        timescales_across=(3.0, 6.0, 12.0),
        delay_amplitude=(0.0, 0.0, 0.0),
        snr=20.0,
        seed=seed,
    )
    data, truth = scenario.sample()
    np.savez(path, y=data.y.numpy(), x=truth.region_latents(0).numpy())


def latent_r2(truth: np.ndarray, est: np.ndarray) -> float:
    """Mean over true latents of the R² of an affine least-squares map from the estimates (all bins pooled)."""
    X = np.concatenate([est.reshape(-1, est.shape[-1]), np.ones((est.shape[0] * est.shape[1], 1))], axis=1)
    Y = truth.reshape(-1, truth.shape[-1])
    coef, *_ = np.linalg.lstsq(X, Y, rcond=None)
    resid = Y - X @ coef
    return float(np.mean(1.0 - resid.var(0) / Y.var(0)))


def peak_rss_mb() -> float:
    """This process's peak resident memory (MiB) from ``VmHWM``: unlike ``ru_maxrss``, which keeps the parent's
    high-water mark across ``exec`` (here the parent holds torch), it counts this process alone. Linux only."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 2**10
    return float("nan")


def neuron_folds(n: int) -> list[np.ndarray]:
    return [np.arange(n)[f::N_FOLDS] for f in range(N_FOLDS)]


def fit_mbrila(name: str, y: np.ndarray) -> tuple[Any, dict[str, Any]]:
    import torch

    import mbrila

    train = mbrila.MultiRegionData.from_regions({"R0": torch.as_tensor(y[:N_TRAIN])})
    model = mbrila.build_model(name, latent_spec=mbrila.LatentSpec(3, 0), y_dims=train.y_dims, T=train.T)
    t0 = time.perf_counter()
    result = model.fit(train, progress=False)
    info = {
        "fit_time_s": time.perf_counter() - t0,
        "n_iter": int(result.n_iter),
        "stop_reason": result.stop_reason,
        "timescales_bins": sorted(model.timescales()["across"].tolist()),
    }
    return model, info


def evaluate_mbrila(model: Any, y: np.ndarray, x: np.ndarray) -> dict[str, float]:
    import torch

    import mbrila

    test = mbrila.MultiRegionData.from_regions({"R0": torch.as_tensor(y[N_TRAIN:])})
    means = model.infer(test).mean.numpy()
    err, count = 0.0, 0
    for held in neuron_folds(y.shape[-1]):
        observed = torch.ones(y.shape[-1], dtype=torch.bool)
        observed[held] = False
        pred = model.predict(test, observed=observed).numpy()
        err += float(((pred[..., held] - y[N_TRAIN:, :, held]) ** 2).sum())
        count += pred[..., held].size
    return {"latent_r2": latent_r2(x[N_TRAIN:], means), "heldout_neuron_rmse": (err / count) ** 0.5}


def elephant_seqs(y: np.ndarray) -> np.ndarray:
    seqs = np.empty(y.shape[0], dtype=[("trialId", int), ("T", int), ("y", object)])
    for i, trial in enumerate(y):
        seqs[i] = (i, trial.shape[0], np.ascontiguousarray(trial.T))  # Elephant: y of shape (N, T)
    return seqs


def fit_elephant(y: np.ndarray) -> tuple[Any, dict[str, Any]]:
    from elephant.gpfa import gpfa_core

    t0 = time.perf_counter()
    params, info = gpfa_core.fit(elephant_seqs(y[:N_TRAIN]), x_dim=3)
    out = {
        "fit_time_s": time.perf_counter() - t0,
        "n_iter": len(info["log_likelihoods"]) if "log_likelihoods" in info else None,
        "timescales_bins": sorted((1.0 / np.sqrt(np.asarray(params["gamma"]).ravel())).tolist()),
    }
    return params, out


def evaluate_elephant(params: dict[str, Any], y: np.ndarray, x: np.ndarray) -> dict[str, float]:
    from elephant.gpfa import gpfa_core

    test = y[N_TRAIN:]
    seqs, _ = gpfa_core.exact_inference_with_ll(elephant_seqs(test), params)
    means = np.stack([s.T for s in seqs["latent_variable"]])
    err, count = 0.0, 0
    n = y.shape[-1]
    for held in neuron_folds(n):
        keep = np.setdiff1d(np.arange(n), held)
        sub = dict(params)
        sub["C"], sub["d"] = params["C"][keep], params["d"][keep]
        sub["R"] = params["R"][np.ix_(keep, keep)]
        part, _ = gpfa_core.exact_inference_with_ll(elephant_seqs(test[..., keep]), sub)
        lat = np.stack([s.T for s in part["latent_variable"]])  # (trials, T, 3)
        pred = lat @ params["C"][held].T + params["d"][held]
        err += float(((pred - test[..., held]) ** 2).sum())
        count += pred.size
    return {"latent_r2": latent_r2(x[N_TRAIN:], means), "heldout_neuron_rmse": (err / count) ** 0.5}


def worker(config: dict[str, Any]) -> dict[str, Any]:
    arrays = np.load(config["data"])
    y, x = arrays["y"], arrays["x"]
    if config["model"] == "elephant_gpfa":
        params, info = fit_elephant(y)
        info.update(evaluate_elephant(params, y, x))
    else:
        model, info = fit_mbrila(config["model"].removeprefix("mbrila_"), y)
        info.update(evaluate_mbrila(model, y, x))
    info["peak_rss_mb"] = peak_rss_mb()
    return {"status": "ok", **info}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            path = Path(tmp) / f"data{seed}.npz"
            make_data(seed, path)
            for model in args.models:
                out = run_isolated(Path(__file__), {"model": model, "data": str(path)}, args.timeout)
                rows.append({"seed": seed, "model": model, **out})
                print(json.dumps(rows[-1]))
                write_json(RESULTS, {"machine": machine_info(), "truth_timescales_bins": [3, 6, 12], "runs": rows})


if __name__ == "__main__":
    main()
