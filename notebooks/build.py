"""Write the demo notebooks (one per demo, thin: they call ``mbrila.experiments.notebooks``) and bake in their results.

    uv run python notebooks/build.py                      # (re)write every notebook's cells, outputs cleared
    uv run python notebooks/build.py --execute            # ... and run each at full size, saving the outputs
    uv run python notebooks/build.py --execute --only synthetic/demo_dlag,v1v2/demo_adm

Each notebook mirrors its command-line twin in ``examples/`` (the same entry of ``mbrila.experiments.demos``).
The test suite executes every notebook at reduced size (``MBRILA_NOTEBOOK_REDUCED=1``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from mbrila.experiments.demos import SYNTHETIC_DEMOS, V1V2_DEMOS
from mbrila.experiments.notebooks import REDUCED_ENV

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

SYNTHETIC_FIGURES = {
    "convergence.png": "The EM score (log-likelihood, or the ELBO for mDLAG) against the iterations: a convergence "
    "diagnostic, not a score to compare models by.",
    "delays.png": "Fitted delays (dashed) against the truth (black), each non-reference region against region 0; "
    "a positive delay means the region lags region 0.",
    "latents.png": "One trial's across latents as region 0 sees them: posterior means with ± 2 sd bands, matched to "
    "the true latents by correlation (order and sign).",
    "ard.png": "ARD: each latent's share of each region's shared variance (outlined cells: active). Latents active "
    "nowhere are pruned.",
    "psth_heatmap.png": "Trial-averaged activity of every neuron: data, the model's reconstruction, and the residual.",
}
V1V2_FIGURES = {
    "psth_heatmap.png": "Test trials, first split and holdout seed: trial-averaged activity, prediction and residual; "
    "ticks mark the held-out neurons (predicted from the others).",
    "cosmoothing.png": "Held-out neurons: recorded vs predicted activity (trial mean, and one trial), with the "
    "training-PSTH baseline.",
    "convergence.png": "Training score and the validation co-smoothing score; the dashed line marks the checkpoint "
    "kept.",
    "delays.png": "Fitted delays of V2 relative to V1 (bins); positive: V2 lags V1.",
    "latents.png": "One test trial's V1 latents, posterior means ± 2 sd.",
    "ard.png": "ARD: each latent's share of each region's shared variance (outlined: active).",
}


def _md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text)


def _code(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(text)


def _figure_cells(names: list[str], notes: dict[str, str]) -> list[nbformat.NotebookNode]:
    cells = []
    for name in names:
        cells += [_md(f"**{name[:-4].replace('_', ' ')}.** {notes[name]}"), _code(f'nb.show(figs["{name}"])')]
    return cells


def synthetic_notebook(name: str) -> nbformat.NotebookNode:
    spec = SYNTHETIC_DEMOS[name]
    figs = ["convergence.png"]
    if spec.model not in ("gpfa", "lds"):
        figs.append("delays.png")
    figs.append("latents.png")
    if spec.model.startswith("mdlag"):
        figs.append("ard.png")
    figs.append("psth_heatmap.png")
    cells = [
        _md(
            f"# {spec.title}\n\n"
            f"Synthetic data with known latents and delays (the scenario behind the published numbers, "
            f"DESIGN.md §5), fitted at the library's defaults. The command-line twin is "
            f"`examples/synthetic/demo_{name}.py`; both run `mbrila.experiments.demos.SYNTHETIC_DEMOS[{name!r}]`. "
            f"Set `{REDUCED_ENV}=1` for a quick run on a few trials."
        ),
        _code(
            "from mbrila.experiments import notebooks as nb\n\n"
            f'run = nb.synthetic("{name}")\n'
            f'nb.synthetic_banner("{name}", run)'
        ),
        _md("## Scores"),
        _code("nb.synthetic_scores(run)"),
        *(
            [
                _md(f"The same data fitted by `{spec.compare_with}` (the CLI twin fits it too):"),
                _code(f'nb.synthetic_comparison("{name}", run)'),
            ]
            if spec.compare_with
            else []
        ),
        _md("## Diagnostics"),
        _code("figs = nb.synthetic_figures(run)"),
        *_figure_cells(figs, SYNTHETIC_FIGURES),
    ]
    return _notebook(cells)


def v1v2_notebook(name: str) -> nbformat.NotebookNode:
    spec = V1V2_DEMOS[name]
    figs = ["psth_heatmap.png", "cosmoothing.png", "convergence.png", "delays.png", "latents.png"]
    if spec.model.startswith("mdlag"):
        figs.append("ard.png")
    cells = [
        _md(
            f"# {spec.title}\n\n"
            "Held-out-neuron co-smoothing on the V1/V2 recordings shipped in `data/` (Semedo et al., *Neuron* 2019): "
            "400 trials split 300 / 50 / 50 by each split seed, the model fitted on the training trials (checkpoint "
            "chosen on the validation trials), 20 % of each region's neurons hidden on the test trials and predicted "
            "from the rest. Scores are shown beside the trivial baselines on the same trials and neurons: each "
            "held-out neuron's training PSTH, and its training mean. The command-line twin is "
            f"`examples/v1v2/demo_{name}.py --split-seeds 0,1,2`. Set `{REDUCED_ENV}=1` for a quick run."
        ),
        _code(
            f'from mbrila.experiments import notebooks as nb\n\nrun = nb.v1v2("{name}")\nnb.v1v2_banner("{name}", run)'
        ),
        _md("## Held-out scores beside the baselines"),
        _code("nb.v1v2_scores(run)"),
        _md("## Diagnostics (first split)"),
        _code("figs = nb.v1v2_figures(run)"),
        *_figure_cells(figs, V1V2_FIGURES),
    ]
    return _notebook(cells)


def _notebook(cells: list[nbformat.NotebookNode]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def all_notebooks() -> dict[str, nbformat.NotebookNode]:
    """Every notebook by its path below ``notebooks/`` (without ``.ipynb``)."""
    out = {f"synthetic/demo_{n}": synthetic_notebook(n) for n in SYNTHETIC_DEMOS}
    out.update({f"v1v2/demo_{n}": v1v2_notebook(n) for n in V1V2_DEMOS})
    return out


def execute(nb: nbformat.NotebookNode, timeout: int = 3600) -> nbformat.NotebookNode:
    """Run ``nb`` top to bottom in a fresh kernel from the repository root (outputs stored in ``nb``)."""
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--execute", action="store_true", help="run each notebook at full size and keep its outputs")
    ap.add_argument("--only", default=None, help="comma-separated notebook names, e.g. synthetic/demo_dlag")
    args = ap.parse_args()
    wanted = set(args.only.split(",")) if args.only else None
    os.environ.pop(REDUCED_ENV, None)  # baked-in outputs are full size
    for name, nb in all_notebooks().items():
        if wanted is not None and name not in wanted:
            continue
        path = HERE / f"{name}.ipynb"
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.execute:
            t0 = time.perf_counter()
            execute(nb)
            print(f"{name}: executed in {time.perf_counter() - t0:.0f} s")
        nbformat.write(nb, path)
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
