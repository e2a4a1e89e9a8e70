"""Model selection: cross-validated latent counts and bootstrap intervals (mbrila.selection)."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch

import mbrila
from mbrila.experiments.selection import neighbour_grid
from mbrila.experiments.selection_cli import synthetic_selection_demo, v1v2_selection_demo
from mbrila.selection import CVResult, bootstrap_delays, cross_validate, match_replicate, trial_folds
from mbrila.selection.bootstrap import reference_latents
from mbrila.selection.cross_validation import _choose
from mbrila.synthetic import headline_scenario

FAST = {"max_iter": 8}


@pytest.fixture(scope="module")
def small():
    scen = headline_scenario("dlag", seed=3, n_trials=16, T=24, y_dims=(10, 9))
    data, truth = scen.sample()
    return data, truth


@pytest.fixture(scope="module")
def fitted(small):
    data, _ = small
    model = mbrila.build_model("dlag_ssm", latent_spec=mbrila.LatentSpec(2, 1), y_dims=data.y_dims, T=data.T)
    model.fit(data, max_iter=20, progress=False)
    return model


# ------------------------------------------------------------------------------------------ cross-validation
def test_trial_folds_partition_the_trials():
    folds = trial_folds(23, 4, seed=5)
    assert [len(f) for f in folds] == [6, 6, 6, 5]
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), np.arange(23))
    again = trial_folds(23, 4, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(folds, trial_folds(23, 4, seed=6), strict=True))


def test_cross_validate_is_deterministic_per_seed(small):
    data, _ = small
    grid = [(1, 0), (2, 1)]
    a = cross_validate(data, "dlag_ssm", grid, n_folds=2, seed=1, fit_kwargs=FAST)
    b = cross_validate(data, "dlag_ssm", grid, n_folds=2, seed=1, fit_kwargs=FAST)
    assert isinstance(a, CVResult)
    assert [r["per_fold"] for r in a.table] == [r["per_fold"] for r in b.table]
    c = cross_validate(data, "dlag_ssm", grid, n_folds=2, seed=2, fit_kwargs=FAST)
    assert [r["per_fold"] for r in a.table] != [r["per_fold"] for r in c.table]
    # Scores are the held-out trial RMSE, region by region; the 2 + 1 model that generated the data wins.
    assert a.table[1]["mean"] < a.table[0]["mean"]
    assert a.best == (2, 1)
    assert set(a.table[0]["per_region"]) == set(data.region_names)
    assert a.table[0]["n_latents"] == 1 and a.table[1]["n_latents"] == 2 + 2


def test_cross_validate_with_a_factory_matches_the_preset_name(small):
    data, _ = small

    def factory(c):
        return mbrila.build_model("dlag_ssm", latent_spec=mbrila.LatentSpec(*c), y_dims=data.y_dims, T=data.T)

    grid = [(1, 1)]
    by_name = cross_validate(data, "dlag_ssm", grid, n_folds=2, seed=0, fit_kwargs=FAST)
    by_factory = cross_validate(data, factory, grid, n_folds=2, seed=0, fit_kwargs=FAST)
    assert by_name.table[0]["per_fold"] == by_factory.table[0]["per_fold"]


def test_worker_processes_give_the_in_process_result(small):
    data, _ = small
    grid = [(1, 0), (1, 1)]
    here = cross_validate(data, "dlag_ssm", grid, n_folds=2, seed=4, fit_kwargs=FAST)
    pool = cross_validate(data, "dlag_ssm", grid, n_folds=2, seed=4, fit_kwargs=FAST, n_workers=2, threads_per_worker=1)
    np.testing.assert_allclose([r["per_fold"] for r in pool.table], [r["per_fold"] for r in here.table], rtol=1e-9)


def test_one_standard_error_rule():
    def row(n, mean, se):
        return {"n_latents": n, "mean": mean, "se": se}

    # Best is the 5-latent model; the 3-latent one is within one SE of it, the 2-latent one is not.
    table = [row(2, 1.30, 0.02), row(3, 1.04, 0.02), row(5, 1.00, 0.05), row(7, 1.01, 0.05)]
    assert _choose(table, higher=False) == (2, 1)
    # Higher-is-better metrics (bits per spike) mirror it.
    table = [row(2, 0.10, 0.01), row(3, 0.28, 0.01), row(5, 0.30, 0.03)]
    assert _choose(table, higher=True) == (2, 1)
    # Equal sizes within the bound: the better mean.
    table = [row(3, 1.02, 0.01), row(3, 1.01, 0.01), row(4, 1.00, 0.02)]
    assert _choose(table, higher=False) == (2, 1)


@pytest.mark.parametrize(
    ("grid", "kwargs", "message"),
    [
        ([], {}, "grid is empty"),
        ("21", {}, "grid must be a list"),
        ([(2, 1), (2, 1)], {}, "more than once"),
        ([(2, (0, 8))], {}, "region 'R1' 10 latents but it has only 9 neurons"),
        ([(12, 0)], {}, "only 10 neurons"),
        ([(2, 1)], {"n_folds": 1}, "n_folds"),
        ([(2, 1)], {"n_folds": 99}, "n_folds"),
        ([(2, 1)], {"metric": "r2"}, "metric"),
        ([(2, 1)], {"metric": "co_bps"}, "not counts"),
        ([(2, 1)], {"fraction": 1.0}, "fraction"),
        ([(2, 1)], {"n_workers": 0}, "n_workers"),
        (["two"], {}, "n_within. pair"),
    ],
)
def test_misspecified_cross_validation_is_refused(small, grid, kwargs, message):
    data, _ = small
    with pytest.raises(ValueError, match=message):
        cross_validate(data, "dlag_ssm", grid, **kwargs)


def test_unpicklable_factory_with_workers_is_refused(small):
    data, _ = small
    with pytest.raises(ValueError, match="picklable"):
        cross_validate(
            data,
            lambda c: mbrila.build_model("dlag_ssm", latent_spec=mbrila.LatentSpec(*c), y_dims=data.y_dims, T=data.T),
            [(1, 1)],
            n_folds=2,
            n_workers=2,
        )
    with pytest.raises(ValueError, match="unknown model"):
        cross_validate(data, "dlagg", [(1, 1)])


# ------------------------------------------------------------------------------------------ bootstrap
def _permuted(model, perm, signs):
    """A copy of a DLAG model whose across latent k is the original's latent perm[k], times signs[k]."""
    new = copy.deepcopy(model)
    new.across = torch.nn.ModuleList([new.across[p] for p in perm])
    with torch.no_grad():
        new.delay.raw_delay.copy_(model.delay.raw_delay[:, list(perm)])
        C = model.observation.C.clone()
        for off in np.cumsum((0, *model.latent_dims[:-1])):
            for k, p in enumerate(perm):
                new.observation.C[:, off + k] = signs[k] * C[:, off + p]
    return new


def test_replicates_are_matched_back_to_the_original_latents(small, fitted):
    data, _ = small
    swapped = _permuted(fitted, perm=(1, 0), signs=(-1.0, 1.0))
    # The permuted model is the same model: identical predictions, delays in the other order.
    torch.testing.assert_close(swapped.predict(data), fitted.predict(data))
    torch.testing.assert_close(swapped.delays(), fitted.delays()[..., [1, 0]])
    ts = swapped.timescales()
    delays, across, within, corr = match_replicate(
        reference_latents(swapped, data),
        reference_latents(fitted, data),
        swapped.delays().numpy(),
        {"across": ts["across"].numpy(), "within": [w.numpy() for w in ts["within"]]},
    )
    np.testing.assert_allclose(delays, fitted.delays().numpy(), rtol=1e-12)
    np.testing.assert_allclose(across, fitted.timescales()["across"].numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        np.concatenate(within), np.concatenate([w.numpy() for w in fitted.timescales()["within"]])
    )
    np.testing.assert_allclose(corr, 1.0, atol=1e-9)


def test_bootstrap_is_deterministic_and_leaves_the_model_alone(small, fitted):
    data, _ = small
    before = {k: v.clone() for k, v in fitted.state_dict().items()}
    a = bootstrap_delays(fitted, data, n_boot=3, seed=7, fit_kwargs={"max_iter": 4})
    b = bootstrap_delays(fitted, data, n_boot=3, seed=7, fit_kwargs={"max_iter": 4})
    c = bootstrap_delays(fitted, data, n_boot=3, seed=8, fit_kwargs={"max_iter": 4})
    np.testing.assert_array_equal(a.delays.samples, b.delays.samples)
    assert not np.array_equal(a.delays.samples, c.delays.samples)
    for k, v in fitted.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    T, R, K = data.T, data.n_regions, 2
    assert a.delays.samples.shape == (3, T, R, K) and a.constant
    assert np.all(a.delays.lower <= a.delays.upper)
    np.testing.assert_allclose(a.delays.estimate, fitted.delays().numpy())
    # Percentile intervals and direction fractions from the samples themselves.
    s = a.delays.samples
    np.testing.assert_allclose(a.delays.lower, np.quantile(s, 0.025, axis=0))
    np.testing.assert_allclose(a.fraction_positive, (s > 0).mean(0))
    assert a.n_iter == [4, 4, 4]
    rows = a.delay_table()
    assert len(rows) == (R - 1) * K and rows[0]["region"] == data.region_names[1]


def test_bootstrap_with_time_varying_delays_gives_a_band(small):
    data, _ = small
    model = mbrila.build_model("adm", latent_spec=mbrila.LatentSpec(1, 0), y_dims=data.y_dims, T=data.T)
    model.fit(data, max_iter=3, progress=False)
    res = bootstrap_delays(model, data, n_boot=2, seed=0, fit_kwargs={"max_iter": 2})
    assert not res.constant
    assert res.delays.lower.shape == (data.T, data.n_regions, 1)
    assert np.ptp(res.delays.estimate[:, 1, 0]) > 0  # the band is over time, not one number
    assert "delays_over_time" in res.to_dict()


def test_bootstrap_of_an_ard_model(small):
    data, _ = small
    model = mbrila.build_model("mdlag_freq", latent_spec=mbrila.LatentSpec(2, 0), y_dims=data.y_dims, T=data.T)
    model.fit(data, max_iter=5, progress=False)
    res = bootstrap_delays(model, data, n_boot=2, seed=0, fit_kwargs={"max_iter": 2})
    assert res.delays.samples.shape == (2, data.T, data.n_regions, 2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"n_boot": 1}, "n_boot"), ({"level": 95}, "level"), ({"n_workers": -1}, "n_workers")],
)
def test_bootstrap_bad_arguments(small, fitted, kwargs, message):
    data, _ = small
    with pytest.raises(ValueError, match=message):
        bootstrap_delays(fitted, data, **kwargs)
    with pytest.raises(ValueError, match="y_dims"):
        bootstrap_delays(fitted, _one_region(data))


def _one_region(data):
    return mbrila.MultiRegionData.from_regions({"A": data.region(0).numpy()})


# ------------------------------------------------------------------------------------------ protocols and demos
def test_neighbour_grid_brackets_the_truth():
    assert neighbour_grid(2, 1) == [(a, w) for a in (1, 2, 3) for w in (0, 1, 2)]
    assert neighbour_grid(1, 0) == [(0, 1), (1, 0), (1, 1), (2, 0), (2, 1)]  # never a model without latents


def test_synthetic_selection_demo_writes_summary_and_figures(tmp_path):
    out = tmp_path / "sel"
    argv = ["--device", "cpu", "--n-trials", "4", "--n-folds", "2", "--n-boot", "2", "--max-iter", "1"]
    summary = synthetic_selection_demo("test", argv=[*argv, "--out-dir", str(out), "--no-progress"])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["truth"] == [2, 1] and len(saved["cv"]["table"]) == 9
    assert saved["one_se_choice"] in [row["candidate"] for row in saved["cv"]["table"]]
    assert saved["bootstrap"]["n_boot"] == 2 and saved["bootstrap"]["replicate_n_iter"] == [1, 1]
    assert sorted(summary["figures"]) == ["cv_curve.png", "delay_intervals.png"]
    assert all((out / f).stat().st_size > 0 for f in summary["figures"])


def test_v1v2_selection_demo_reports_choice_default_and_baselines(tmp_path):
    rng = np.random.default_rng(0)
    n_trials, T = 24, 8
    z = rng.standard_normal((n_trials, T, 2))
    regions = {
        name: z @ rng.standard_normal((2, n)) + 0.3 * rng.standard_normal((n_trials, T, n))
        for name, n in (("A", 7), ("B", 6))
    }
    path = tmp_path / "rec.npz"
    np.savez(path, **regions)
    out = tmp_path / "out"
    argv = ["--data-path", str(path), "--device", "cpu", "--max-iter", "2", "--n-folds", "2", "--n-holdout-seeds", "1"]
    summary = v1v2_selection_demo(
        "test", argv=[*argv, "--max-across", "2", "--max-within", "1", "--out-dir", str(out), "--no-progress"]
    )
    saved = json.loads((out / "summary.json").read_text())
    assert [row["candidate"] for row in saved["cv"]["table"]] == [[1, 1], [2, 1]]
    labels = list(saved["runs"])
    assert labels[0].startswith("dlag_ssm CV-selected")
    assert ("dlag_ssm default 2+2" in labels) != saved["choice_is_default"]
    for scores in saved["runs"].values():
        assert {"holdout_psth_rmse_A", "holdout_trial_rmse_B"} <= set(scores)
    assert set(saved["baselines"]) == {"psth", "mean"}
    assert summary["figures"] == ["cv_curve.png"]
