"""A Gaussian-process latent as a state-space block: the kernel's SDE form, or the AR(P) lift.

For an across latent observed in ``V`` regions with delays ``δ^v(t)``, the block's views are
``x^v_t = z(t − δ^v(t))`` of one GP ``z`` with kernel ``k`` (unit variance plus a nugget ``ε``). Two state-space
forms:

* **SDE** — latents without delays (within latents, GPFA's shared latents) whose kernel has an exact
  ``sde_form()`` (the Matérn family) or an approximate ``state_space_form()`` (the RBF's, whose error does not
  depend on the timescale: :mod:`mbrila.kernels.rbf_state_space`). The SDE is discretised exactly,
  ``A = expm(F)``, ``Q = P∞ − A P∞ Aᵀ``, and every view reads the same state, ``x^v = H s``.
* **AR(P) lift** (:mod:`mbrila.dynamics.lift`) — delayed latents and the other kernels. Its fidelity falls as the
  timescale grows past ``P`` bins.

An SDE state holds the process's derivatives, which the data barely determine, so EM's plain timescale update
crawls (on a 3-latent GPFA fit a timescale initialised at 1 bin, truth 6, reached 1.02 after 25 iterations,
against 4.3 with the AR(4) lift, whose state is lagged values); the EM engines over-relax it
(:class:`~mbrila.inference.overrelax.ParameterRelaxation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import torch
from torch import Tensor, nn

from mbrila.dynamics.block import BlockMoments, BlockTransition, expected_log_prior, gaussian_expected_logpdf
from mbrila.dynamics.exact_gp import check_gp_latent
from mbrila.dynamics.lift import lift, transition_windows, window_covariance, window_times
from mbrila.dynamics.window_objective import window_expected_log_prior, window_moments
from mbrila.kernels import BaseKernel, SDEForm, discretize_sde


class MarkovianGPLatent(nn.Module):
    """One GP latent as a linear-Gaussian state-space block (module docstring: SDE form or AR(P) lift).

    Parameters
    ----------
    kernel : the latent's kernel; its parameters (e.g. the timescale) are learned.
    n_views : ``V``, the regions that observe this latent (1 for a within latent).
    order : AR order ``P`` of the lift (ignored on the SDE path).
    eps : GP nugget ``ε`` (DLAG's convention: ``k_total = (1 − ε) k + ε δ``); keeps the lift well conditioned.
        The SDE path drops the white part (the observation noise absorbs it) and scales the SDE by ``1 − ε``.
    exact_sde : use the kernel's exact ``sde_form()`` when the latent is undelayed (default True).
    approximate_sde : use the kernel's approximate ``state_space_form()`` (e.g. the RBF's) when the latent is
        undelayed and the kernel has no exact SDE (default True; False keeps the AR(P) lift).
    delayed : whether the views see the latent at delays of their own (True for DLAG's and ADM's across latents;
        False for GPFA's shared latents). A latent with one view is never delayed.
    """

    def __init__(
        self,
        kernel: BaseKernel,
        n_views: int = 1,
        order: int = 4,
        eps: float = 1e-3,
        exact_sde: bool = True,
        approximate_sde: bool = True,
        delayed: bool = True,
    ) -> None:
        super().__init__()
        check_gp_latent(kernel, n_views, eps)
        if order < 1:
            raise ValueError(f"order (the AR order P) must be at least 1; got {order}.")
        self.kernel = kernel
        self.n_views = n_views
        self.order = order
        self.eps = eps
        undelayed = n_views == 1 or not delayed
        wanted = (exact_sde and kernel.has_sde_form) or (approximate_sde and kernel.has_state_space_form)
        self.uses_sde = bool(undelayed and wanted)
        self.exact = bool(exact_sde and kernel.has_sde_form)

    def sde(self) -> SDEForm:
        """The SDE this latent uses (exact if the kernel has one, else the kernel's approximation)."""
        return self.kernel.sde_form() if self.exact else self.kernel.state_space_form()

    @property
    def state_dim(self) -> int:
        if self.uses_sde:
            return int(self.sde().F.shape[-1])
        return self.order * self.n_views

    def transition(self, delays: Tensor | None = None) -> BlockTransition:
        """State-space pieces for the given delays.

        Parameters
        ----------
        delays : ``(V,)`` constant or ``(T, V)`` time-varying delays in bins (None: no delay).
        """
        if self.uses_sde:
            if delays is not None and bool((delays != 0).any()):
                raise ValueError("the SDE path has no delays; build the latent with delayed=True.")
            tr = sde_transition(self.sde(), self.eps)
            return replace(tr, H=tr.H.expand(self.n_views, tr.H.shape[-1]))
        ref = self._reference_tensor()
        if delays is None:
            delays = torch.zeros(self.n_views, dtype=ref.dtype, device=ref.device)
        if delays.shape[-1] != self.n_views:
            raise ValueError(f"delays must have {self.n_views} views in the last dimension; got {tuple(delays.shape)}.")
        A, Q, P0 = lift(self.kernel, delays, self.order, self.eps)
        S = self.state_dim
        H = torch.eye(self.n_views, S, dtype=A.dtype, device=A.device)
        noisy = torch.arange(self.n_views, device=A.device)
        return BlockTransition(A=A, Q=Q, P0=P0, H=H, noisy=noisy)

    def _reference_tensor(self) -> Tensor:
        return self.kernel.reference_tensor()


def lifted_group_key(blk: nn.Module, delays: Tensor | None) -> tuple | None:
    """Blocks with equal keys can share one :func:`grouped_expected_log_prior` call; None: not a GP block.

    AR-lifted latents group by views, order, nugget and delay shape; SDE latents by kernel class, state size and
    nugget.
    """
    if not isinstance(blk, MarkovianGPLatent):
        return None
    if blk.uses_sde:
        return ("sde", type(blk.kernel), blk.exact, blk.state_dim, blk.eps)
    shape = (blk.n_views,) if delays is None else tuple(delays.shape)
    return ("ar", blk.n_views, blk.order, blk.eps, shape)


@dataclass(frozen=True)
class GroupMoments:
    """The moments a group of GP latents needs, stacked once per M-step (leading dimension: the blocks).

    ``windows``: for AR-lifted latents, ``(G, K, (P+1)V, (P+1)V)`` summed second moments of the windows
    ``(z_t, s_{t−1})`` (:func:`~mbrila.dynamics.window_objective.window_moments`; ``K = 1`` when summed over
    time); ``block``: for SDE latents, their :class:`~mbrila.dynamics.block.BlockMoments` stacked;
    ``first``: ``(G, S, S)`` of the first state; ``n_trials``; ``count`` residuals per transition moment.
    """

    windows: Tensor | None
    block: BlockMoments | None
    first: Tensor
    n_trials: int
    count: int


def stack_moments(blocks: Sequence[MarkovianGPLatent], moments: Sequence[BlockMoments]) -> GroupMoments:
    """:class:`GroupMoments` of several blocks of one group (:func:`lifted_group_key`)."""
    cur, cross, prev = (torch.stack([getattr(m, f) for m in moments]) for f in ("cur", "cross", "prev"))
    first = torch.stack([m.first for m in moments])
    n, count = moments[0].n_trials, moments[0].count
    if blocks[0].uses_sde:
        return GroupMoments(None, BlockMoments(first, cur, cross, prev, n, count), first, n, count)
    return GroupMoments(window_moments(cur, cross, prev, blocks[0].n_views), None, first, n, count)


def grouped_expected_log_prior(
    blocks: Sequence[MarkovianGPLatent], delays: Sequence[Tensor | None], moments: GroupMoments
) -> Tensor:
    """``Σ_g E[log p(s^g)]`` over the GP latents of one group (:func:`lifted_group_key`), as one batch.

    Equal to summing :func:`~mbrila.dynamics.block.expected_log_prior` of each block's :meth:`transition`; only
    the kernels are evaluated per block. AR-lifted latents are evaluated from their window covariances
    (:mod:`mbrila.dynamics.window_objective`, analytic gradient); SDE latents share one batched matrix
    exponential.
    """
    first = blocks[0]
    if first.uses_sde:
        assert moments.block is not None
        return _sde_group(blocks, moments.block)
    assert moments.windows is not None
    ref = first._reference_tensor()
    V, PV = first.n_views, first.state_dim
    views = [torch.zeros(V, dtype=ref.dtype, device=ref.device) if d is None else d for d in delays]
    Sigma = torch.stack(
        [
            window_covariance(b.kernel, window_times(d, first.order), first.eps)
            for b, d in zip(blocks, views, strict=True)
        ]
    )
    constant = views[0].ndim == 1
    transitions, P0 = transition_windows(Sigma, constant, PV)
    if constant:
        transitions = transitions.unsqueeze(1)  # one (time-summed) transition per block
    ll = window_expected_log_prior(transitions, moments.windows, V, moments.count)
    return ll + gaussian_expected_logpdf(P0, moments.first, moments.n_trials)


def _sde_group(blocks: Sequence[MarkovianGPLatent], moments: BlockMoments) -> Tensor:
    """SDE latents (no delay) of one kernel class: ``A = expm(F)``, ``Q = P∞ − A P∞ Aᵀ`` batched."""
    forms = [b.sde() for b in blocks]
    stacked = SDEForm(F=torch.stack([f.F for f in forms]), H=forms[0].H, Pinf=torch.stack([f.Pinf for f in forms]))
    tr = sde_transition(stacked, blocks[0].eps)
    # One (time-summed) transition per block.
    return expected_log_prior(replace(tr, A=tr.A.unsqueeze(1), Q=tr.Q.unsqueeze(1)), moments)


def sde_transition(sde: SDEForm, eps: float) -> BlockTransition:
    """The exactly discretised SDE as a block (batched over leading dimensions of ``F`` and ``P∞``).

    The nugget is white noise on the read-out; the SDE state carries the ``(1 − ε)`` smooth part.
    """
    A, Q = discretize_sde(sde, 1.0)
    scale = 1.0 - eps
    noisy = torch.arange(A.shape[-1], device=A.device)
    return BlockTransition(A=A, Q=scale * Q, P0=scale * sde.Pinf, H=sde.H, noisy=noisy)
