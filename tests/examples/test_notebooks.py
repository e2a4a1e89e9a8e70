"""The notebooks: one per demo, in step with their generator, executed top to bottom at reduced size, committed with
full-size outputs (figures included)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mbrila.experiments.demos import SYNTHETIC_DEMOS, V1V2_DEMOS
from mbrila.experiments.notebooks import REDUCED_ENV

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").rglob("*.ipynb"))
IDS = [str(p.relative_to(ROOT / "notebooks").with_suffix("")) for p in NOTEBOOKS]


def _builder():
    spec = importlib.util.spec_from_file_location("notebook_build", ROOT / "notebooks" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_demo_has_a_notebook():
    expected = {f"synthetic/demo_{n}" for n in SYNTHETIC_DEMOS} | {f"v1v2/demo_{n}" for n in V1V2_DEMOS}
    assert set(IDS) == expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_notebook_is_current_and_holds_full_size_outputs(path):
    committed = nbformat.read(path, as_version=4)
    fresh = _builder().all_notebooks()[str(path.relative_to(ROOT / "notebooks").with_suffix(""))]
    # The sources are the generator's (so notebook and CLI twin cannot drift apart) ...
    assert [c.source for c in committed.cells] == [c.source for c in fresh.cells]
    code = [c for c in committed.cells if c.cell_type == "code"]
    # ... and every code cell ran without error in a full-size run, the figures stored as images.
    assert all(c.get("execution_count") for c in code), "re-run: uv run python notebooks/build.py --execute"
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == sum("nb.show(" in c.source for c in code)
    text = " ".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "full (the CLI twin's defaults)" in text and "reduced" not in text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_notebook_runs_top_to_bottom_at_reduced_size(path, monkeypatch):
    monkeypatch.setenv(REDUCED_ENV, "1")  # inherited by the kernel
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    text = " ".join(str(o.get("data", {}).get("text/markdown", "")) for o in outputs)
    assert "**reduced**" in text
