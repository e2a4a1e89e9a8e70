"""The (variational) EM loop every engine runs, and the guarded gradient M-step.

Each iteration ``k``:

1. E-step: the posterior of the latents under the current parameters ``θ_k`` (``θ_0``: those the fit starts
   from), and its score — the marginal log-likelihood (EM engines) or the evidence lower bound (variational
   engines). The callback is called while the model holds ``θ_k``; the fit stops here once the relative change
   of the score has stayed below ``tol`` for ``patience`` iterations, or at ``max_iter``.
2. M-step, closed form: the engine's updates of the observation (and of free-LDS dynamics).
3. M-step, gradient: a few optimiser steps on the parameters that have no closed form (kernel timescales and
   delays) of the expected complete-data objective; a block of steps that lowers it is undone
   (:func:`gradient_m_step`).

The fit ends on a scoring E-step, so ``score_trace[-1]`` belongs to the parameters the model is left with.
Engines implement the hooks ``_begin``, ``_e_step``, ``_m_step``, ``_prior_objective`` and ``posterior``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import tqdm
from torch import Tensor

from mbrila.core.capabilities import check_pairing
from mbrila.core.results import FitResult, Posterior
from mbrila.inference.adam import Adam

if TYPE_CHECKING:
    from mbrila.core import MultiRegionData


def _auto_tqdm() -> Any:
    from tqdm.auto import tqdm as auto

    return auto


def gradient_m_step(objective: Callable[[], Tensor], opt: Adam, scale: Sequence[float], n_steps: int) -> None:
    """``n_steps`` optimiser steps raising ``objective()`` (the parameters are those of ``opt``).

    Generalised EM needs the objective not to fall. A fixed-rate optimiser ends up circling the optimum and
    lowering it on some iterations (on the ADM demo the likelihood fell on 77 of 300 iterations), so a block of
    steps that lowers it is undone and the learning rate halved. The objective is divided by each entry of
    ``scale`` in turn (e.g. trials, then time steps), so one learning rate suits every data size.
    """
    params = [p for group in opt.param_groups for p in group["params"]]
    before = [p.detach().clone() for p in params]
    f0 = float("nan")
    for k in range(n_steps):
        opt.zero_grad()
        f = objective()
        if k == 0:
            f0 = float(f.detach())
        loss = -f
        for s in scale:
            loss = loss / s
        loss.backward()
        opt.step()
    with torch.no_grad():
        f1 = float(objective())
        if not f1 >= f0:
            for p, b in zip(params, before, strict=True):
                p.copy_(b)
            for group in opt.param_groups:
                group["lr"] *= 0.5


@dataclass
class EMEngine:
    """Base class of the engines (see the module docstring).

    Parameters
    ----------
    max_iter : default number of parameter updates; the fit runs one E-step more to score the last update.
    tol : stop when the relative change of the score is below ``tol`` for ``patience`` iterations in a row.
    grad_steps : optimiser steps on kernel and delay parameters per iteration (0 disables them).
    lr : learning rate of the Adam optimiser for those steps.
    patience : see ``tol``.
    """

    max_iter: int = 300
    tol: float = 1e-7
    grad_steps: int = 10
    lr: float = 0.05
    patience: int = 3

    #: Capabilities the model must provide (:mod:`mbrila.core.capabilities`).
    requires: ClassVar[frozenset[str]] = frozenset()
    #: Which latent blocks a preset builds for this engine: ``"state_space"`` or ``"dense"``.
    latent_form: ClassVar[str] = "state_space"

    def check_model(self, model: Any) -> None:
        """Raise ``ValueError`` naming what is missing when this engine cannot fit ``model``."""
        check_pairing(type(model).__name__, model.capabilities, self, getattr(model, "offered_capabilities", None))

    # ------------------------------------------------------------------ hooks
    def _begin(self, model: Any, y: Tensor, mask: Tensor | None) -> Any:
        """Per-fit state (data-derived floors, caches); called once before the loop."""
        raise NotImplementedError

    def _e_step(self, model: Any, state: Any, first: bool, previous: float | None) -> tuple[float, Any]:
        """Posterior under the current parameters: ``(score, statistics for the M-step)``."""
        raise NotImplementedError

    def _m_step(self, model: Any, state: Any, stats: Any) -> None:
        """Closed-form updates from the E-step's statistics."""
        raise NotImplementedError

    def _prior_objective(self, model: Any, state: Any, stats: Any) -> tuple[Callable[[], Tensor], Sequence[float]]:
        """``(F, scale)``: the part of the expected complete-data objective that the gradient steps raise, and
        its normalisers (see :func:`gradient_m_step`)."""
        raise NotImplementedError

    def posterior(self, model: Any, y: Tensor, mask: Tensor | None, neurons: Tensor | None = None) -> Posterior:
        """Posterior of the region latents given ``y`` (only the neurons ``neurons`` when given)."""
        raise NotImplementedError

    def _dynamics_step(self, model: Any, state: Any, stats: Any, opt: Adam | None) -> None:
        """Update the timescales and delays: ``grad_steps`` guarded optimiser steps (engines may do better)."""
        if opt is None:
            return
        objective, scale = self._prior_objective(model, state, stats)
        gradient_m_step(lambda: objective() + model.delay.log_prior(), opt, scale, self.grad_steps)

    # ------------------------------------------------------------------ the loop
    def fit(
        self,
        model: Any,
        data: MultiRegionData,
        *,
        max_iter: int | None = None,
        tol: float | None = None,
        callback: Callable[[int, float], bool | None] | None = None,
        progress: bool = True,
    ) -> FitResult:
        """Run the loop of the module docstring on ``model`` (in place) and return its :class:`FitResult`."""
        t_start = time.perf_counter()
        max_iter = self.max_iter if max_iter is None else int(max_iter)
        tol = self.tol if tol is None else float(tol)
        y, mask = model._data(data)
        state = self._begin(model, y, mask)
        params = model.dynamics_parameters()
        opt = Adam(params, lr=self.lr) if params and self.grad_steps > 0 else None
        trace: list[float] = []
        timings = {"e_step": 0.0, "m_step": 0.0, "grad_steps": 0.0}
        converged, calm = False, 0
        # tqdm.auto (a widget in notebooks) only when a bar is shown: in a kernel without ipywidgets, importing it
        # prints a warning into every notebook, progress bar or not.
        make_bar = _auto_tqdm() if progress else tqdm.tqdm
        bar = make_bar(range(max_iter + 1), disable=not progress, desc=type(self).__name__, leave=False)
        n_iter = 0
        for it in bar:
            n_iter = it
            t0 = time.perf_counter()
            with torch.no_grad():
                score, stats = self._e_step(model, state, it == 0, trace[-1] if trace else None)
            trace.append(score)
            timings["e_step"] += time.perf_counter() - t0
            if progress:
                bar.set_postfix(score=f"{score:.6g}")
            if callback is not None and callback(it, score):
                break  # the caller asked to stop (e.g. early stopping on held-out data)
            if len(trace) > 1:
                rel = abs(trace[-1] - trace[-2]) / max(abs(trace[-2]), 1.0)
                calm = calm + 1 if rel < tol else 0
                if calm >= self.patience:
                    converged = True
                    break
            if it == max_iter:
                break

            t0 = time.perf_counter()
            with torch.no_grad():
                self._m_step(model, state, stats)
            timings["m_step"] += time.perf_counter() - t0

            t0 = time.perf_counter()
            self._dynamics_step(model, state, stats, opt)
            timings["grad_steps"] += time.perf_counter() - t0
        bar.close()
        return FitResult(
            n_iter=n_iter,
            converged=converged,
            score_trace=trace,
            wall_time_s=time.perf_counter() - t_start,
            timings=timings,
        )
