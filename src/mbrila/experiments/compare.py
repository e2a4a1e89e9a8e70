"""Comparing co-smoothing runs: many demos' ``summary.json`` files → one table (markdown and JSON) and a bar chart.

Each run contributes its per-split scores; a method's entry is their mean and sample std over split seeds
(:mod:`mbrila.experiments.summaries`), per region, for the held-out PSTH RMSE and trial-by-trial RMSE, with the
fit wall time and the device. The baselines (training PSTH, training mean) are read from the runs themselves —
every run scores them on its own splits and held-out neurons — and shown as rows beside the models; runs on other
split seeds than the first run are refused, so every row of one table is measured on the same splits.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from mbrila.experiments.summaries import STD_DDOF, format_mean_spread, mean_and_spread

KINDS = ("psth", "trial")


def load_run(path: str | Path) -> dict[str, Any]:
    """A co-smoothing demo's summary (``summary.json``, or a folder holding one); ``ValueError`` naming the file and
    what is missing when it is not one."""
    p = Path(path)
    if p.is_dir():
        p = p / "summary.json"
    try:
        summary = json.loads(p.read_text())
    except FileNotFoundError as err:
        raise ValueError(f"{p}: no such file (expected a demo's summary.json or a folder holding one).") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"{p}: not a JSON file ({err.msg} at line {err.lineno}).") from err
    if not isinstance(summary, dict):
        raise ValueError(f"{p}: expected a JSON object (a demo summary); got {type(summary).__name__}.")
    for key in ("method", "region_names", "per_split", "split_seeds"):
        if key not in summary:
            raise ValueError(f"{p}: not a co-smoothing summary (no {key!r}); run one of examples/v1v2/demo_*.py.")
    summary["_path"] = str(p)
    return summary


def find_runs(patterns: Iterable[str]) -> list[Path]:
    """Every ``summary.json`` matched by the glob ``patterns`` (a folder matches through its summary)."""
    found: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if not matches:
            raise ValueError(f"--runs {pattern!r} matches nothing.")
        for m in matches:
            p = Path(m)
            found.append(p / "summary.json" if p.is_dir() else p)
    return found


def _scores(per_split: Sequence[dict[str, Any]], region: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in KINDS:
        key = f"holdout_{kind}_rmse_{region}"
        mean, std = mean_and_spread([float(s[key]) for s in per_split])
        out[kind] = {"mean": mean, "std": std}
    return out


def comparison_table(runs: Sequence[dict[str, Any]], labels: Sequence[str | None] | None = None) -> dict[str, Any]:
    """The table of the module docstring.

    Parameters
    ----------
    runs : summaries from :func:`load_run`.
    labels : a label per run (None keeps the run's ``method``); two runs may not share a label.

    Returns
    -------
    ``{"regions", "split_seeds", "std_ddof", "rows": [{"method", "kind" ("model" | "baseline"), "regions":
    {region: {"psth": {"mean", "std"}, "trial": {...}}}, "wall_time_s", "device", "n_splits", "source"}]}``.
    """
    if not runs:
        raise ValueError("no runs to compare.")
    labels = list(labels) if labels is not None else [None] * len(runs)
    first = runs[0]
    regions, splits = list(first["region_names"]), list(first["split_seeds"])
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for run, label in zip(runs, labels, strict=True):
        if list(run["split_seeds"]) != splits or list(run["region_names"]) != regions:
            raise ValueError(
                f"{run['_path']}: split seeds {run['split_seeds']} / regions {run['region_names']} differ from "
                f"{first['_path']} ({splits} / {regions}); compare runs of the same protocol."
            )
        name = label or str(run["method"])
        if name in seen:
            raise ValueError(f"two runs are labelled {name!r}; give each a --label.")
        seen.add(name)
        wall = [float(s["wall_time_s"]) for s in run["per_split"]]
        rows.append(
            {
                "method": name,
                "kind": "model",
                "regions": {r: _scores(run["per_split"], r) for r in regions},
                "wall_time_s": sum(wall),
                "device": run.get("device"),
                "n_splits": len(run["per_split"]),
                "source": run["_path"],
            }
        )
    for name in first["per_split"][0].get("baselines", {}):
        per_split = [s["baselines"][name] for s in first["per_split"]]
        rows.append(
            {
                "method": f"baseline: {name}",
                "kind": "baseline",
                "regions": {r: _scores(per_split, r) for r in regions},
                "wall_time_s": None,
                "device": None,
                "n_splits": len(per_split),
                "source": first["_path"],
            }
        )
    return {"regions": regions, "split_seeds": splits, "std_ddof": STD_DDOF, "rows": rows}


def _cell(entry: dict[str, Any]) -> str:
    return format_mean_spread(entry["mean"], entry["std"])


def to_markdown(table: dict[str, Any], title: str | None = None) -> str:
    """The table as GitHub markdown: one row per method, PSTH and trial RMSE per region, wall time, device."""
    regions = table["regions"]
    head = ["method"] + [f"{r} {k} RMSE" for r in regions for k in KINDS] + ["fit wall time (s)", "device"]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    lines += ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    for row in table["rows"]:
        cells = [row["method"]] + [_cell(row["regions"][r][k]) for r in regions for k in KINDS]
        wall = row["wall_time_s"]
        cells += ["–" if wall is None else f"{wall:.0f}", row["device"] or "–"]
        lines.append("| " + " | ".join(cells) + " |")
    seeds = ", ".join(str(s) for s in table["split_seeds"])
    lines += [
        "",
        f"Held-out-neuron co-smoothing, mean ± sample std (ddof = {table['std_ddof']}) over split seeds {seeds}; "
        "baselines scored on the same trials and held-out neurons.",
    ]
    return "\n".join(lines) + "\n"
