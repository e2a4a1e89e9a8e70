"""Laplace EM for spike counts: Poisson read-out, state-space latents (Poisson GPFA-SSM, DLAG-SSM, ADM, LDS).

Each iteration of the loop of :mod:`mbrila.inference.em`:

1. E-step: the Laplace approximation of every trial's latent posterior (:func:`~mbrila.inference.laplace.
   laplace_smoother`: Newton's method, one banded or Kalman solve per step, warm-started from the previous
   E-step's mode). Its score is the Laplace approximation of the marginal log-likelihood of the counts.
2. M-step, read-out: each neuron's loadings and offset by Newton's method on the expected log-likelihood under
   the Gaussian posterior (:meth:`~mbrila.observations.PoissonObservation.m_step`); ``A, Q, P0`` of free LDS
   blocks in closed form.
3. M-step, gradient: kernel timescales and delays exactly as in the Gaussian engine, from the trial-summed
   moments of the state (they only see the latent posterior).

Unlike linear-Gaussian EM, the score is an approximation and need not rise at every iteration (the Laplace
posterior is not the exact one); the loop stops on its relative change as usual.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from mbrila.core.capabilities import register_engine
from mbrila.core.results import Posterior
from mbrila.distributed import all_sum
from mbrila.dynamics import FreeLDSLatent
from mbrila.inference.em import EMEngine
from mbrila.inference.kalman_em import KalmanEMEngine
from mbrila.inference.laplace import laplace_smoother
from mbrila.inference.moments import StateMoments
from mbrila.observations.counts import check_counts

if TYPE_CHECKING:
    from mbrila.models.base import MultiRegionLatentModel

__all__ = ["LaplaceEMEngine"]


def region_covariances(post_cov: Tensor, H: Tensor) -> Tensor:
    """``H P Hᵀ``: the region latents' covariances ``(B, T, K, K)`` from the state's ``(B, T, D, D)``."""
    # H selects state entries (one 1 per row): gather instead of two products with a mostly-zero matrix.
    rows = H.abs().argmax(-1)
    if bool((H[torch.arange(H.shape[0]), rows] == 1).all()) and int((H != 0).sum()) == H.shape[0]:
        return post_cov[..., rows[:, None], rows[None, :]]
    return H @ post_cov @ H.mT


@register_engine("laplace")
@dataclass
class LaplaceEMEngine(EMEngine):
    """Laplace EM for a Poisson read-out (see the module docstring).

    Parameters
    ----------
    max_iter, tol, grad_steps, lr, patience, sde_overrelax, accelerate : see :class:`~mbrila.inference.em.EMEngine`.
    max_newton : most Newton steps per E-step.
    newton_tol : an E-step's Newton iterations stop once no drive ``η`` would change by more than this (the last
        step is taken; its covariances are those of the path it started from, within ``newton_tol`` of the mode).
        Warm-started from the previous mode, most E-steps then need two or three Newton steps. ``posterior`` (inference
        and prediction) runs to ``√ε``.
    """

    max_newton: int = 50
    newton_tol: float = 1e-4

    requires: ClassVar[frozenset[str]] = frozenset({"state_space", "poisson_observation"})
    latent_form: ClassVar[str] = "state_space"

    def _begin(self, model: MultiRegionLatentModel, y: Tensor, mask: Tensor | None) -> Any:
        check_counts(y, mask, "data.y")
        return SimpleNamespace(
            y=y,
            mask=mask,
            T=y.shape[1],
            mode=None,
            lds_blocks=[(i, blk) for i, (blk, _, _) in enumerate(model.blocks()) if isinstance(blk, FreeLDSLatent)],
        )

    def _carry(self, state: Any) -> dict[str, Any]:
        return {"mode": state.mode}  # the next E-step's Newton iterations start from the last modes

    def _restore(self, state: Any, carry: dict[str, Any]) -> None:
        state.mode = carry.get("mode")

    def _e_step(self, model: MultiRegionLatentModel, state: Any, first: bool, previous: float | None) -> Any:
        prior = model.prior(state.T)
        obs = model.observation
        post = laplace_smoother(
            model.lgssm(state.T, prior),
            state.y,
            state.mask,
            link=obs.link,
            init=state.mode,
            max_newton=self.max_newton,
            tol=self.newton_tol,
            all_processes=True,
        )
        state.mode = post.mean
        local = StateMoments.from_posterior(post)
        score = float(all_sum(post.log_likelihood.sum())[0])
        # What the read-out's M-step reads: the region latents' means and covariances, not the state's (B, T, D, D)
        # covariances, which are let go here.
        region = (post.mean @ prior.H.mT, region_covariances(post.cov, prior.H))
        return score, (prior, region, local, local.reduce(time_invariant=model.delay.constant))

    def _m_step(self, model: MultiRegionLatentModel, state: Any, stats: Any) -> None:
        prior, (Ex, Vx), _, moments = stats
        model.observation.m_step(state.y, state.mask, Ex, Vx)
        for i, blk in state.lds_blocks:
            blk.m_step(moments.block(prior.slices[i], sum_over_time=True))

    # The gradient M-step reads only the state's moments: the same objective as the Gaussian engine's.
    _prior_objective = KalmanEMEngine._prior_objective

    def posterior(
        self, model: MultiRegionLatentModel, y: Tensor, mask: Tensor | None, neurons: Tensor | None = None
    ) -> Posterior:
        check_counts(y, mask, "data.y")
        T = y.shape[1]
        prior = model.prior(T)
        params = model.lgssm(T, prior)
        if neurons is not None:
            assert params.C is not None and params.d is not None
            params = replace(params, C=params.C[neurons], d=params.d[neurons])
        post = laplace_smoother(params, y, mask, link=model.observation.link, max_newton=self.max_newton)
        H = prior.H
        return Posterior(
            mean=post.mean @ H.mT,
            cov=region_covariances(post.cov, H),
            latent_dims=model.latent_dims,
            log_likelihood=post.log_likelihood,
        )
