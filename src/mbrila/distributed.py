"""Data-parallel fitting on ``torch.distributed``: the trials are sharded across processes, the sums are all-reduced.

Every quantity an EM update reads from the data is a sum over trials: the latent moments
``Σ_b E[s_t s_tᵀ | y_b]``, the read-out's cross-products ``Σ_b Σ_t y_bt E[x_bt]ᵀ``, the log-likelihood
``Σ_b log p(y_b)``, and the covariances, lagged cross-products and means behind the initialisation. With the trials
split into shards ``b ∈ S_1 ∪ … ∪ S_W``, each process computes its shard's sums and one ``all_reduce`` adds them, so
every process performs the identical update from identical numbers and holds identical parameters; the gradient
steps on timescales and delays read only the reduced moments, so they need no gradient all-reduce. What crosses
the network per iteration is the size of those sums (``O(T·D² + N·D²)``), independent of the number of trials.

Nothing here starts a process group: launch with ``torchrun --nproc_per_node N script.py`` and call
:func:`init_process_group` (or ``torch.distributed.init_process_group`` yourself), then fit on
:func:`shard` ``(data)``. Without an initialised group of more than one process every function is the identity,
so the same code runs in one process.

Backends: ``gloo`` for CPU tensors, ``nccl`` for CUDA ones (:func:`backend_for`).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist
from torch import Tensor

if TYPE_CHECKING:
    from mbrila.core import MultiRegionData

__all__ = [
    "Traffic",
    "active",
    "all_max",
    "all_min",
    "all_sum",
    "backend_for",
    "gather_labels",
    "global_count",
    "init_process_group",
    "is_main",
    "local",
    "rank",
    "shard",
    "shard_bounds",
    "traffic",
    "world_size",
]


@dataclass
class Traffic:
    """What this process has all-reduced since the last :func:`traffic` ``(reset=True)``: calls and payload bytes."""

    calls: int = 0
    bytes: int = 0


_TRAFFIC = Traffic()


def traffic(reset: bool = False) -> Traffic:
    """The all-reduce calls and bytes counted so far (a copy); ``reset`` starts the count again."""
    out = Traffic(_TRAFFIC.calls, _TRAFFIC.bytes)
    if reset:
        _TRAFFIC.calls, _TRAFFIC.bytes = 0, 0
    return out


#: True inside :func:`local`: fits there see this process's data as all the data.
_LOCAL: contextvars.ContextVar[bool] = contextvars.ContextVar("mbrila_local_fits", default=False)


def active() -> bool:
    """True inside an initialised process group of more than one process (and outside :func:`local`)."""
    return not _LOCAL.get() and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@contextlib.contextmanager
def local() -> Iterator[None]:
    """Within this block every function here is the identity, as in one process: fits on data this process holds
    whole (a cross-validation fold, a bootstrap replicate) are not summed with the other processes'."""
    token = _LOCAL.set(True)
    try:
        yield
    finally:
        _LOCAL.reset(token)


def world_size() -> int:
    """Processes in the group (1 without one)."""
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's rank (0 without a group)."""
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True on rank 0: the process that writes outputs and logs."""
    return rank() == 0


def backend_for(device: torch.device | str) -> str:
    """``"nccl"`` for a CUDA device, ``"gloo"`` otherwise."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def init_process_group(device: torch.device | str = "cpu") -> torch.device:
    """Join the process group ``torchrun`` describes (environment variables ``RANK``, ``WORLD_SIZE``,
    ``MASTER_ADDR``, ``MASTER_PORT``) with the backend for ``device``; returns the device this rank should use
    (for CUDA, the GPU ``LOCAL_RANK``). Without ``torchrun``'s variables it does nothing (one process)."""
    dev = torch.device(device)
    if "WORLD_SIZE" not in os.environ or dist.is_initialized():
        return dev
    if dev.type == "cuda":
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    dist.init_process_group(backend=backend_for(dev))
    return dev


def shard_bounds(n_trials: int, n_shards: int) -> list[tuple[int, int]]:
    """Contiguous ``[start, stop)`` trial ranges, one per shard; the first ``n_trials mod n_shards`` shards hold one
    trial more. Every shard needs a trial: ``n_trials ≥ n_shards``."""
    if n_shards < 1:
        raise ValueError(f"n_shards must be at least 1; got {n_shards}.")
    if n_trials < n_shards:
        raise ValueError(
            f"{n_trials} trials cannot be shared by {n_shards} processes (each needs at least one): use fewer "
            "processes or more trials."
        )
    base, extra = divmod(n_trials, n_shards)
    out, start = [], 0
    for i in range(n_shards):
        stop = start + base + (1 if i < extra else 0)
        out.append((start, stop))
        start = stop
    return out


def shard(data: MultiRegionData, rank_: int | None = None, n_shards: int | None = None) -> MultiRegionData:
    """This process's contiguous block of ``data``'s trials (:func:`shard_bounds`; default: this rank of the current
    group, the whole data without one). Trials keep their lengths and masks."""
    r = rank() if rank_ is None else int(rank_)
    w = world_size() if n_shards is None else int(n_shards)
    if not 0 <= r < w:
        raise ValueError(f"rank must lie in [0, {w}); got {r}.")
    start, stop = shard_bounds(data.n_trials, w)[r]
    return data if (start, stop) == (0, data.n_trials) else data[start:stop]


def all_sum(*tensors: Tensor) -> tuple[Tensor, ...]:
    """The sums over processes of ``tensors`` (new tensors; the inputs are not changed), in one all-reduce.

    The tensors are flattened into one buffer of their common dtype, so one call moves them all; outside a group
    the inputs come back as they are.
    """
    if not active():
        return tensors
    flat = torch.cat([t.detach().reshape(-1).to(tensors[0].dtype) for t in tensors])
    _TRAFFIC.calls += 1
    _TRAFFIC.bytes += flat.numel() * flat.element_size()
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    out, o = [], 0
    for t in tensors:
        out.append(flat[o : o + t.numel()].reshape(t.shape).to(t.dtype))
        o += t.numel()
    return tuple(out)


def _all_reduce_op(x: Tensor, op: dist.ReduceOp.RedOpType) -> Tensor:
    if not active():
        return x
    out = x.detach().clone()
    _TRAFFIC.calls += 1
    _TRAFFIC.bytes += out.numel() * out.element_size()
    dist.all_reduce(out, op=op)
    return out


def all_max(x: Tensor) -> Tensor:
    """Elementwise maximum over processes (a new tensor)."""
    return _all_reduce_op(x, dist.ReduceOp.MAX)


def all_min(x: Tensor) -> Tensor:
    """Elementwise minimum over processes (a new tensor)."""
    return _all_reduce_op(x, dist.ReduceOp.MIN)


def global_count(n: int) -> int:
    """``n`` summed over processes (e.g. this shard's trials → all trials)."""
    if not active():
        return int(n)
    (total,) = all_sum(torch.tensor([float(n)], dtype=torch.float64, device=_device()))
    return round(float(total))


def gather_labels(labels: Tensor) -> Tensor:
    """``(world, n)``: every process's integer ``labels (n,)``, stacked by rank (``(1, n)`` without a group)."""
    if not active():
        return labels.unsqueeze(0)
    parts = [torch.empty_like(labels) for _ in range(world_size())]
    dist.all_gather(parts, labels.contiguous())
    return torch.stack(parts)


def _dims(dims: int | Sequence[int]) -> tuple[int, ...]:
    return (dims,) if isinstance(dims, int) else tuple(dims)


def dsum(x: Tensor, dims: int | Sequence[int]) -> Tensor:
    """``x.sum(dims)`` over the trials of every process (``dims`` must include the trial axis)."""
    return all_sum(x.sum(_dims(dims)))[0]


def dmean(x: Tensor, dims: int | Sequence[int]) -> Tensor:
    """``x.mean(dims)`` over the trials of every process (``dims`` must include the trial axis)."""
    ds = _dims(dims)
    total, count = all_sum(x.sum(ds), x.new_full((), float(math.prod(x.shape[d] for d in ds))))
    return total / count


def _device() -> torch.device:
    """The device collectives run on: the current CUDA device under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")
