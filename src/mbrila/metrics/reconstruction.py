"""Reconstruction and co-smoothing errors per region.

Arrays are ``(trials, T, N)`` with the neurons of region 0, then region 1, … (``N = Σ_r n_r``); numpy or torch.

Co-smoothing (DESIGN.md §5): on test trials some neurons ``H`` are hidden, the latents are inferred from the
others and the hidden neurons predicted as ``ŷ = E[y | observed neurons]``. For region ``r`` with hidden
neurons ``H_r`` (and, optionally, an observation mask ``m``; the weights are ``w_{itn} = [n ∈ H_r] m_{itn}``)::

    ȳ_{tn} = Σ_i w_{itn} y_{itn} / Σ_i w_{itn}                        (PSTH, likewise for ŷ)
    holdout_psth_rmse_r  = sqrt( mean_{t, n ∈ H_r} (ŷ̄_{tn} − ȳ_{tn})² )   over (t, n) with Σ_i w_{itn} > 0
    holdout_trial_rmse_r = sqrt( Σ_{itn} w_{itn} (ŷ_{itn} − y_{itn})² / Σ_{itn} w_{itn} )
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from mbrila.metrics.matching import as_numpy


def region_slices(y_dims: Sequence[int]) -> list[slice]:
    """``slice`` of each region's neurons along the last axis."""
    dims = [int(n) for n in y_dims]
    if not dims or any(n < 1 for n in dims):
        raise ValueError(f"y_dims must list a positive neuron count per region; got {list(y_dims)}.")
    edges = np.cumsum([0, *dims])
    return [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]


def _pair(y_true: Any, y_pred: Any, y_dims: Sequence[int]) -> tuple[np.ndarray, np.ndarray, list[slice]]:
    yt, yp = as_numpy(y_true, "y_true"), as_numpy(y_pred, "y_pred")
    if yt.ndim != 3:
        raise ValueError(f"y_true must have shape (trials, T, N); got {yt.shape}.")
    if yp.shape != yt.shape:
        raise ValueError(f"y_pred {yp.shape} must have the shape of y_true {yt.shape}.")
    slices = region_slices(y_dims)
    if slices[-1].stop != yt.shape[-1]:
        raise ValueError(f"y_dims {list(y_dims)} sum to {slices[-1].stop} but the data have N = {yt.shape[-1]}.")
    return yt, yp, slices


def _bool_mask(mask: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    m = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if m.dtype != np.bool_:
        raise ValueError(f"{name} must be a bool array; got dtype {m.dtype}.")
    try:
        return np.broadcast_to(m, shape)
    except ValueError as err:
        raise ValueError(f"{name} of shape {m.shape} does not broadcast to the data shape {shape}.") from err


def _names(region_names: Sequence[str] | None, n_regions: int) -> list[str]:
    names = [f"R{r}" for r in range(n_regions)] if region_names is None else [str(n) for n in region_names]
    if len(names) != n_regions:
        raise ValueError(f"region_names has {len(names)} names but y_dims has {n_regions} regions.")
    return names


def reconstruction_rmse(
    y_true: Any,
    y_pred: Any,
    y_dims: Sequence[int],
    mask: Any = None,
    region_names: Sequence[str] | None = None,
) -> dict[int | str, float]:
    """RMSE of ``y_pred`` against ``y_true`` per region and overall, over observed entries.

    ``RMSE_r = sqrt( Σ_{itn ∈ r} m_{itn} (ŷ_{itn} − y_{itn})² / Σ_{itn ∈ r} m_{itn} )``.

    Parameters
    ----------
    y_true, y_pred : ``(trials, T, N)``.
    y_dims : neurons per region.
    mask : optional bool, broadcastable to ``(trials, T, N)``, True = observed (e.g. ``data.mask``).
    region_names : keys for the regions; region indices ``0, 1, …`` when None.

    Returns
    -------
    ``{region: rmse, …, "overall": rmse}``; a region with no observed entry maps to NaN.
    """
    yt, yp, slices = _pair(y_true, y_pred, y_dims)
    keys: list[int | str] = (
        list(range(len(slices))) if region_names is None else list(_names(region_names, len(slices)))
    )
    sq = (yp - yt) ** 2
    m = None if mask is None else _bool_mask(mask, yt.shape, "mask")
    out: dict[int | str, float] = {}
    for key, sl in zip(keys, slices, strict=True):
        if m is None:
            out[key] = float(np.sqrt(sq[..., sl].mean()))
        else:
            n_obs = int(m[..., sl].sum())
            out[key] = float(np.sqrt(sq[..., sl][m[..., sl]].sum() / n_obs)) if n_obs else float("nan")
    if m is None:
        out["overall"] = float(np.sqrt(sq.mean()))
    else:
        if not m.any():
            raise ValueError("mask marks no entry as observed; there is nothing to score.")
        out["overall"] = float(np.sqrt(sq[m].mean()))
    return out


def cosmoothing(
    y_true: Any,
    y_pred: Any,
    heldout: Any,
    y_dims: Sequence[int],
    region_names: Sequence[str] | None = None,
    mask: Any = None,
) -> dict[str, float]:
    """Co-smoothing errors per region: ``holdout_psth_rmse_<name>`` and ``holdout_trial_rmse_<name>``.

    See the module docstring for the formulas.

    Parameters
    ----------
    y_true : ``(trials, T, N)`` recorded activity of the test trials.
    y_pred : ``(trials, T, N)`` prediction (only the held-out entries are scored).
    heldout : bool ``(N,)`` (True = neuron hidden from inference) or ``(trials, T, N)`` per entry.
    y_dims : neurons per region.
    region_names : names used in the keys (default ``"R0", "R1", …``).
    mask : optional bool ``(trials, T, N)``, True = recorded; unrecorded entries are not scored.

    Returns
    -------
    Two entries per region that has at least one scored entry; a region with no held-out neuron is left out.
    """
    yt, yp, slices = _pair(y_true, y_pred, y_dims)
    names = _names(region_names, len(slices))
    held = _bool_mask(heldout, yt.shape, "heldout")
    w = held if mask is None else held & _bool_mask(mask, yt.shape, "mask")
    out: dict[str, float] = {}
    for name, sl in zip(names, slices, strict=True):
        w_r = w[..., sl]
        total = int(w_r.sum())
        if total == 0:
            continue
        t_r, p_r = yt[..., sl], yp[..., sl]
        count = w_r.sum(axis=0)  # (T, n_r): trials contributing to each PSTH bin
        seen = count > 0
        safe = np.where(seen, count, 1)
        psth_true = np.where(w_r, t_r, 0.0).sum(axis=0) / safe
        psth_pred = np.where(w_r, p_r, 0.0).sum(axis=0) / safe
        out[f"holdout_psth_rmse_{name}"] = float(np.sqrt(((psth_pred - psth_true)[seen] ** 2).mean()))
        out[f"holdout_trial_rmse_{name}"] = float(np.sqrt(np.where(w_r, (p_r - t_r) ** 2, 0.0).sum() / total))
    return out


#: The same function under the name used in DESIGN.md's protocol table.
cosmoothing_rmse = cosmoothing
