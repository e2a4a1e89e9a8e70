"""Exact DLAG and the three mDLAG engines recover known delays at their defaults; ARD prunes the spurious latents.

Marked slow. CI runs reduced scenarios (DLAG: 2 regions × 40 neurons; mDLAG: 3 regions × 40 neurons; 30 trials of
T = 100, one seed); ``MBRILA_FULL=1`` runs the headline scenarios of DESIGN.md §5 (50 trials, T = 200, 100 neurons
per region) on data seeds 0, 1, 2 with the issue's bounds. The mDLAG models start with 4 latents for 2 true ones.
"""

from __future__ import annotations

import pytest

from mbrila import LatentSpec
from mbrila.experiments.synthetic import run_synthetic
from tests.conftest import full_size

pytestmark = pytest.mark.slow

FULL = full_size()
SEEDS = [0, 1, 2] if FULL else [0]
SMALL_DLAG = {} if FULL else {"n_trials": 30, "T": 100, "y_dims": (40, 40)}
SMALL_MDLAG = {} if FULL else {"n_trials": 30, "T": 100, "y_dims": (40, 40, 40)}
#: Bounds: the issue's at full size; at reduced size (fewer neurons, trials and bins) measured, then given margin
#: (measured at reduced size, seed 0: DLAG 0.0190; mDLAG time 0.0227, freq 0.0228, kalman 0.0262).
DLAG_TOL = 0.03 if FULL else 0.04
MDLAG_TOL = 0.05


@pytest.mark.parametrize("seed", SEEDS)
def test_exact_dlag_defaults_recover_constant_delays(seed):
    run = run_synthetic("dlag", scenario="dlag_exact", seed=seed, scenario_overrides=SMALL_DLAG, progress=False)
    assert run.summary["delay_rmse"] <= DLAG_TOL, run.summary
    assert run.fit.converged, run.summary["n_iter"]
    assert min(run.summary["latent_corr"]) > 0.9


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("engine", ["time", "freq", "ssm"])
def test_mdlag_defaults_prune_the_spurious_latents_and_recover_delays(engine, seed):
    run = run_synthetic(
        f"mdlag_{engine}",
        scenario="mdlag",
        seed=seed,
        scenario_overrides=SMALL_MDLAG,
        latent_spec=LatentSpec(n_across=4),
        progress=False,
    )
    s = run.summary
    assert s["n_active_latents"] == 2, s["active_latents"]
    # The two kept latents are across latents: active in every region.
    kept = [k for k in range(4) if any(row[k] for row in s["active_latents"].values())]
    assert all(all(row[k] for row in s["active_latents"].values()) for k in kept), s["active_latents"]
    assert s["delay_rmse"] <= MDLAG_TOL, s
    assert min(s["latent_corr"]) > 0.9
