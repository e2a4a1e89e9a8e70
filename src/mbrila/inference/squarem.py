"""SQUAREM: squared extrapolation of the EM map (Varadhan & Roland, 2008, scheme S3), kept monotone.

EM is a fixed-point iteration ``θ_{k+1} = M(θ_k)``. Near the optimum it converges linearly at the rate of its
slowest direction (the fraction of missing information there: ≈ 0.97–0.99 per iteration for the delays and
timescales of a GP factor model), so most of a fit is spent creeping along that one direction. From two plain
updates ``θ_0 → θ_1 = M(θ_0) → θ_2 = M(θ_1)``, with ``r = θ_1 − θ_0`` and ``v = θ_2 − 2θ_1 + θ_0``, SQUAREM jumps to

    θ' = θ_0 − 2α r + α² v,     α = −‖r‖ / ‖v‖  (clamped to [−α_max, −1]; α = −1 gives θ' = θ_2),

which is exact for a linear iteration with one slow direction. The next E-step scores ``θ'``; when its score is
below that of ``θ_1`` (or not finite), ``θ_2`` is restored and re-scored, so the scores the fit keeps never fall
(the EM guarantee). ``α_max`` starts at 1 (the first jump is the plain update), grows ×4 each time the step length
hits it and shrinks ×4 (not below 1) on a rejected jump.

The parameter vector is whatever the engine hands over (:class:`ParameterSlot` s): e.g. the read-out's ``C, d, R``
and the kernel and delay parameters; constrained entries are projected back after a jump (``R`` onto its floor).
Step lengths are measured per slot in its own unit (the read-out's in units of the noise), so ``α`` does not depend
on the units of the data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor


@dataclass
class ParameterSlot:
    """One tensor of the extrapolated vector: ``get()`` returns it, ``put(value)`` stores a (projected) value, and
    ``unit()`` is the size in which its steps are measured for ``α`` (so that the step length does not depend on the
    units of the data: a fit of ``s·y`` takes the same steps as a fit of ``y``)."""

    get: Callable[[], Tensor]
    put: Callable[[Tensor], None]
    unit: Callable[[], float] = lambda: 1.0


def parameter_slots(params: Sequence[Tensor]) -> list[ParameterSlot]:
    """Slots for tensors updated in place (``nn.Parameter`` s of kernels and delays)."""

    def slot(p: Tensor) -> ParameterSlot:
        def put(value: Tensor) -> None:
            with torch.no_grad():
                p.copy_(value)

        return ParameterSlot(lambda: p.detach(), put)

    return [slot(p) for p in params]


class Squarem:
    """The loop-side state of SQUAREM (module docstring).

    The EM loop calls :meth:`reject` after each E-step (True: the caller re-runs the E-step on the restored
    ``θ_2``) and then :meth:`scored` with the objective it keeps, :meth:`begin` before each M-step and :meth:`step`
    after it (every second call jumps).

    Parameters
    ----------
    slots : the parameters to extrapolate.
    growth : factor by which ``α_max`` grows or shrinks.
    """

    def __init__(self, slots: Sequence[ParameterSlot], growth: float = 4.0) -> None:
        if not growth > 1.0:
            raise ValueError(f"growth must be > 1; got {growth}.")
        self.slots = list(slots)
        self.growth = float(growth)
        self.step_max = 1.0
        self.n_jumps = 0
        self.n_rejected = 0
        self._theta: list[Tensor] = []
        self._theta0: list[Tensor] | None = None
        self._theta1: list[Tensor] | None = None
        self._plain: list[Tensor] | None = None
        self._previous = float("nan")

    def _values(self) -> list[Tensor]:
        return [s.get().clone() for s in self.slots]

    def _put(self, values: Sequence[Tensor]) -> None:
        for s, v in zip(self.slots, values, strict=True):
            s.put(v)

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed fit needs to continue the same sequence of jumps."""
        return {
            "step_max": self.step_max,
            "n_jumps": self.n_jumps,
            "n_rejected": self.n_rejected,
            "theta0": self._theta0,
            "theta1": self._theta1,
            "plain": self._plain,
            "previous": self._previous,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_max = float(state["step_max"])
        self.n_jumps, self.n_rejected = int(state["n_jumps"]), int(state["n_rejected"])
        self._theta0 = None if state["theta0"] is None else list(state["theta0"])
        self._theta1 = None if state["theta1"] is None else list(state["theta1"])
        self._plain = None if state["plain"] is None else list(state["plain"])
        self._previous = float(state["previous"])

    def scored(self, objective: float) -> None:
        """The objective of the parameters just scored and kept (what the next jump must not fall below)."""
        self._previous = float(objective)

    def begin(self) -> None:
        """Before the M-step: remember ``θ_k``."""
        self._theta = self._values()

    @torch.no_grad()
    def step(self) -> None:
        """After the M-step: the first of a pair of updates is kept; the second is extrapolated."""
        self._plain = None
        if self._theta0 is None:
            self._theta0, self._theta1 = self._theta, self._values()
            return
        theta0, theta1 = self._theta0, self._theta1
        assert theta1 is not None
        theta2 = self._values()
        self._theta0 = self._theta1 = None
        r = [b - a for a, b in zip(theta0, theta1, strict=True)]
        v = [c - 2.0 * b + a for a, b, c in zip(theta0, theta1, theta2, strict=True)]
        units = [slot.unit() ** 2 for slot in self.slots]
        r_norm = sum(float(x.square().sum()) / u for x, u in zip(r, units, strict=True)) ** 0.5
        v_norm = sum(float(x.square().sum()) / u for x, u in zip(v, units, strict=True)) ** 0.5
        alpha = -r_norm / v_norm if v_norm > 0 else -self.step_max
        if not math.isfinite(alpha):  # a non-finite update: no jump
            alpha = -1.0
        alpha = max(-self.step_max, min(alpha, -1.0))
        if alpha == -self.step_max:
            self.step_max *= self.growth
        if alpha == -1.0:
            return  # θ' = θ_2: the plain update
        self._plain = theta2
        self.n_jumps += 1
        self._put([a - 2.0 * alpha * dr + alpha**2 * dv for a, dr, dv in zip(theta0, r, v, strict=True)])

    def reject(self, objective: float) -> bool:
        """If the last update was a jump and ``objective`` (its score) is below that of ``θ_1`` (the last one passed
        to :meth:`scored`) or not finite, restore ``θ_2``, shrink ``α_max`` and return True (the caller re-scores)."""
        if self._plain is None:
            return False
        plain, self._plain = self._plain, None
        if objective >= self._previous:
            return False
        self._put(plain)
        self.n_rejected += 1
        self.step_max = max(1.0, self.step_max / self.growth)
        return True


def linear_observation_slots(obs: Any) -> list[ParameterSlot]:
    """Slots for a :class:`~mbrila.observations.MultiRegionLinearObservation`: ``C`` (kept on its regions' blocks),
    ``d`` and ``R`` (kept on its floor). Steps of ``C`` and ``d`` are measured in units of the typical noise standard
    deviation ``√mean(R)``, steps of ``R`` in units of ``mean(R)``."""

    def noise_var() -> float:
        return float(obs.R.mean())

    def put_C(value: Tensor) -> None:
        obs.C = torch.where(obs.support, value, torch.zeros_like(value))

    def put_d(value: Tensor) -> None:
        obs.d = value.clone()

    def put_R(value: Tensor) -> None:
        obs.R = torch.maximum(value, obs.R_floor)

    return [
        ParameterSlot(lambda: obs.C, put_C, lambda: noise_var() ** 0.5),
        ParameterSlot(lambda: obs.d, put_d, lambda: noise_var() ** 0.5),
        ParameterSlot(lambda: obs.R, put_R, noise_var),
    ]
