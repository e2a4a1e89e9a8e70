"""Sufficient statistics of the smoothed latent state, summed over trials once per E-step.

Everything the M-step needs is a function of

    S_t = Σ_b E[s_t s_tᵀ | y_b]         (T, D, D)
    X_t = Σ_b E[s_{t+1} s_tᵀ | y_b]     (T−1, D, D)

(plus the means for the observation update), so gradient steps on dynamics parameters cost ``O(T·D²)``
per step regardless of the number of trials. Keeping them as one object is also what data-parallel EM
would all-reduce.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mbrila.dynamics.block import BlockMoments
from mbrila.inference.kalman import SmootherResult

if TYPE_CHECKING:
    from mbrila.inference.laplace import LaplaceResult


@dataclass(frozen=True)
class StateMoments:
    """Trial-summed smoothed moments of the full state (see the module docstring)."""

    second: Tensor  # (T, D, D)
    cross: Tensor  # (T-1, D, D)
    n_trials: int

    @classmethod
    def from_posterior(cls, post: SmootherResult | LaplaceResult) -> StateMoments:
        m = post.mean
        B = m.shape[0]
        # Covariances shared by all trials carry a leading 1: multiply by B instead of summing copies.
        cov_sum = post.cov.sum(0) * (B if post.cov.shape[0] == 1 else 1)
        cross_sum = post.cross_cov.sum(0) * (B if post.cross_cov.shape[0] == 1 else 1)
        second = cov_sum + torch.einsum("bti,btj->tij", m, m)
        cross = cross_sum + torch.einsum("bti,btj->tij", m[:, 1:], m[:, :-1])
        return cls(second=second, cross=cross, n_trials=B)

    def block(self, index: slice, *, sum_over_time: bool) -> BlockMoments:
        """Moments of the state entries ``index`` (one latent block)."""
        S = self.second[:, index, index]
        X = self.cross[:, index, index]
        mom = BlockMoments(first=S[0], cur=S[1:], cross=X, prev=S[:-1], n_trials=self.n_trials, count=self.n_trials)
        return mom.summed_over_time() if sum_over_time else mom
