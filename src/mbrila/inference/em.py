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

With ``accelerate="squarem"`` (DLAG's and ADM's default) every second update is extrapolated along the last two
(:mod:`mbrila.inference.squarem`) and undone when the next E-step finds the objective lower, so the kept scores
never fall. The fit ends on a scoring E-step, so ``score_trace[-1]`` belongs to the parameters the model is left
with.
Engines implement the hooks ``_begin``, ``_e_step``, ``_m_step``, ``_prior_objective`` and ``posterior``.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import tqdm
from torch import Tensor

from mbrila.core.capabilities import check_pairing
from mbrila.core.results import FitResult, Posterior
from mbrila.distributed import is_main
from mbrila.inference.adam import Adam
from mbrila.inference.loop_state import LoopState
from mbrila.inference.overrelax import ParameterRelaxation
from mbrila.inference.squarem import ParameterSlot, Squarem, parameter_slots

if TYPE_CHECKING:
    from mbrila.core import MultiRegionData


LOGGER = logging.getLogger("mbrila")
#: True inside :func:`quiet_fits`: fits run as steps of a larger procedure log their end at DEBUG only.
_QUIET: contextvars.ContextVar[bool] = contextvars.ContextVar("mbrila_quiet_fits", default=False)


@contextlib.contextmanager
def quiet_fits() -> Iterator[None]:
    """Within this block, fits do not log how they ended (used for the inner fits of initialisations, folds and
    replicates, whose results report their own iteration counts)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def _interactive() -> bool:
    """True in a notebook kernel or when stderr is a terminal."""
    if "ipykernel" in sys.modules:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def _auto_tqdm() -> Any:
    from tqdm.auto import tqdm as auto

    return auto


def _log_prior(model: Any) -> float:
    """The delays' log prior (0 for models without one), the part of a MAP fit's objective beside the score."""
    delay = getattr(model, "delay", None)
    return 0.0 if delay is None else float(delay.log_prior())


#: Round-off allowance of the gradient M-step's guard, in units of ``eps · |F|`` (``eps`` of the objective's dtype).
GUARD_SLACK = 256


def gradient_m_step(objective: Callable[[], Tensor], opt: Adam, scale: Sequence[float], n_steps: int) -> None:
    """``n_steps`` optimiser steps raising ``objective()`` (the parameters are those of ``opt``).

    Generalised EM needs the objective not to fall. A fixed-rate optimiser ends up circling the optimum and
    lowering it on some iterations (on the ADM demo the likelihood fell on 77 of 300 iterations), so a block of
    steps that lowers it is undone and the learning rate halved. The objective is divided by each entry of
    ``scale`` in turn (e.g. trials, then time steps), so one learning rate suits every data size.
    """
    params = [p for group in opt.param_groups for p in group["params"]]
    before = [p.detach().clone() for p in params]
    f0, eps = float("nan"), 0.0
    for k in range(n_steps):
        opt.zero_grad()
        f = objective()
        if k == 0:
            f0, eps = float(f.detach()), float(torch.finfo(f.dtype).eps)
        loss = -f
        for s in scale:
            loss = loss / s
        loss.backward()
        opt.step()
    with torch.no_grad():
        f1 = float(objective())
        # A fall within the objective's round-off is no fall. The objective is a sum of terms far larger than it
        # (log-determinants and traces weighted by trials × time that mostly cancel), so in float32 its error is
        # several nats at |F| ≈ 2e5, while a good block of steps gains ~0.3: judged without this slack, float32
        # blocks were rejected from the fifth iteration on and the halved learning rate froze the timescales and
        # delays. In float64 the slack is ~1e-8 of a nat.
        if not f1 >= f0 - GUARD_SLACK * eps * abs(f0):
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
    sde_overrelax : growth factor of the adaptive over-relaxation of the kernels of SDE latents
        (:class:`~mbrila.inference.overrelax.ParameterRelaxation`); None takes plain gradient M-steps.
    accelerate : ``"squarem"`` extrapolates every second EM update (:mod:`mbrila.inference.squarem`) in place of
        the over-relaxation of the closed-form update; None (the default) runs that one.
    """

    max_iter: int = 300
    tol: float = 1e-7
    grad_steps: int = 10
    lr: float = 0.05
    patience: int = 3
    sde_overrelax: float | None = 2.0
    accelerate: str | None = None

    #: Capabilities the model must provide (:mod:`mbrila.core.capabilities`).
    requires: ClassVar[frozenset[str]] = frozenset()
    #: Which latent blocks a preset builds for this engine: ``"state_space"`` or ``"dense"``.
    latent_form: ClassVar[str] = "state_space"

    def __post_init__(self) -> None:
        self._over_relaxed()  # refuses an unknown accelerator when the engine is built

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

    def _squarem_slots(self, model: Any, state: Any) -> list[ParameterSlot]:
        """What SQUAREM extrapolates: the kernel and delay parameters (engines add their closed-form ones), but
        not those of SDE latents while their own over-relaxation runs (it grows its step to 1024×, which suits
        their slow drift better than SQUAREM's)."""
        relaxed = self.sde_overrelax is not None and hasattr(model, "sde_parameters")
        sde = {id(p) for p in model.sde_parameters()} if relaxed else set()
        return parameter_slots([p for p in model.dynamics_parameters() if id(p) not in sde])

    def _over_relaxed(self) -> bool:
        """Whether the engine's over-relaxation of its closed-form update runs (not when SQUAREM replaces it)."""
        if self.accelerate not in (None, "squarem"):
            raise ValueError(f"accelerate must be None or 'squarem'; got {self.accelerate!r}.")
        return self.accelerate is None

    def _carry(self, state: Any) -> dict[str, Any]:
        """What this engine's per-fit ``state`` carries between iterations (tensors and plain data), for
        checkpoints; the base engine's is the over-relaxation state when there is one."""
        relax = getattr(state, "relax", None)
        return {} if relax is None else {"relax": relax.state_dict()}

    def _restore(self, state: Any, carry: dict[str, Any]) -> None:
        """Put :meth:`_carry`'s output back into a fresh ``state`` (the fit then resumes where it stopped)."""
        relax = getattr(state, "relax", None)
        if relax is not None and "relax" in carry:
            relax.load_state_dict(carry["relax"])

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
        checkpoint: Callable[[LoopState], None] | None = None,
        checkpoint_every: int = 10,
        start: LoopState | None = None,
    ) -> FitResult:
        """Run the loop of the module docstring on ``model`` (in place) and return its :class:`FitResult`.

        ``checkpoint(loop_state)`` is called at the top of every ``checkpoint_every``-th iteration (iteration 0
        included) and once when the fit ends, while the model holds that iteration's parameters; ``start`` resumes a
        loop from such a state (the model must hold its parameters).
        """
        t_start = time.perf_counter()
        max_iter = self.max_iter if max_iter is None else int(max_iter)
        tol = self.tol if tol is None else float(tol)
        y, mask = model._data(data)
        state = self._begin(model, y, mask)
        params = model.dynamics_parameters()
        opt = Adam(params, lr=self.lr) if params and self.grad_steps > 0 else None
        sde_params = model.sde_parameters() if hasattr(model, "sde_parameters") else []
        relax = None
        if opt is not None and sde_params and self.sde_overrelax is not None:
            relax = ParameterRelaxation(sde_params, self.sde_overrelax)
        accel = None if self._over_relaxed() else Squarem(self._squarem_slots(model, state))
        trace: list[float] = []
        timings = {"e_step": 0.0, "m_step": 0.0, "grad_steps": 0.0}
        converged, calm, first_it = False, 0, 0
        if start is not None:
            trace, calm, first_it = list(start.trace), start.calm, start.iteration
            if opt is not None and start.optimizer is not None:
                opt.load_state_dict(start.optimizer)
            self._restore(state, start.carry)
            if relax is not None and "relax_sde" in start.carry:
                relax.load_state_dict(start.carry["relax_sde"])
            if accel is not None and "squarem" in start.carry:
                accel.load_state_dict(start.carry["squarem"])
            if callback is not None and start.callback is not None and hasattr(callback, "load_state_dict"):
                callback.load_state_dict(start.callback)
            if start.done:
                return self._result(model, trace, start.converged, "resumed a finished fit", t_start, timings, tol)
            if first_it > max_iter:
                raise ValueError(
                    f"the checkpoint is at iteration {first_it}, past max_iter = {max_iter}: resume with the "
                    "max_iter of the original fit (or a larger one)."
                )

        def loop_state(it: int, done: bool = False) -> LoopState:
            cb_state = callback.state_dict() if hasattr(callback, "state_dict") else None  # type: ignore[union-attr]
            opt_state = None if opt is None else opt.state_dict()
            carry = self._carry(state)
            if relax is not None:
                carry["relax_sde"] = relax.state_dict()
            if accel is not None:
                carry["squarem"] = accel.state_dict()
            return LoopState(it, list(trace), calm, opt_state, carry, cb_state, done, converged)

        # A bar only on a terminal or in a notebook: redirected to a file, its carriage-return updates fill the log
        # with hundreds of lines and then erase themselves. tqdm.auto (a widget in notebooks) only when a bar is
        # shown: in a kernel without ipywidgets, importing it prints a warning into every notebook.
        show = progress and _interactive()
        make_bar = _auto_tqdm() if show else tqdm.tqdm
        bar = make_bar(range(first_it, max_iter + 1), disable=not show, desc=type(self).__name__, leave=False)
        n_iter, reason = first_it, "max_iter"
        for it in bar:
            n_iter = it
            if checkpoint is not None and it % checkpoint_every == 0 and not (start is not None and it == first_it):
                checkpoint(loop_state(it))
            t0 = time.perf_counter()
            # The last iteration's statistics go before the next E-step builds its own (a Laplace E-step's
            # per-trial covariances are hundreds of MB), and likewise before a rejected step's E-step is redone.
            stats = None
            with torch.no_grad():
                score, stats = self._e_step(model, state, it == 0, trace[-1] if trace else None)
                if relax is not None and trace and relax.reject(score, trace[-1]):
                    stats = None
                    score, stats = self._e_step(model, state, False, None)
                if accel is not None:
                    # A jump moves the delays too, so it is judged on the fit's objective (ADM's includes the
                    # delays' log prior), not on the likelihood alone.
                    objective = score + _log_prior(model)
                    if accel.reject(objective):
                        stats = None
                        score, stats = self._e_step(model, state, False, None)
                        objective = score + _log_prior(model)
                    accel.scored(objective)
            trace.append(score)
            timings["e_step"] += time.perf_counter() - t0
            if show:
                bar.set_postfix(score=f"{score:.6g}")
            if callback is not None and callback(it, score):
                reason = "callback"
                break  # the caller asked to stop (e.g. early stopping on held-out data)
            if len(trace) > 1:
                rel = abs(trace[-1] - trace[-2]) / max(abs(trace[-2]), 1.0)
                calm = calm + 1 if rel < tol else 0
                if calm >= self.patience:
                    converged, reason = True, "converged"
                    break
            if it == max_iter:
                break

            t0 = time.perf_counter()
            if accel is not None:
                accel.begin()
            with torch.no_grad():
                self._m_step(model, state, stats)
            timings["m_step"] += time.perf_counter() - t0

            t0 = time.perf_counter()
            if relax is not None:
                relax.begin()
            self._dynamics_step(model, state, stats, opt)
            if relax is not None:
                relax.step()
            if accel is not None:
                accel.step()
            timings["grad_steps"] += time.perf_counter() - t0
        bar.close()
        if checkpoint is not None:
            checkpoint(loop_state(n_iter, done=True))
        return self._result(model, trace, converged, reason, t_start, timings, tol)

    def _result(
        self,
        model: Any,
        trace: list[float],
        converged: bool,
        reason: str,
        t_start: float,
        timings: dict[str, float],
        tol: float,
    ) -> FitResult:
        """The FitResult, after one log line on how the fit ended (what a cluster job's log keeps)."""
        n_iter = len(trace) - 1
        rel = abs(trace[-1] - trace[-2]) / max(abs(trace[-2]), 1.0) if len(trace) > 1 else float("nan")
        result = FitResult(
            n_iter=n_iter,
            converged=converged,
            score_trace=trace,
            wall_time_s=time.perf_counter() - t_start,
            timings=timings,
            stop_reason=reason,
        )
        what = f"{type(model).__name__} fit ({type(self).__name__})"
        if _QUIET.get() or not is_main():  # inner fits, and the other processes of a data-parallel fit
            LOGGER.debug("%s ended after %d iterations (%s).", what, n_iter, reason)
        elif reason == "max_iter" and n_iter > 0:
            LOGGER.warning(
                "%s stopped at max_iter = %d without converging: the last relative change of the score was %.3g "
                "(tol %.3g for %d iterations in a row); raise max_iter or loosen tol.",
                what,
                n_iter,
                rel,
                tol,
                self.patience,
            )
        else:
            LOGGER.info("%s ended after %d iterations (%s), score %.8g.", what, n_iter, reason, trace[-1])
        return result
