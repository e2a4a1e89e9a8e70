"""The README's results table, generated from the demos' summaries (never typed by hand).

    uv run python benchmarks/demos.py --seeds 0,1,2      # writes benchmarks/results/runs/*/summary.json
    uv run python benchmarks/results_table.py            # rewrites the README section and results_table.md

Synthetic rows: delay RMSE (mean ± sample std over data seeds 0, 1, 2) and fit wall time of each demo at its
defaults. V1/V2 rows: held-out PSTH and trial RMSE per region (mean ± sample std over split seeds 0, 1, 2, three
holdout seeds each), through :func:`mbrila.experiments.compare.comparison_table`, baselines included. The published
mbrila 0.1.0 numbers (DESIGN.md §5; measured on one CUDA GPU) are shown beside ours.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from mbrila.experiments.compare import comparison_table, load_run
from mbrila.experiments.demos import SYNTHETIC_DEMOS, V1V2_DEMOS
from mbrila.experiments.summaries import format_mean_spread, mean_and_spread

HERE = Path(__file__).resolve().parent
RUNS = HERE / "results" / "runs"
README = HERE.parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"

#: Published by the original mbrila 0.1.0 notebooks on one CUDA GPU (DESIGN.md §5): delay RMSE (bins), fit wall
#: time (s), V1 and V2 held-out PSTH RMSE (mean ± std over split seeds).
PUBLISHED: dict[str, dict[str, Any]] = {
    "adm": {"delay": 0.159, "time": 109, "V1": "0.0576 ± 0.0024", "V2": "0.0434 ± 0.0031"},
    "dlag": {"delay": 0.050, "time": 517, "V1": "0.0578 ± 0.0025", "V2": "0.0439 ± 0.0055"},
    "dlag_ssm": {"delay": 0.024, "time": 330, "V1": "0.0580 ± 0.0025", "V2": "0.0425 ± 0.0040"},
    "mdlag_time": {"delay": 1.197, "time": 2679, "V1": "0.0581 ± 0.0022", "V2": "0.0422 ± 0.0034"},
    "mdlag_freq": {"delay": 0.062, "time": 41, "V1": "0.0593 ± 0.0016", "V2": "0.0427 ± 0.0033"},
    "mdlag_ssm": {"delay": 0.016, "time": 125, "V1": "0.0584 ± 0.0016", "V2": "0.0427 ± 0.0043"},
    "matern": {"delay": 0.022, "time": 331},
    "custom_kernel": {"delay": 0.013, "time": 331, "V1": "0.0581 ± 0.0024", "V2": "0.0424 ± 0.0027"},
    "gpfa_ssm": {"time": 285},
    "lds": {"time": 57},
}


def _pm(values: list[float], digits: int = 4) -> str:
    return format_mean_spread(*mean_and_spread(values), digits)


def synthetic_rows() -> list[str]:
    lines = [
        "| demo | delay RMSE (bins) | fit wall time (s) | device | published delay RMSE | published time (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name in SYNTHETIC_DEMOS:
        runs = [json.loads(p.read_text()) for p in sorted(RUNS.glob(f"{name}_seed*/summary.json"))]
        if not runs:
            continue
        delays = [r["delay_rmse"] for r in runs if r.get("delay_rmse") is not None]
        delay = _pm(delays) if delays else "–"
        if runs[0].get("n_active_latents") is not None:
            kept = sorted({r["n_active_latents"] for r in runs})
            delay += f" (ARD kept {', '.join(map(str, kept))} of {len(runs[0]['ard_precisions']['R0'])})"
        wall = _pm([r["wall_time_s"] for r in runs], 1)
        pub = PUBLISHED.get(name, {})
        seeds = ", ".join(str(r["seed"]) for r in runs)
        lines.append(
            f"| `{name}` (seeds {seeds}) | {delay} | {wall} | {runs[0]['device']} | "
            f"{pub.get('delay', '–')} | {pub.get('time', '–')} |"
        )
    return lines


def v1v2_rows() -> list[str]:
    names = [n for n in V1V2_DEMOS if (RUNS / f"v1v2_{n}" / "summary.json").exists()]
    if not names:
        return []
    table = comparison_table([load_run(RUNS / f"v1v2_{n}") for n in names], labels=names)
    regions = table["regions"]
    head = "| method | " + " | ".join(f"{r} PSTH RMSE | {r} trial RMSE" for r in regions)
    head += " | fit wall time (s) | published " + " / ".join(f"{r} PSTH" for r in regions) + " |"
    lines = [head, "| --- " * (4 + 2 * len(regions) - 1) + "|"]
    for row in table["rows"]:
        cells = []
        for r in regions:
            for kind in ("psth", "trial"):
                e = row["regions"][r][kind]
                cells.append(format_mean_spread(e["mean"], e["std"]))
        wall = "–" if row["wall_time_s"] is None else f"{row['wall_time_s']:.0f}"
        pub = PUBLISHED.get(row["method"], {})
        published = " / ".join(pub.get(r, "–") for r in regions) if row["kind"] == "model" else "–"
        method = f"`{row['method']}`" if row["kind"] == "model" else row["method"]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {wall} | {published} |")
    return lines


def main() -> None:
    parts = ["#### Synthetic recovery (headline scenarios, defaults)", "", *synthetic_rows(), ""]
    v1v2 = v1v2_rows()
    if v1v2:
        parts += ["#### V1/V2 held-out-neuron co-smoothing (2 + 2 latents; mDLAG 3 with ARD)", "", *v1v2, ""]
    machine = json.loads((HERE / "results" / "demos.json").read_text()).get("machine", {})
    parts += [
        "Mean ± sample std (ddof = 1) over data seeds (synthetic) or split seeds 0, 1, 2 (V1/V2, three holdout seeds "
        "each); baselines scored on the same trials and held-out neurons. Ours: "
        f"{machine.get('cpu_count', '?')}-core CPU, float64, torch {machine.get('torch', '?')}; published: mbrila "
        "0.1.0 on one CUDA GPU. Generated by `benchmarks/results_table.py` from `benchmarks/results/runs/`.",
    ]
    body = "\n".join(parts)
    (HERE / "results" / "results_table.md").write_text(body + "\n")
    text = README.read_text()
    if START not in text or END not in text:
        sys.exit(f"{README}: add the markers {START} and {END} where the table goes.")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{body}\n{END}{tail}")
    print(body)


if __name__ == "__main__":
    main()
