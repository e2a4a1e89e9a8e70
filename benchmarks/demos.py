"""Wall time, per-stage breakdown and peak memory of every example demo at its defaults.

    uv run python benchmarks/demos.py                       # all demos, writes benchmarks/results/demos.json
    uv run python benchmarks/demos.py --only dlag_ssm,adm   # a subset
    uv run python benchmarks/demos.py --seeds 0,1,2         # synthetic demos on several data seeds
    git worktree add --detach ../base <commit>              # an earlier mbrila to measure against
    uv run python benchmarks/demos.py --baseline ../base --only dlag_ssm,adm   # before/after, same run

A run replaces the rows of the demos it ran in the output file and keeps the rest, and keeps each demo's whole
``summary.json`` under ``benchmarks/results/runs/<demo>[_seed<k>]/`` (what the README's results table and
``examples/v1v2/compare_v1v2_runs.py`` read).

Each demo runs as its own process (so its peak RSS is its own) exactly as a user would start it, with
``--no-progress``; the numbers are read back from the ``summary.json`` it writes. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, merged_records, write_json

ROOT = Path(__file__).resolve().parents[1]
# name → (script, extra flags)
SYNTHETIC = {
    "dlag": ("examples/synthetic/demo_dlag.py", []),
    "mdlag_time": ("examples/synthetic/demo_mdlag_time.py", []),
    "mdlag_freq": ("examples/synthetic/demo_mdlag_freq.py", []),
    "mdlag_ssm": ("examples/synthetic/demo_mdlag_ssm.py", []),
    "dlag_ssm": ("examples/synthetic/demo_dlag_ssm.py", []),
    "matern": ("examples/synthetic/demo_matern.py", []),
    "custom_kernel": ("examples/synthetic/demo_custom_kernel.py", []),
    "gpfa_ssm": ("examples/synthetic/demo_gpfa_ssm.py", []),
    "lds": ("examples/synthetic/demo_lds.py", []),
    "adm": ("examples/synthetic/demo_adm.py", []),
    "adm_sine": ("examples/synthetic/demo_adm.py", ["--delay-shape", "sine"]),
    "adm_ramp": ("examples/synthetic/demo_adm.py", ["--delay-shape", "ramp"]),
    # ADM at the engine's generic tolerance instead of the preset's: what ADM_TOL saves, measured in the same run.
    "adm_generic_tol": ("examples/synthetic/demo_adm.py", ["--tol", "1e-7", "--no-compare"]),
    # Spike counts: Poisson DLAG-SSM and Gaussian DLAG-SSM on sqrt counts (both models' rows are in the summary).
    "poisson": ("examples/synthetic/demo_poisson.py", []),
}
# name → (script, extra flags); the "_last_iterate" rows score the final EM iterate instead of the checkpoint
# selected on the validation trials, to show what the selection changes; the "_train_psth" rows fit residuals
# from the training PSTH.
V1V2 = {
    "v1v2_dlag": ("examples/v1v2/demo_dlag.py", []),
    "v1v2_dlag_ssm": ("examples/v1v2/demo_dlag_ssm.py", []),
    "v1v2_adm": ("examples/v1v2/demo_adm.py", []),
    "v1v2_mdlag_time": ("examples/v1v2/demo_mdlag_time.py", []),
    "v1v2_mdlag_freq": ("examples/v1v2/demo_mdlag_freq.py", []),
    "v1v2_mdlag_ssm": ("examples/v1v2/demo_mdlag_ssm.py", []),
    "v1v2_custom_kernel": ("examples/v1v2/demo_custom_kernel.py", []),
    "v1v2_dlag_ssm_last_iterate": ("examples/v1v2/demo_dlag_ssm.py", ["--no-validation-select"]),
    "v1v2_adm_last_iterate": ("examples/v1v2/demo_adm.py", ["--no-validation-select"]),
    # A different model (time-varying mean = the training PSTH), reported beside the like-for-like rows.
    "v1v2_dlag_ssm_train_psth": ("examples/v1v2/demo_dlag_ssm.py", ["--subtract-train-psth"]),
    "v1v2_adm_train_psth": ("examples/v1v2/demo_adm.py", ["--subtract-train-psth"]),
}
KEEP = (
    "method",
    "delay_rmse",
    "y_rmse",
    "noise_floor_rmse",
    "n_iter",
    "converged",
    "wall_time_s",
    "init_time_s",
    "timings_s",
    "per_iter_s",
    "peak_memory_mb",
    "compare",
    "wall_time_per_split_s",
    "selected_iter",
    "validation_select",
    "subtract_train_psth",
    "device",
    "n_active_latents",
    "active_latents",
    "ard_precisions",
    "baselines",
    "std_ddof",
    "poisson",
    "gaussian_sqrt",
    "baseline_psth",
    "mean_rate",
)


RUNS = Path(__file__).resolve().parent / "results" / "runs"
SHOW = ("demo", "seed", "delay_rmse", "y_rmse", "wall_time_s")


def _describe(root: Path) -> dict[str, Any]:
    """The source tree a variant ran from: its path and git commit (plus whether it had local changes)."""

    def git(*a: str) -> str:
        proc = subprocess.run(["git", "-C", str(root), *a], capture_output=True, text=True, check=False)
        return proc.stdout.strip()

    return {
        "path": str(root.resolve()),
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain")),
    }


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """Speed-up of the fit (and of each stage per iteration) and the change of every accuracy number."""
    out: dict[str, Any] = {}
    if before.get("wall_time_s") and after.get("wall_time_s"):
        out["fit_speedup"] = before["wall_time_s"] / after["wall_time_s"]
    if before.get("process_wall_time_s") and after.get("process_wall_time_s"):
        out["process_speedup"] = before["process_wall_time_s"] / after["process_wall_time_s"]
    b_it, a_it = before.get("per_iter_s") or {}, after.get("per_iter_s") or {}
    out["per_iter_speedup"] = {k: b_it[k] / a_it[k] for k in b_it if a_it.get(k)}
    for key in ("delay_rmse", "y_rmse", *[k for k in after if k.startswith("holdout_") and not k.endswith("_std")]):
        if isinstance(before.get(key), float) and isinstance(after.get(key), float):
            out[f"{key}_change"] = after[key] - before[key]
    out["n_iter"] = [before.get("n_iter"), after.get("n_iter")]
    return out


def run_demo(script: str, args: list[str], keep_as: str | None, root: Path = ROOT) -> dict[str, Any]:
    """Run one demo of the source tree ``root`` (its own ``src`` first on the path) and read its summary."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root / "src"), os.environ.get("PYTHONPATH")]))}
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, str(root / script), "--no-progress", "--out-dir", out, *args]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            return {"status": f"failed (exit {proc.returncode})", "stderr_tail": proc.stderr[-2000:]}
        text = (Path(out) / "summary.json").read_text()
        summary = json.loads(text)
        if keep_as is not None:
            (RUNS / keep_as).mkdir(parents=True, exist_ok=True)
            (RUNS / keep_as / "summary.json").write_text(text)
    rec = {k: summary[k] for k in KEEP if k in summary}
    rec.update({k: v for k, v in summary.items() if k.startswith("holdout_psth")})
    rec["process_wall_time_s"] = elapsed  # start-up, data and figures included
    return rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=None, help="comma-separated demo names")
    ap.add_argument("--seeds", default="0", help="data seeds of the synthetic demos")
    ap.add_argument("--split-seeds", default="0,1,2", help="split seeds of the V1/V2 demos")
    ap.add_argument("--device", default="cpu")
    ap.add_argument(
        "--out",
        type=Path,
        default=None,
        help="default: results/demos.json (results/speed_vs_baseline.json with --baseline)",
    )
    ap.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="an earlier mbrila source tree (e.g. a git worktree): each demo runs there first, then here, and the "
        "rows carry variant = baseline / current plus a ratio row",
    )
    args = ap.parse_args()
    results = Path(__file__).resolve().parent / "results"
    out_path = args.out or results / ("speed_vs_baseline.json" if args.baseline else "demos.json")
    wanted = set(args.only.split(",")) if args.only else set(SYNTHETIC) | set(V1V2)
    records: list[dict[str, Any]] = []

    def measure(base: dict[str, Any], script: str, run_args: list[str], keep_as: str) -> None:
        if args.baseline is None:
            records.append({**base, **run_demo(script, run_args, keep_as)})
            print(json.dumps({k: v for k, v in records[-1].items() if k in SHOW or k.startswith("holdout")}))
            return
        before = {**base, "variant": "baseline", **run_demo(script, run_args, None, root=args.baseline.resolve())}
        after = {**base, "variant": "current", **run_demo(script, run_args, keep_as)}
        records.extend([before, after, {**base, "variant": "ratio", **compare(before, after)}])
        print(json.dumps(records[-1]))

    for name, (script, flags) in SYNTHETIC.items():
        if name not in wanted:
            continue
        for seed in args.seeds.split(","):
            measure(
                {"demo": name, "seed": int(seed)},
                script,
                ["--seed", seed, "--device", args.device, *flags],
                f"{name}_seed{seed}",
            )
    for name, (script, flags) in V1V2.items():
        if name not in wanted:
            continue
        measure({"demo": name}, script, ["--split-seeds", args.split_seeds, "--device", args.device, *flags], name)
    args.out = out_path
    payload: dict[str, Any] = {"machine": machine_info(), "records": merged_records(args.out, records)}
    if args.baseline is not None:
        payload["baseline"] = _describe(args.baseline)
        payload["current"] = _describe(ROOT)
    write_json(args.out, payload)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
