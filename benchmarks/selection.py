"""Model selection on synthetic data where the answer is known, and what it costs.

    uv run python benchmarks/selection.py cv          # one-SE choice vs the true (n_across, n_within), 5 seeds
    uv run python benchmarks/selection.py coverage    # bootstrap 95% intervals vs true constant delays, 20 seeds
    uv run python benchmarks/selection.py adm         # bootstrap band vs true time-varying delays (ADM)
    uv run python benchmarks/selection.py workers     # the same cross-validation with 1 and 2 worker processes
    uv run python benchmarks/selection.py merge --parts coverage coverage_b   # seeds run by separate processes

Every study runs the headline scenario at a reduced size (stated in the JSON; the full scenario's fits take
minutes each and these studies need hundreds of them) with the presets' defaults, and writes
``benchmarks/results/selection_<study>.json`` after every seed, so a stopped run keeps what it measured.
Nothing is asserted.
"""

from __future__ import annotations

import argparse
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
    ap.add_argument("study", choices=("cv", "coverage", "adm", "workers", "merge"))
    ap.add_argument("--name", default=None, help="result file suffix (default: the study's name)")
    ap.add_argument("--parts", nargs="+", default=None, help="merge: result suffixes to combine into the first")
    ap.add_argument("--seeds", type=int, nargs="+", default=None)
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--n-boot", type=int, default=100)
    ap.add_argument("--workers", type=int, default=1)
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
    else:
        study_workers(args)


if __name__ == "__main__":
    main()
