"""Linear-Gaussian observation of region-specific latents, with closed-form M-step.

Region ``r`` sees ``x^r_t ∈ R^{D_r}`` (the across latents as seen from ``r``, then its within latents)::

    y^r_t = C^r x^r_t + d^r + e_t,    e_t ~ N(0, diag(R^r))

All regions are stored stacked: ``C`` is block-structured ``(N, Σ_r D_r)``, with region r's neurons loading
only on region r's columns; ``d (N,)``; ``R (N,)`` with a floor at a fraction of each neuron's data variance
(as DLAG does) so that no neuron's noise collapses to zero.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mbrila.distributed import all_sum


def floored_variance(var: Tensor, reference: Tensor | None = None) -> Tensor:
    """Each neuron's variance, raised to at least ``√eps ·`` a typical variance, so that a constant neuron gets a
    small positive noise floor instead of zero (and the fit stays finite).

    ``reference`` is the typical variance (default: the median of the positive entries of ``var``, 1 when none is);
    a neuron below ``√eps`` of it (``eps`` of the dtype) is constant to working precision.
    """
    if reference is None:
        positive = var[var > 0]
        reference = positive.median() if positive.numel() else var.new_ones(())
    return torch.maximum(var, torch.finfo(var.dtype).eps ** 0.5 * reference)


def observed_variance(y: Tensor, mask: Tensor | None) -> Tensor:
    """``(N,)``: each neuron's variance over its observed entries of ``y (B, T, N)`` (over every process's trials in a
    data-parallel fit, :mod:`mbrila.distributed`), by two passes: the mean, then the mean squared deviation."""
    flat = y.reshape(-1, y.shape[-1]).nan_to_num()
    if mask is None:
        w, cnt = None, flat.new_full(flat.shape[-1:], float(flat.shape[0]))
    else:
        w = mask.reshape(-1, y.shape[-1]).to(y.dtype)
        flat, cnt = flat * w, w.sum(0)
    total, cnt = all_sum(flat.sum(0), cnt)
    mean = total / cnt.clamp_min(1)
    sq = (flat - mean) ** 2
    (dev,) = all_sum((sq if w is None else sq * w).sum(0))
    return dev / cnt.clamp_min(1)


def region_blocks(y_dims: tuple[int, ...], latent_dims: tuple[int, ...]) -> list[tuple[slice, slice]]:
    """``(neuron slice, latent slice)`` of each region in the stacked ``(N, Σ D_r)`` loadings."""
    out, n0, k0 = [], 0, 0
    for n, k in zip(y_dims, latent_dims, strict=True):
        out.append((slice(n0, n0 + n), slice(k0, k0 + k)))
        n0, k0 = n0 + n, k0 + k
    return out


class MultiRegionLinearObservation(nn.Module):
    """Per-region linear-Gaussian read-out of the latents (see the module docstring).

    Parameters
    ----------
    y_dims : neurons per region ``(n_1, …, n_R)``.
    latent_dims : latents seen by each region ``(D_1, …, D_R)``.
    min_var_frac : the noise-variance floor as a fraction of each neuron's data variance.
    """

    C: Tensor
    d: Tensor
    R: Tensor
    R_floor: Tensor
    support: Tensor

    #: What this read-out offers an engine (:mod:`mbrila.core.capabilities`).
    capabilities = frozenset({"linear_observation"})

    def __init__(self, y_dims: tuple[int, ...], latent_dims: tuple[int, ...], min_var_frac: float = 0.01) -> None:
        super().__init__()
        if len(y_dims) != len(latent_dims):
            raise ValueError(f"y_dims has {len(y_dims)} regions but latent_dims has {len(latent_dims)}.")
        self.y_dims = tuple(int(n) for n in y_dims)
        self.latent_dims = tuple(int(k) for k in latent_dims)
        self.min_var_frac = float(min_var_frac)
        N, K = sum(self.y_dims), sum(self.latent_dims)
        self.register_buffer("C", torch.zeros(N, K))
        self.register_buffer("d", torch.zeros(N))
        self.register_buffer("R", torch.ones(N))
        self.register_buffer("R_floor", torch.zeros(N))
        self.register_buffer("support", self._support())

    def _support(self) -> Tensor:
        """Bool ``(N, Σ D_r)``: which latent columns each neuron may load on (its own region's)."""
        support = torch.zeros(sum(self.y_dims), sum(self.latent_dims), dtype=torch.bool)
        n0 = k0 = 0
        for n, k in zip(self.y_dims, self.latent_dims, strict=True):
            support[n0 : n0 + n, k0 : k0 + k] = True
            n0, k0 = n0 + n, k0 + k
        return support

    def region_blocks(self) -> list[tuple[slice, slice]]:
        """``(neuron slice, latent slice)`` per region."""
        return region_blocks(self.y_dims, self.latent_dims)

    def mean_loadings(self) -> tuple[Tensor, Tensor]:
        """``(C, d)``: the loadings ``(N, Σ D_r)`` and offsets ``(N,)`` predictions are made with."""
        return self.C, self.d

    def set_floor(self, y: Tensor, mask: Tensor | None) -> None:
        """Set the noise floor from the data: ``min_var_frac ·`` each neuron's variance over observed entries (a
        constant neuron's variance is floored first, :func:`floored_variance`)."""
        self.R_floor = (self.min_var_frac * floored_variance(observed_variance(y, mask))).to(self.R)

    def at_floor(self, rtol: float = 1e-6) -> Tensor:
        """Bool ``(N,)``: neurons whose noise variance sits on the floor (``R ≤ (1 + rtol) · R_floor``).

        Such a neuron is a Heywood case of factor analysis: the fit explains nearly all of its variance with the
        latents, usually by dedicating a latent to it alone.
        """
        return self.R <= self.R_floor * (1.0 + rtol)

    def m_step(self, y: Tensor, mask: Tensor | None, Ex: Tensor, Exx: Tensor) -> None:
        """Closed-form update of ``C, d, R`` from smoothed latent moments.

        Parameters
        ----------
        y : ``(B, T, N)``; mask : ``(B, T, N)`` bool or None.
        Ex : ``(B, T, K)`` posterior means of the stacked region latents ``x`` (``K = Σ D_r``).
        Exx : ``(T, K, K)`` trial-summed ``Σ_b E[x_t x_tᵀ]`` when ``mask`` is None; else ``(B, T, K, K)``
            per-trial second moments.

        Each neuron solves its own regression of ``y`` on ``[x^r, 1]`` (normal equations of size ``D_r + 1``) over
        the entries where it is observed; ``R`` is the expected squared residual, floored.
        """
        for neurons, lat in self.region_blocks():
            self._m_step_region(
                y[..., neurons],
                None if mask is None else mask[..., neurons],
                Ex[..., lat],
                Exx[..., lat, lat],
                neurons,
                lat,
            )

    def _m_step_region(
        self, y: Tensor, mask: Tensor | None, Ex: Tensor, Exx: Tensor, neurons: slice, lat: slice
    ) -> None:
        B, T, n = y.shape
        K = Ex.shape[-1]
        ones = torch.ones(B, T, 1, dtype=y.dtype, device=y.device)
        Ez = torch.cat([Ex, ones], -1)  # augmented latent [x, 1]
        if mask is None:
            Sxx = Exx.sum(0)  # (K, K)
            Sx = Ex.sum((0, 1))
            G = torch.zeros(K + 1, K + 1, dtype=y.dtype, device=y.device)
            G[:K, :K] = Sxx
            G[:K, K] = Sx
            G[K, :K] = Sx
            G[K, K] = B * T
            Syz = y.reshape(-1, n).mT @ Ez.reshape(-1, K + 1)  # (n, K+1)
            count = torch.full((n,), float(B * T), dtype=y.dtype, device=y.device)
            Syy = (y**2).sum((0, 1))
            # Every statistic is a sum over trials: a data-parallel fit adds the shards' (mbrila.distributed).
            G, Syz, count, Syy = all_sum(G, Syz, count, Syy)
            W = torch.linalg.solve(G, Syz.mT).mT  # (n, K+1)
            # E[(y − W z)²] summed = Σ y² − 2 wᵀ Σ y z + wᵀ G w, and wᵀ G w = wᵀ Σ y z at the optimum.
            resid = Syy - (W * Syz).sum(-1)
        else:
            w = mask.to(y.dtype)
            yz = torch.where(mask, y, torch.zeros((), dtype=y.dtype, device=y.device))
            Ezz = torch.zeros(B, T, K + 1, K + 1, dtype=y.dtype, device=y.device)
            Ezz[..., :K, :K] = Exx
            Ezz[..., :K, K] = Ex
            Ezz[..., K, :K] = Ex
            Ezz[..., K, K] = 1.0
            G = torch.einsum("btn,btij->nij", w, Ezz)  # (n, K+1, K+1)
            Syz = torch.einsum("btn,bti->ni", yz, Ez)  # (n, K+1)
            G, Syz, count, Syy = all_sum(G, Syz, w.sum((0, 1)), (yz**2).sum((0, 1)))
            count = count.clamp_min(1)
            W = torch.linalg.solve(G, Syz.unsqueeze(-1)).squeeze(-1)
            resid = Syy - (W * Syz).sum(-1)
        self.C[neurons, lat] = W[:, :K]
        self.d[neurons] = W[:, K]
        self.R[neurons] = torch.maximum(resid / count, self.R_floor[neurons])
