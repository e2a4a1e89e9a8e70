"""Constant inter-region delays, one per non-reference region and across latent (DLAG)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mbrila.delays.base import Delay
from mbrila.utils.constraints import bounded, unbounded


class FixedDelay(Delay):
    """Learnable constant delays ``δ_k^r`` (bins), region 0 pinned to 0.

    With ``max_delay`` set, ``δ = max_delay · tanh(raw / max_delay)`` keeps every delay inside
    ``(−max_delay, max_delay)`` while staying the identity near 0; without it, ``δ = raw``.

    Parameters
    ----------
    n_regions, n_across : sizes.
    init : optional initial delays ``(n_regions, n_across)`` (column… row 0 ignored) or ``(n_regions − 1, n_across)``.
    max_delay : optional bound on ``|δ|`` in bins.
    """

    constant = True

    def __init__(
        self, n_regions: int, n_across: int, init: Tensor | None = None, max_delay: float | None = None
    ) -> None:
        super().__init__(n_regions, n_across)
        if max_delay is not None and not max_delay > 0:
            raise ValueError(f"max_delay must be positive (bins) or None; got {max_delay}.")
        self.max_delay = None if max_delay is None else float(max_delay)
        raw = torch.zeros(n_regions - 1, n_across, dtype=torch.get_default_dtype())
        self.raw_delay = nn.Parameter(raw)
        if init is not None:
            self.set_delays(init)

    def set_delays(self, value: Tensor) -> None:
        """Set the delays from ``(n_regions, n_across)`` (row 0 must be 0) or ``(n_regions − 1, n_across)``."""
        value = torch.as_tensor(value, dtype=self.raw_delay.dtype, device=self.raw_delay.device)
        full = (self.n_regions, self.n_across)
        if tuple(value.shape) == full:
            value = value[1:]
        if tuple(value.shape) != (self.n_regions - 1, self.n_across):
            raise ValueError(
                f"delays must have shape {full} or {(self.n_regions - 1, self.n_across)}; got {tuple(value.shape)}."
            )
        raw = unbounded(value, self.max_delay, "delays", "max_delay")
        with torch.no_grad():
            self.raw_delay.copy_(raw)

    def region_delays(self) -> Tensor:
        """``(n_regions, n_across)`` with row 0 zero."""
        d = bounded(self.raw_delay, self.max_delay)
        return torch.cat([d.new_zeros(1, self.n_across), d], 0)

    def delays(self, T: int) -> Tensor:
        return self.region_delays().expand(T, self.n_regions, self.n_across)
