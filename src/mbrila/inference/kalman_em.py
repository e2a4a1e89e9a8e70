"""EM with a Kalman-smoother E-step for state-space latent models (DLAG-SSM, GPFA-SSM, ADM, LDS).

Each iteration of the loop of :mod:`mbrila.inference.em`:

1. E-step: smooth every trial under the current parameters (the parallel scan or the sequential recursion,
   chosen per device) and sum the state's second moments over trials once.
2. M-step, closed form: the loadings, offsets and noise variances of the linear observation, over-relaxed
   adaptively (:class:`~mbrila.inference.overrelax.OverRelaxation`); ``A, Q, P0`` of free LDS blocks.
3. M-step, gradient: kernel timescales and delays by a few optimiser steps on the expected complete-data log
   prior through the AR(P) lift (cost independent of the number of trials).

The score is the exact marginal log-likelihood of the training data under the lifted model. It never decreases
(for MAP fits such as ADM: the score plus the delay log prior), because this is generalised EM: the closed-form
step maximises its part of the expected complete-data objective, the optimiser steps are kept only when they raise
theirs, and an over-relaxed step that lowers the likelihood is replaced by the plain closed-form step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

from torch import Tensor

from mbrila.core.capabilities import register_engine
from mbrila.core.results import Posterior
from mbrila.distributed import all_sum
from mbrila.dynamics import FreeLDSLatent
from mbrila.inference.em import EMEngine
from mbrila.inference.kalman import kalman_smoother, resolve_method
from mbrila.inference.kalman.api import Method
from mbrila.inference.kalman.observation import data_sums
from mbrila.inference.moments import StateMoments
from mbrila.inference.overrelax import OverRelaxation, observation_update
from mbrila.inference.squarem import ParameterSlot, linear_observation_slots

if TYPE_CHECKING:
    from mbrila.models.base import MultiRegionLatentModel

__all__ = ["KalmanEMEngine", "OverRelaxation"]


@register_engine("kalman")
@dataclass
class KalmanEMEngine(EMEngine):
    """Kalman-smoother EM (see the module docstring).

    Parameters
    ----------
    max_iter, tol, grad_steps, lr, patience, sde_overrelax, accelerate : see :class:`~mbrila.inference.em.EMEngine`.
    method : Kalman method: ``"auto"`` (fused on CPU, parallel scan on GPU), ``"fused"``, ``"parallel"``, ``"sequential"``.
    overrelax : growth factor ``η`` of the adaptive over-relaxation of the observation update; None runs plain EM.
    """

    method: Method = "auto"
    overrelax: float | None = 2.0

    requires: ClassVar[frozenset[str]] = frozenset({"state_space", "linear_observation"})
    latent_form: ClassVar[str] = "state_space"

    def _begin(self, model: MultiRegionLatentModel, y: Tensor, mask: Tensor | None) -> Any:
        model.observation.set_floor(y, mask)
        return SimpleNamespace(
            y=y,
            mask=mask,
            T=y.shape[1],
            method=resolve_method(self.method, y.device),
            relax=OverRelaxation(self.overrelax) if self.overrelax is not None and self._over_relaxed() else None,
            lds_blocks=[(i, blk) for i, (blk, _, _) in enumerate(model.blocks()) if isinstance(blk, FreeLDSLatent)],
            sums=data_sums(y) if mask is None else None,
        )

    def _e_step(self, model: MultiRegionLatentModel, state: Any, first: bool, previous: float | None) -> Any:
        y, mask, T = state.y, state.mask, state.T
        prior = model.prior(T)
        # The data's sums, kept from _begin, spare every E-step a pass over the squared data.
        post = kalman_smoother(model.lgssm(T, prior), y, mask, method=state.method, validate=first, sums=state.sums)
        score = float(all_sum(post.log_likelihood.sum())[0])
        if state.relax is not None and previous is not None and state.relax.reject(model.observation, score, previous):
            post = kalman_smoother(model.lgssm(T, prior), y, mask, method=state.method, validate=False, sums=state.sums)
            score = float(all_sum(post.log_likelihood.sum())[0])
        local = StateMoments.from_posterior(post)
        # The read-out's update sums this shard's trials itself (with the data); the dynamics read all trials'.
        return score, (prior, post, local, local.reduce(time_invariant=model.delay.constant))

    def _squarem_slots(self, model: MultiRegionLatentModel, state: Any) -> list[ParameterSlot]:
        return linear_observation_slots(model.observation) + super()._squarem_slots(model, state)

    def _m_step(self, model: MultiRegionLatentModel, state: Any, stats: Any) -> None:
        prior, post, local, moments = stats
        H = prior.H
        Ex = post.mean @ H.mT
        if state.mask is None:
            Exx = H @ local.second @ H.mT  # (T, K, K), summed over this shard's trials
        else:
            Exx = H @ (post.cov + post.mean.unsqueeze(-1) * post.mean.unsqueeze(-2)) @ H.mT
        observation_update(model.observation, state.relax, state.y, state.mask, Ex, Exx)
        for i, blk in state.lds_blocks:
            blk.m_step(moments.block(prior.slices[i], sum_over_time=True))

    def _prior_objective(self, model: MultiRegionLatentModel, state: Any, stats: Any) -> Any:
        prior, _, _, moments = stats
        return model.expected_log_prior_fn(moments, prior.slices, state.T), (moments.n_trials, state.T)

    def posterior(
        self, model: MultiRegionLatentModel, y: Tensor, mask: Tensor | None, neurons: Tensor | None = None
    ) -> Posterior:
        T = y.shape[1]
        prior = model.prior(T)
        params = model.lgssm(T, prior)
        if neurons is not None:
            # Dropping the hidden neurons keeps the posterior covariances shared across trials (the fast path);
            # masking them entry by entry would give every trial its own covariance filter.
            assert params.C is not None and params.d is not None and params.R is not None
            params = replace(params, C=params.C[neurons], d=params.d[neurons], R=params.R[neurons])
        post = kalman_smoother(params, y, mask, method=self.method)
        H = prior.H
        return Posterior(
            mean=post.mean @ H.mT,
            cov=H @ post.cov @ H.mT,
            latent_dims=model.latent_dims,
            log_likelihood=post.log_likelihood,
        )
