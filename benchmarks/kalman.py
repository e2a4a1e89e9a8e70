"""Benchmark the Kalman smoother: mbrila fused, sequential and parallel scan, and dynamax's two smoothers.

    uv sync --extra bench                      # jax + dynamax, for the side-by-side columns
    uv run python benchmarks/kalman.py          # headline shape, then the sweep; writes benchmarks/results/kalman.json
    uv run python benchmarks/kalman.py --headline-only
    uv run python benchmarks/kalman.py --quick  # a tiny sweep, for smoke tests

Problems: a random stable model (A = 0.95 × orthogonal), B trials, N neurons, diagonal R, no missing data,
float64. The headline E-step shape is B = 50, T = 200, D = 30, N = 500. Each (device, method, D, T) runs in a
fresh process; its wall time is the median over repeats after a warm-up (dynamax: after jit compilation, whose
time is reported separately), and its peak memory is the process's peak RSS above the baseline after setup
(CPU) or ``torch.cuda.max_memory_allocated`` (CUDA). Answers are checked: the smoothed means of every method
are compared with mbrila's sequential smoother on the same problem. Nothing here is asserted: read the ratios.

The projection floor: every mbrila record also times, in the same process, the one piece of work no E-step can
skip, ``(y − d) C / R`` (``B·T·N·D`` multiply-adds), and the full data projection mbrila runs
(:func:`~mbrila.inference.kalman.observation.project_observations`, which adds the y-only log-density terms);
``ratio_to_projection`` is the smoother's time over the former. The headline block reports the best smoother's
ratio and its speed-up over dynamax's faster smoother.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_info, max_rss_mb, run_isolated, time_call, write_json

HEADLINE = {"B": 50, "T": 200, "D": 30, "N": 500}


def _problem(B: int, T: int, D: int, N: int, seed: int = 0) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((D, D)))
    A = 0.95 * q
    G = rng.standard_normal((D, D)) / np.sqrt(D)
    Q = G @ G.T + 0.1 * np.eye(D)
    C = rng.standard_normal((N, D)) / np.sqrt(D)
    R = 0.5 + rng.random(N)
    d = 0.1 * rng.standard_normal(N)
    y = rng.standard_normal((B, T, N))
    return {"A": A, "Q": Q, "C": C, "d": d, "R": R, "m0": np.zeros(D), "P0": np.eye(D), "y": y}


def _reference_means(p: dict[str, Any]) -> Any:
    import torch

    from mbrila.inference.kalman import LGSSM, kalman_smoother

    t = {k: torch.as_tensor(v) for k, v in p.items()}
    params = LGSSM(A=t["A"], Q=t["Q"], m0=t["m0"], P0=t["P0"], C=t["C"], d=t["d"], R=t["R"])
    return kalman_smoother(params, t["y"], method="sequential").mean.numpy()


def _worker_mbrila(cfg: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    import torch

    from mbrila.inference.kalman import LGSSM, kalman_smoother

    dev = torch.device(cfg["device"])
    t = {k: torch.as_tensor(v, dtype=torch.float64, device=dev) for k, v in p.items()}
    params = LGSSM(A=t["A"], Q=t["Q"], m0=t["m0"], P0=t["P0"], C=t["C"], d=t["d"], R=t["R"])
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    out: dict[str, Any] = {}

    def call() -> None:
        out["mean"] = kalman_smoother(params, t["y"], method=cfg["method"]).mean

    base = max_rss_mb()
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    res = time_call(call, cfg["repeats"], sync)
    res["peak_mem_mb"] = torch.cuda.max_memory_allocated() / 2**20 if dev.type == "cuda" else max_rss_mb() - base
    from mbrila.inference.kalman.observation import project_observations

    Cw = t["C"] / t["R"][:, None]
    floor = time_call(lambda: (t["y"] - t["d"]) @ Cw, max(cfg["repeats"], 5), sync)
    full = time_call(lambda: project_observations(t["C"], t["d"], t["R"], t["y"], None), max(cfg["repeats"], 5), sync)
    res["projection_floor_s"] = floor["time_s"]
    res["projection_full_s"] = full["time_s"]
    res["ratio_to_projection"] = res["time_s"] / floor["time_s"]
    res["mean"] = out["mean"].cpu().numpy()
    return res


def _worker_dynamax(cfg: dict[str, Any], p: dict[str, Any]) -> dict[str, Any]:
    import time

    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from dynamax.linear_gaussian_ssm import inference as seq
    from dynamax.linear_gaussian_ssm import parallel_inference as par

    D, N = p["A"].shape[0], p["C"].shape[0]
    params = seq.ParamsLGSSM(
        initial=seq.ParamsLGSSMInitial(mean=jnp.asarray(p["m0"]), cov=jnp.asarray(p["P0"])),
        dynamics=seq.ParamsLGSSMDynamics(
            weights=jnp.asarray(p["A"]), bias=jnp.zeros(D), input_weights=jnp.zeros((D, 0)), cov=jnp.asarray(p["Q"])
        ),
        emissions=seq.ParamsLGSSMEmissions(
            weights=jnp.asarray(p["C"]),
            bias=jnp.asarray(p["d"]),
            input_weights=jnp.zeros((N, 0)),
            cov=jnp.asarray(p["R"]),  # a vector: dynamax's diagonal-noise path
        ),
    )
    module = seq if cfg["method"] == "dynamax_sequential" else par
    fn = jax.jit(jax.vmap(lambda y: module.lgssm_smoother(params, y).smoothed_means))
    y = jnp.asarray(p["y"])
    base = max_rss_mb()
    t0 = time.perf_counter()
    fn(y).block_until_ready()
    compile_s = time.perf_counter() - t0
    out: dict[str, Any] = {}

    def call() -> None:
        out["mean"] = fn(y).block_until_ready()

    res = time_call(call, cfg["repeats"])
    res["compile_s"] = compile_s
    res["peak_mem_mb"] = max_rss_mb() - base
    import numpy as np

    res["mean"] = np.asarray(out["mean"])
    return res


def worker(cfg: dict[str, Any]) -> None:
    """Run one configuration and print its record as a JSON line."""
    import numpy as np

    p = _problem(cfg["B"], cfg["T"], cfg["D"], cfg["N"])
    ref = _reference_means(p) if cfg.get("check", True) else None
    res = _worker_dynamax(cfg, p) if cfg["method"].startswith("dynamax") else _worker_mbrila(cfg, p)
    mean = res.pop("mean")
    if ref is not None:
        res["max_abs_diff_vs_mbrila_sequential"] = float(np.abs(mean - ref).max())
    res["status"] = "ok"
    print(json.dumps(res))


def _estimate_gb(method: str, B: int, T: int, D: int, N: int) -> float:
    """Rough peak-memory estimate (GB) used to skip configurations that cannot fit."""
    data = B * T * N * 8 * 3
    if method == "parallel":
        mats = 14 * T * D * D * 8
    elif method in ("sequential", "fused"):
        mats = 6 * T * D * D * 8
    else:  # dynamax vmaps over trials: covariances per trial
        mats = 10 * B * T * D * D * 8
    return (data + mats + 6 * B * T * D * 8) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "kalman.json")
    ap.add_argument("--devices", default=None, help="comma-separated, default: cpu (+ cuda if available)")
    ap.add_argument("--B", type=int, default=50)
    ap.add_argument("--N", type=int, default=100)
    ap.add_argument("--D", default="4,16,64")
    ap.add_argument("--T", default="64,256,1024,4096,16384")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dynamax", action=argparse.BooleanOptionalAction, default=None)
    ap.add_argument("--max-seconds", type=float, default=300.0, help="per-configuration time limit")
    ap.add_argument("--mem-limit-gb", type=float, default=16.0)
    ap.add_argument("--headline-only", action="store_true")
    ap.add_argument("--quick", action="store_true", help="tiny sweep for smoke tests")
    args = ap.parse_args()
    if args.worker:
        worker(json.loads(args.worker))
        return

    import torch

    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    use_dynamax = args.dynamax
    if use_dynamax is None:
        try:
            import dynamax  # noqa: F401

            use_dynamax = True
        except ImportError:
            use_dynamax = False
    script = Path(__file__).resolve()
    if args.quick:
        Ds, Ts, B, N, repeats = [4], [16, 33], 3, 6, 1
    else:
        Ds, Ts, B, N, repeats = (
            [int(x) for x in args.D.split(",")],
            [int(x) for x in args.T.split(",")],
            args.B,
            args.N,
            args.repeats,
        )
    methods = ["fused", "sequential", "parallel"] + (["dynamax_sequential", "dynamax_parallel"] if use_dynamax else [])

    records: list[dict[str, Any]] = []

    def run(device: str, method: str, b: int, t: int, d: int, n: int) -> dict[str, Any]:
        cfg = {"device": device, "method": method, "B": b, "T": t, "D": d, "N": n, "repeats": repeats}
        est = _estimate_gb(method, b, t, d, n)
        if est > args.mem_limit_gb:
            rec = {"status": f"not run: estimated {est:.1f} GB > --mem-limit-gb {args.mem_limit_gb}"}
        elif method.startswith("dynamax") and device != "cpu":
            rec = {"status": "skipped: dynamax runs on the CPU jax build here"}
        else:
            rec = run_isolated(script, cfg, args.max_seconds)
        rec = {**cfg, **rec}
        records.append(rec)
        t_s = rec.get("time_s")
        print(
            f"{device:5s} {method:19s} B={b:3d} T={t:6d} D={d:3d} N={n:4d}  "
            f"{(f'{t_s:9.4f} s' if t_s is not None else rec['status']):>14s}  "
            f"mem {rec.get('peak_mem_mb', float('nan')):8.1f} MB  diff {rec.get('max_abs_diff_vs_mbrila_sequential', float('nan')):.1e}",
            flush=True,
        )
        return rec

    headline: dict[str, Any] = {}
    h = HEADLINE if not args.quick else {"B": 3, "T": 20, "D": 5, "N": 12}
    for device in devices:
        recs = {m: run(device, m, h["B"], h["T"], h["D"], h["N"]) for m in methods}
        times = {m: r.get("time_s") for m, r in recs.items()}
        status = {m: r.get("status") for m, r in recs.items()}
        ours_m = min(
            (k for k, v in times.items() if not k.startswith("dynamax") and v is not None), key=times.__getitem__
        )
        ours = times[ours_m]
        assert ours is not None
        theirs = [v for k, v in times.items() if k.startswith("dynamax") and v is not None]
        headline[device] = {
            "shape": h,
            "time_s": times,
            "status": status,
            "mbrila_best": ours_m,
            "mbrila_best_s": ours,
            "projection_floor_s": recs[ours_m]["projection_floor_s"],
            "projection_full_s": recs[ours_m]["projection_full_s"],
            "mbrila_best_over_projection_floor": recs[ours_m]["ratio_to_projection"],
        }
        if theirs:
            headline[device]["dynamax_best_s"] = min(theirs)
            headline[device]["speedup_dynamax_best_over_mbrila_best"] = min(theirs) / ours
    if not args.headline_only:
        for device in devices:
            for d in Ds:
                for t in Ts:
                    for m in methods:
                        if m.startswith("dynamax") and device != "cpu":
                            continue
                        rec = run(device, m, B, t, d, N)
                        if rec.get("status", "").startswith("skipped: exceeded"):
                            # Over budget: the rest of this (D, T) row is not attempted, to keep the sweep bounded.
                            break
    write_json(
        args.out,
        {
            "machine": machine_info(),
            "headline": headline,
            "records": records,
            "notes": "time_s: median wall time; peak_mem_mb: peak RSS above the post-setup baseline (CPU) "
            'or max CUDA memory allocated; status "not run: estimated" = the rough memory estimate exceeded --mem-limit-gb, so it was not attempted.',
        },
    )
    for dev, hd in headline.items():
        print(f"headline {dev}: {json.dumps(hd)}")


if __name__ == "__main__":
    main()
