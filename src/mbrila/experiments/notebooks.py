"""What the notebooks call: run a named demo with its CLI twin's defaults, and show its banner, scores and figures.

Every notebook in ``notebooks/`` names one entry of :data:`~mbrila.experiments.demos.SYNTHETIC_DEMOS` or
:data:`~mbrila.experiments.demos.V1V2_DEMOS` and calls the functions here, so its fit is the command-line demo's.
With the environment variable ``MBRILA_NOTEBOOK_REDUCED=1`` (what the test suite sets) the same code runs on a few
trials for a few iterations, so that every notebook can be executed top to bottom in seconds and never rots; the
committed notebooks hold the outputs of full-size runs, and their banner says which.
"""

from __future__ import annotations

import io
import os
from typing import Any

import torch

from mbrila.core import LatentSpec, MultiRegionData
from mbrila.data.io import demo_data_path, load_data
from mbrila.experiments.demos import SYNTHETIC_DEMOS, V1V2_DEMOS
from mbrila.experiments.figures import cosmoothing_figure_set, synthetic_figure_set
from mbrila.experiments.summaries import format_mean_spread
from mbrila.experiments.synthetic import SyntheticRun, run_synthetic
from mbrila.experiments.v1v2 import V1V2Run, run_v1v2
from mbrila.init import Deflation
from mbrila.synthetic import headline_scenario

#: Set to 1 to run every notebook at reduced size.
REDUCED_ENV = "MBRILA_NOTEBOOK_REDUCED"
#: V1/V2 trials kept at reduced size (the protocol's 75 / 12.5 / 12.5 % split applies to them).
REDUCED_V1V2_TRIALS = 48
#: EM iterations at reduced size (ADM's deflation stage is cut to the same).
REDUCED_ITERATIONS = 3


def reduced() -> bool:
    """Whether the notebooks run at reduced size (``MBRILA_NOTEBOOK_REDUCED=1``)."""
    return os.environ.get(REDUCED_ENV, "0") == "1"


def _model_kwargs(model: str, make: Any) -> dict[str, Any] | None:
    """The demo's extra preset arguments; at reduced size ADM's deflation stage is cut short as well."""
    kwargs = dict(make()) if make else {}
    if reduced() and model == "adm":
        kwargs["deflation"] = Deflation(max_iter=REDUCED_ITERATIONS)
    return kwargs or None


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def markdown(text: str) -> None:
    """Show ``text`` as markdown."""
    from IPython.display import Markdown

    _display(Markdown(text))


def show(fig: Any) -> None:
    """Show a matplotlib figure inline as a PNG (stored in the notebook, so results stay readable unexecuted)."""
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    _display(Image(buf.getvalue()))


def _table(rows: list[tuple[str, Any]]) -> str:
    lines = ["| | |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def banner(title: str, prior: str, model: Any, config: dict[str, Any]) -> None:
    """The method, its latent-prior family, its engine class, and the run's configuration, as a table."""
    engine = type(model.engine)
    rows = [
        ("method", title),
        ("model", f"`{type(model).__name__}`"),
        ("latent prior", prior),
        ("engine", f"`{engine.__module__}.{engine.__name__}`"),
        ("size", "**reduced** (MBRILA_NOTEBOOK_REDUCED=1)" if reduced() else "full (the CLI twin's defaults)"),
    ]
    rows += [(k, _fmt(v)) for k, v in config.items()]
    markdown(f"### {title}\n\n" + _table(rows))


# --------------------------------------------------------------------------------------------- synthetic
def synthetic(name: str) -> SyntheticRun:
    """Run the synthetic demo ``name`` (its CLI twin: ``examples/synthetic/demo_<name>.py`` at its defaults)."""
    spec = SYNTHETIC_DEMOS[name]
    overrides: dict[str, Any] = {}
    max_iter = None
    if spec.scenario_kernels is not None:
        overrides["kernels"] = list(spec.scenario_kernels())
    if reduced():
        scen = headline_scenario(spec.scenario)
        overrides.update({"n_trials": 4, "T": 40, "y_dims": (12,) * scen.n_regions})
        max_iter = REDUCED_ITERATIONS
    return run_synthetic(
        spec.model,
        scenario=spec.scenario,
        seed=0,
        scenario_overrides=overrides,
        model_kwargs=_model_kwargs(spec.model, spec.model_kwargs),
        latent_spec=spec.latent_spec,
        max_iter=max_iter,
        progress=False,
    )


def synthetic_comparison(name: str, run: SyntheticRun) -> None:
    """Fit the demo's comparison model (e.g. DLAG-SSM beside ADM) on the same data and show both delay RMSEs."""
    spec = SYNTHETIC_DEMOS[name]
    if spec.compare_with is None:
        raise ValueError(f"demo {name!r} has no comparison model.")
    other = run_synthetic(
        spec.compare_with,
        scenario=run.scenario,
        max_iter=REDUCED_ITERATIONS if reduced() else None,
        progress=False,
    )
    rows = [
        (f"{run.summary['method']} delay RMSE (bins)", _fmt(run.summary["delay_rmse"])),
        (f"{spec.compare_with} on the same data", _fmt(other.summary["delay_rmse"])),
    ]
    markdown(_table(rows))


def synthetic_banner(name: str, run: SyntheticRun) -> None:
    """:func:`banner` for a synthetic run."""
    spec = SYNTHETIC_DEMOS[name]
    s = run.summary
    config = {
        "scenario": f"{spec.scenario} (data seed {s['seed']}): {s['n_trials']} trials × {s['T']} bins, "
        f"neurons per region {s['y_dims']}",
        "latents (model)": str(run.model.latent_spec),
        "true delays": "time-varying" if s["delay_shape"] != "constant" else "constant",
        "device / dtype": f"{s['device']} / {s['dtype']}",
    }
    banner(spec.title, spec.prior, run.model, config)


def synthetic_scores(run: SyntheticRun) -> None:
    """The headline numbers of a synthetic run."""
    s = run.summary
    rows: list[tuple[str, Any]] = [
        ("delay RMSE (bins)", _fmt(s["delay_rmse"]) if s["delay_rmse"] is not None else "– (no delays)"),
        ("reconstruction RMSE / noise floor", f"{_fmt(s['y_rmse'])} / {_fmt(s['noise_floor_rmse'])}"),
        ("fitted across timescales (bins)", _fmt(s["timescales_across_fit"])),
        ("true across timescales (bins)", _fmt(s["timescales_across_true"])),
        ("EM iterations (converged)", f"{s['n_iter']} ({s['converged']})"),
        ("fit wall time (s)", _fmt(s["wall_time_s"])),
    ]
    if "n_active_latents" in s:
        rows.insert(1, ("latents kept by ARD", f"{s['n_active_latents']} of {run.model.latent_spec.n_across}"))
    markdown(_table(rows))


def synthetic_figures(run: SyntheticRun) -> dict[str, Any]:
    """The synthetic demo's figures by name (show each with :func:`show`)."""
    return synthetic_figure_set(run)


# --------------------------------------------------------------------------------------------- V1/V2
def v1v2(name: str) -> V1V2Run:
    """Run the V1/V2 demo ``name`` on the shipped recordings with the published protocol: split seeds 0, 1, 2 and
    3 holdout seeds each (the CLI twin ``examples/v1v2/demo_<name>.py --split-seeds 0,1,2``)."""
    spec = V1V2_DEMOS[name]
    data = v1v2_data()
    splits: tuple[int, ...] = (0, 1, 2)
    n_holdout = 3
    fit_kwargs: dict[str, Any] = {"progress": False}
    if reduced():
        splits, n_holdout, fit_kwargs = (0,), 1, {"progress": False, "max_iter": REDUCED_ITERATIONS}
    return run_v1v2(
        spec.model,
        data,
        latent_spec=LatentSpec(*spec.latent_counts),
        model_kwargs=_model_kwargs(spec.model, spec.model_kwargs),
        label=spec.label,
        split_seeds=splits,
        n_holdout_seeds=n_holdout,
        fit_kwargs=fit_kwargs,
    )


def v1v2_data() -> MultiRegionData:
    """The recordings the V1/V2 notebooks use, in float64 (the shipped data; a subset of trials at reduced size)."""
    data = load_data(demo_data_path(), dtype=torch.float64)
    return data[list(range(REDUCED_V1V2_TRIALS))] if reduced() else data


def v1v2_banner(name: str, run: V1V2Run) -> None:
    """:func:`banner` for a V1/V2 run."""
    spec = V1V2_DEMOS[name]
    s = run.summary
    res = run.results[0]
    n_train, n_test = len(res.train_idx), len(res.test_idx)
    config = {
        "data": f"V1/V2 (Semedo et al. 2019): regions {', '.join(s['region_names'])}",
        "latents": f"{s['latent_spec']['n_across']} across + {s['latent_spec']['n_within']} within per region",
        "splits": f"seeds {s['split_seeds']}: {n_train} train / {n_test} test trials each (validation: the rest)",
        "held-out neurons": "20 % of each region, holdout seeds 0 … " + str(len(run.results[0].per_seed) - 1),
        "checkpoint": "selected on the validation trials" if s["validation_select"] else "last EM iterate",
        "device / dtype": f"{s['device']} / {s['dtype']}",
    }
    banner(spec.title, spec.prior, res.model, config)


def v1v2_scores(run: V1V2Run) -> None:
    """Held-out PSTH and trial RMSE per region, mean ± sample std over splits, beside the baselines."""
    s = run.summary
    regions = s["region_names"]
    head = "| | " + " | ".join(f"{r} PSTH RMSE | {r} trial RMSE" for r in regions) + " |"
    sep = "| --- " * (1 + 2 * len(regions)) + "|"

    def cells(scores: dict[str, Any]) -> str:
        out = []
        for r in regions:
            for kind in ("psth", "trial"):
                key = f"holdout_{kind}_rmse_{r}"
                out.append(format_mean_spread(scores[key], scores.get(f"{key}_std")))
        return " | ".join(out)

    lines = [head, sep, f"| **{s['method']}** | {cells(s)} |"]
    for name, scores in s["baselines"].items():
        lines.append(f"| baseline: {name} | {cells(scores)} |")
    extra = (
        f"\n\nMean ± sample std (ddof = {s['std_ddof']}) over split seeds {s['split_seeds']}; EM iterations "
        f"{s['n_iter']} (checkpoints {s['selected_iter']}); wall time {s['wall_time_s']:.0f} s."
    )
    markdown("\n".join(lines) + extra)


def v1v2_figures(run: V1V2Run) -> dict[str, Any]:
    """The first split's figures by name (show each with :func:`show`)."""
    return cosmoothing_figure_set(run.results[0], v1v2_data())
