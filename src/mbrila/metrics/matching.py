"""Matching fitted latents to true ones, up to order and sign.

Latent variable models identify their latents only up to permutation and sign (the unit-variance GP prior
fixes the scale). With fitted trajectories ``f (…, K_f)`` and true ones ``x (…, K_t)``, flattened over all
leading axes (trials, time) into ``S`` samples, let ``ρ_{ij}`` be the Pearson correlation of true latent ``i``
with fitted latent ``j`` (a ``K_t × K_f`` matrix). The matching is the injective map ``i ↦ perm[i]`` maximising
``Σ_i |ρ_{i, perm[i]}|`` (Hungarian algorithm), with ``signs[i] = sign(ρ_{i, perm[i]})``; the aligned fitted
latents are ``signs[i] · f[..., perm[i]]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment


def as_numpy(x: Any, name: str = "input") -> np.ndarray:
    """``x`` (numpy, torch on any device, or nested sequence) as a float64 numpy array, detached."""
    if isinstance(x, torch.Tensor):
        return x.detach().to(device="cpu", dtype=torch.float64).numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric numpy array or torch tensor; got {type(x).__name__}.") from err


@dataclass(frozen=True)
class Matching:
    """Which fitted latent matches each true latent.

    Attributes
    ----------
    perm : ``(K_t,)`` int; ``perm[i]`` is the fitted latent matched to true latent ``i`` (all distinct).
    signs : ``(K_t,)`` ±1; the sign of the matched correlation (flip the fitted latent by it).
    corr : ``(K_t,)`` ``|ρ_{i, perm[i]}|``, the absolute correlation of each matched pair.
    corr_matrix : ``(K_t, K_f)`` all signed correlations ``ρ``.
    """

    perm: np.ndarray
    signs: np.ndarray
    corr: np.ndarray
    corr_matrix: np.ndarray | None = None


def _zscore(a: np.ndarray) -> np.ndarray:
    centred = a - a.mean(axis=0)
    sd = centred.std(axis=0)
    # A constant column has no defined correlation; scoring it 0 keeps it from ever being preferred.
    return np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)


def correlation_matrix(fitted: Any, true: Any) -> np.ndarray:
    """``(K_t, K_f)`` Pearson correlations between true and fitted latents, over all leading axes.

    ``fitted (…, K_f)`` and ``true (…, K_t)`` must share their leading shape (the same trials and times).
    """
    f, t = as_numpy(fitted, "fitted"), as_numpy(true, "true")
    if f.ndim < 1 or t.ndim < 1:
        raise ValueError("fitted and true latents need a trailing latent axis: shapes (..., K).")
    if f.shape[:-1] != t.shape[:-1]:
        raise ValueError(
            f"fitted {f.shape} and true {t.shape} latents must share their leading (trials, time) shape; "
            "they are compared sample by sample."
        )
    f2, t2 = f.reshape(-1, f.shape[-1]), t.reshape(-1, t.shape[-1])
    if f2.shape[0] < 2:
        raise ValueError("correlations need at least two samples (trials × time points).")
    if not (np.all(np.isfinite(f2)) and np.all(np.isfinite(t2))):
        raise ValueError("fitted and true latents must be finite.")
    return _zscore(t2).T @ _zscore(f2) / f2.shape[0]


def match_latents(fitted: Any, true: Any) -> Matching:
    """Match fitted latents ``(…, K_f)`` to true latents ``(…, K_t)`` (see the module docstring); ``K_f ≥ K_t``.

    Parameters
    ----------
    fitted : e.g. posterior means ``(trials, T, K_f)``, numpy or torch.
    true : e.g. ``truth.latents_across[:, :, 0, :]`` ``(trials, T, K_t)``, the same leading shape.
    """
    f, t = as_numpy(fitted, "fitted"), as_numpy(true, "true")
    K_f, K_t = f.shape[-1], t.shape[-1]
    if K_f < K_t:
        raise ValueError(
            f"cannot match {K_t} true latents with only {K_f} fitted ones; every true latent needs a distinct "
            "fitted latent (pass at least as many fitted latents as true ones)."
        )
    rho = correlation_matrix(f, t)
    rows, cols = linear_sum_assignment(np.abs(rho), maximize=True)
    perm = np.empty(K_t, dtype=np.int64)
    perm[rows] = cols
    matched = rho[np.arange(K_t), perm]
    signs = np.where(matched < 0, -1.0, 1.0)
    return Matching(perm=perm, signs=signs, corr=np.abs(matched), corr_matrix=rho)


def apply_matching(fitted: Any, matching: Matching) -> Any:
    """``signs[i] · fitted[..., perm[i]]``: the fitted latents reordered and flipped onto the true ones, ``(…, K_t)``.

    A torch input gives a torch tensor on its device and dtype; anything else gives a float64 numpy array.

    Parameters
    ----------
    fitted : ``(…, K_f)`` fitted latents; matching : from :func:`match_latents`.
    """
    perm = np.asarray(matching.perm, dtype=np.int64)
    signs = np.asarray(matching.signs, dtype=np.float64)
    if isinstance(fitted, torch.Tensor):
        if perm.size and perm.max() >= fitted.shape[-1]:
            raise ValueError(f"matching refers to fitted latent {int(perm.max())} but fitted has {fitted.shape[-1]}.")
        idx = torch.as_tensor(perm, device=fitted.device)
        s = torch.as_tensor(signs, device=fitted.device, dtype=fitted.dtype)
        return fitted.index_select(-1, idx) * s
    f = as_numpy(fitted, "fitted")
    if perm.size and perm.max() >= f.shape[-1]:
        raise ValueError(f"matching refers to fitted latent {int(perm.max())} but fitted has {f.shape[-1]}.")
    return f[..., perm] * signs
