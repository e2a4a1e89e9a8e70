"""Initialisation of multi-region latent models from data alone.

1. Shared directions (a multi-set CCA): every region is reduced by PCA and whitened; the top principal
   components of the concatenated whitened data are the directions most correlated *across* regions.
2. Separation by time scale (AMUSE): inside that subspace, rotate to diagonalise the lag-1 autocovariance, so
   across latents with different timescales are not mixed.
3. Each region's projection onto those directions is that region's view of the across latents: the lag of the
   peak cross-correlation with region 0's view initialises the delay; the autocorrelation of the views
   initialises the timescale (RBF-equivalent); a least-squares regression gives the across loadings.
4. Factor analysis of each region's residual gives the within loadings and the noise variances.

Latent estimates are scaled to unit variance, which matches the unit-variance GP prior (the scale anchor).

Every statistic of the data here (means, covariances, lagged products, regressions) is a sum over trials: in a
data-parallel fit (:mod:`mbrila.distributed`) it is summed over every process's trials, so each process starts
from the same estimate as one process holding all the trials would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mbrila.distributed import all_sum, dmean, dsum, global_count
from mbrila.init.factor_analysis import factor_analysis
from mbrila.observations.linear import observed_variance


def _whiten(Y: Tensor, q: int) -> tuple[Tensor, Tensor]:
    """PCA to ``q`` components, each scaled to unit variance: ``(n, n_r) → (n, q)``, and the ``(n_r, q)`` map from
    the centred data to them.

    Components with (numerically) no variance — below ``eps ·`` the largest, e.g. from a constant neuron or an
    all-zero region — are set to zero rather than blown up to unit variance.
    """
    Yc = Y - dmean(Y, 0)
    cov = all_sum(Yc.mT @ Yc)[0] / global_count(Y.shape[0])
    evals, evecs = torch.linalg.eigh(cov)
    evals, evecs = evals.flip(0)[:q], evecs.flip(1)[:, :q]
    tiny = torch.finfo(Y.dtype).eps * evals[:1].clamp_min(torch.finfo(Y.dtype).tiny)
    scale = torch.where(evals > tiny, evals.clamp_min(torch.finfo(Y.dtype).tiny).rsqrt(), torch.zeros_like(evals))
    E = evecs * scale
    return Yc @ E, E


def shared_views(y: Tensor, y_dims: tuple[int, ...], n_across: int, q: int | None = None) -> Tensor:
    """Each region's unit-variance view of the across latents, ``(R, B, T, n_across)``.

    Parameters
    ----------
    y : ``(B, T, N)`` data (missing entries already imputed).
    y_dims : neurons per region.
    n_across : number of shared latents.
    q : PCA components kept per region before whitening (default ``min(n_r, max(4, 3·n_across))``).
    """
    B, T, N = y.shape
    Y = y.reshape(B * T, N)
    Z, maps, splits, o = [], [], [], 0
    for n in y_dims:
        qr = min(n, q if q is not None else max(4, 3 * n_across))
        Zr, Er = _whiten(Y[:, o : o + n], qr)
        Z.append(Zr)
        maps.append(Er)
        splits.append(qr)
        o += n
    Zc = torch.cat(Z, -1)
    _evals, evecs = torch.linalg.eigh(all_sum(Zc.mT @ Zc)[0] / global_count(Zc.shape[0]))
    U = evecs.flip(1)[:, :n_across]
    if U.shape[1] < n_across:  # fewer directions than latents (one small region): the others start at zero
        U = torch.cat([U, U.new_zeros(U.shape[0], n_across - U.shape[1])], 1)
    views = torch.stack([Zr @ Ur for Zr, Ur in zip(Z, U.split(splits, 0), strict=True)])  # (R, BT, K)
    views = views.reshape(len(y_dims), B, T, n_across)
    # AMUSE: rotate to diagonalise the symmetrised lag-1 autocovariance of the pooled view.
    pooled = views.mean(0)
    pooled = pooled - dmean(pooled, (0, 1))
    n_all = global_count(B)
    c0 = all_sum(torch.einsum("bti,btj->ij", pooled, pooled))[0] / (n_all * T)
    w_evals, w_evecs = torch.linalg.eigh(c0)
    W = w_evecs / w_evals.clamp_min(torch.finfo(y.dtype).eps).sqrt()
    white = pooled @ W
    c1 = all_sum(torch.einsum("bti,btj->ij", white[:, 1:], white[:, :-1]))[0] / (n_all * (T - 1))
    _, rot = torch.linalg.eigh(0.5 * (c1 + c1.mT))
    M = W @ rot.flip(1)  # slowest latent first
    # A latent's sign is arbitrary, and eigh's signs can flip under a perturbation of the data at round-off level
    # (sums taken in another order, e.g. over shards). Fix it: the largest entry of each latent's map from the
    # centred data (every region's neurons stacked) is positive.
    P = torch.cat([Er @ Ur for Er, Ur in zip(maps, U.split(splits, 0), strict=True)]) @ M  # (N, K)
    M = M * torch.sign(P.gather(0, P.abs().argmax(0, keepdim=True))).where(P.abs().amax(0, keepdim=True) > 0, 1.0)
    views = views @ M
    views = views - dmean(views, (1, 2)).unsqueeze(1).unsqueeze(1)
    # The sample standard deviation (ddof 1) over all trials and time steps.
    sd = (dsum(views**2, (1, 2)) / (n_all * T - 1)).sqrt().unsqueeze(1).unsqueeze(1)
    return views / sd.clamp_min(torch.finfo(y.dtype).eps)


def peak_lag(a: Tensor, b: Tensor, max_lag: int) -> Tensor:
    """Lag (bins, real-valued) at which ``a`` best matches a delayed copy of ``b``: ``a(t) ≈ b(t − lag)``.

    ``a, b`` are ``(B, T, K)``; returns ``(K,)``. The peak of the trial-averaged cross-correlation is refined
    by a parabola through its neighbours.
    """
    lags = range(-max_lag, max_lag + 1)
    T = a.shape[1]
    cc = []
    for s in lags:  # a few lags; each is a vectorised product over trials and time
        if s >= 0:
            cc.append((a[:, s:] * b[:, : T - s]).sum((0, 1)))
        else:
            cc.append((a[:, : T + s] * b[:, -s:]).sum((0, 1)))
    counts = torch.tensor([T - abs(s) for s in lags], dtype=a.dtype, device=a.device)
    c = all_sum(torch.stack(cc))[0] / (global_count(a.shape[0]) * counts[:, None])  # (L, K): means over all trials
    i = c.argmax(0)
    lag = i.to(a.dtype) - max_lag
    inner = (i > 0) & (i < len(c) - 1)
    ic = i.clamp(1, len(c) - 2)
    cols = torch.arange(c.shape[1], device=c.device)
    left, mid, right = c[ic - 1, cols], c[ic, cols], c[ic + 1, cols]
    denom = left - 2 * mid + right
    shift = torch.where(denom.abs() > 1e-12, 0.5 * (left - right) / denom, torch.zeros_like(denom))
    return torch.where(inner, lag + shift.clamp(-0.5, 0.5), lag)


def rbf_timescale(x: Tensor, T_max: float) -> Tensor:
    """RBF-equivalent timescale of each latent in ``x (…, B, T, K)`` from its autocorrelation at lags 1 and 2.

    For ``k(τ) = exp(−τ²/2ℓ²)`` plus white noise, ``ρ(1)/ρ(2) = exp(3/(2ℓ²))`` regardless of the noise level.
    """
    x = x.reshape(-1, *x.shape[-2:])
    r1, r2 = dmean(x[:, 1:] * x[:, :-1], (0, 1)), dmean(x[:, 2:] * x[:, :-2], (0, 1))
    ratio = (r1 / r2.clamp_min(1e-6)).clamp_min(1.0 + 1e-6)
    ell = torch.sqrt(1.5 / torch.log(ratio))
    return ell.nan_to_num(nan=T_max).clamp(1.0, T_max)


def impute(y: Tensor, mask: Tensor | None) -> Tensor:
    """Replace missing entries by each neuron's mean over its observed entries (a copy)."""
    if mask is None:
        return y
    w = mask.to(y.dtype)
    total, count = all_sum((torch.where(mask, y, 0.0) * w).sum((0, 1)), w.sum((0, 1)))
    return torch.where(mask, y, total / count.clamp_min(1))


def _regress(X: Tensor, Y: Tensor, ridge: float = 1e-6) -> Tensor:
    """Least-squares ``W`` with ``Y ≈ X Wᵀ``: ``X (n, k)``, ``Y (n, m)`` → ``(m, k)``."""
    G, XtY = all_sum(X.mT @ X, X.mT @ Y)
    G = G + ridge * G.diagonal().mean().clamp_min(1.0) * torch.eye(G.shape[0], dtype=G.dtype, device=G.device)
    return torch.linalg.solve(G, XtY).mT


@dataclass
class MultiRegionEstimate:
    """What the initialisation estimated from the data (module docstring, steps 1–4).

    Attributes
    ----------
    C : ``(N, Σ_r D_r)`` block-structured loadings (across columns first in each region, then within).
    d, R : ``(N,)`` offsets and noise variances (not floored).
    delays : ``(R, n_across)`` (row 0 zero) or None without across latents.
    timescales_across : ``(n_across,)``; timescales_within : per region ``(n_within_r,)``.
    counts : ``(N,)`` observed entries per neuron.
    """

    C: Tensor
    d: Tensor
    R: Tensor
    delays: Tensor | None
    timescales_across: Tensor | None
    timescales_within: list[Tensor]
    counts: Tensor


@torch.no_grad()
def estimate_multi_region(model, data, *, max_lag: int | None = None, seed: int = 0) -> MultiRegionEstimate:
    """Steps 1–4 of the module docstring for ``model``'s structure; the model is not changed.

    Parameters
    ----------
    model : gives ``y_dims``, ``latent_spec``, the delay bound (``model.delay.max_delay``) and the noise floor's
        ``min_var_frac`` (from ``model.observation``).
    data : training data.
    max_lag : largest delay searched, in bins (default ``min(10, T // 4)``).
    seed : seed of the factor-analysis initial loadings.
    """
    y, mask = model._data(data)
    counts = torch.full((y.shape[-1],), float(y.shape[0] * y.shape[1]), dtype=y.dtype, device=y.device)
    if mask is not None:
        counts = mask.to(y.dtype).sum((0, 1))
    (counts,) = all_sum(counts)
    y = impute(y, mask)
    B, T, _N = y.shape
    spec = model.latent_spec
    n_a = spec.n_across
    min_var_frac = float(getattr(model.observation, "min_var_frac", 0.01))
    dims = model.latent_dims
    d = dmean(y, (0, 1))
    C = y.new_zeros(y.shape[-1], sum(dims))
    R = y.new_zeros(y.shape[-1])
    blocks, n0, k0 = [], 0, 0
    for n, k in zip(model.y_dims, dims, strict=True):
        blocks.append((slice(n0, n0 + n), slice(k0, k0 + k)))
        n0, k0 = n0 + n, k0 + k
    resid = y - d
    # The typical neuron variance, behind the noise floor of constant neurons (also in a region that is all constant).
    all_var = observed_variance(y, None)
    reference_var = all_var[all_var > 0].median() if bool((all_var > 0).any()) else None
    delays = ts = None
    if n_a > 0:
        views = shared_views(y, model.y_dims, n_a)  # (R, B, T, K)
        lag_max = max_lag if max_lag is not None else max(1, min(10, T // 4))
        bound = getattr(model.delay, "max_delay", None)
        if bound is not None:
            # Search only lags the model can represent; keep the start strictly inside the bound.
            lag_max = max(1, min(lag_max, int(bound)))
        delays = torch.stack([peak_lag(views[r], views[0], lag_max) for r in range(len(model.y_dims))])
        delays[0] = 0
        if bound is not None:
            delays = delays.clamp(-0.9 * bound, 0.9 * bound)
        ts = rbf_timescale(views, T_max=T / 2)
        for r, (neurons, lat) in enumerate(blocks):
            # Regress on the region's own view: it already carries the region's delay.
            X = views[r].reshape(B * T, n_a)
            W = _regress(X, resid[..., neurons].reshape(B * T, -1))
            C[neurons, lat.start : lat.start + n_a] = W
            resid[..., neurons] = resid[..., neurons] - views[r] @ W.mT
    ts_within = []
    for r, (neurons, lat) in enumerate(blocks):
        n_w = spec.n_within_for(r)
        Yr = resid[..., neurons].reshape(B * T, -1)
        Cw, _, Rr = factor_analysis(Yr, n_w, min_var_frac=min_var_frac, seed=seed + r, reference_var=reference_var)
        C[neurons, lat.start + n_a : lat.stop] = Cw
        R[neurons] = Rr
        if n_w > 0:
            # Factor estimates (posterior means) give a rough per-factor timescale.
            beta = torch.linalg.solve(torch.eye(n_w, dtype=y.dtype, device=y.device) + (Cw.mT / Rr) @ Cw, Cw.mT / Rr)
            z = (Yr @ beta.mT).reshape(B, T, n_w)
            ts_within.append(rbf_timescale(z, T_max=T / 2))
        else:
            ts_within.append(y.new_zeros(0))
    return MultiRegionEstimate(C, d, R, delays, ts, ts_within, counts)


def apply_delays_and_timescales(
    model, est: MultiRegionEstimate, *, delays: bool = True, timescales: bool = True
) -> None:
    """Copy an estimate's delays and kernel timescales into ``model`` (kernels without a timescale are left)."""
    if delays and est.delays is not None and hasattr(model.delay, "set_delays"):
        model.delay.set_delays(est.delays)
    if not timescales:
        return
    if est.timescales_across is not None:
        for k, blk in enumerate(model.across):
            kernel = getattr(blk, "kernel", None)
            if kernel is not None and hasattr(kernel, "timescale"):
                kernel.timescale = float(est.timescales_across[k])
    for r, blks in enumerate(model.within):
        for j, blk in enumerate(blks):
            kernel = getattr(blk, "kernel", None)
            if kernel is not None and hasattr(kernel, "timescale") and j < len(est.timescales_within[r]):
                kernel.timescale = float(est.timescales_within[r][j])


@torch.no_grad()
def initialize_multi_region(
    model,
    data,
    *,
    max_lag: int | None = None,
    set_delays: bool = True,
    set_timescales: bool = True,
    seed: int = 0,
) -> dict[str, Tensor]:
    """Initialise a linear-Gaussian :class:`~mbrila.models.base.MultiRegionLatentModel` in place (steps 1–4).

    Parameters
    ----------
    model : the model (its observation, across/within kernels and delay are set).
    data : training data.
    max_lag, seed : see :func:`estimate_multi_region`.
    set_delays, set_timescales : also initialise delays / kernel timescales (else leave them).

    Returns a dict of what was estimated (``delays (R, n_across)``, ``timescales_across``), for reporting.
    """
    y, mask = model._data(data)
    obs = model.observation
    obs.set_floor(y, mask)
    est = estimate_multi_region(model, data, max_lag=max_lag, seed=seed)
    apply_delays_and_timescales(model, est, delays=set_delays, timescales=set_timescales)
    obs.C.copy_(est.C)
    obs.d.copy_(est.d)
    obs.R.copy_(torch.maximum(est.R, obs.R_floor))
    out: dict[str, Tensor] = {}
    if est.delays is not None:
        out["delays"] = est.delays
    if est.timescales_across is not None:
        out["timescales_across"] = est.timescales_across
    return out
