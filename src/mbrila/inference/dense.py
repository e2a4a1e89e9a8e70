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
    prior_inv, prior_logdet : per block ``K_b⁻¹`` and ``log|K|``.
    z_mean : ``(B, M)`` posterior means of ``z``.
    block_slices : each block's range in ``z``.
    """

    mean: Tensor
    time_cov: Tensor
    group: Tensor
    block_second: list[Tensor]
    log_z: Tensor
    cov: Tensor
    prior_inv: list[Tensor]
    prior_logdet: Tensor
    z_mean: Tensor
    block_slices: tuple[slice, ...]

    def trial_cov(self) -> Tensor:
        """``(B, T, K, K)`` (or ``(1, T, K, K)`` when one group) posterior covariances of ``x_t`` per trial."""
        return self.time_cov if self.time_cov.shape[0] == 1 else self.time_cov[self.group]

    def kl_to_prior(self) -> Tensor:
        """``Σ_trials KL(q(z) ‖ N(0, K))``: ``½ [tr(K⁻¹(Σ + m mᵀ)) − M + log|K| − log|Σ|]`` per trial."""
        n_g = torch.bincount(self.group, minlength=self.cov.shape[0]).to(self.cov.dtype)
        # K⁻¹ is block-diagonal: tr(K⁻¹ Σ_g) and mᵀK⁻¹m need only each block's part of Σ and m (both symmetric).
        pairs = list(zip(self.prior_inv, self.block_slices, strict=True))
        tr_cov = torch.stack([(Ki * self.cov[:, sl, sl]).sum((-1, -2)) for Ki, sl in pairs]).sum(0)
        logdet_cov = torch.linalg.slogdet(self.cov)[1]
        quad = torch.stack([((self.z_mean[:, sl] @ Ki) * self.z_mean[:, sl]).sum(-1) for Ki, sl in pairs]).sum(0)
        M = self.cov.shape[-1]
        per_group = tr_cov - M + self.prior_logdet - logdet_cov
        return 0.5 * ((n_g * per_group).sum() + quad.sum())


def _not_positive_definite(what: str) -> ValueError:
    return ValueError(
        f"the {what} is not positive definite: the model is numerically degenerate (a kernel or delays that "
        "make two latent views coincide, or noise variances at zero); raise the GP nugget eps or use float64."
    )


def _cholesky(P: Tensor, what: str) -> Tensor:
    L, info = torch.linalg.cholesky_ex(P)
    if bool((info != 0).any()):
        raise _not_positive_definite(what)
    return L


def _factorize(K: Tensor) -> tuple[Tensor, Tensor] | None:
    """``(K⁻¹, log|K|)`` from one Cholesky factorisation; None when ``K`` is not positive definite."""
    L, info = torch.linalg.cholesky_ex(K)
    if bool(info != 0):
        return None
    return torch.cholesky_inverse(L), 2 * L.diagonal().log().sum()


class PriorFactors:
    """``(K_b⁻¹, log|K_b|)`` of the last prior covariance seen for each GP block, reused when it comes back unchanged.

    An EM iteration factorises each ``K_b`` twice at the same parameters: the Fisher step's first objective is at the
    E-step's parameters, and the next E-step at the step's accepted ones. A hit needs the matrix equal entry for
    entry, so a reused factorisation is the one that would have been computed. The returned tensors are shared:
    callers must not modify them in place.
    """

    def __init__(self) -> None:
        self._last: dict[int, tuple[Tensor, Tensor, Tensor]] = {}

    def get(self, key: int, K: Tensor) -> tuple[Tensor, Tensor] | None:
        """``(K⁻¹, log|K|)`` of block ``key``'s covariance ``K``; None when ``K`` is not positive definite."""
        K = K.detach()
        last = self._last.get(key)
        if last is not None and last[0].shape == K.shape and torch.equal(last[0], K):
            return last[1], last[2]
        out = _factorize(K)
        if out is not None:
            self._last[key] = (K, *out)
        return out


def prior_factors(
    covs: Sequence[Tensor], keys: Sequence[int] | None = None, cache: PriorFactors | None = None
) -> list[tuple[Tensor, Tensor]]:
    """``(K_b⁻¹, log|K_b|)`` per block (through ``cache`` under ``keys`` when given); a clear error when one is not
    positive definite."""
    out = []
    for i, K in enumerate(covs):
        # Without a cache K keeps its autograd graph (the cache stores detached matrices).
        got = _factorize(K) if cache is None else cache.get(i if keys is None else keys[i], K)
        if got is None:
            raise _not_positive_definite("prior covariance of a GP latent")
        out.append(got)
    return out


def dense_posterior(
    covs: Sequence[Tensor],
    layout: DenseLayout,
    J: Tensor,
    h: Tensor,
    group: Tensor | None = None,
    *,
    factors: Sequence[tuple[Tensor, Tensor]] | None = None,
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
    factors : per block ``(K_b⁻¹, log|K_b|)`` when already known (:func:`prior_factors`); computed otherwise.
    chunk_bytes : memory bound of the per-trial solves when groups differ.
    """
    B = h.shape[0]
    M = layout.size
    if J.ndim == 2:
        group = torch.zeros(B, dtype=torch.long, device=h.device)
    elif group is None:
        raise ValueError("group is required when J is given per observation group.")
    G = 1 if J.ndim == 2 else J.shape[0]
    factors = prior_factors(covs) if factors is None else factors
    prior_inv = [Kinv for Kinv, _ in factors]
    prior_logdet = torch.stack([logdet for _, logdet in factors]).sum()
    # P = K⁻¹ + Jz written in place: the blocks' inverses on the diagonal, then J at each time step's T·K² entries
    # (Jz is zero elsewhere; building it densely cost more than the factorisation at small M). The Cholesky reads
    # only the lower triangle, so round-off asymmetry of J needs no symmetrising pass over M² entries.
    P = h.new_zeros(G, M, M)
    for Kinv, sl in zip(prior_inv, layout.block_slices, strict=True):
        P[:, sl, sl] = Kinv
    at = layout.at
    T, K = at.shape
    rows, cols = at[:, :, None].expand(T, K, K), at[:, None, :].expand(T, K, K)
    P[:, rows, cols] += J
    L = _cholesky(P, "posterior precision of the latents")
    del P
    logdet_P = 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)  # (G,)
    cov = torch.cholesky_inverse(L)  # exactly symmetric (LAPACK fills one triangle, torch mirrors it)
    del L
    hz = h[:, layout.time, layout.row]  # (B, M)
    if G == 1:
        z_mean = hz @ cov[0]
    else:
        z_mean = torch.empty_like(hz)
        step = max(1, chunk_bytes // max(1, M * M * h.element_size()))
        for s in range(0, B, step):  # memory-bounded chunks of trials, each a batched solve
            idx = slice(s, min(B, s + step))
            z_mean[idx] = (cov[group[idx]] @ hz[idx, :, None]).squeeze(-1)
    log_z = 0.5 * (hz * z_mean).sum(-1) - 0.5 * prior_logdet - 0.5 * logdet_P[group]
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
        block_slices=layout.block_slices,
    )
