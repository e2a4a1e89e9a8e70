"""EM with a Kalman-smoother E-step for state-space latent models.

Each iteration:

1. E-step: smooth every trial under the current parameters (the parallel scan or the sequential recursion,
   chosen per device) and sum the state's second moments over trials once.
2. M-step, closed form: the loadings, offsets and noise variances of the linear observation; ``A, Q, P0`` of
   free LDS blocks.
3. M-step, gradient: kernel timescales and delays by a few optimiser steps on the expected complete-data log
   prior through the AR(P) lift (cost independent of the number of trials).

The score is the exact marginal log-likelihood of the training data under the lifted model, evaluated by the
E-step; with the gradient steps off, it never decreases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from tqdm.auto import tqdm

from mbrila.core.results import FitResult
from mbrila.dynamics import FreeLDSLatent
from mbrila.inference.kalman import kalman_smoother, resolve_method
from mbrila.inference.kalman.api import Method
from mbrila.inference.moments import StateMoments

if TYPE_CHECKING:
    from mbrila.core import MultiRegionData
    from mbrila.models.state_space import LatentStateSpaceModel


@dataclass
class KalmanEMEngine:
    """Kalman-smoother EM (see the module docstring).

    Parameters
    ----------
    max_iter : default number of EM iterations.
    tol : stop when the relative change of the score is below ``tol`` for ``patience`` iterations in a row.
    method : Kalman method: ``"auto"`` (sequential on CPU, parallel scan on GPU), ``"parallel"``, ``"sequential"``.
    grad_steps : optimiser steps on kernel and delay parameters per EM iteration (0 disables them).
    lr : learning rate of the Adam optimiser for those steps.
    patience : see ``tol``.
    """

    max_iter: int = 300
    tol: float = 1e-7
    method: Method = "auto"
    grad_steps: int = 10
    lr: float = 0.05
    patience: int = 3

    requires: ClassVar[frozenset[str]] = frozenset({"state_space", "linear_observation"})

    def check_model(self, model: Any) -> None:
        missing = self.requires - set(model.capabilities)
        if missing:
            raise ValueError(
                f"KalmanEMEngine needs a model with {sorted(missing)}; {type(model).__name__} does not provide it."
            )

    def fit(
        self,
        model: LatentStateSpaceModel,
        data: MultiRegionData,
        *,
        max_iter: int | None = None,
        tol: float | None = None,
        callback: Callable[[int, float], bool | None] | None = None,
        progress: bool = True,
    ) -> FitResult:
        t_start = time.perf_counter()
        max_iter = self.max_iter if max_iter is None else int(max_iter)
        tol = self.tol if tol is None else float(tol)
        y, mask = model._data(data)
        obs = model.observation
        obs.set_floor(y, mask)
        method = resolve_method(self.method, y.device)
        params = model.dynamics_parameters()
        opt = torch.optim.Adam(params, lr=self.lr) if params and self.grad_steps > 0 else None
        lds_blocks = [(i, blk) for i, (blk, _, _) in enumerate(model.blocks()) if isinstance(blk, FreeLDSLatent)]
        B, T, _ = y.shape
        trace: list[float] = []
        timings = {"e_step": 0.0, "m_step": 0.0, "grad_steps": 0.0}
        converged, calm = False, 0
        bar = tqdm(range(max_iter), disable=not progress, desc="EM", leave=False)
        n_iter = 0
        for it in bar:
            n_iter = it + 1
            t0 = time.perf_counter()
            with torch.no_grad():
                prior = model.prior(T)
                post = kalman_smoother(model.lgssm(T, prior), y, mask, method=method, validate=it == 0)
                moments = StateMoments.from_posterior(post)
            score = float(post.log_likelihood.sum())
            trace.append(score)
            timings["e_step"] += time.perf_counter() - t0

            t0 = time.perf_counter()
            with torch.no_grad():
                H = prior.H
                Ex = post.mean @ H.mT
                if mask is None:
                    Exx = H @ moments.second @ H.mT  # (T, K, K), summed over trials
                else:
                    Exx = H @ (post.cov + post.mean.unsqueeze(-1) * post.mean.unsqueeze(-2)) @ H.mT
                obs.m_step(y, mask, Ex, Exx)
                for i, blk in lds_blocks:
                    blk.m_step(moments.block(prior.slices[i], sum_over_time=True))
            timings["m_step"] += time.perf_counter() - t0

            t0 = time.perf_counter()
            if opt is not None:
                for _ in range(self.grad_steps):
                    opt.zero_grad()
                    # The delay prior (e.g. ADM's smoothness penalty) makes these MAP steps.
                    elp = model.expected_log_prior(moments, prior.slices, T) + model.delay.log_prior()
                    loss = -elp / (B * T)
                    loss.backward()
                    opt.step()
            timings["grad_steps"] += time.perf_counter() - t0

            if callback is not None and callback(it, score):
                break  # the caller asked to stop (e.g. early stopping on held-out data)
            if progress:
                bar.set_postfix(ll=f"{score:.4g}")
            if len(trace) > 1:
                rel = abs(trace[-1] - trace[-2]) / max(abs(trace[-2]), 1.0)
                calm = calm + 1 if rel < tol else 0
                if calm >= self.patience:
                    converged = True
                    break
        bar.close()
        return FitResult(
            n_iter=n_iter,
            converged=converged,
            score_trace=trace,
            wall_time_s=time.perf_counter() - t_start,
            timings=timings,
        )
