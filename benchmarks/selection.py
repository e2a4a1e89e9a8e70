"""Model selection on synthetic data where the answer is known, and what it costs.

    uv run python benchmarks/selection.py cv          # one-SE choice vs the true (n_across, n_within), 5 seeds
    uv run python benchmarks/selection.py coverage    # bootstrap 95% intervals vs true constant delays, 20 seeds
    uv run python benchmarks/selection.py adm         # bootstrap band vs true time-varying delays (ADM)
    uv run python benchmarks/selection.py workers     # the same cross-validation with 1 and 2 worker processes
    uv run python benchmarks/selection.py tolerance   # how far replicates stopped at a looser tol fall short
    uv run python benchmarks/selection.py merge --parts coverage coverage_b   # seeds run by separate processes

Every study runs the headline scenario at a reduced size (stated in the JSON; the full scenario's fits take
minutes each and these studies need hundreds of them) with the presets' defaults, and writes
``benchmarks/results/selection_<study>.json`` after every seed, so a stopped run keeps what it measured.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, write_json

from mbrila.experiments.selection import bootstrap_coverage, cv_recovery
from mbrila.inference.em import quiet_fits

RESULTS = Path(__file__).resolve().parent / "results"
CV_SIZE = {"n_trials": 45, "T": 50, "y_dims": (30, 30, 30)}
BOOT_SIZE = {"n_trials": 24, "T": 40, "y_dims": (20, 20)}


def _write(name: str, payload: dict[str, Any]) -> None:
    write_json(RESULTS / f"selection_{name}.json", {**payload, "machine": machine_info()})


def study_cv(args: argparse.Namespace) -> None:
    runs = []
    for seed in args.seeds:
        runs.append(
            cv_recovery(
                seed=seed, scenario_overrides=CV_SIZE, n_folds=args.folds, n_workers=args.workers, threads_per_worker=1
            )
        )
        print(f"seed {seed}: one-SE {runs[-1]['one_se_choice']} best {runs[-1]['best']}", flush=True)
        _write(
            "cv",
            {
                "study": "one-SE choice of DLAG-SSM latent counts, grid truth ± 1 of each",
                "scenario": {"kind": "dlag", **CV_SIZE},
                "n_folds": args.folds,
                "n_correct": sum(r["correct"] for r in runs),
                "n_seeds": len(runs),
                "runs": runs,
            },
        )


def _coverage_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "n_seeds": len(runs),
        "seeds": [r["seed"] for r in runs],
        "median_replicate_over_cold": float(np.median([r["replicate_over_cold"] for r in runs])),
    }
    if runs[0]["constant_delays"]:
        cases = [d for r in runs for d in r["delays"]]
        payload["coverage"] = float(np.mean([d["covered"] for d in cases]))
        payload["n_cases"] = len(cases)
        payload["median_width"] = float(np.median([d["upper"] - d["lower"] for d in cases]))
    else:
        payload["fraction_of_bins_covered"] = float(np.mean([r["fraction_of_bins_covered"] for r in runs]))
    return payload


def study_coverage(args: argparse.Namespace, model: str, scenario: str, name: str) -> None:
    runs = []
    for seed in args.seeds:
        runs.append(
            bootstrap_coverage(
                model,
                seed=seed,
                scenario=scenario,
                scenario_overrides=BOOT_SIZE,
                n_boot=args.n_boot,
                n_workers=args.workers,
                threads_per_worker=1,
                fit_kwargs=None if args.replicate_tol is None else {"tol": args.replicate_tol},
            )
        )
        r = runs[-1]
        print(
            f"seed {seed}: replicate/cold {r['replicate_over_cold']:.2f}", r.get("fraction_of_bins_covered"), flush=True
        )
        payload = {
            "study": f"bootstrap {runs[0]['level']:.0%} intervals of {model} delays",
            "scenario": {"kind": scenario, **BOOT_SIZE},
            "n_boot": args.n_boot,
            **_coverage_summary(runs),
            "runs": runs,
        }
        _write(name, payload)


def study_tolerance(args: argparse.Namespace) -> None:
    """Replicates warm-started from θ̂ approach their own optimum from θ̂'s side, so stopping them early shrinks
    their spread. Per seed: the cold fit θ̂, then ``--n-boot`` replicates each refitted from θ̂ at several
    tolerances and once for 700 iterations with tol = 0 (the optimum's stand-in); the shortfall of a tolerance is
    ``1 − |δ_tol − δ̂| / |δ_long − δ̂|`` per delay (0: the replicate got all the way; only delays that moved
    ≥ 0.005 bins count)."""
    from mbrila.core import LatentSpec
    from mbrila.models.registry import build_model
    from mbrila.synthetic import headline_scenario

    tols = (1e-5, 1e-6, 1e-7)
    runs = []
    for seed in args.seeds:
        scen = headline_scenario("dlag", seed=seed, **BOOT_SIZE)
        data, _ = scen.sample()
        model = build_model(
            "dlag_ssm", latent_spec=LatentSpec(scen.n_across, scen.n_within), y_dims=data.y_dims, T=data.T
        )
        t0 = time.perf_counter()
        model.fit(data, progress=False)
        cold_s = time.perf_counter() - t0
        base = model.delays()[0, 1:].detach().numpy()
        rng = np.random.default_rng(seed)
        reps = []
        for _ in range(args.n_boot):
            idx = rng.integers(0, data.n_trials, size=data.n_trials)
            row: dict[str, Any] = {}
            for tol, max_iter in [(t, None) for t in tols] + [(0.0, 700)]:
                m = copy.deepcopy(model)
                t1 = time.perf_counter()
                with quiet_fits():
                    fit = m.fit(data[idx], init=False, progress=False, tol=tol, max_iter=max_iter)
                key = "long" if tol == 0.0 else f"{tol:g}"
                row[key] = {
                    "n_iter": fit.n_iter,
                    "over_cold": (time.perf_counter() - t1) / cold_s,
                    "move": (m.delays()[0, 1:].detach().numpy() - base).ravel().tolist(),
                }
            reps.append(row)
        runs.append({"seed": seed, "cold_fit_s": cold_s, "replicates": reps})
        summary = {}
        for tol in tols:
            key = f"{tol:g}"
            short = [
                1.0 - abs(a) / abs(b)
                for r in (rep for run in runs for rep in run["replicates"])
                for a, b in zip(r[key]["move"], r["long"]["move"], strict=True)
                if abs(b) >= 0.005
            ]
            summary[key] = {
                "median_over_cold": float(np.median([r[key]["over_cold"] for run in runs for r in run["replicates"]])),
                "median_shortfall": float(np.median(short)),
                "max_shortfall": float(np.max(short)),
                "n_delays": len(short),
            }
        print(f"seed {seed}:", summary, flush=True)
        _write(
            "tolerance",
            {
                "study": "warm-started replicates stopped at a looser tol: cost and shortfall against a long refit",
                "scenario": {"kind": "dlag", **BOOT_SIZE},
                "n_boot": args.n_boot,
                "by_tol": summary,
                "runs": runs,
            },
        )


def study_workers(args: argparse.Namespace) -> None:
    from mbrila.selection import cross_validate
    from mbrila.synthetic import headline_scenario

    data, _ = headline_scenario("dlag", seed=0, **BOOT_SIZE).sample()
    grid = [(1, 1), (2, 1)]
    rows = {}
    for n in (1, 2):
        torch.set_num_threads(2 if n == 1 else 1)
        t0 = time.perf_counter()
        cv = cross_validate(data, "dlag_ssm", grid, n_folds=3, seed=0, n_workers=n)
        rows[n] = {"wall_s": time.perf_counter() - t0, "means": [r["mean"] for r in cv.table]}
        print(n, rows[n], flush=True)
    _write(
        "workers",
        {
            "study": "cross_validate of 2 candidates × 3 folds: 1 process with 2 threads vs 2 workers with 1 thread each",
            "scenario": {"kind": "dlag", **BOOT_SIZE},
            "rows": rows,
            "speedup": rows[1]["wall_s"] / rows[2]["wall_s"],
        },
    )


def merge(args: argparse.Namespace) -> None:
    parts = [json.loads((RESULTS / f"selection_{p}.json").read_text()) for p in args.parts]
    runs = sorted((r for p in parts for r in p["runs"]), key=lambda r: r["seed"])
    first = {k: v for k, v in parts[0].items() if k not in ("runs", "machine")}
    _write(args.parts[0], {**first, **_coverage_summary(runs), "merged_from": args.parts, "runs": runs})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("study", choices=("cv", "coverage", "adm", "workers", "merge", "tolerance"))
    ap.add_argument("--name", default=None, help="result file suffix (default: the study's name)")
    ap.add_argument("--parts", nargs="+", default=None, help="merge: result suffixes to combine into the first")
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument(
        "--replicate-tol", type=float, default=None, help="tol of the replicates' fits (default: the engine's)"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.study == "cv":
        args.seeds = args.seeds or list(range(5))
        study_cv(args)
    elif args.study == "coverage":
        args.seeds = args.seeds or list(range(20))
        study_coverage(args, "dlag_ssm", "dlag", args.name or "coverage")
    elif args.study == "adm":
        args.seeds = args.seeds or list(range(3))
        study_coverage(args, "adm", "adm", args.name or "adm")
    elif args.study == "merge":
        merge(args)
    elif args.study == "tolerance":
        args.seeds = args.seeds or [40, 41]
        study_tolerance(args)
    else:
        study_workers(args)


if __name__ == "__main__":
    main()
