"""Adaptive over-relaxation of the closed-form observation update (shared by the EM engines of linear models), and
of the gradient update of SDE latents' kernels (every EM engine).

EM on factor models creeps along weakly identified directions of the loadings; stepping further along the EM
direction while the likelihood keeps rising reaches the same optimum in a fraction of the iterations, and a step
that lowers the likelihood is replaced by the plain EM step, so EM stays monotone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from mbrila.observations.linear import MultiRegionLinearObservation


class OverRelaxation:
    """Adaptive over-relaxed EM for the observation parameters ``θ = (C, d, R)`` (Salakhutdinov & Roweis, 2003).

    After the closed-form M-step ``M(θ)``, take ``θ' = θ + ω (M(θ) − θ)`` (``R`` kept above its floor). While the
    likelihood keeps rising the step grows, ``ω ← min(η ω, ω_max)``; when the next E-step finds the likelihood
    lower than before, the plain update ``M(θ)`` is restored (and re-scored) and ``ω`` returns to 1.

    Parameters
    ----------
    growth : ``η > 1``.
    max_step : ``ω_max``.
    """

    def __init__(self, growth: float, max_step: float = 64.0) -> None:
        if not growth > 1.0:
            raise ValueError(f"overrelax must be > 1 (or None to turn it off); got {growth}.")
        self.growth, self.max_step = float(growth), float(max_step)
        self.omega = 1.0
        self._plain: tuple[Tensor, Tensor, Tensor] | None = None

    def state_dict(self) -> dict[str, Any]:
        """``ω`` and the plain update kept for a possible rejection (what a resumed fit needs)."""
        return {"omega": self.omega, "plain": None if self._plain is None else list(self._plain)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.omega = float(state["omega"])
        plain = state["plain"]
        self._plain = None if plain is None else (plain[0], plain[1], plain[2])

    def step(self, obs: MultiRegionLinearObservation, old: tuple[Tensor, Tensor, Tensor]) -> None:
        """Called right after ``obs.m_step``; ``old`` holds ``(C, d, R)`` from before it."""
        self._plain = None
        if self.omega > 1.0:
            self._plain = (obs.C, obs.d, obs.R)
            w = self.omega
            obs.C = old[0] + w * (obs.C - old[0])
            obs.d = old[1] + w * (obs.d - old[1])
            obs.R = torch.maximum(old[2] + w * (obs.R - old[2]), obs.R_floor)
        self.omega = min(self.omega * self.growth, self.max_step)

    def reject(self, obs: MultiRegionLinearObservation, score: float, previous: float) -> bool:
        """If the last step was extrapolated and ``score`` fell below ``previous`` (or is NaN), restore the plain
        update, reset ``ω`` and return True (the caller re-runs the E-step)."""
        if self._plain is None or score >= previous:
            return False
        obs.C, obs.d, obs.R = self._plain
        self._plain, self.omega = None, 1.0
        return True


def observation_update(
    obs: MultiRegionLinearObservation,
    relax: OverRelaxation | None,
    y: Tensor,
    mask: Tensor | None,
    Ex: Tensor,
    Exx: Tensor,
) -> None:
    """The closed-form ``C, d, R`` update from latent moments (see ``obs.m_step``), over-relaxed when ``relax``."""
    old = (obs.C.clone(), obs.d.clone(), obs.R.clone())
    obs.m_step(y, mask, Ex, Exx)
    if relax is not None:
        relax.step(obs, old)


class ParameterRelaxation:
    """Adaptive over-relaxation of gradient-updated parameters: the kernels of SDE latents.

    An SDE latent's state holds the process's derivatives, which the data barely determine, so the gradient M-step
    (which raises the expected complete-data log prior) moves its timescale by a small step in the same direction
    iteration after iteration. The rule of :class:`OverRelaxation` fixes it: after the update ``θ → M(θ)`` take
    ``θ + ω (M(θ) − θ)``, grow ``ω ← min(η ω, ω_max)`` while the likelihood rises, and when it falls restore the
    plain update and set ``ω = 1``.

    Parameters
    ----------
    params : the parameters (updated in place).
    growth : ``η > 1``.
    max_step : ``ω_max``.
    """

    def __init__(self, params: list[Tensor], growth: float, max_step: float = 1024.0) -> None:
        if not growth > 1.0:
            raise ValueError(f"sde_overrelax must be > 1 (or None to turn it off); got {growth}.")
        self.params = params
        self.growth, self.max_step = float(growth), float(max_step)
        self.omega = 1.0
        self._before: list[Tensor] = []
        self._plain: list[Tensor] | None = None

    def state_dict(self) -> dict[str, Any]:
        return {"omega": self.omega, "plain": self._plain}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.omega = float(state["omega"])
        self._plain = None if state["plain"] is None else list(state["plain"])

    def begin(self) -> None:
        """Called before the update: remember ``θ``."""
        self._before = [p.detach().clone() for p in self.params]

    @torch.no_grad()
    def step(self) -> None:
        """Called after the update: extrapolate from ``θ`` through ``M(θ)``."""
        self._plain = None
        if self.omega > 1.0:
            self._plain = [p.detach().clone() for p in self.params]
            for p, b in zip(self.params, self._before, strict=True):
                p.copy_(b + self.omega * (p - b))
        self.omega = min(self.omega * self.growth, self.max_step)

    @torch.no_grad()
    def reject(self, score: float, previous: float) -> bool:
        """If the last step was extrapolated and ``score`` fell below ``previous`` (or is NaN), restore the plain
        update, reset ``ω`` and return True (the caller re-runs the E-step)."""
        if self._plain is None or score >= previous:
            return False
        for p, v in zip(self.params, self._plain, strict=True):
            p.copy_(v)
        self._plain, self.omega = None, 1.0
        return True
