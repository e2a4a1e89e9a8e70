"""EM with an exact dense-GP E-step: DLAG as published (Gokcen et al. 2022), and GPFA with a dense prior.

Each iteration of the loop of :mod:`mbrila.inference.em`:

1. E-step: condition every trial's latents on its data in the information form ``(K⁻¹ + I_T ⊗ CᵀR⁻¹C)⁻¹``
   (:mod:`mbrila.inference.dense`), factorised once per distinct observation pattern and shared by every trial
   with it (once in all without missing data; once per distinct length for ragged trials; once per trial when
   entries are missing at random, which costs ``O(trials · (K·T)³)``). The score is the exact marginal
   log-likelihood ``log p(y)``.
2. M-step, closed form: ``C, d, R`` from the posterior moments (the observation's own update, over-relaxed as in
   the Kalman engine).
3. M-step, gradient: timescales and delays by optimiser steps on ``Σ_b E[log N(z_b; 0, K_b(θ))]``, which reads
   only the trial-summed second moments ``Σ_trials E[z_b z_bᵀ]`` (its cost does not grow with the trials).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from mbrila.core.capabilities import register_engine
from mbrila.core.results import Posterior
from mbrila.distributed import all_sum, global_count
from mbrila.dynamics.exact_gp import dense_expected_log_prior
from mbrila.inference.dense import (
    DensePosterior,
    PriorFactors,
    dense_layout,
    dense_posterior,
    observation_groups,
    prior_factors,
)
from mbrila.inference.em import EMEngine
from mbrila.inference.fisher import fisher_scoring, scoring_applicable
from mbrila.inference.kalman.observation import project_observations
from mbrila.inference.overrelax import OverRelaxation, observation_update
from mbrila.inference.squarem import ParameterSlot, linear_observation_slots

if TYPE_CHECKING:
    from mbrila.models.base import MultiRegionLatentModel


def dense_e_step(
    model: Any, y: Tensor, mask: Tensor | None, J: Tensor, h: Tensor, cache: PriorFactors | None = None
) -> DensePosterior:
    """Condition ``model``'s dense GP latents on an information-form observation of ``y``'s trials.

    ``J`` is ``(K, K)`` without a mask, else ``(B, T, K, K)`` (one per trial; one per observation group is used).
    Blocks listed by ``model.inactive_blocks()`` (latents an ARD fit has pruned: zero loadings) are left out of
    the factorisation; their posterior is their prior (mean 0, the prior's marginal covariance). ``cache`` reuses
    the prior blocks' factorisations of a fit's Fisher steps (keyed by block index).
    """
    B, T = y.shape[:2]
    n_x = sum(model.latent_dims)
    group, first = observation_groups(mask, B, y.device)
    skip = set(model.inactive_blocks())
    covs = model.dense_covariances(T)
    rows_all = model.view_rows()
    if not skip:
        layout = dense_layout(rows_all, n_x, T, y.device)
        factors = prior_factors(covs, range(len(covs)), cache)
        return dense_posterior(covs, layout, J if J.ndim == 2 else J[first], h, group, factors=factors)
    keep = [b for b in range(len(covs)) if b not in skip]
    rows = torch.as_tensor([r for b in keep for r in rows_all[b]], dtype=torch.long, device=y.device)
    local = torch.full((n_x,), -1, dtype=torch.long, device=y.device)
    local[rows] = torch.arange(rows.shape[0], device=y.device)
    layout = dense_layout([local[torch.as_tensor(rows_all[b])].tolist() for b in keep], rows.shape[0], T, y.device)
    Jk = J[rows][:, rows] if J.ndim == 2 else J[first][..., rows, :][..., rows]
    factors = prior_factors([covs[b] for b in keep], keep, cache)
    post = dense_posterior([covs[b] for b in keep], layout, Jk, h[..., rows], group, factors=factors)
    # Back to all rows of x: the skipped blocks keep their prior.
    mean = h.new_zeros(B, T, n_x)
    mean[..., rows] = post.mean
    G = post.time_cov.shape[0]
    time_cov = h.new_zeros(G, T, n_x, n_x)
    time_cov[:, :, rows[:, None], rows[None, :]] = post.time_cov
    block_second: list[Tensor] = []
    it = iter(post.block_second)
    for b, vr in enumerate(rows_all):
        V = len(vr)
        if b in skip:
            prior = covs[b].detach().reshape(V, T, V, T).diagonal(dim1=1, dim2=3)  # (V, V, T)
            idx = torch.as_tensor(vr, device=y.device)
            time_cov[:, :, idx[:, None], idx[None, :]] = prior.permute(2, 0, 1)
            block_second.append(B * covs[b].detach())
        else:
            block_second.append(next(it))
    return replace(post, mean=mean, time_cov=time_cov, block_second=block_second)


def dense_prior_objective(model: Any, post: DensePosterior, n_trials: int, T: int) -> Any:
    """``θ ↦ Σ_b E[log N(z_b; 0, K_b(θ))]`` under the posterior ``post`` (differentiable in kernels and delays).

    Blocks in ``model.inactive_blocks()`` are left out (their posterior is their prior: nothing to learn).
    """
    skip = set(model.inactive_blocks())

    def objective() -> Tensor:
        covs = model.dense_covariances(T)
        terms = [
            dense_expected_log_prior(K, S, n_trials)
            for b, (K, S) in enumerate(zip(covs, post.block_second, strict=True))
            if b not in skip
        ]
        return torch.stack(terms).sum() if terms else covs[0].new_zeros(())

    return objective


def dense_dynamics_step(engine: Any, model: Any, state: Any, post: DensePosterior, opt: Any) -> None:
    """Fisher scoring on the dense prior objective when it applies (``engine.scoring_steps > 0``), else Adam."""
    if opt is None:
        return
    if engine.scoring_steps > 0 and scoring_applicable(model):
        fisher_scoring(
            model, post.block_second, state.n_trials, state.T, n_steps=engine.scoring_steps, cache=state.factors
        )
    else:
        EMEngine._dynamics_step(engine, model, state, post, opt)


def reduce_blocks(post: DensePosterior) -> DensePosterior:
    """``post`` with its trial-summed block moments summed over every process of a data-parallel fit
    (:mod:`mbrila.distributed`; the per-trial means and covariances stay this shard's)."""
    if not post.block_second:
        return post
    return replace(post, block_second=list(all_sum(*post.block_second)))


def second_moments(post: DensePosterior, mask: Tensor | None) -> Tensor:
    """``Σ_b E[x_t x_tᵀ]`` ``(T, K, K)`` without a mask, else per trial ``(B, T, K, K)``."""
    m = post.mean
    if mask is None:
        return m.shape[0] * post.time_cov[0] + torch.einsum("bti,btj->tij", m, m)
    return post.trial_cov() + m.unsqueeze(-1) * m.unsqueeze(-2)


@register_engine("exact")
@dataclass
class ExactEMEngine(EMEngine):
    """Exact-GP EM (see the module docstring).

    Parameters
    ----------
    max_iter, tol, grad_steps, lr, patience, sde_overrelax, accelerate : see :class:`~mbrila.inference.em.EMEngine`.
    overrelax : growth factor of the adaptive over-relaxation of the ``C, d, R`` update; None runs plain EM.
    scoring_steps : guarded Fisher-scoring steps on timescales and constant delays per iteration
        (:mod:`mbrila.inference.fisher`); 0 uses ``grad_steps`` Adam steps instead (also used for blocks with
        many parameters, such as time-varying delays).
    """

    overrelax: float | None = 2.0
    scoring_steps: int = 1

    requires: ClassVar[frozenset[str]] = frozenset({"dense_gp", "linear_observation"})
    latent_form: ClassVar[str] = "dense"

    def _begin(self, model: MultiRegionLatentModel, y: Tensor, mask: Tensor | None) -> Any:
        model.observation.set_floor(y, mask)
        relax = OverRelaxation(self.overrelax) if self.overrelax is not None and self._over_relaxed() else None
        n_trials = global_count(y.shape[0])
        return SimpleNamespace(y=y, mask=mask, T=y.shape[1], relax=relax, n_trials=n_trials, factors=PriorFactors())

    def _condition(
        self, model: MultiRegionLatentModel, y: Tensor, mask: Tensor | None, cache: PriorFactors | None = None
    ) -> tuple[float, Any]:
        obs = model.observation
        J, h, c = project_observations(obs.C, obs.d, obs.R, y, mask)
        post = reduce_blocks(dense_e_step(model, y, mask, J, h, cache))
        return float(all_sum((c + post.log_z).sum())[0]), post

    def _e_step(self, model: MultiRegionLatentModel, state: Any, first: bool, previous: float | None) -> Any:
        score, post = self._condition(model, state.y, state.mask, state.factors)
        if state.relax is not None and previous is not None and state.relax.reject(model.observation, score, previous):
            score, post = self._condition(model, state.y, state.mask, state.factors)
        return score, post

    def _squarem_slots(self, model: MultiRegionLatentModel, state: Any) -> list[ParameterSlot]:
        return linear_observation_slots(model.observation) + super()._squarem_slots(model, state)

    def _m_step(self, model: MultiRegionLatentModel, state: Any, stats: DensePosterior) -> None:
        Exx = second_moments(stats, state.mask)
        observation_update(model.observation, state.relax, state.y, state.mask, stats.mean, Exx)

    def _prior_objective(self, model: MultiRegionLatentModel, state: Any, stats: DensePosterior) -> Any:
        B = state.n_trials
        return dense_prior_objective(model, stats, B, state.T), (B, state.T)

    def _dynamics_step(self, model: Any, state: Any, stats: DensePosterior, opt: Any) -> None:
        dense_dynamics_step(self, model, state, stats, opt)

    def posterior(
        self, model: MultiRegionLatentModel, y: Tensor, mask: Tensor | None, neurons: Tensor | None = None
    ) -> Posterior:
        obs = model.observation
        C, d, R = obs.C, obs.d, obs.R
        if neurons is not None:
            C, d, R = C[neurons], d[neurons], R[neurons]
        J, h, c = project_observations(C, d, R, y, mask)
        post = dense_e_step(model, y, mask, J, h)
        return Posterior(
            mean=post.mean, cov=post.trial_cov(), latent_dims=model.latent_dims, log_likelihood=c + post.log_z
        )
