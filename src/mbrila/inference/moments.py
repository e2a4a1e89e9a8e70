"""Sufficient statistics of the smoothed latent state, summed over trials once per E-step.

Everything the M-step needs is a function of

    S_t = Σ_b E[s_t s_tᵀ | y_b]         (T, D, D)
    X_t = Σ_b E[s_{t+1} s_tᵀ | y_b]     (T−1, D, D)

(plus the means for the observation update), so gradient steps on dynamics parameters cost ``O(T·D²)``
per step regardless of the number of trials. Keeping them as one object is also what data-parallel EM
all-reduces (:meth:`StateMoments.reduce`, :mod:`mbrila.distributed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from mbrila.distributed import active, all_sum
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
    #: True for :meth:`reduce` ``(time_invariant=True)``'s form: ``second`` is ``(3, D, D)``, the first step, the sum
    #: over the steps in between and the last step; ``cross`` is ``(1, D, D)``, the sum over all steps. Only sums over
    #: time can be read from it (what every time-invariant block reads).
    compact: bool = False
    #: The trial length ``T`` behind a compact form.
    n_steps: int = 0

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

    def reduce(self, time_invariant: bool = False) -> StateMoments:
        """The moments summed over the trials of every process of a data-parallel fit (this object without one).

        ``time_invariant`` (every block's transition the same at every step, e.g. constant delays): the sums over
        time are taken first and only they are reduced (:attr:`compact`), ``4·D²`` numbers instead of ``2·T·D²``.
        """
        if not active():
            return self
        second, cross = self.second, self.cross
        if time_invariant and not self.compact:
            second = torch.stack([second[0], second[1:-1].sum(0), second[-1]])
            cross = cross.sum(0, keepdim=True)
        second, cross, n = all_sum(second, cross, second.new_full((), float(self.n_trials)))
        steps = self.n_steps if self.compact else self.second.shape[0]
        return StateMoments(second, cross, round(float(n)), compact=time_invariant or self.compact, n_steps=steps)

    def block(self, index: slice, *, sum_over_time: bool) -> BlockMoments:
        """Moments of the state entries ``index`` (one latent block)."""
        S = self.second[:, index, index]
        X = self.cross[:, index, index]
        if self.compact:
            if not sum_over_time:
                raise RuntimeError("time-resolved moments were asked of a time-invariant model's reduced moments")
            first, middle, last = S[0], S[1], S[2]
            return BlockMoments(
                first=first,
                cur=(middle + last).unsqueeze(0),
                cross=X,
                prev=(first + middle).unsqueeze(0),
                n_trials=self.n_trials,
                count=self.n_trials * (self.n_steps - 1),
            )
        mom = BlockMoments(first=S[0], cur=S[1:], cross=X, prev=S[:-1], n_trials=self.n_trials, count=self.n_trials)
        return mom.summed_over_time() if sum_over_time else mom
