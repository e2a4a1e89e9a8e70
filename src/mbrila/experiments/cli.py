"""The command-line front end shared by every example script (DESIGN.md §4).

Each script in ``examples/`` is a few lines: it names a preset (and, for the kernel demos, a kernel factory) and
calls :func:`synthetic_demo` or :func:`v1v2_demo`. Both accept ``--help``, ``--device``, ``--dtype``, ``--seed``,
``--out-dir``, ``--max-iter`` and ``--tol``, print a short summary and write ``summary.json`` and PNG figures.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbrila import plotting
from mbrila.core import LatentSpec, MultiRegionData
from mbrila.data.io import demo_data_path, load_data
from mbrila.experiments.cosmoothing import VALIDATED_MAX_ITER, CosmoothingResult, run_cosmoothing
from mbrila.experiments.resources import PeakMemory
from mbrila.experiments.synthetic import SyntheticRun, matched_across_latents, matched_delays, run_synthetic
from mbrila.models.registry import build_model

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def resolve_device(name: str) -> torch.device:
    """``"auto"`` → CUDA when available, else CPU; anything else is passed to :class:`torch.device`."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name}: CUDA is not available on this machine; use --device cpu or auto.")
    return dev


def base_parser(
    description: str, default_out: str, max_iter_help: str = "EM iterations (the engine's default when omitted)"
) -> argparse.ArgumentParser:
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
    return ap


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
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "summary.json"
    path.write_text(json.dumps(_jsonable(summary), indent=2) + "\n")
    return path


def _print(summary: dict[str, Any], keys: Sequence[str]) -> None:
    for k in keys:
        if k in summary and summary[k] is not None:
            v = summary[k]
            print(f"  {k:<28} {v:.4g}" if isinstance(v, float) else f"  {k:<28} {v}")


# --------------------------------------------------------------------------------------------- synthetic
def synthetic_figures(run: SyntheticRun, out_dir: Path) -> list[str]:
    """convergence.png, delays.png (when the model learns delays), latents.png, psth_heatmap.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    plotting.plot_convergence(run.fit.score_trace, out_dir / "convergence.png")
    names.append("convergence.png")
    if run.summary.get("delay_rmse") is not None:
        plotting.plot_delays(matched_delays(run), run.truth.delays, run.data.region_names, out_dir / "delays.png")
        names.append("delays.png")
    fitted, true = matched_across_latents(run)
    if fitted.shape[-1]:
        plotting.plot_latents(fitted, true, path=out_dir / "latents.png", title="across latents seen by region 0")
        names.append("latents.png")
    if hasattr(run.model, "active_latents"):
        plotting.plot_ard(
            run.model.shared_variance_fraction().cpu(),
            run.model.active_latents().cpu(),
            run.data.region_names,
            out_dir / "ard.png",
            precisions=run.model.ard_precisions().cpu(),
        )
        names.append("ard.png")
    plotting.plot_psth_heatmap(
        run.data.y,
        run.prediction,
        run.data.y_dims,
        region_names=run.data.region_names,
        path=out_dir / "psth_heatmap.png",
    )
    names.append("psth_heatmap.png")
    return names


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
    )
    summary = {
        **run.summary,
        "method": label,
        "model": model_name,
        "figures": synthetic_figures(run, args.out_dir),
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
def cosmoothing_figures(res: CosmoothingResult, test: MultiRegionData, out_dir: Path) -> list[str]:
    """psth_heatmap.png (held-out neurons marked), delays.png, latents.png, convergence.png."""
    out_dir.mkdir(parents=True, exist_ok=True)
    plotting.plot_psth_heatmap(
        test.y, res.prediction, test.y_dims, res.heldout, test.region_names, out_dir / "psth_heatmap.png"
    )
    selected = res.selected_iter if res.validation_trace else None
    plotting.plot_convergence(
        res.fit.score_trace, out_dir / "convergence.png", validation=res.validation_trace, selected=selected
    )
    names = ["psth_heatmap.png", "convergence.png"]
    model = res.model
    if model.latent_spec.n_across and model.delay.learns_delays:
        plotting.plot_delays(model.delays().cpu(), None, test.region_names, out_dir / "delays.png")
        names.append("delays.png")
    post = model.infer(res.model_data(test))
    plotting.plot_latents(post.region(0).cpu(), path=out_dir / "latents.png", title=f"{test.region_names[0]} latents")
    names.append("latents.png")
    return names


def v1v2_demo(
    model_name: str,
    description: str,
    *,
    model_kwargs: Callable[[], dict[str, Any]] | None = None,
    label: str | None = None,
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Run the V1/V2 co-smoothing protocol (:func:`mbrila.experiments.cosmoothing.run_cosmoothing`).

    With several ``--split-seeds`` each split is fitted in turn and the summary adds the mean and std over splits.
    """
    label = label or model_name
    ap = base_parser(
        description,
        f"outputs/v1v2/{label}",
        max_iter_help=f"cap on EM iterations (default {VALIDATED_MAX_ITER} when the validation trials pick the "
        "checkpoint and stop the fit, the engine's default with --no-validation-select)",
    )
    ap.add_argument("--data-path", type=Path, default=None, help="pickle or .npz: region name → (trials, T, n)")
    ap.add_argument("--split-seeds", default="0", help="comma-separated split seeds (e.g. 0,1,2)")
    ap.add_argument("--holdout-seed", type=int, default=0, help="first held-out-neuron seed")
    ap.add_argument("--n-holdout-seeds", type=int, default=3)
    ap.add_argument("--n-across", type=int, default=2)
    ap.add_argument("--n-within", type=int, default=2)
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
    torch.manual_seed(args.seed)
    device, dtype = resolve_device(args.device), DTYPES[args.dtype]
    path = args.data_path if args.data_path is not None else demo_data_path()
    data = load_data(path, dtype=dtype)
    spec = LatentSpec(args.n_across, args.n_within)
    extra = model_kwargs() if model_kwargs else {}

    def make(train: MultiRegionData) -> Any:
        return build_model(
            model_name, latent_spec=spec, y_dims=train.y_dims, T=train.T, dtype=dtype, device=device, **extra
        )

    seeds = [int(s) for s in str(args.split_seeds).split(",") if s.strip()]
    per_split: list[dict[str, Any]] = []
    figures: list[str] = []
    for i, split in enumerate(seeds):
        with PeakMemory(device) as mem:
            res = run_cosmoothing(
                make,
                data,
                split_seed=split,
                holdout_seed=args.holdout_seed,
                n_holdout_seeds=args.n_holdout_seeds,
                select_on_validation=not args.no_validation_select,
                subtract_train_psth=args.subtract_train_psth,
                fit_kwargs={"max_iter": args.max_iter, "tol": args.tol, "progress": not args.no_progress},
            )
        entry: dict[str, Any] = {
            "split_seed": split,
            **res.metrics,
            "n_iter": res.fit.n_iter,
            "selected_iter": res.selected_iter,
            "converged": res.fit.converged,
            "fit_wall_time_s": res.fit.wall_time_s,
            "wall_time_s": res.wall_time_s,
            "timings_s": dict(res.fit.timings),
            "peak_memory_mb": mem.peak_mb,
            "noise_floor_neurons": dict(zip(data.region_names, res.model.noise_floor_neurons(), strict=True)),
            "validation_trace": res.validation_trace,
        }
        per_split.append(entry)
        if i == 0:
            test = data[res.test_idx]
            figures = cosmoothing_figures(res, test, args.out_dir)
        scores = ", ".join(f"{k} {v:.4f}" for k, v in res.metrics.items() if "psth" in k)
        print(f"split {split}: {scores} (EM iterate {res.selected_iter} of {res.fit.n_iter})")
        floored = {k: v for k, v in entry["noise_floor_neurons"].items() if v}
        if floored:
            print(f"  noise variance on the floor (latents tracking single neurons): {floored}")
    metric_keys = [k for k in per_split[0] if k.startswith("holdout_")]
    summary: dict[str, Any] = {
        "method": f"{label}+train_psth" if args.subtract_train_psth else label,
        "subtract_train_psth": args.subtract_train_psth,
        "model": model_name,
        "data_path": str(path),
        "region_names": list(data.region_names),
        "latent_spec": {"n_across": args.n_across, "n_within": args.n_within},
        "validation_select": not args.no_validation_select,
        "split_seeds": seeds,
        **{k: float(np.mean([s[k] for s in per_split])) for k in metric_keys},
        **{f"{k}_std": float(np.std([s[k] for s in per_split])) for k in metric_keys},
        "n_iter": per_split[0]["n_iter"],
        "selected_iter": [s["selected_iter"] for s in per_split],
        "wall_time_s": float(np.sum([s["wall_time_s"] for s in per_split])),
        "wall_time_per_split_s": [s["wall_time_s"] for s in per_split],
        "peak_memory_mb": float(np.max([s["peak_memory_mb"] for s in per_split])),
        "device": str(device),
        "dtype": args.dtype,
        "per_split": per_split,
        "figures": figures,
        "argv": vars(args),
    }
    out = write_summary(summary, args.out_dir)
    print(f"{summary['method']} co-smoothing on {path.name} ({device}, split seeds {seeds}):")
    _print(summary, [k for k in summary if k.startswith("holdout_psth")] + ["wall_time_s", "peak_memory_mb"])
    print(f"  wrote {out} and {len(figures)} figures")
    return summary
