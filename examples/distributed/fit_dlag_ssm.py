"""DLAG-SSM fitted data-parallel: each process holds a shard of the trials, the EM sums are all-reduced.

    uv run torchrun --standalone --nproc_per_node 2 examples/distributed/fit_dlag_ssm.py --n-trials 200

Every process generates the same synthetic data (the headline scenario, ``--seed``), keeps its shard of the trials
(``mbrila.distributed.shard``) and fits; all end with identical parameters, those of a one-process fit on all the
trials. Rank 0 prints the delays and writes ``summary.json``. Without ``torchrun`` the script runs in one process.
On several machines, start ``torchrun --nnodes M --nproc_per_node N --rdzv-backend c10d --rdzv-endpoint HOST:PORT``
on each; with ``--device cuda`` each process takes the GPU of its local rank and the backend is NCCL.
"""

import argparse
import json
from pathlib import Path

from mbrila import distributed
from mbrila.experiments.synthetic import run_synthetic

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--n-trials", type=int, default=50)
ap.add_argument("--seed", type=int, default=0)
ap.add_argument("--max-iter", type=int, default=None)
ap.add_argument("--device", default="cpu")
ap.add_argument("--out-dir", type=Path, default=Path("outputs/distributed/dlag_ssm"))
args = ap.parse_args()

device = distributed.init_process_group(args.device)  # a no-op outside torchrun
# Every process draws the same trials; the runner fits each on distributed.shard(data), its block of them.
run = run_synthetic(
    "dlag_ssm",
    seed=args.seed,
    scenario_overrides={"n_trials": args.n_trials},
    max_iter=args.max_iter,
    device=device,
    progress=distributed.is_main(),
)
if distributed.is_main():
    keys = ("delay_rmse", "y_rmse", "n_iter", "converged", "wall_time_s")
    summary = {k: run.summary.get(k) for k in keys}
    summary["processes"] = distributed.world_size()
    summary["trials_per_process"] = [b - a for a, b in distributed.shard_bounds(args.n_trials, summary["processes"])]
    summary["bytes_all_reduced"] = distributed.traffic().bytes
    summary["device"] = str(device)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
