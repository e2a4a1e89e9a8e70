"""Dense reference for the multi-region delayed-GP model: the joint prior of every latent entry, built entry by
entry from ``kernel.cov``, and plain Gaussian conditioning on the observed entries of ``y``. Nothing from
``mbrila.dynamics`` or ``mbrila.inference`` is used — slow, obvious, and independent of the library.

Model (the library's conventions, restated): ``x_t = [x^0_t; …; x^{R−1}_t]``, region ``r``'s rows are its across
latents ``k = 0 … n_across−1`` as seen from ``r``, then its own within latents. Across latent ``k`` is one GP
``z_k`` seen by region ``r`` at ``t − δ_k^r(t)``; within latents are independent GPs without delay::

    Cov(x_i(t), x_j(t')) = (1 − ε) k(s_i(t) − s_j(t')) + ε 1[i = j, t = t']   if rows i, j read the same GP
                         = 0                                                   otherwise

with ``s_i(t)`` the delayed sample time of row ``i``, except that a GP read by a single row whose kernel has an
exact SDE form has no white part (``ε`` dropped, ``(1 − ε) k`` kept): the state-space form lifts it by its SDE,
which cannot carry white noise, and the dense form follows it. ``y_t = C x_t + d + e_t``, ``e_t ~ N(0, diag R)``.
The stacked latent vector is time-major: entry ``t·K + i`` is ``x_i(t)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from tests.reference.dense_gaussian import condition


@dataclass(frozen=True)
class Row:
    """One row of ``x``: the GP it reads (``process``), its region and, for an across latent, its index."""

    process: int
    region: int
    across: int | None


def row_layout(n_across: int, n_within: Sequence[int]) -> list[Row]:
    """The rows of ``x`` in the model's order. Processes: across ``0 … n_across−1``, then the within latents
    region by region."""
    rows: list[Row] = []
    nxt = n_across
    for r, w in enumerate(n_within):
        rows.extend(Row(k, r, k) for k in range(n_across))
        rows.extend(Row(nxt + j, r, None) for j in range(w))
        nxt += w
    return rows


def _sample_time(row: Row, t: int, delays: Tensor | None) -> float:
    if row.across is None or delays is None:
        return float(t)
    d = delays[t] if delays.ndim == 3 else delays  # (R, n_across) at time t
    return float(t) - float(d[row.region, row.across])


def white_part(kernel, n_views: int, eps: float) -> float:
    """The white-noise variance a view of this GP carries (module docstring)."""
    return 0.0 if n_views == 1 and kernel.has_sde_form else eps


def prior_covariance(kernels: Sequence, rows: Sequence[Row], delays: Tensor | None, eps: float, T: int) -> Tensor:
    """``(T·K, T·K)`` prior covariance of the time-major stacked latents.

    Parameters
    ----------
    kernels : one kernel per process (across latents first, then the within latents region by region).
    rows : from :func:`row_layout`.
    delays : ``(R, n_across)`` constant or ``(T, R, n_across)`` time-varying delays (None: no delays).
    """
    K = len(rows)
    S = torch.zeros(T * K, T * K, dtype=torch.float64)
    views = [sum(r.process == p for r in rows) for p in range(len(kernels))]
    for i, ri in enumerate(rows):
        for j, rj in enumerate(rows):
            if ri.process != rj.process:
                continue
            lag = torch.zeros(T, T, dtype=torch.float64)
            for t in range(T):
                for u in range(T):
                    lag[t, u] = _sample_time(ri, t, delays) - _sample_time(rj, u, delays)
            with torch.no_grad():
                block = (1.0 - eps) * kernels[ri.process].cov(lag).to(torch.float64)
            white = white_part(kernels[ri.process], views[ri.process], eps)
            for t in range(T):
                for u in range(T):
                    S[t * K + i, u * K + j] = block[t, u] + (white if (i == j and t == u) else 0.0)
    return S


def view_covariance(kernel, delays: Tensor | None, n_views: int, eps: float, T: int, sde: bool = True) -> Tensor:
    """``(V·T, V·T)`` view-major covariance of one GP seen in ``V`` views with delays ``(V,)`` or ``(T, V)``
    (``sde=False``: keep the white part even for a single-view SDE kernel)."""
    S = torch.zeros(n_views * T, n_views * T, dtype=torch.float64)
    white = white_part(kernel, n_views, eps) if sde else eps

    def s(v: int, t: int) -> float:
        if delays is None:
            return float(t)
        return float(t) - float(delays[t, v] if delays.ndim == 2 else delays[v])

    for v in range(n_views):
        for t in range(T):
            for w in range(n_views):
                for u in range(T):
                    lag = torch.tensor(s(v, t) - s(w, u), dtype=torch.float64)
                    with torch.no_grad():
                        val = (1.0 - eps) * float(kernel.cov(lag))
                    S[v * T + t, w * T + u] = val + (white if (v == w and t == u) else 0.0)
    return S


@dataclass
class DenseGPPosterior:
    mean: Tensor  # (B, T, K)
    cov: Tensor  # (B, T, K, K)
    log_likelihood: Tensor  # (B,) log p(observed y)
    full_cov: Tensor  # (B, T·K, T·K) time-major


def dense_gp_posterior(
    prior: Tensor, C: Tensor, d: Tensor, R: Tensor, y: Tensor, mask: Tensor | None = None
) -> DenseGPPosterior:
    """Condition ``x ~ N(0, prior)`` on the observed entries of ``y (B, T, N)`` (float64)."""
    B, T, N = y.shape
    K = C.shape[1]
    obs = torch.ones(B, T, N, dtype=torch.bool) if mask is None else mask.bool()
    Cfull = torch.block_diag(*([C] * T))
    dfull, Rfull = d.repeat(T), R.repeat(T)
    mu = torch.zeros(T * K, dtype=torch.float64)
    means, covs, lls, fulls = [], [], [], []
    for b in range(B):
        o = obs[b].reshape(-1)
        yb = torch.where(obs[b], y[b], torch.zeros_like(y[b])).reshape(-1)
        m, S, ll = condition(mu, prior, Cfull[o], dfull[o], Rfull[o], yb[o])
        means.append(m.reshape(T, K))
        covs.append(torch.stack([S[t * K : (t + 1) * K, t * K : (t + 1) * K] for t in range(T)]))
        lls.append(ll)
        fulls.append(S)
    return DenseGPPosterior(torch.stack(means), torch.stack(covs), torch.stack(lls), torch.stack(fulls))


@dataclass
class InformationPosterior:
    mean: Tensor  # (B, T, K)
    full_cov: Tensor  # (B, T·K, T·K)
    log_z: Tensor  # (B,) log ∫ N(x; 0, prior) exp(Σ_t h_tᵀx_t − ½ x_tᵀ J_t x_t) dx
    kl: Tensor  # (B,) KL(q ‖ N(0, prior))


def information_posterior(prior: Tensor, J: Tensor, h: Tensor) -> InformationPosterior:
    """The Gaussian ``q(x) ∝ N(x; 0, prior) exp(Σ_t h_tᵀx_t − ½ x_tᵀ J_t x_t)`` per trial, its normaliser and its
    KL divergence to the prior. ``J`` is ``(K, K)`` (every trial and time) or ``(B, T, K, K)``; ``h (B, T, K)``."""
    B, T, K = h.shape
    M = T * K
    prior_inv = torch.linalg.inv(prior)
    logdet_prior = torch.linalg.slogdet(prior)[1]
    means, covs, log_zs, kls = [], [], [], []
    for b in range(B):
        Jz = torch.zeros(M, M, dtype=torch.float64)
        for t in range(T):
            Jz[t * K : (t + 1) * K, t * K : (t + 1) * K] = J if J.ndim == 2 else J[b, t]
        P = prior_inv + Jz
        S = torch.linalg.inv(P)
        S = 0.5 * (S + S.T)
        hz = h[b].reshape(-1)
        m = S @ hz
        logdet_S = torch.linalg.slogdet(S)[1]
        log_zs.append(0.5 * hz @ m - 0.5 * logdet_prior + 0.5 * logdet_S)
        kls.append(0.5 * (torch.trace(prior_inv @ S) + m @ prior_inv @ m - M + logdet_prior - logdet_S))
        means.append(m.reshape(T, K))
        covs.append(S)
    return InformationPosterior(torch.stack(means), torch.stack(covs), torch.stack(log_zs), torch.stack(kls))


def time_blocks(full_cov: Tensor, T: int, K: int) -> Tensor:
    """``(B, T, K, K)`` per-time blocks of time-major ``(B, T·K, T·K)`` covariances."""
    return torch.stack([full_cov[:, t * K : (t + 1) * K, t * K : (t + 1) * K] for t in range(T)], 1)
