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

    def state_dict(self) -> dict[str, Any]:
        """The learning rate and each parameter's moments, by position in ``params`` (None: not stepped yet)."""
        slots: list[dict[str, Tensor] | None] = []
        for p in self.params:
            st = self._state.get(id(p))
            slots.append(None if st is None else {"m": st[0].clone(), "v": st[1].clone(), "step": st[2].clone()})
        return {"lr": self.param_groups[0]["lr"], "slots": slots}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (the same parameters, in the same order)."""
        slots = state["slots"]
        if len(slots) != len(self.params):
            raise ValueError(f"optimiser state for {len(slots)} parameters; this optimiser has {len(self.params)}.")
        self.param_groups[0]["lr"] = float(state["lr"])
        self._state = {}
        for p, slot in zip(self.params, slots, strict=True):
            if slot is not None:
                m, v = (slot[k].to(device=p.device, dtype=p.dtype) for k in ("m", "v"))
                if m.shape != p.shape or v.shape != p.shape:
                    raise ValueError(
                        f"optimiser moments of shape {tuple(m.shape)} for a parameter of {tuple(p.shape)}."
                    )
                self._state[id(p)] = (m, v, slot["step"].to(torch.float32))

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
