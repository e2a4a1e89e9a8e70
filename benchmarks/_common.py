"""Helpers shared by the benchmark scripts: isolated runs, timing, peak memory, JSON output.

Every configuration runs in a fresh Python process so that its peak resident memory can be read from the
operating system (``ru_maxrss`` of that process, minus the baseline after imports and data creation); on CUDA
``torch.cuda.max_memory_allocated`` is used instead.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def max_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (the library's own measure)."""
    from mbrila.experiments.resources import process_peak_rss_mb

    return process_peak_rss_mb()


def time_call(fn: Callable[[], Any], repeats: int, sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median and min wall time of ``fn`` over ``repeats`` runs after one warm-up run."""
    fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"time_s": times[len(times) // 2], "time_min_s": times[0]}


def run_isolated(script: Path, config: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    """Run ``script --worker '<json config>'`` in a fresh process; parse the JSON line it prints last."""
    cmd = [sys.executable, str(script), "--worker", json.dumps(config)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"status": f"skipped: exceeded {timeout_s:.0f} s"}
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        err = proc.stderr.strip().splitlines()
        msg = err[-1] if err else f"exit code {proc.returncode}"
        status = "oom" if ("out of memory" in msg.lower() or proc.returncode in (-9, 137)) else f"error: {msg}"
        return {"status": status}
    return json.loads(lines[-1])


def machine_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import dynamax
        import jax

        info["jax"] = jax.__version__
        info["dynamax"] = getattr(dynamax, "__version__", "unknown")
    except ImportError:
        info["jax"] = info["dynamax"] = None
    return info


def merged_records(path: Path, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` after the rows of ``path``'s ``records`` whose ``(demo, seed)`` they do not cover: a partial run
    replaces its own rows and keeps the others."""
    if not path.exists():
        return records
    fresh = {(r["demo"], r.get("seed")) for r in records}
    old = json.loads(path.read_text()).get("records", [])
    return [r for r in old if (r["demo"], r.get("seed")) not in fresh] + records


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2))
    print(f"wrote {path}")
