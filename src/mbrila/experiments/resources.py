"""Peak memory of a block of work, as the demos and benchmarks report it."""

from __future__ import annotations

import resource
import sys
from types import TracebackType

import torch


def process_peak_rss_mb() -> float:
    """The process's peak resident set size so far, in MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


class PeakMemory:
    """Context manager: ``peak_mb`` is the peak memory while the block ran.

    CPU: the process's peak resident set size (everything the process holds, data and Python included, so an
    upper bound on what the fit itself needs). CUDA: ``torch.cuda.max_memory_allocated`` over the block.
    """

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak_mb = float("nan")

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.device.type == "cuda":
            self.peak_mb = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.peak_mb = process_peak_rss_mb()
