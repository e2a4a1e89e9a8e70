"""The shared demo runners: end to end on tiny problems, summary keys and figures, bad data files."""

from __future__ import annotations

import json
import pickle
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mbrila
from mbrila.core import LatentSpec, MultiRegionData, split_trials
from mbrila.experiments.cli import run_v1v2_demo, synthetic_demo, v1v2_demo
from mbrila.experiments.cosmoothing import VALIDATED_MAX_ITER, run_cosmoothing, split_sizes
from mbrila.experiments.demos import V1V2_DEMOS
from mbrila.experiments.synthetic import run_synthetic
from mbrila.inference.kalman_em import KalmanEMEngine

ROOT = Path(__file__).resolve().parents[2]


def test_run_synthetic_scores_a_dlag_fit():
    run = run_synthetic(
        "dlag",
        scenario="dlag",
        scenario_overrides={"n_trials": 6, "T": 40, "y_dims": (20, 20, 20)},
        max_iter=3,
        progress=False,
    )
    s = run.summary
    assert s["method"] == "dlag" and s["n_iter"] == 3
    assert s["delay_rmse"] is not None and np.isfinite(s["delay_rmse"])
    assert len(s["delay_rmse_per_latent"]) == 2
    # A fitted model reconstructs far better than predicting zero (the data have unit-scale latents).
    assert s["y_rmse"] < 0.9 * float(run.data.y.std())
    assert s["noise_floor_rmse"] == pytest.approx(np.sqrt(1 / 20))
    assert set(s["timings_s"]) == {"e_step", "m_step", "grad_steps"}


def test_gpfa_has_no_delay_score():
    run = run_synthetic(
        "gpfa", scenario_overrides={"n_trials": 4, "T": 30, "y_dims": (15, 15)}, max_iter=2, progress=False
    )
    assert run.summary["delay_rmse"] is None and np.isfinite(run.summary["y_rmse"])


def test_synthetic_demo_writes_summary_and_figures(tmp_path):
    out = tmp_path / "out"
    synthetic_demo(
        "dlag_ssm",
        "test",
        argv=["--device", "cpu", "--n-trials", "3", "--max-iter", "2", "--out-dir", str(out), "--no-progress"],
    )
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "method",
        "delay_rmse",
        "y_rmse",
        "n_iter",
        "wall_time_s",
        "device",
        "peak_memory_mb",
        "noise_floor_neurons",
    ):
        assert key in summary
    assert summary["device"] == "cpu" and summary["n_iter"] == 2
    for fig in ("convergence.png", "delays.png", "latents.png", "psth_heatmap.png"):
        assert (out / fig).stat().st_size > 1000


def test_demo_tolerance_flag_reaches_the_fit(tmp_path):
    # Any relative change is below a huge tolerance, so the fit stops after the engine's patience (3 iterations).
    argv = ["--device", "cpu", "--n-trials", "3", "--max-iter", "50", "--tol", "1e300", "--no-progress"]
    summary = synthetic_demo("gpfa", "test", argv=[*argv, "--out-dir", str(tmp_path)])
    assert summary["converged"] and summary["n_iter"] == 3


def _fake_recordings(rng: np.random.Generator, n_trials: int = 16, T: int = 12) -> dict[str, np.ndarray]:
    z = rng.standard_normal((n_trials, T, 2)).cumsum(1) * 0.3
    return {
        "A": (z @ rng.standard_normal((2, 10)) + 0.3 * rng.standard_normal((n_trials, T, 10))).astype(np.float32),
        "B": (z @ rng.standard_normal((2, 6)) + 0.3 * rng.standard_normal((n_trials, T, 6))).astype(np.float32),
    }


def test_v1v2_demo_on_a_small_file(tmp_path, rng):
    path = tmp_path / "rec.npz"
    np.savez(path, **_fake_recordings(rng))
    out = tmp_path / "out"
    argv = ["--data-path", str(path), "--device", "cpu", "--max-iter", "2", "--split-seeds", "0,1"]
    summary = v1v2_demo("dlag", "test", argv=[*argv, "--out-dir", str(out), "--no-progress", "--n-holdout-seeds", "2"])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["std_ddof"] == 1
    for region in ("A", "B"):
        for kind in ("psth", "trial"):
            key = f"holdout_{kind}_rmse_{region}"
            vals = [s[key] for s in saved["per_split"]]
            assert saved[key] == pytest.approx(np.mean(vals))
            assert saved[f"{key}_std"] == pytest.approx(np.std(vals, ddof=1))
            for name in ("psth", "mean"):  # baselines on the same splits, aggregated the same way
                base = [s["baselines"][name][key] for s in saved["per_split"]]
                assert saved["baselines"][name][key] == pytest.approx(np.mean(base))
    assert saved["n_iter"] == [s["n_iter"] for s in saved["per_split"]]
    assert saved["split_seeds"] == [0, 1] and len(saved["wall_time_per_split_s"]) == 2
    assert saved["validation_select"] and all(it in (0, 2) for it in saved["selected_iter"])
    assert all(s["validation_trace"] for s in saved["per_split"])
    assert all(set(s["noise_floor_neurons"]) == {"A", "B"} for s in saved["per_split"])
    assert summary["method"] == "dlag"
    for fig in ("psth_heatmap.png", "delays.png", "latents.png", "convergence.png"):
        assert (out / fig).exists()


BAD_FILES = [
    ({"A": np.zeros((4, 5))}, r"shape \(trials, T, neurons\)"),
    ({"A": np.zeros((4, 5, 3)), "B": np.zeros((3, 5, 2))}, "number of trials"),
    ({"A": np.zeros((4, 5, 3)), "B": np.zeros((4, 6, 2))}, "disagree on T"),
    ({"A": np.full((4, 5, 3), np.nan)}, "NaN|non-finite|finite"),
    ({}, "no regions"),
    ([np.zeros((4, 5, 3))], "expected a dict"),
]


@pytest.mark.parametrize("demo", sorted(V1V2_DEMOS))
@pytest.mark.parametrize(("content", "message"), BAD_FILES)
def test_bad_data_file_fails_naming_the_file(tmp_path, content, message, demo):
    path = tmp_path / "bad.pkl"
    with open(path, "wb") as fh:
        pickle.dump(content, fh)
    with pytest.raises((ValueError, SystemExit), match=message) as err:
        run_v1v2_demo(demo, "test", argv=["--data-path", str(path), "--device", "cpu", "--out-dir", str(tmp_path)])
    assert "bad.pkl" in str(err.value)
    # The notebooks' loader is the same function.
    with pytest.raises(ValueError, match=message):
        mbrila.data.load_data(path)


def test_example_scripts_are_thin_and_show_help(capsys, monkeypatch):
    scripts = sorted((ROOT / "examples").rglob("demo_*.py"))
    assert len(scripts) >= 6
    for script in scripts:
        assert len(script.read_text().splitlines()) < 60, f"{script} should stay a thin wrapper over the package"
        monkeypatch.setattr(sys, "argv", [str(script), "--help"])
        with pytest.raises(SystemExit) as done:
            runpy.run_path(str(script), run_name="__main__")
        assert done.value.code == 0
        assert "--out-dir" in capsys.readouterr().out


def test_validation_selection_keeps_the_best_checkpoint_and_never_reads_test_trials(rng):
    data = MultiRegionData.from_regions(_fake_recordings(rng, n_trials=24))
    make = lambda d: mbrila.build_model("dlag", latent_spec=LatentSpec(1, 1), y_dims=d.y_dims, T=d.T)  # noqa: E731
    kw = {
        "split_seed": 0,
        "n_holdout_seeds": 1,
        "validation_every": 2,
        "fit_kwargs": {"max_iter": 7, "progress": False},
    }
    res = run_cosmoothing(make, data, **kw)
    iters, scores = zip(*res.validation_trace, strict=True)
    assert iters == (0, 2, 4, 6, 7)  # the start, every 2 updates, and the last one
    assert res.selected_iter == iters[int(np.argmin(scores))]
    # The test trials only enter the scores: scrambling them changes no validation score and no selection.
    _, _, test_idx = split_trials(data.n_trials, *split_sizes(data.n_trials), 0)
    y = data.y.clone()
    y[test_idx] = torch.randn_like(y[test_idx]) * 5
    again = run_cosmoothing(make, MultiRegionData(y, data.y_dims, data.region_names), **kw)
    assert again.validation_trace == res.validation_trace and again.selected_iter == res.selected_iter
    assert again.metrics != res.metrics
    plain = run_cosmoothing(make, data, **kw, select_on_validation=False)
    assert plain.selected_iter == plain.fit.n_iter == 7 and plain.validation_trace == []


def test_validation_selected_fits_stop_on_validation_with_a_generous_cap(rng, monkeypatch):
    data = MultiRegionData.from_regions(_fake_recordings(rng, n_trials=24))
    caps: list[int | None] = []

    def make(d: MultiRegionData):
        model = mbrila.build_model("dlag", latent_spec=LatentSpec(1, 0), y_dims=d.y_dims, T=d.T)
        fit = model.fit

        def spy(*args, **kwargs):
            caps.append(kwargs.get("max_iter"))
            return fit(*args, **{**kwargs, "max_iter": 2})  # the cap is what is checked; keep the fit tiny

        model.fit = spy
        return model

    quiet = {"progress": False}
    run_cosmoothing(make, data, n_holdout_seeds=1, fit_kwargs=quiet)
    run_cosmoothing(make, data, n_holdout_seeds=1, fit_kwargs={**quiet, "max_iter": None})
    run_cosmoothing(make, data, n_holdout_seeds=1, fit_kwargs={**quiet, "max_iter": 40})
    run_cosmoothing(make, data, n_holdout_seeds=1, fit_kwargs=quiet, select_on_validation=False)
    assert caps == [VALIDATED_MAX_ITER, VALIDATED_MAX_ITER, 40, None]
    assert VALIDATED_MAX_ITER > KalmanEMEngine.max_iter


def test_train_psth_residual_option_is_blind_to_a_stimulus_locked_mean(rng):
    rec = _fake_recordings(rng, n_trials=24)
    T = rec["A"].shape[1]
    bump = {
        k: (3.0 * np.sin(np.arange(T) / 2.0)[:, None] * rng.standard_normal(v.shape[-1])).astype(np.float32)
        for k, v in rec.items()
    }
    plain = MultiRegionData.from_regions(rec)
    locked = MultiRegionData.from_regions({k: v + bump[k] for k, v in rec.items()})
    make = lambda d: mbrila.build_model("dlag", latent_spec=LatentSpec(1, 1), y_dims=d.y_dims, T=d.T)  # noqa: E731
    kw = {"n_holdout_seeds": 2, "fit_kwargs": {"max_iter": 4, "progress": False}}
    a = run_cosmoothing(make, plain, subtract_train_psth=True, **kw)
    b = run_cosmoothing(make, locked, subtract_train_psth=True, **kw)
    # Residuals from the training PSTH are the same for both data sets, so fits and scores are too ...
    assert a.metrics == pytest.approx(b.metrics, rel=1e-6)
    offset = torch.cat([torch.as_tensor(bump["A"]), torch.as_tensor(bump["B"])], -1).to(b.prediction)
    torch.testing.assert_close(b.prediction, a.prediction + offset, rtol=1e-5, atol=1e-5)
    test_b = locked[b.test_idx]
    torch.testing.assert_close(b.model_data(test_b).y, test_b.y - b.offset.to(test_b.y))
    # ... whereas the constant-offset model sees the mean as latent signal and scores differently.
    assert run_cosmoothing(make, locked, **kw).metrics != pytest.approx(a.metrics, rel=1e-3)


def test_baselines_are_the_training_psth_and_mean_computed_by_hand():
    from mbrila.experiments.baselines import mean_prediction, psth_prediction

    y = torch.arange(2 * 3 * 2, dtype=torch.float64).reshape(2, 3, 2)  # 2 trials, 3 bins, 2 neurons
    mask = torch.ones_like(y, dtype=torch.bool)
    mask[1, 0, 1] = False  # neuron 1 unobserved in trial 1, bin 0
    train = MultiRegionData(y, (1, 1), mask=mask)
    test = MultiRegionData(torch.zeros(4, 3, 2, dtype=torch.float64), (1, 1))
    psth = psth_prediction(train, test)
    assert psth.shape == (4, 3, 2)
    # Neuron 0: bins average trials 0 and 1: (0+6)/2, (2+8)/2, (4+10)/2; neuron 1 at bin 0 only trial 0 (y = 1).
    torch.testing.assert_close(psth[0, :, 0], torch.tensor([3.0, 5.0, 7.0], dtype=torch.float64))
    torch.testing.assert_close(psth[2, :, 1], torch.tensor([1.0, 6.0, 8.0], dtype=torch.float64))
    mean = mean_prediction(train, test)
    # Neuron 1's observed entries: 1, 3, 5, 9, 11 (7 is missing) → 29 / 5.
    torch.testing.assert_close(mean[3, 1], torch.tensor([5.0, 29 / 5], dtype=torch.float64))
