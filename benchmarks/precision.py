"""float32 against float64 on the synthetic demos: the same data, the presets' defaults, each dtype end to end.

    uv run python benchmarks/precision.py                  # DLAG-SSM and ADM, headline scenarios, seed 0
    uv run python benchmarks/precision.py --models adm --seed 1

For each model the demo's fit (:func:`mbrila.experiments.synthetic.run_synthetic`) runs once in float64 and once in
float32; the JSON (``benchmarks/results/precision.json``) records the delays' largest and root-mean-square
difference between the two fits (bins, after each fit's latents are matched to the truth), each fit's delay RMSE to
the truth, iterations, whether it converged, its final score and wall time. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, write_json

from mbrila.experiments.synthetic import matched_delays, run_synthetic

RESULTS = Path(__file__).resolve().parent / "results"


def compare(model: str, seed: int) -> dict[str, Any]:
    fits: dict[str, Any] = {}
    for dtype in (torch.float64, torch.float32):
        t0 = time.perf_counter()
        run = run_synthetic(model, seed=seed, dtype=dtype, progress=False)
        s = run.summary
        fits[str(dtype).removeprefix("torch.")] = {
            "delays": matched_delays(run).double(),
            "delay_rmse": s["delay_rmse"],
            "n_iter": s["n_iter"],
            "converged": s["converged"],
            "final_score": s["final_score"],
            "wall_time_s": time.perf_counter() - t0,
        }
    diff = (fits["float32"].pop("delays") - fits["float64"].pop("delays")).abs()
    return {
        "model": model,
        "seed": seed,
        "max_abs_delay_difference_bins": float(diff.max()),
        "rms_delay_difference_bins": float(diff.pow(2).mean().sqrt()),
        **fits,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["dlag_ssm", "adm"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rows = []
    for model in args.models:
        rows.append(compare(model, args.seed))
        print(rows[-1], flush=True)
        write_json(RESULTS / "precision.json", {"rows": rows, "machine": machine_info()})


if __name__ == "__main__":
    main()
