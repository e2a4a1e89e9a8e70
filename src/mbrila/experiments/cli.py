"""The command-line front end shared by every example script (DESIGN.md §4).

Each script in ``examples/`` is a few lines: it names a preset (and, for the kernel demos, a kernel factory) and
calls :func:`synthetic_demo` or :func:`v1v2_demo`. Both accept ``--help``, ``--device``, ``--dtype``, ``--seed``,
``--out-dir``, ``--max-iter`` and ``--tol``, print a short summary and write ``summary.json`` and PNG figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbrila import distributed, plotting
from mbrila.core import LatentSpec, MultiRegionData
from mbrila.data.io import demo_data_path, load_data
from mbrila.experiments.compare import comparison_table, find_runs, load_run, to_markdown
from mbrila.experiments.cosmoothing import VALIDATED_MAX_ITER, CosmoothingResult
from mbrila.experiments.counts import run_count_comparison
from mbrila.experiments.demos import SYNTHETIC_DEMOS, V1V2_DEMOS
from mbrila.experiments.figures import cosmoothing_figure_set, synthetic_figure_set
from mbrila.experiments.synthetic import (
    matched_delays,
    run_synthetic,
)
from mbrila.experiments.v1v2 import run_v1v2

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(name: str, join_group: bool = True) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is passed to :class:`torch.device`.

    Under ``torchrun`` (and with ``join_group``) this also joins the process group
    (:func:`mbrila.distributed.init_process_group`: each process then fits on its shard of the trials and takes the
    GPU of its local rank) and silences the printing of every rank but 0.
    """
    if name == "auto":
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto.")
    if not join_group:
        return dev
    dev = distributed.init_process_group(dev)
    if not distributed.is_main():
        sys.stdout = open(os.devnull, "w")
    return dev


def base_parser(
    description: str,
    default_out: str,
    max_iter_help: str = "EM iterations (the engine's default when omitted)",
    checkpoints: bool = True,
) -> argparse.ArgumentParser:
    """The flags every demo shares (``checkpoints``: also ``--checkpoint``, ``--checkpoint-every``, ``--resume``)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda, cuda:1, …")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float64")
    ap.add_argument("--max-iter", type=int, default=None, help=max_iter_help)
    ap.add_argument(
        "--tol",
        type=float,
        default=None,
        help="EM tolerance on the relative score change (the preset's default when omitted)",
    )
    ap.add_argument("--out-dir", type=Path, default=Path(default_out))
    ap.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    if not checkpoints:
        return ap
    ap.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="write the fit's state to this file (atomically) every --checkpoint-every iterations",
    )
    ap.add_argument("--checkpoint-every", type=int, default=10, help="iterations between checkpoints")
    ap.add_argument(
        "--resume",
        action="store_true",
        help="continue from the --checkpoint file when it exists (run the same command again after a pre-emption)",
    )
    return ap


def add_data_args(ap: argparse.ArgumentParser) -> None:
    """``--data-path`` and the flags that bin an NWB file's spike times (used only for ``.nwb`` paths)."""
    ap.add_argument(
        "--data-path",
        type=Path,
        default=None,
        help="pickle or .npz: region name → (trials, T, n); or an NWB file (.nwb) of spike times, with --bin-width",
    )
    ap.add_argument("--bin-width", type=float, default=None, help="NWB: bin width in seconds (required for .nwb)")
    ap.add_argument("--align-to", default=None, help="NWB: trials-table column to align trials to (with --window)")
    ap.add_argument(
        "--window",
        type=float,
        nargs=2,
        metavar=("PRE", "POST"),
        default=None,
        help="NWB: seconds around --align-to (or each trial's start) that make a trial",
    )
    ap.add_argument(
        "--region-column",
        default=None,
        help="NWB: units-table column naming each unit's region (default: its electrodes' location)",
    )


def data_from_args(
    ap: argparse.ArgumentParser, args: argparse.Namespace, dtype: torch.dtype
) -> tuple[Path, MultiRegionData]:
    """The ``--data-path`` file (default: the shipped V1/V2 recordings) and its data, per :func:`add_data_args`."""
    path = args.data_path if args.data_path is not None else demo_data_path()
    nwb = {k: getattr(args, k) for k in ("bin_width", "align_to", "window", "region_column")}
    if path.suffix.lower() != ".nwb":
        given = ["--" + k.replace("_", "-") for k, v in nwb.items() if v is not None]
        if given:
            ap.error(f"{', '.join(given)} only apply to an NWB (.nwb) --data-path; {path.name} is not one.")
        return path, load_data(path, dtype=dtype)
    if args.bin_width is None:
        ap.error(f"--data-path {path.name} is an NWB file of spike times: pass --bin-width (seconds) to bin them.")
    if args.align_to is not None and args.window is None:
        ap.error("--align-to needs --window PRE POST (seconds around the aligned time).")
    return path, load_data(path, dtype=dtype, **nwb)


def log_fit_ends() -> None:
    """Print each fit's closing log line (how it ended) on stderr, as a cluster job's log should show it."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")


def checkpoint_kwargs(args: argparse.Namespace, suffix: str = "") -> dict[str, Any]:
    """``fit`` keyword arguments for ``--checkpoint`` / ``--resume`` (``suffix`` tells several fits' files apart)."""
    if args.checkpoint is None:
        if args.resume:
            raise SystemExit("--resume needs --checkpoint PATH: the checkpoint file to continue from.")
        return {}
    path = args.checkpoint.with_name(f"{args.checkpoint.stem}{suffix}{args.checkpoint.suffix}")
    out: dict[str, Any] = {"checkpoint": path, "checkpoint_every": args.checkpoint_every}
    if args.resume and path.exists():
        out["resume"] = path
    return out


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if not math.isfinite(float(x)) else float(x)
    if isinstance(x, (np.integer, np.bool_)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    return x


def write_summary(summary: dict[str, Any], out_dir: Path) -> Path:
    """Write ``summary.json`` (only rank 0 writes under torchrun: every rank holds the same results)."""
    path = out_dir / "summary.json"
    if distributed.is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    return path


def _print(summary: dict[str, Any], keys: Sequence[str]) -> None:
    for k in keys:
        if k in summary and summary[k] is not None:
            v = summary[k]
            print(f"  {k:<28} {v:.4g}" if isinstance(v, float) else f"  {k:<28} {v}")


# --------------------------------------------------------------------------------------------- synthetic
def save_figures(figs: dict[str, Any], out_dir: Path) -> list[str]:
    """Save named figures as PNG files in ``out_dir`` (rank 0 only under torchrun); returns their file names."""
    if distributed.is_main():
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, fig in figs.items():
            fig.savefig(out_dir / name, dpi=110, bbox_inches="tight")
    return list(figs)


def synthetic_demo(
    model_name: str,
    description: str,
    *,
    scenario: str = "dlag",
    model_kwargs: Callable[[], dict[str, Any]] | None = None,
    scenario_kernels: Callable[[], Sequence[Any]] | None = None,
    latent_spec: LatentSpec | None = None,
    compare_with: str | None = None,
    label: str | None = None,
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run a synthetic recovery demo from the command line (see the module docstring).

    Parameters
    ----------
    model_name : preset name for :func:`mbrila.build_model`.
    scenario : headline scenario kind (``--delay-shape`` changes its delay shape).
    model_kwargs : returns extra preset arguments, e.g. ``{"kernel_factory_across": MyKernel}``.
    scenario_kernels : returns the true kernels for the scenario (RBF at the headline timescales when None).
    latent_spec : the model's latent counts (default: the scenario's; mDLAG demos start with more latents).
    compare_with : another preset fitted to the same data (``--no-compare`` skips it); its scores are added to
        the summary under ``compare`` and its delays to the figure.
    label : the ``method`` written to the summary (default ``model_name``), e.g. ``"dlag_ssm_matern52"``.
    """
    label = label or model_name
    ap = base_parser(description, f"outputs/synthetic/{label}")
    ap.add_argument("--seed", type=int, default=0, help="data seed of the synthetic scenario")
    ap.add_argument("--delay-shape", default=None, help="override the scenario's delay shape (e.g. sine, ramp)")
    ap.add_argument("--n-trials", type=int, default=None, help="override the number of trials (50)")
    if compare_with:
        ap.add_argument("--no-compare", action="store_true", help=f"skip the {compare_with} comparison fit")
    args = ap.parse_args(argv)
    log_fit_ends()
    device, dtype = resolve_device(args.device), DTYPES[args.dtype]
    overrides: dict[str, Any] = {}
    if args.delay_shape:
        overrides["delay_shape"] = args.delay_shape
    if args.n_trials:
        overrides["n_trials"] = args.n_trials
    if scenario_kernels is not None:
        overrides["kernels"] = list(scenario_kernels())
    run = run_synthetic(
        model_name,
        scenario=scenario,
        seed=args.seed,
        scenario_overrides=overrides,
        model_kwargs=model_kwargs() if model_kwargs else None,
        latent_spec=latent_spec,
        max_iter=args.max_iter,
        tol=args.tol,
        device=device,
        dtype=dtype,
        progress=not args.no_progress,
        fit_kwargs=checkpoint_kwargs(args),
    )
    summary = {
        **run.summary,
        "method": label,
        "model": model_name,
        "figures": save_figures(synthetic_figure_set(run), args.out_dir),
        "argv": vars(args),
    }
    if compare_with and not args.no_compare:
        other = run_synthetic(
            compare_with,
            scenario=run.scenario,
            seed=args.seed,
            max_iter=args.max_iter,
            tol=args.tol,
            device=device,
            dtype=dtype,
            progress=not args.no_progress,
        )
        keys = ("method", "delay_rmse", "delay_rmse_per_latent", "y_rmse", "n_iter", "wall_time_s", "peak_memory_mb")
        summary["compare"] = {k: other.summary[k] for k in keys}
        if other.summary["delay_rmse"] is not None:
            plotting.plot_delays(
                matched_delays(other),
                run.truth.delays,
                run.data.region_names,
                args.out_dir / f"delays_{compare_with}.png",
            )
            summary["figures"].append(f"delays_{compare_with}.png")
    path = write_summary(summary, args.out_dir)
    print(f"{label} on the {summary['scenario']} scenario (seed {args.seed}, {device}, {args.dtype}):")
    _print(
        summary,
        [
            "delay_rmse",
            "y_rmse",
            "noise_floor_rmse",
            "n_active_latents",
            "n_iter",
            "converged",
            "wall_time_s",
            "peak_memory_mb",
        ],
    )
    if "compare" in summary:
        c = summary["compare"]
        print(
            f"  {compare_with} on the same data: delay_rmse {c['delay_rmse']:.4g}, wall_time_s {c['wall_time_s']:.4g}"
        )
    print(f"  wrote {path} and {len(summary['figures'])} figures")
    return summary


# --------------------------------------------------------------------------------------------- V1/V2
def v1v2_demo(
    model_name: str,
    description: str,
    *,
    model_kwargs: Callable[[], dict[str, Any]] | None = None,
    label: str | None = None,
    latent_counts: tuple[int, int] = (2, 2),
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the V1/V2 co-smoothing protocol (:func:`mbrila.experiments.cosmoothing.run_cosmoothing`).

    With several ``--split-seeds`` each split is fitted in turn and the summary adds the mean and the sample std
    (``ddof = 1``; null for one split) over splits, for the model and for the baselines scored on the same trials and
    held-out neurons.

    Parameters
    ----------
    model_name : preset name for :func:`mbrila.build_model`.
    model_kwargs : returns extra preset arguments (e.g. a kernel factory).
    label : the ``method`` written to the summary (default ``model_name``).
    latent_counts : default ``(--n-across, --n-within)``: 2 + 2 as behind the published numbers (mDLAG: 3 + 0).
    """
    label = label or model_name
    ap = base_parser(
        description,
        f"outputs/v1v2/{label}",
        max_iter_help=f"cap on EM iterations (default {VALIDATED_MAX_ITER} when the validation trials pick the "
        "checkpoint and stop the fit, the engine's default with --no-validation-select)",
    )
    add_data_args(ap)
    ap.add_argument("--split-seeds", "--split-seed", default="0", help="comma-separated split seeds (e.g. 0,1,2)")
    ap.add_argument("--holdout-seed", type=int, default=0, help="first held-out-neuron seed")
    ap.add_argument("--n-holdout-seeds", type=int, default=3)
    ap.add_argument("--n-across", type=int, default=latent_counts[0])
    ap.add_argument("--n-within", type=int, default=latent_counts[1])
    ap.add_argument("--seed", type=int, default=0, help="torch seed (the fit itself is deterministic)")
    ap.add_argument(
        "--no-validation-select",
        action="store_true",
        help="score the last EM iterate instead of the checkpoint that co-smooths the validation trials best",
    )
    ap.add_argument(
        "--subtract-train-psth",
        action="store_true",
        help="fit residuals from the training PSTH (a time-varying mean; a different model, labelled in the summary)",
    )
    args = ap.parse_args(argv)
    log_fit_ends()
    torch.manual_seed(args.seed)
    device, dtype = resolve_device(args.device), DTYPES[args.dtype]
    path, data = data_from_args(ap, args, dtype)
    seeds = [int(s) for s in str(args.split_seeds).split(",") if s.strip()]
    figures: list[str] = []

    def report(i: int, res: CosmoothingResult, entry: dict[str, Any]) -> None:
        nonlocal figures
        if i == 0:
            figures = save_figures(cosmoothing_figure_set(res, data), args.out_dir)
        scores = ", ".join(f"{k} {v:.4f}" for k, v in res.metrics.items() if "psth" in k)
        print(f"split {entry['split_seed']}: {scores} (EM iterate {res.selected_iter} of {res.fit.n_iter})")
        psth = res.baselines["psth"]
        print("  baseline psth (training PSTH): " + ", ".join(f"{k} {v:.4f}" for k, v in psth.items() if "psth" in k))
        floored = {k: v for k, v in entry["noise_floor_neurons"].items() if v}
        if floored:
            print(f"  noise variance on the floor (latents tracking single neurons): {floored}")

    run = run_v1v2(
        model_name,
        data,
        latent_spec=LatentSpec(args.n_across, args.n_within),
        model_kwargs=model_kwargs() if model_kwargs else None,
        label=label,
        split_seeds=seeds,
        holdout_seed=args.holdout_seed,
        n_holdout_seeds=args.n_holdout_seeds,
        select_on_validation=not args.no_validation_select,
        subtract_train_psth=args.subtract_train_psth,
        fit_kwargs={"max_iter": args.max_iter, "tol": args.tol, "progress": not args.no_progress},
        split_fit_kwargs=lambda split: checkpoint_kwargs(args, f".split{split}"),
        device=device,
        dtype=dtype,
        on_split=report,
    )
    summary = {**run.summary, "data_path": str(path), "figures": figures, "argv": vars(args)}
    baselines = summary["baselines"]
    out = write_summary(summary, args.out_dir)
    print(f"{summary['method']} co-smoothing on {path.name} ({device}, split seeds {seeds}):")
    _print(summary, [k for k in summary if k.startswith("holdout_")] + ["wall_time_s", "peak_memory_mb"])
    for name, base_scores in baselines.items():
        line = ", ".join(f"{k} {v:.4f}" for k, v in base_scores.items() if k.startswith("holdout_") and v is not None)
        print(f"  baseline {name}: {line}")
    print(f"  wrote {out} and {len(figures)} figures")
    return summary


# --------------------------------------------------------------------------------------------- comparisons
def compare_runs(argv: Sequence[str] | None = None, description: str | None = None) -> dict[str, Any]:
    """``compare_v1v2_runs.py``: aggregate co-smoothing demo outputs into a table and a bar chart.

    ``--runs GLOB [GLOB …]`` may be given several times, each after an optional ``--label NAME`` that names the
    runs it matches (one run per label); without labels each run keeps its summary's ``method``. Writes
    ``comparison.md``, ``comparison.json`` and ``comparison.png`` into ``--out-dir``.
    """
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--label", action="append", default=[], help="name of the method of the next --runs")
    ap.add_argument(
        "--runs", nargs="+", action="append", required=True, help="globs of run folders or summary.json files"
    )
    ap.add_argument("--title", default="V1/V2 co-smoothing", help="title of the table and the figure")
    ap.add_argument("--out-dir", type=Path, default=Path("outputs/v1v2/comparison"))
    args = ap.parse_args(argv)
    if args.label and len(args.label) != len(args.runs):
        raise SystemExit(f"give one --label per --runs (or none): {len(args.label)} labels, {len(args.runs)} --runs.")
    runs, labels = [], []
    try:
        for i, group in enumerate(args.runs):
            paths = find_runs(group)
            if args.label and len(paths) != 1:
                raise ValueError(
                    f"--label {args.label[i]!r}: its --runs match {len(paths)} runs; a label names one run."
                )
            for p in paths:
                runs.append(load_run(p))
                labels.append(args.label[i] if args.label else None)
        table = comparison_table(runs, labels)
    except ValueError as err:
        raise SystemExit(f"compare_v1v2_runs: {err}") from err
    args.out_dir.mkdir(parents=True, exist_ok=True)
    md = to_markdown(table, args.title)
    (args.out_dir / "comparison.md").write_text(md)
    (args.out_dir / "comparison.json").write_text(json.dumps(_jsonable(table), indent=2) + "\n")
    plotting.plot_comparison(table, args.out_dir / "comparison.png", title=args.title)
    print(md)
    print(f"wrote {args.out_dir / 'comparison.md'}, comparison.json and comparison.png")
    return table


# --------------------------------------------------------------------------------------------- spike counts
def count_demo(description: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Poisson DLAG-SSM against Gaussian DLAG-SSM on square-root counts (:mod:`mbrila.experiments.counts`)."""
    ap = base_parser(description, "outputs/synthetic/poisson", checkpoints=False)
    ap.add_argument("--seed", type=int, default=0, help="data seed of the synthetic scenario")
    ap.add_argument("--n-trials", type=int, default=50, help="training trials (25 test trials are drawn beside)")
    args = ap.parse_args(argv)
    log_fit_ends()
    device, dtype = resolve_device(args.device), DTYPES[args.dtype]
    summary, poisson, gaussian = run_count_comparison(
        seed=args.seed,
        n_trials=args.n_trials,
        max_iter=args.max_iter,
        device=device,
        dtype=dtype,
        progress=not args.no_progress,
    )
    figs = {
        f"{name}_{k}": v
        for name, run in (("poisson", poisson), ("gaussian_sqrt", gaussian))
        for k, v in synthetic_figure_set(run).items()
    }
    summary = {**summary, "device": str(device), "figures": save_figures(figs, args.out_dir), "argv": vars(args)}
    path = write_summary(summary, args.out_dir)
    print(f"Poisson vs Gaussian-on-sqrt DLAG-SSM on generated counts (seed {args.seed}, {device}, {args.dtype}):")
    print(f"  mean rate {summary['mean_rate']:.3g} spikes/bin, {100 * summary['fraction_zeros']:.0f}% zeros")
    for name in ("poisson", "gaussian_sqrt"):
        r = summary[name]
        print(
            f"  {name:<14} delay_rmse {r['delay_rmse']:.4g}  co_bps {r['co_bps']:.4g}  n_iter {r['n_iter']}  "
            f"wall_time_s {r['wall_time_s']:.4g}"
        )
    print(f"  training-PSTH baseline co_bps {summary['baseline_psth']['co_bps']:.4g} (mean rate: 0)")
    print(f"  wrote {path} and {len(summary['figures'])} figures")
    return summary


# --------------------------------------------------------------------------------------------- named demos
def run_synthetic_demo(name: str, description: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The synthetic demo ``name`` of :data:`mbrila.experiments.demos.SYNTHETIC_DEMOS` from the command line."""
    spec = SYNTHETIC_DEMOS[name]
    return synthetic_demo(spec.model, description, argv=argv, **spec.cli_kwargs())


def run_v1v2_demo(name: str, description: str, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """The V1/V2 demo ``name`` of :data:`mbrila.experiments.demos.V1V2_DEMOS` from the command line."""
    spec = V1V2_DEMOS[name]
    return v1v2_demo(spec.model, description, argv=argv, **spec.cli_kwargs())
