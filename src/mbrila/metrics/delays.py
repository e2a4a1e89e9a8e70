"""Delay-recovery error (DESIGN.md §5): RMSE in bins between fitted and true delays after matching latents.

With fitted delays ``δ̂ (T, R, K_f)``, true delays ``δ (T, R, K_t)`` (column 0, the reference region, zero in
both) and a matching ``perm`` of fitted to true latents::

    delay_rmse = sqrt( mean_{t, r ≥ 1, k} (δ̂[t, r, perm[k]] − δ[t, r, k])² )

The reference column is left out (it is zero by construction and would dilute the error). A latent's sign does
not enter its delay: ``x ↦ −x`` leaves ``Cov(x^r(t), x^s(t'))`` and therefore ``δ`` unchanged, so only
``matching.perm`` is used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mbrila.metrics.matching import Matching, as_numpy


def _aligned(
    fitted: Any, true: Any, matching: Matching | Sequence[int] | np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Fitted and true delays of the non-reference regions, fitted latents reordered: both ``(T, R−1, K_t)``."""
    f, t = as_numpy(fitted, "fitted delays"), as_numpy(true, "true delays")
    if f.ndim != 3 or t.ndim != 3:
        raise ValueError(f"delays must have shape (T, n_regions, n_across); got fitted {f.shape} and true {t.shape}.")
    if f.shape[:2] != t.shape[:2]:
        raise ValueError(f"fitted delays {f.shape} and true delays {t.shape} differ in T or in the number of regions.")
    if t.shape[1] < 2:
        raise ValueError("delays need at least two regions: region 0 is the reference and has no delay to compare.")
    K_f, K_t = f.shape[2], t.shape[2]
    if matching is None:
        if K_f != K_t:
            raise ValueError(
                f"fitted delays have {K_f} latents and true delays {K_t}; pass a matching (match_latents) to say "
                "which fitted latent is which true one."
            )
        perm = np.arange(K_t)
    else:
        perm = np.asarray(matching.perm if isinstance(matching, Matching) else matching, dtype=np.int64).reshape(-1)
        if perm.shape[0] != K_t:
            raise ValueError(f"the matching pairs {perm.shape[0]} latents but the true delays have {K_t}.")
        if perm.size and (perm.min() < 0 or perm.max() >= K_f):
            raise ValueError(f"the matching refers to fitted latents {perm.tolist()} but only {K_f} were fitted.")
    if K_t == 0:
        raise ValueError("there are no across latents to compare (n_across = 0).")
    return f[:, 1:, :][:, :, perm], t[:, 1:, :]


def delay_rmse(fitted: Any, true: Any, matching: Matching | Sequence[int] | np.ndarray | None = None) -> float:
    """RMSE in bins over time, non-reference regions and latents (see the module docstring).

    Parameters
    ----------
    fitted : ``(T, n_regions, K_f)`` fitted delays (e.g. ``model.delays()``), numpy or torch.
    true : ``(T, n_regions, K_t)`` true delays (e.g. ``truth.delays``).
    matching : a :class:`~mbrila.metrics.matching.Matching` (or a bare ``perm``); identity when None, which
        needs ``K_f = K_t``.
    """
    f, t = _aligned(fitted, true, matching)
    return float(np.sqrt(np.mean((f - t) ** 2)))


def delay_rmse_per_latent(
    fitted: Any, true: Any, matching: Matching | Sequence[int] | np.ndarray | None = None
) -> np.ndarray:
    """``(K_t,)``: the RMSE of each true latent's delays over time and non-reference regions.

    Parameters
    ----------
    fitted, true, matching : as :func:`delay_rmse`.
    """
    f, t = _aligned(fitted, true, matching)
    return np.sqrt(np.mean((f - t) ** 2, axis=(0, 1)))
