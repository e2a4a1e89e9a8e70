"""Data-parallel EM on this machine: seconds per EM iteration with 1 and 2 processes, and the bytes all-reduced.

    uv run python benchmarks/distributed.py         # writes benchmarks/results/distributed.json

DLAG-SSM at its defaults on the headline scenario (5 regions × 100 neurons, T = 200, 2 across + 1 within latent
per region: a 60-dimensional lifted state, so each iteration all-reduces ~2·T·60² moments), with 50 and 200 trials.
Each configuration runs in fresh processes started here (gloo, a file rendezvous): one process with 1 and with 2
threads, and two processes with 1 thread each. A row gives the seconds per EM iteration (initialisation excluded),
the bytes this process all-reduced per iteration (which must not grow with the trials) and the final score, which
the two-process fit must share with the one-process fit. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, write_json


def _worker(rank: int, world: int, threads: int, n_trials: int, iters: int, rdv: str, out: str) -> None:
    torch.set_num_threads(threads)
    if world > 1:
        torch.distributed.init_process_group("gloo", init_method=f"file://{rdv}", rank=rank, world_size=world)
    import mbrila
    from mbrila import distributed
    from mbrila.synthetic import headline_scenario

    scen = headline_scenario("dlag", seed=0, n_trials=n_trials)
    data, _ = scen.sample()
    model = mbrila.build_model("dlag_ssm", latent_spec=scen.latent_spec, y_dims=data.y_dims, T=data.T)
    marks: dict[str, Any] = {}

    def callback(k: int, score: float) -> None:
        if k == 0:  # after the first E-step: the initialisation's traffic is behind us
            marks["bytes0"], marks["t0"] = distributed.traffic().bytes, time.perf_counter()

    fit = model.fit(distributed.shard(data), max_iter=iters, tol=0.0, callback=callback, progress=False)
    elapsed = time.perf_counter() - marks["t0"]
    row = {
        "processes": world,
        "threads_per_process": threads,
        "trials": n_trials,
        "trials_this_process": distributed.shard(data).n_trials,
        "iterations": fit.n_iter,
        "s_per_iteration": elapsed / fit.n_iter,
        "bytes_all_reduced_per_iteration": (distributed.traffic().bytes - marks["bytes0"]) / fit.n_iter,
        "bytes_all_reduced_in_initialisation": marks["bytes0"],
        "final_score": fit.score_trace[-1],
    }
    if rank == 0:
        Path(out).write_text(json.dumps(row))
    if world > 1:
        torch.distributed.destroy_process_group()


def run(world: int, threads: int, n_trials: int, iters: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "row.json")
        args = (world, threads, n_trials, iters, str(Path(tmp) / "rdv"), out)
        procs = [ctx.Process(target=_worker, args=(r, *args)) for r in range(world)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        if any(p.exitcode != 0 for p in procs):
            return {"processes": world, "threads_per_process": threads, "trials": n_trials, "status": "failed"}
        return json.loads(Path(out).read_text())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=5, help="EM iterations timed per configuration")
    ap.add_argument("--trials", default="50,200", help="comma-separated trial counts")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "distributed.json")
    args = ap.parse_args()
    rows = []
    for n in [int(s) for s in args.trials.split(",")]:
        for world, threads in [(1, 1), (1, 2), (2, 1)]:
            row = run(world, threads, n, args.iters)
            rows.append(row)
            print(json.dumps(row))
    by = {(r["trials"], r["processes"], r["threads_per_process"]): r for r in rows if "status" not in r}
    ratios = {}
    for n in {r["trials"] for r in rows}:
        if (n, 2, 1) in by:
            for ref in [(1, 1), (1, 2)]:
                if (n, *ref) in by:
                    key = f"speedup_2x1_over_{ref[0]}x{ref[1]}_at_{n}_trials"
                    ratios[key] = by[(n, *ref)]["s_per_iteration"] / by[(n, 2, 1)]["s_per_iteration"]
    write_json(args.out, {"machine": machine_info(), "rows": rows, "ratios": ratios})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
