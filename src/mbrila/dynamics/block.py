"""The contract every latent block meets, and the expected log prior used by the gradient M-step.

A block is one latent process (a GP latent, lifted; or a free LDS) with a state ``s_t`` of ``S`` entries and
``V`` views read out linearly, ``x^v_t = H[v] s_t``. Its transition ``s_t = A s_{t−1} + w_t`` injects noise
only into some rows (``noisy``): an AR(P) lift has noise on the current lag only, an SDE on every entry.
Writing ``u_t = s_t[noisy]``, the block's prior density is

    log p(s_{0:T−1}) = log N(s_0; 0, P0) + Σ_{t≥1} log N(u_t; A[noisy] s_{t−1}, Q[noisy, noisy])

up to terms that do not depend on the parameters (the deterministic shift rows).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class BlockTransition:
    """State-space pieces of one block.

    Attributes
    ----------
    A, Q : ``(S, S)`` or ``(T−1, S, S)``
    P0 : ``(S, S)`` covariance of the first state (the mean is zero).
    H : ``(V, S)`` read-out of the block's views.
    noisy : ``(S',)`` long indices of the rows of ``Q`` that carry noise (``Q`` is zero elsewhere).
    """

    A: Tensor
    Q: Tensor
    P0: Tensor
    H: Tensor
    noisy: Tensor


@dataclass(frozen=True)
class BlockMoments:
    """Smoothed second moments of one block's state, summed over trials.

    Attributes
    ----------
    first : ``(S, S)`` — ``Σ_b E[s_0 s_0ᵀ]``
    cur : ``(K, S, S)`` — ``Σ_b E[s_t s_tᵀ]`` for the transitions ``t = 1 … T−1`` (``K = T−1``), or their sum
        over time (``K = 1``).
    cross : ``(K, S, S)`` — the same for ``E[s_t s_{t−1}ᵀ]``
    prev : ``(K, S, S)`` — the same for ``E[s_{t−1} s_{t−1}ᵀ]``
    n_trials : trials summed into ``first``.
    count : residuals summed into each of the ``K`` entries (``n_trials``, or ``n_trials·(T−1)`` when summed
        over time).
    """

    first: Tensor
    cur: Tensor
    cross: Tensor
    prev: Tensor
    n_trials: int
    count: int

    def summed_over_time(self) -> BlockMoments:
        """Sum the transitions over time: for time-invariant blocks every gradient step is then ``O(S³)``."""
        if self.cur.shape[0] == 1:
            return self
        return BlockMoments(
            self.first,
            self.cur.sum(0, keepdim=True),
            self.cross.sum(0, keepdim=True),
            self.prev.sum(0, keepdim=True),
            self.n_trials,
            self.count * self.cur.shape[0],
        )


def gaussian_expected_logpdf(cov: Tensor, second_moment: Tensor, count: int) -> Tensor:
    """``Σ E[log N(e; 0, cov)]`` over ``count`` residuals ``e`` whose summed ``E[e eᵀ]`` is ``second_moment``.

    Batched over leading dimensions (summed).
    """
    L, info = torch.linalg.cholesky_ex(cov)
    if bool((info != 0).any()):
        raise ValueError("a latent's innovation covariance is not positive definite; raise the GP nugget eps.")
    logdet = 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    quad = torch.cholesky_solve(second_moment, L).diagonal(dim1=-2, dim2=-1).sum(-1)
    dim = cov.shape[-1]
    return (-0.5 * (count * (logdet + dim * math.log(2 * math.pi)) + quad)).sum()


def expected_log_prior(tr: BlockTransition, mom: BlockMoments) -> Tensor:
    """Expected complete-data log prior ``E[log p(s_{0:T−1})]`` of one block, summed over trials.

    Differentiable in the block's parameters through ``tr``. ``tr.A`` is ``(S, S)`` (then ``mom`` may be
    summed over time) or ``(T−1, S, S)`` (``mom`` per transition).
    """
    idx = tr.noisy
    coef = tr.A[..., idx, :]  # (…, S', S)
    Qn = tr.Q[..., idx, :][..., :, idx]
    uu = mom.cur[..., idx, :][..., :, idx]
    us = mom.cross[..., idx, :]
    # Σ E[(u − coef s)(u − coef s)ᵀ], with u the noisy rows of s_t and s = s_{t−1}.
    resid = uu - coef @ us.mT - us @ coef.mT + coef @ mom.prev @ coef.mT
    ll = gaussian_expected_logpdf(Qn, resid, mom.count)
    return ll + gaussian_expected_logpdf(tr.P0, mom.first, mom.n_trials)
