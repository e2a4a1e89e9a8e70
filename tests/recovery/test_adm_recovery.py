"""ADM recovers time-varying delays with its defaults, and a constant-delay model cannot.

Marked slow. CI runs a reduced scenario (3 regions × 50 neurons, 30 trials, T = 120, one seed); ``MBRILA_FULL=1``
runs the headline ADM scenario (5 regions × 100 neurons, 50 trials, T = 200) on data seeds 0, 1, 2 and the sine
and ramp shapes with the issue's bounds.
"""

from __future__ import annotations

import pytest

from mbrila.experiments.synthetic import run_synthetic
from tests.conftest import full_size

pytestmark = pytest.mark.slow

FULL = full_size()
SMALL = {} if FULL else {"n_trials": 30, "T": 120, "y_dims": (50, 50, 50)}
#: Bounds at reduced size (fewer neurons and trials than the headline scenario), measured and then given margin.
ADM_SMALL_TOL = 0.13  # measured 0.100 (DLAG-SSM on the same data: 0.459)
SHAPES_SMALL_TOL = 0.10  # measured 0.067 (sine), 0.062 (ramp)


@pytest.mark.parametrize("seed", [0, 1, 2] if FULL else [0])
def test_adm_defaults_recover_gaussian_bump_delays_and_beat_dlag(seed):
    adm = run_synthetic("adm", scenario="adm", seed=seed, scenario_overrides=SMALL, progress=False)
    tol = 0.08 if FULL else ADM_SMALL_TOL
    assert adm.summary["delay_rmse"] <= tol, adm.summary
    dlag = run_synthetic("dlag_ssm", scenario=adm.scenario, progress=False)
    # A constant delay cannot follow a bump: the time-varying model must be clearly better.
    assert dlag.summary["delay_rmse"] > 2 * adm.summary["delay_rmse"], (dlag.summary, adm.summary)


@pytest.mark.parametrize("shape", ["sine", "ramp"])
def test_adm_recovers_other_delay_shapes(shape):
    run = run_synthetic("adm", scenario="adm", scenario_overrides={**SMALL, "delay_shape": shape}, progress=False)
    assert run.summary["delay_rmse"] <= (0.15 if FULL else SHAPES_SMALL_TOL), run.summary
