"""Run independent fits in worker processes, each pinned to a share of the CPU threads.

Cross-validation folds and bootstrap replicates are independent fits. On a CPU, ``n`` processes with
``threads / n`` threads each beat one process with all the threads, because a small fit's matrix products are
too short to keep several threads busy. Workers are started with the ``spawn`` method (safe with the OpenMP and
CUDA runtimes that ``fork`` can deadlock or break), so what they run, and what they are sent, must be picklable.
The shared inputs (data, a fitted model) are sent once per worker, not once per task.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import torch

from mbrila.distributed import local

# Shared inputs of the tasks run in this worker process (set once by the pool initialiser; unused in-process).
_SHARED: dict[str, Any] = {}


def default_threads(n_workers: int) -> int:
    """Threads per worker: the CPU threads this process may use, shared evenly (at least 1)."""
    try:
        n_cpu = len(os.sched_getaffinity(0))
    except AttributeError:  # not on every platform
        n_cpu = os.cpu_count() or 1
    return max(1, n_cpu // max(1, n_workers))


def _init_worker(threads: int, shared: dict[str, Any]) -> None:
    torch.set_num_threads(threads)
    _SHARED.clear()
    _SHARED.update(shared)


def _call(fn: Callable[[dict[str, Any], Any], Any], task: Any) -> Any:
    return fn(_SHARED, task)


def check_workers(n_workers: Any, threads_per_worker: Any) -> tuple[int, int | None]:
    """``n_workers`` a positive int and ``threads_per_worker`` None or a positive int, else a ``ValueError``."""
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ValueError(f"n_workers must be a positive int (1 runs in this process); got {n_workers!r}.")
    if threads_per_worker is not None and (
        isinstance(threads_per_worker, bool) or not isinstance(threads_per_worker, int) or threads_per_worker < 1
    ):
        raise ValueError(
            f"threads_per_worker must be None (share the CPUs) or a positive int; got {threads_per_worker!r}."
        )
    return n_workers, threads_per_worker


def run_tasks(
    fn: Callable[[dict[str, Any], Any], Any],
    tasks: Sequence[Any],
    shared: dict[str, Any],
    n_workers: int = 1,
    threads_per_worker: int | None = None,
) -> list[Any]:
    """``[fn(shared, task) for task in tasks]``, in order, in ``n_workers`` processes.

    Parameters
    ----------
    fn : a module-level function (it is pickled by reference).
    tasks : the per-task inputs (small: indices, candidates).
    shared : inputs every task reads (sent once to each worker).
    n_workers : processes; 1 runs the tasks here, one after another, with the current thread setting. Each task
        holds its data whole: inside a data-parallel job (:mod:`mbrila.distributed`) its fits are not summed over
        processes, and every process computes the same results.
    threads_per_worker : torch threads in each worker (default :func:`default_threads`).
    """
    n_workers, threads = check_workers(n_workers, threads_per_worker)
    if n_workers == 1 or len(tasks) <= 1:
        with local():
            return [fn(shared, task) for task in tasks]
    try:
        pickle.dumps((fn, list(tasks), shared))
    except (pickle.PicklingError, AttributeError, TypeError) as err:
        raise ValueError(
            f"n_workers={n_workers} sends the work to other processes, which needs picklable inputs: {err}. "
            "Pass a preset name or a module-level function (or functools.partial of one) as the model factory, "
            "or use n_workers=1 to run in this process with any callable."
        ) from err
    threads = default_threads(n_workers) if threads is None else threads
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=min(n_workers, len(tasks)), mp_context=ctx, initializer=_init_worker, initargs=(threads, shared)
    ) as pool:
        return list(pool.map(_call, [fn] * len(tasks), tasks))
