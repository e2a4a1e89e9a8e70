"""Adam for the gradient M-step, through torch's own update kernel (``torch.optim.adam.adam``).

Update per parameter ``θ`` with gradient ``g`` at step ``k`` (β₁ = 0.9, β₂ = 0.999, ε = 1e-8)::

    m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²,   θ ← θ − lr · (m / (1 − β₁ᵏ)) / (√(v / (1 − β₂ᵏ)) + ε)

Identical to ``torch.optim.Adam`` with its defaults; the class exists because constructing any
``torch.optim.Optimizer`` imports ``torch._dynamo`` (seconds of a fresh process's time, more than a whole small
fit), and the EM loop needs only ``zero_grad``, ``step`` and a settable learning rate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor
from torch.optim.adam import adam


class Adam:
    """Adam on a fixed list of parameters (module docstring); ``param_groups[0]["lr"]`` is its learning rate."""

    def __init__(self, params: Iterable[Tensor], lr: float) -> None:
        self.params = list(params)
        self.param_groups: list[dict[str, Any]] = [{"params": self.params, "lr": float(lr)}]
        self._state: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        live = [p for p in self.params if p.grad is not None]
        if not live:
            return
        for p in live:
            if id(p) not in self._state:
                self._state[id(p)] = (
                    torch.zeros_like(p, memory_format=torch.preserve_format),
                    torch.zeros_like(p, memory_format=torch.preserve_format),
                    torch.zeros((), dtype=torch.float32),
                )
        m, v, steps = (list(s) for s in zip(*(self._state[id(p)] for p in live), strict=True))
        adam(
            live,
            [p.grad for p in live],  # type: ignore[misc]
            m,
            v,
            [],
            steps,
            amsgrad=False,
            beta1=0.9,
            beta2=0.999,
            lr=self.param_groups[0]["lr"],
            weight_decay=0.0,
            eps=1e-8,
            maximize=False,
        )
