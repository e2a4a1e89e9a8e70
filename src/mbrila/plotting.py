"""Figures every demo writes: convergence, delays (truth vs fit), latents, PSTH heatmaps and ARD activity.

Each function takes arrays (numpy or torch), draws on a new :class:`matplotlib.figure.Figure` and returns it;
pass ``path`` to also save it as PNG. Only the object-oriented matplotlib API is used, so importing or calling
this module never changes pyplot's global state or backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mbrila.metrics.matching import as_numpy
from mbrila.metrics.reconstruction import region_slices


def _save(fig: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
    return fig


def plot_convergence(
    score_trace: Sequence[float],
    path: str | Path | None = None,
    label: str = "EM score",
    validation: Sequence[tuple[int, float]] | None = None,
    selected: int | None = None,
) -> Figure:
    """The fit's score against the number of EM updates behind it (0: the initial parameters); a convergence
    diagnostic.

    ``validation`` — ``[(updates, score), …]`` of a held-out criterion (lower is better) — is drawn on a
    second axis, and ``selected`` (the updates behind the parameters kept) as a vertical line.
    """
    fig = Figure(figsize=(5, 3.2), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(np.arange(len(score_trace)), np.asarray(score_trace, dtype=float), lw=1.5)
    ax.set_xlabel("EM iteration")
    ax.set_ylabel(label)
    ax.set_title("convergence")
    ax.grid(alpha=0.3)
    if validation:
        it, val = np.asarray(validation, dtype=float).T
        ax2 = ax.twinx()
        ax2.plot(it, val, color="tab:orange", lw=1.2, marker=".", ms=3)
        ax2.set_ylabel("validation score", color="tab:orange")
    if selected is not None:
        ax.axvline(selected, color="k", ls="--", lw=1, label=f"kept: iteration {selected}")
        ax.legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_delays(
    fitted: Any,
    true: Any | None = None,
    region_names: Sequence[str] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Delays ``(T, n_regions, n_across)`` of each non-reference region and latent over time, fit vs truth.

    ``fitted`` must already be matched to ``true`` (same latent order), e.g. with
    :func:`mbrila.metrics.match_latents`.
    """
    f = as_numpy(fitted, "fitted delays")
    t = None if true is None else as_numpy(true, "true delays")
    T, R, K = f.shape
    names = list(region_names) if region_names is not None else [f"region {r}" for r in range(R)]
    ncols = max(1, R - 1)
    fig = Figure(figsize=(2.8 * ncols, 2.4 * max(K, 1)), layout="constrained")
    axes = fig.subplots(max(K, 1), ncols, squeeze=False)
    time = np.arange(T)
    for k in range(K):
        # One y-range per latent, including 0, so a constant offset is not blown up into a dramatic gap.
        parts: list[np.ndarray] = [f[:, :, k].ravel(), np.zeros(1)]
        if t is not None:
            parts.append(t[:, :, k].ravel())
        vals = np.concatenate(parts)
        pad = 0.1 * float(np.ptp(vals)) + 0.25
        ylim = (float(vals.min()) - pad, float(vals.max()) + pad)
        for r in range(1, R):
            ax = axes[k, r - 1]
            if t is not None:
                ax.plot(time, t[:, r, k], color="k", lw=2, label="truth")
            ax.plot(time, f[:, r, k], color="C3", lw=1.5, ls="--", label="fit")
            ax.set_ylim(ylim)
            ax.set_title(f"latent {k + 1}: {names[r]} vs {names[0]}", fontsize=9)
            ax.set_xlabel("time (bins)")
            if r == 1:
                ax.set_ylabel("delay (bins)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    return _save(fig, path)


def plot_latents(
    fitted: Any,
    true: Any | None = None,
    trial: int = 0,
    path: str | Path | None = None,
    title: str = "latents",
) -> Figure:
    """One trial's latents ``(trials, T, K)``: the posterior means, and the matched truth when given."""
    f = as_numpy(fitted, "fitted latents")[trial]
    t = None if true is None else as_numpy(true, "true latents")[trial]
    K = f.shape[-1]
    fig = Figure(figsize=(6, 1.6 * max(K, 1) + 0.6), layout="constrained")
    axes = fig.subplots(max(K, 1), 1, squeeze=False, sharex=True)
    for k in range(K):
        ax = axes[k, 0]
        if t is not None:
            ax.plot(t[:, k], color="k", lw=2, label="truth")
        ax.plot(f[:, k], color="C0", lw=1.5, label="posterior mean")
        ax.set_ylabel(f"x{k + 1}")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (bins)")
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[0, 0].set_title(f"{title} (trial {trial})")
    return _save(fig, path)


def plot_psth_heatmap(
    y_true: Any,
    y_pred: Any,
    y_dims: Sequence[int],
    heldout: Any | None = None,
    region_names: Sequence[str] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Trial-averaged activity ``(neurons × time)`` per region: truth, prediction and residual.

    Parameters
    ----------
    y_true, y_pred : ``(trials, T, N)``.
    heldout : optional ``(N,)`` bool; held-out neurons are marked with a tick on the left of each panel.
    """
    yt = as_numpy(y_true, "y_true").mean(axis=0).T  # (N, T)
    yp = as_numpy(y_pred, "y_pred").mean(axis=0).T
    held = None if heldout is None else as_numpy(heldout, "heldout").astype(bool)
    slices = region_slices(y_dims)
    names = list(region_names) if region_names is not None else [f"region {r}" for r in range(len(slices))]
    fig = Figure(figsize=(10, 2.2 * len(slices) + 0.5), layout="constrained")
    axes = fig.subplots(len(slices), 3, squeeze=False)
    for r, sl in enumerate(slices):
        lim = float(np.abs(yt[sl]).max()) or 1.0
        panels = (("truth", yt[sl]), ("prediction", yp[sl]), ("residual", yt[sl] - yp[sl]))
        for c, (label, img) in enumerate(panels):
            ax = axes[r, c]
            im = ax.imshow(img, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest")
            ax.set_title(f"{names[r]}: {label}", fontsize=9)
            if held is not None:
                rows = np.flatnonzero(held[sl])
                ax.scatter(np.full(rows.shape, -1.5), rows, marker=">", s=12, color="k", clip_on=False)
            if c == 0:
                ax.set_ylabel("neuron")
            if r == len(slices) - 1:
                ax.set_xlabel("time (bins)")
        fig.colorbar(im, ax=list(axes[r]), shrink=0.8)
    return _save(fig, path)


def plot_ard(
    shared_fraction: Any,
    active: Any,
    region_names: Sequence[str] | None = None,
    path: str | Path | None = None,
    precisions: Any | None = None,
) -> Figure:
    """ARD activity of an mDLAG fit: each latent's share of each region's shared variance ``(n_regions, K)``.

    Cells of active (region, latent) pairs are outlined; with ``precisions`` (the ARD precisions ``⟨α⟩``, same
    shape) each cell is annotated with ``log10 ⟨α⟩`` (∞ for a pruned latent).
    """
    frac = as_numpy(shared_fraction, "shared_fraction")
    act = as_numpy(active, "active").astype(bool)
    R, K = frac.shape
    names = list(region_names) if region_names is not None else [f"region {r}" for r in range(R)]
    fig = Figure(figsize=(1.2 + 0.9 * K, 1.0 + 0.6 * R), layout="constrained")
    ax = fig.add_subplot()
    im = ax.imshow(frac, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto")
    alpha = None if precisions is None else as_numpy(precisions, "precisions")
    for r in range(R):
        for k in range(K):
            if act[r, k]:
                ax.add_patch(_cell(k, r))
            if alpha is not None:
                val = alpha[r, k]
                text = "∞" if not np.isfinite(val) else f"{np.log10(val):.1f}"
                ax.text(k, r, text, ha="center", va="center", fontsize=7, color="w" if frac[r, k] > 0.5 else "k")
    ax.set_xticks(range(K), [f"x{k + 1}" for k in range(K)])
    ax.set_yticks(range(R), names)
    title = "share of shared variance (outlined: active)"
    ax.set_title(title + ("\nnumbers: log10 ARD precision" if alpha is not None else ""), fontsize=9)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return _save(fig, path)


def _cell(k: int, r: int) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((k - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="C0", lw=2)
