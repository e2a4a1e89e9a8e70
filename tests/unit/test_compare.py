"""The run comparison: hand-made run folders in, the table's numbers checked against values computed by hand."""

from __future__ import annotations

import json
import math
import runpy
import sys
from pathlib import Path

import pytest

from mbrila.experiments.compare import comparison_table, load_run

ROOT = Path(__file__).resolve().parents[2]


def _split(seed: int, v1: tuple[float, float], v2: tuple[float, float], wall: float, base: float) -> dict:
    """One split's entry as the V1/V2 demo writes it: (psth, trial) RMSE per region, and the two baselines."""
    scores = {
        "holdout_psth_rmse_V1": v1[0],
        "holdout_trial_rmse_V1": v1[1],
        "holdout_psth_rmse_V2": v2[0],
        "holdout_trial_rmse_V2": v2[1],
    }
    baseline = {k: base + i / 100 for i, k in enumerate(scores)}
    return {"split_seed": seed, **scores, "wall_time_s": wall, "baselines": {"psth": baseline, "mean": scores}}


def _write(folder: Path, method: str, splits: list[dict], device: str = "cpu") -> Path:
    folder.mkdir(parents=True)
    summary = {
        "method": method,
        "region_names": ["V1", "V2"],
        "split_seeds": [s["split_seed"] for s in splits],
        "per_split": splits,
        "device": device,
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder


@pytest.fixture
def runs(tmp_path):
    a = _write(
        tmp_path / "runs" / "a",
        "model_a",
        [
            _split(0, (0.06, 0.30), (0.04, 0.20), 10.0, 0.05),
            _split(1, (0.05, 0.28), (0.05, 0.21), 12.0, 0.06),
            _split(2, (0.07, 0.29), (0.03, 0.19), 14.0, 0.07),
        ],
    )
    b = _write(
        tmp_path / "runs" / "b",
        "model_b",
        [
            _split(0, (0.10, 0.40), (0.02, 0.10), 1.0, 0.05),
            _split(1, (0.20, 0.50), (0.04, 0.30), 2.0, 0.06),
            _split(2, (0.30, 0.60), (0.06, 0.20), 3.0, 0.07),
        ],
    )
    return a, b


def test_table_aggregates_splits_by_hand(runs):
    a, b = runs
    table = comparison_table([load_run(a), load_run(b)])
    rows = {r["method"]: r for r in table["rows"]}
    assert list(rows) == ["model_a", "model_b", "baseline: psth", "baseline: mean"]
    # model_a, V1 PSTH: 0.06, 0.05, 0.07 → mean 0.06, sample std sqrt(((0)² + 0.01² + 0.01²) / 2) = 0.01.
    va = rows["model_a"]["regions"]["V1"]["psth"]
    assert va["mean"] == pytest.approx(0.06) and va["std"] == pytest.approx(0.01)
    # model_b, V2 trial: 0.10, 0.30, 0.20 → mean 0.20, std sqrt((0.01 + 0.01 + 0) / 2) = 0.1.
    vb = rows["model_b"]["regions"]["V2"]["trial"]
    assert vb["mean"] == pytest.approx(0.20) and vb["std"] == pytest.approx(0.1)
    assert rows["model_a"]["wall_time_s"] == pytest.approx(36.0) and rows["model_b"]["wall_time_s"] == pytest.approx(
        6.0
    )
    # Baselines come from the first run: psth V2 trial = base + 3/100 → 0.08, 0.09, 0.10: mean 0.09, std 0.01.
    bp = rows["baseline: psth"]["regions"]["V2"]["trial"]
    assert bp["mean"] == pytest.approx(0.09) and bp["std"] == pytest.approx(0.01)
    assert rows["baseline: psth"]["kind"] == "baseline" and table["std_ddof"] == 1


def test_a_single_split_has_no_spread(tmp_path):
    one = _write(tmp_path / "one", "solo", [_split(3, (0.06, 0.3), (0.04, 0.2), 5.0, 0.05)])
    row = comparison_table([load_run(one)])["rows"][0]
    assert row["regions"]["V1"]["psth"] == {"mean": 0.06, "std": None}


def test_runs_on_other_splits_are_refused(tmp_path, runs):
    other = _write(tmp_path / "other", "model_c", [_split(5, (0.1, 0.2), (0.1, 0.2), 1.0, 0.05)])
    with pytest.raises(ValueError, match="split seeds"):
        comparison_table([load_run(runs[0]), load_run(other)])
    with pytest.raises(ValueError, match=r"summary\.json"):
        load_run(tmp_path / "missing")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json.*not a JSON"):
        load_run(tmp_path / "bad.json")


def test_cli_writes_the_table_json_and_chart(runs, tmp_path, monkeypatch, capsys):
    out = tmp_path / "cmp"
    argv = [
        "compare_v1v2_runs.py",
        "--label",
        "A",
        "--runs",
        str(runs[0]),
        "--label",
        "B",
        "--runs",
        str(runs[1]),
        "--out-dir",
        str(out),
    ]
    monkeypatch.setattr(sys, "argv", argv)
    runpy.run_path(str(ROOT / "examples" / "v1v2" / "compare_v1v2_runs.py"), run_name="__main__")
    saved = json.loads((out / "comparison.json").read_text())
    assert [r["method"] for r in saved["rows"]] == ["A", "B", "baseline: psth", "baseline: mean"]
    md = (out / "comparison.md").read_text()
    assert "| A | 0.0600 ± 0.0100 |" in md and "ddof = 1" in md
    assert (out / "comparison.png").stat().st_size > 1000
    assert math.isclose(saved["rows"][1]["regions"]["V1"]["psth"]["mean"], 0.2)
