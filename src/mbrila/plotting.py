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
        vals = vals[np.isfinite(vals)]  # NaN: a latent an ARD fit switched off in that region
        pad = 0.1 * float(np.ptp(vals)) + 0.25
        ylim = (float(vals.min()) - pad, float(vals.max()) + pad)
        for r in range(1, R):
            ax = axes[k, r - 1]
            if t is not None:
                ax.plot(time, t[:, r, k], color="k", lw=2, label="truth")
            ax.plot(time, f[:, r, k], color="C3", lw=1.5, ls="--", label="fit")
            if not np.isfinite(f[:, r, k]).any():
                ax.text(0.5, 0.5, "inactive here", transform=ax.transAxes, ha="center", va="center", fontsize=8)
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
    sd: Any | None = None,
) -> Figure:
    """One trial's latents ``(trials, T, K)``: the posterior means (with ``± 2 sd`` bands when ``sd``, the posterior
    standard deviations of the same shape, is given), and the matched truth when given."""
    f = as_numpy(fitted, "fitted latents")[trial]
    t = None if true is None else as_numpy(true, "true latents")[trial]
    s = None if sd is None else as_numpy(sd, "sd")[trial]
    K = f.shape[-1]
    fig = Figure(figsize=(6, 1.6 * max(K, 1) + 0.6), layout="constrained")
    axes = fig.subplots(max(K, 1), 1, squeeze=False, sharex=True)
    time = np.arange(f.shape[0])
    for k in range(K):
        ax = axes[k, 0]
        if s is not None:
            ax.fill_between(time, f[:, k] - 2 * s[:, k], f[:, k] + 2 * s[:, k], color="C0", alpha=0.2, lw=0)
        if t is not None:
            ax.plot(time, t[:, k], color="k", lw=2, label="truth")
        ax.plot(time, f[:, k], color="C0", lw=1.5, label="posterior mean" + (" ± 2 sd" if s is not None else ""))
        ax.set_ylabel(f"x{k + 1}")
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time (bins)")
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[0, 0].set_title(f"{title} (trial {trial})")
    return _save(fig, path)


def plot_cosmoothing(
    y_true: Any,
    y_pred: Any,
    heldout: Any,
    y_dims: Sequence[int],
    region_names: Sequence[str] | None = None,
    baseline: Any | None = None,
    n_neurons: int = 3,
    trial: int = 0,
    path: str | Path | None = None,
) -> Figure:
    """Co-smoothing reconstruction: for the first ``n_neurons`` held-out neurons of each region, the trial-averaged
    activity (truth, prediction, and the ``baseline`` prediction if given) and one trial's activity and prediction.

    ``y_true, y_pred, baseline`` are ``(trials, T, N)``; ``heldout`` is the bool ``(N,)`` of hidden neurons.
    """
    yt, yp = as_numpy(y_true, "y_true"), as_numpy(y_pred, "y_pred")
    yb = None if baseline is None else as_numpy(baseline, "baseline")
    held = as_numpy(heldout, "heldout").astype(bool)
    slices = region_slices(y_dims)
    names = list(region_names) if region_names is not None else [f"region {r}" for r in range(len(slices))]
    picks = [np.flatnonzero(held[sl])[:n_neurons] + sl.start for sl in slices]
    cols = max(1, max(len(p) for p in picks))
    fig = Figure(figsize=(3.0 * cols, 2.0 * 2 * len(slices) + 0.4), layout="constrained")
    axes = fig.subplots(2 * len(slices), cols, squeeze=False)
    for r, neurons in enumerate(picks):
        for c in range(cols):
            top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
            if c >= len(neurons):
                top.set_axis_off()
                bottom.set_axis_off()
                continue
            n = neurons[c]
            top.plot(yt[..., n].mean(0), color="k", lw=2, label="recorded (trial mean)")
            top.plot(yp[..., n].mean(0), color="C3", lw=1.5, label="predicted")
            if yb is not None:
                top.plot(yb[..., n].mean(0), color="0.5", lw=1, ls="--", label="training PSTH")
            top.set_title(f"{names[r]} neuron {n - slices[r].start} (held out)", fontsize=8)
            bottom.plot(yt[trial, :, n], color="k", lw=1, label=f"recorded (trial {trial})")
            bottom.plot(yp[trial, :, n], color="C3", lw=1.2, label="predicted")
            for ax in (top, bottom):
                ax.grid(alpha=0.3)
            if c == 0:
                top.set_ylabel("trial mean")
                bottom.set_ylabel(f"trial {trial}")
    axes[0, 0].legend(fontsize=7)
    axes[1, 0].legend(fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("time (bins)")
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


def plot_comparison(table: dict[str, Any], path: str | Path | None = None, title: str | None = None) -> Figure:
    """Bar chart of a :func:`mbrila.experiments.compare.comparison_table`: one panel per score (held-out PSTH RMSE,
    trial RMSE), regions along x, one bar per method with its spread over splits (hatched: baselines)."""
    regions = table["regions"]
    rows = table["rows"]
    fig = Figure(figsize=(4.5 + 0.9 * len(rows), 3.4), layout="constrained")
    axes = fig.subplots(1, 2, squeeze=False)[0]
    width = 0.8 / max(len(rows), 1)
    x = np.arange(len(regions))
    for ax, kind, label in zip(axes, ("psth", "trial"), ("held-out PSTH RMSE", "held-out trial RMSE"), strict=True):
        for i, row in enumerate(rows):
            means = [row["regions"][r][kind]["mean"] for r in regions]
            stds = [row["regions"][r][kind]["std"] or 0.0 for r in regions]
            baseline = row["kind"] == "baseline"
            ax.bar(
                x + (i - (len(rows) - 1) / 2) * width,
                means,
                width,
                yerr=stds,
                capsize=2,
                label=row["method"],
                hatch="//" if baseline else None,
                color="0.85" if baseline else f"C{i % 10}",
                edgecolor="0.3",
                lw=0.5,
            )
        ax.set_xticks(x, regions)
        ax.set_ylabel(label)
        ax.grid(axis="y", alpha=0.3)
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def _label(candidate: Any) -> str:
    if isinstance(candidate, (list, tuple)):
        return "(" + ", ".join(_label(c) for c in candidate) + ")"
    return str(candidate)


def plot_cv_curve(cv: Any, path: str | Path | None = None, title: str | None = None) -> Figure:
    """The cross-validation curve of :func:`mbrila.selection.cross_validate`: each candidate's mean held-out score
    ± one standard error, candidates ordered by size; the best candidate and the one-standard-error choice marked,
    with the one-SE bound as a dashed line.

    ``cv`` is a :class:`~mbrila.selection.CVResult` or its ``to_dict()``.
    """
    d = cv.to_dict() if hasattr(cv, "to_dict") else cv
    rows = sorted(d["table"], key=lambda r: r["n_latents"])
    labels = [_label(r["candidate"]) for r in rows]
    means = np.array([r["mean"] for r in rows])
    ses = np.array([r["se"] for r in rows])
    x = np.arange(len(rows))
    fig = Figure(figsize=(1.6 + 0.55 * len(rows), 3.2), layout="constrained")
    ax = fig.subplots()
    ax.errorbar(x, means, yerr=ses, fmt="o-", color="C0", capsize=3, lw=1, ms=4)
    best = labels.index(_label(d["best"]))
    choice = labels.index(_label(d["one_se_choice"]))
    bound = means[best] + (-ses[best] if d["higher_is_better"] else ses[best])
    ax.axhline(bound, color="0.5", ls="--", lw=1, label="one SE from the best")
    ax.plot(x[best], means[best], marker="*", ms=14, color="C1", ls="none", label="best mean")
    ax.plot(x[choice], means[choice], marker="o", ms=11, mfc="none", mec="C3", mew=2, ls="none", label="one-SE choice")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("candidate (by number of latents)")
    direction = "higher is better" if d["higher_is_better"] else "lower is better"
    ax.set_ylabel(f"held-out {d['metric'].replace('_', ' ')} ({direction})", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=9)
    return _save(fig, path)


def plot_delay_intervals(
    boot: Any,
    true: Any | None = None,
    region_names: Sequence[str] | None = None,
    path: str | Path | None = None,
) -> Figure:
    """Delays with their bootstrap intervals (:func:`mbrila.selection.bootstrap_delays`), one panel per across
    latent: for constant delays the estimate and interval of each non-reference region (truth as crosses); for
    time-varying delays the estimate over time inside its pointwise band, one panel per region and latent.

    ``true`` : ``(T, n_regions, n_across)`` true delays in the same latent order, if known.
    """
    est, lo, hi = (as_numpy(a, "delays") for a in (boot.delays.estimate, boot.delays.lower, boot.delays.upper))
    t = None if true is None else as_numpy(true, "true delays")
    T, R, K = est.shape
    names = list(region_names or getattr(boot, "region_names", None) or [f"region {r}" for r in range(R)])
    level = round(100 * boot.level)
    if boot.constant:
        fig = Figure(figsize=(1.5 + 1.6 * K * max(R - 1, 1) ** 0.5, 3.0), layout="constrained")
        axes = fig.subplots(1, max(K, 1), squeeze=False)[0]
        x = np.arange(1, R)
        for k, ax in enumerate(axes):
            e, err = est[0, 1:, k], np.stack([est[0, 1:, k] - lo[0, 1:, k], hi[0, 1:, k] - est[0, 1:, k]])
            ax.errorbar(x, e, yerr=np.abs(err), fmt="o", color="C3", capsize=4, label=f"fit, {level}% interval")
            if t is not None:
                ax.plot(x, t[0, 1:, k], "kx", ms=8, mew=2, label="truth")
            ax.axhline(0, color="0.6", lw=0.8)
            ax.set_xticks(x, names[1:], rotation=30, fontsize=8)
            ax.set_title(f"latent {k + 1}: delay vs {names[0]}", fontsize=9)
            ax.set_ylabel("delay (bins)")
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        return _save(fig, path)
    fig = Figure(figsize=(2.8 * max(R - 1, 1), 2.4 * max(K, 1)), layout="constrained")
    axes = fig.subplots(max(K, 1), max(R - 1, 1), squeeze=False)
    time = np.arange(T)
    for k in range(K):
        for r in range(1, R):
            ax = axes[k, r - 1]
            ax.fill_between(time, lo[:, r, k], hi[:, r, k], color="C3", alpha=0.25, lw=0, label=f"{level}% band")
            ax.plot(time, est[:, r, k], color="C3", lw=1.5, label="fit")
            if t is not None:
                ax.plot(time, t[:, r, k], color="k", lw=1.5, ls="--", label="truth")
            ax.set_title(f"latent {k + 1}: {names[r]} vs {names[0]}", fontsize=9)
            ax.set_xlabel("time (bins)")
            if r == 1:
                ax.set_ylabel("delay (bins)")
            ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    return _save(fig, path)
