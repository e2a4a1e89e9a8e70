"""Exact Gaussian conditioning of dense GP latents on observations given in latent information form.

Every trial's latents ``x (T, K)`` (``K`` region latents per time step) are the views of independent GP blocks;
block ``b`` stacks its ``V_b`` views over the trial into ``z_b`` (``V_b·T`` entries, view-major) with covariance
``K_b``. Stacking all blocks gives ``z`` (``M = Σ_b V_b·T = K·T`` entries) with the block-diagonal prior
``N(0, blockdiag(K_b))``. The observation enters as ``exp(hᵀx − ½ xᵀ J x)`` per time step (the information
form of :mod:`mbrila.inference.kalman.observation`, or the ARD read-out's expectations), so the posterior is::

    P = K⁻¹ + Jz,   Σ = P⁻¹,   m = Σ hz,
    log Z = log ∫ N(z; 0, K) exp(hzᵀz − ½ zᵀ Jz z) dz = ½ hzᵀ m − ½ log|K| − ½ log|P|

(``Jz``, ``hz``: ``J`` and ``h`` laid out on ``z``; ``Jz`` is block-diagonal in time). ``K⁻¹`` is assembled block by
block; ``P`` is factorised **once per distinct observation pattern** and shared by every trial with that pattern:
once in all when nothing is missing, once per distinct trial length for ragged trials, and once per trial when
entries are missing at random (then the cost is ``O(trials · M³)`` instead of ``O(M³)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from mbrila.utils.linalg import symmetrize


@dataclass(frozen=True)
class DenseLayout:
    """Where each entry of the stacked block vector ``z`` sits in ``x``.

    Attributes
    ----------
    time, row : ``(M,)`` time step and row of ``x`` of each entry of ``z``.
    at : ``(T, K)`` index into ``z`` of ``x[t, row]``.
    block_slices : each block's range in ``z``.
    """

    time: Tensor
    row: Tensor
    at: Tensor
    block_slices: tuple[slice, ...]

    @property
    def size(self) -> int:
        return int(self.time.shape[0])


def dense_layout(view_rows: Sequence[Sequence[int]], n_x: int, T: int, device: torch.device) -> DenseLayout:
    """The layout of blocks whose views feed rows ``view_rows[b]`` of ``x`` (each row fed exactly once)."""
    times, rows, slices, o = [], [], [], 0
    for vr in view_rows:
        r = torch.as_tensor(list(vr), dtype=torch.long, device=device)
        times.append(torch.arange(T, device=device).repeat(len(vr)))
        rows.append(r.repeat_interleave(T))
        slices.append(slice(o, o + len(vr) * T))
        o += len(vr) * T
    time, row = torch.cat(times), torch.cat(rows)
    fed = torch.bincount(row, minlength=n_x)
    if o != n_x * T or not bool((fed == T).all()):
        raise ValueError(f"every row of x must be fed by exactly one block view; rows fed {fed.tolist()} times / T.")
    at = torch.empty(T, n_x, dtype=torch.long, device=device)
    at[time, row] = torch.arange(o, device=device)
    return DenseLayout(time=time, row=row, at=at, block_slices=tuple(slices))


def observation_groups(mask: Tensor | None, n_trials: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Trials that share an observation pattern share one factorisation.

    Returns ``(group (B,), first (G,))``: each trial's group index and one representative trial per group.
    """
    if mask is None:
        return torch.zeros(n_trials, dtype=torch.long, device=device), torch.zeros(1, dtype=torch.long, device=device)
    _, group = torch.unique(mask.reshape(n_trials, -1), dim=0, return_inverse=True)
    G = int(group.max()) + 1
    first = torch.full((G,), n_trials, dtype=torch.long, device=device)
    first = first.scatter_reduce(0, group, torch.arange(n_trials, device=device), reduce="amin")
    return group, first


@dataclass(frozen=True)
class DensePosterior:
    """Posterior of the dense latents (see the module docstring).

    Attributes
    ----------
    mean : ``(B, T, K)`` posterior means of ``x``.
    time_cov : ``(G, T, K, K)`` posterior covariance of ``x_t`` for each observation group.
    group : ``(B,)`` group of each trial.
    block_second : per block, ``Σ_trials E[z_b z_bᵀ]`` ``(V_b·T, V_b·T)``.
    log_z : ``(B,)`` ``log Z`` of each trial.
    cov : ``(G, M, M)`` full posterior covariances of ``z``; kept for :meth:`kl_to_prior`.
    prior_inv, prior_logdet : ``K⁻¹ (M, M)`` and ``log|K|``.
    z_mean : ``(B, M)`` posterior means of ``z``.
    """

    mean: Tensor
    time_cov: Tensor
    group: Tensor
    block_second: list[Tensor]
    log_z: Tensor
    cov: Tensor
    prior_inv: Tensor
    prior_logdet: Tensor
    z_mean: Tensor

    def trial_cov(self) -> Tensor:
        """``(B, T, K, K)`` (or ``(1, T, K, K)`` when one group) posterior covariances of ``x_t`` per trial."""
        return self.time_cov if self.time_cov.shape[0] == 1 else self.time_cov[self.group]

    def kl_to_prior(self) -> Tensor:
        """``Σ_trials KL(q(z) ‖ N(0, K))``: ``½ [tr(K⁻¹(Σ + m mᵀ)) − M + log|K| − log|Σ|]`` per trial."""
        n_g = torch.bincount(self.group, minlength=self.cov.shape[0]).to(self.cov.dtype)
        tr_cov = (self.prior_inv * self.cov).sum((-1, -2))  # tr(K⁻¹ Σ_g): both symmetric
        logdet_cov = torch.linalg.slogdet(self.cov)[1]
        quad = ((self.z_mean @ self.prior_inv) * self.z_mean).sum(-1)
        M = self.cov.shape[-1]
        per_group = tr_cov - M + self.prior_logdet - logdet_cov
        return 0.5 * ((n_g * per_group).sum() + quad.sum())


def _cholesky(P: Tensor, what: str) -> Tensor:
    L, info = torch.linalg.cholesky_ex(P)
    if bool((info != 0).any()):
        raise ValueError(
            f"the {what} is not positive definite: the model is numerically degenerate (a kernel or delays that "
            "make two latent views coincide, or noise variances at zero); raise the GP nugget eps or use float64."
        )
    return L


def dense_posterior(
    covs: Sequence[Tensor],
    layout: DenseLayout,
    J: Tensor,
    h: Tensor,
    group: Tensor | None = None,
    *,
    chunk_bytes: int = 2**28,
) -> DensePosterior:
    """Condition the dense GP latents on the information-form observation (module docstring).

    Parameters
    ----------
    covs : per block, the prior covariance ``K_b`` ``(V_b·T, V_b·T)``.
    layout : from :func:`dense_layout`.
    J : ``(K, K)`` shared by all trials and times, or ``(G, T, K, K)`` per observation group.
    h : ``(B, T, K)``.
    group : ``(B,)`` group of each trial (needed when ``J`` is per group).
    chunk_bytes : memory bound of the per-trial solves when groups differ.
    """
    B = h.shape[0]
    M = layout.size
    Ls = [_cholesky(K, "prior covariance of a GP latent") for K in covs]
    prior_inv = torch.block_diag(*[torch.cholesky_inverse(L) for L in Ls])
    prior_logdet = torch.stack([2 * L.diagonal().log().sum() for L in Ls]).sum()
    t, r = layout.time, layout.row
    same_t = (t[:, None] == t[None, :]).to(h.dtype)
    if J.ndim == 2:
        Jz = (J[r[:, None], r[None, :]] * same_t)[None]
        group = torch.zeros(B, dtype=torch.long, device=h.device)
    else:
        if group is None:
            raise ValueError("group is required when J is given per observation group.")
        Jz = J[:, t[:, None], r[:, None], r[None, :]] * same_t
    L = _cholesky(symmetrize(prior_inv + Jz), "posterior precision of the latents")
    del Jz
    logdet_P = 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (G,)
    cov = symmetrize(torch.cholesky_inverse(L))
    del L
    hz = h[:, t, r]  # (B, M)
    G = cov.shape[0]
    if G == 1:
        z_mean = hz @ cov[0]
    else:
        z_mean = torch.empty_like(hz)
        step = max(1, chunk_bytes // max(1, M * M * h.element_size()))
        for s in range(0, B, step):  # memory-bounded chunks of trials, each a batched solve
            idx = slice(s, min(B, s + step))
            z_mean[idx] = (cov[group[idx]] @ hz[idx, :, None]).squeeze(-1)
    log_z = 0.5 * (hz * z_mean).sum(-1) - 0.5 * prior_logdet - 0.5 * logdet_P[group]
    at = layout.at
    time_cov = cov[:, at[:, :, None], at[:, None, :]]
    counts = torch.bincount(group, minlength=G).to(h.dtype)
    block_second = []
    for sl in layout.block_slices:  # a few latents
        m = z_mean[:, sl]
        block_second.append(torch.einsum("g,gij->ij", counts, cov[:, sl, sl]) + m.mT @ m)
    return DensePosterior(
        mean=z_mean[:, at],
        time_cov=time_cov,
        group=group,
        block_second=block_second,
        log_z=log_z,
        cov=cov,
        prior_inv=prior_inv,
        prior_logdet=prior_logdet,
        z_mean=z_mean,
    )
