"""Command-line front ends of the model-selection demos (``examples/*/demo_selection.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mbrila import plotting
from mbrila.experiments.cli import (
    DTYPES,
    add_data_args,
    base_parser,
    data_from_args,
    resolve_device,
    save_figures,
    write_summary,
)
from mbrila.experiments.selection import synthetic_selection, v1v2_selection


def _common(ap: Any) -> None:
    ap.add_argument("--n-folds", type=int, default=5, help="cross-validation folds over trials")
    ap.add_argument("--workers", type=int, default=1, help="worker processes for the fits (CPU)")
    ap.add_argument("--seed", type=int, default=0, help="data seed (synthetic) or split seed (V1/V2)")


def _fit_kwargs(args: Any) -> dict[str, Any]:
    """``--max-iter`` / ``--tol`` when given (the presets' defaults otherwise)."""
    return {k: v for k, v in (("max_iter", args.max_iter), ("tol", args.tol)) if v is not None}


def _print_cv(cv: dict[str, Any]) -> None:
    for row in sorted(cv["table"], key=lambda r: r["n_latents"]):
        mark = " ← one-SE choice" if row["candidate"] == cv["one_se_choice"] else ""
        print(f"  {row['candidate']!s:<10} {cv['metric']} {row['mean']:.5f} ± {row['se']:.5f}{mark}")


def synthetic_selection_demo(description: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Cross-validated latent counts, then bootstrap delays, on the headline DLAG-SSM scenario."""
    ap = base_parser(description, "outputs/synthetic/selection", checkpoints=False)
    _common(ap)
    ap.add_argument("--n-trials", type=int, default=50, help="trials of the scenario")
    ap.add_argument("--n-boot", type=int, default=100, help="bootstrap replicates")
    args = ap.parse_args(argv)
    device = resolve_device(args.device, join_group=False)
    out = synthetic_selection(
        seed=args.seed,
        scenario_overrides={"n_trials": args.n_trials},
        n_folds=args.n_folds,
        n_boot=args.n_boot,
        n_workers=args.workers,
        fit_kwargs=_fit_kwargs(args),
        device=str(device),
        dtype=DTYPES[args.dtype],
    )
    figs = {
        "cv_curve.png": plotting.plot_cv_curve(out["cv"], title="DLAG-SSM latent counts (n_across, n_within)"),
        "delay_intervals.png": plotting.plot_delay_intervals(out["boot"], out["true_delays"], out["region_names"]),
    }
    summary = {**out["summary"], "figures": save_figures(figs, args.out_dir), "argv": vars(args)}
    path = write_summary(summary, args.out_dir)
    print(f"Cross-validated DLAG-SSM latent counts on the headline scenario (seed {args.seed}, {device}):")
    _print_cv(summary["cv"])
    print(f"  truth {tuple(summary['truth'])}, one-SE choice {tuple(summary['one_se_choice'])}")
    for row in summary["bootstrap"]["delays"]:
        print(
            f"  delay {row['region']} latent {row['latent'] + 1}: {row['estimate']:.3f} bins, "
            f"95% [{row['lower']:.3f}, {row['upper']:.3f}], P(δ > 0) = {row['fraction_positive']:.2f}"
        )
    print(f"  wrote {path} and {len(summary['figures'])} figures")
    return summary


def v1v2_selection_demo(description: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Cross-validated DLAG-SSM latent counts on the V1/V2 training trials; the choice and the 2 + 2 default scored
    on the test protocol beside the baselines."""
    ap = base_parser(description, "outputs/v1v2/selection", checkpoints=False)
    _common(ap)
    add_data_args(ap)
    ap.add_argument("--holdout-seed", type=int, default=0, help="first held-out-neuron seed")
    ap.add_argument("--n-holdout-seeds", type=int, default=3)
    ap.add_argument("--max-across", type=int, default=3, help="grid: n_across from 1 to this")
    ap.add_argument("--max-within", type=int, default=3, help="grid: n_within from 1 to this")
    args = ap.parse_args(argv)
    device = resolve_device(args.device, join_group=False)
    path, data = data_from_args(ap, args, DTYPES[args.dtype])
    grid = [(a, w) for a in range(1, args.max_across + 1) for w in range(1, args.max_within + 1)]
    out = v1v2_selection(
        data,
        grid=grid,
        split_seed=args.seed,
        n_folds=args.n_folds,
        n_workers=args.workers,
        holdout_seed=args.holdout_seed,
        n_holdout_seeds=args.n_holdout_seeds,
        device=str(device),
        dtype=DTYPES[args.dtype],
    )
    figs = {
        "cv_curve.png": plotting.plot_cv_curve(out["cv_result"], title="V1/V2 training trials: DLAG-SSM latent counts")
    }
    summary = {
        **{k: v for k, v in out.items() if k != "cv_result"},
        "data_path": str(path),
        "figures": save_figures(figs, args.out_dir),
        "argv": vars(args),
    }
    dest = write_summary(summary, args.out_dir)
    print(f"Cross-validated DLAG-SSM latent counts on the training trials of split {args.seed} ({device}):")
    _print_cv(summary["cv"])
    rows = {**summary["runs"], **{f"baseline {k}": v for k, v in summary["baselines"].items()}}
    for label, scores in rows.items():
        line = ", ".join(
            f"{k.replace('holdout_', '')} {v:.4f}"
            for k, v in scores.items()
            if k.startswith("holdout_") and not k.endswith("_std") and isinstance(v, float)
        )
        print(f"  {label}: {line}")
    print(f"  wrote {dest} and {len(summary['figures'])} figures")
    return summary
