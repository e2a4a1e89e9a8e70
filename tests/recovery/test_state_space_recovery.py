"""Recovery of known delays and reconstruction at the noise floor, with every preset at its defaults.

Marked slow. CI runs a reduced scenario (3 regions × 40 neurons, 30 trials, T = 100, one seed); ``MBRILA_FULL=1``
runs the headline scenario of DESIGN.md §5 (5 regions × 100 neurons, 50 trials, T = 200) on data seeds 0, 1, 2
with the tolerances of the issue.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mbrila
from mbrila.experiments.synthetic import run_synthetic
from mbrila.kernels import Matern52Kernel
from mbrila.metrics import delay_rmse, match_latents
from mbrila.synthetic import MultiRegionScenario, headline_scenario
from tests.conftest import full_size
from tests.unit.test_kernels import RationalQuadratic

pytestmark = pytest.mark.slow

FULL = full_size()
SEEDS = [0, 1, 2] if FULL else [0]
#: Reduced size keeps the headline's latents, timescales and delays on fewer, shorter trials and regions.
SMALL = {} if FULL else {"n_trials": 30, "T": 100, "y_dims": (40, 40, 40)}
#: At full size the issue's bound; at reduced size (fewer neurons and trials) a looser one. Measured at reduced
#: size: DLAG-SSM 0.024, Matérn-5/2 0.017, rational quadratic 0.022, 10% masked 0.028; GPFA-SSM and LDS
#: reconstruct at 1.021 and 1.015 × the noise floor.
DELAY_TOL = 0.03 if FULL else 0.04


@pytest.mark.parametrize("seed", SEEDS)
def test_dlag_ssm_defaults_recover_constant_delays(seed):
    run = run_synthetic("dlag_ssm", seed=seed, scenario_overrides=SMALL, progress=False)
    assert run.summary["delay_rmse"] <= DELAY_TOL, run.summary
    assert run.fit.converged
    assert min(run.summary["latent_corr"]) > 0.9


def test_matern52_recovers_constant_delays():
    n_within = 5 if FULL else 3
    kernels = [Matern52Kernel(4.47), Matern52Kernel(1.41)] + [Matern52Kernel(4.47) for _ in range(n_within)]
    run = run_synthetic(
        "dlag_ssm",
        scenario_overrides={**SMALL, "kernels": kernels},
        model_kwargs={"kernel_factory_across": Matern52Kernel, "kernel_factory_within": Matern52Kernel},
        progress=False,
    )
    assert run.summary["delay_rmse"] <= DELAY_TOL, run.summary


def test_user_rational_quadratic_kernel_recovers_constant_delays():
    run = run_synthetic(
        "dlag_ssm",
        scenario_overrides=SMALL,
        model_kwargs={"kernel_factory_across": RationalQuadratic, "kernel_factory_within": RationalQuadratic},
        progress=False,
    )
    assert run.summary["delay_rmse"] <= DELAY_TOL, run.summary


@pytest.mark.parametrize("name", ["gpfa", "lds"])
def test_baselines_reconstruct_at_the_noise_floor(name):
    run = run_synthetic(name, scenario_overrides=SMALL, progress=False)
    assert run.summary["y_rmse"] <= 1.05 * run.summary["noise_floor_rmse"], run.summary


def test_recovery_holds_with_ten_percent_of_entries_missing():
    data, truth = headline_scenario("dlag", seed=0, **SMALL).sample()
    gen = torch.Generator().manual_seed(1)
    observed = torch.rand(data.y.shape, generator=gen) > 0.1
    masked = data.with_mask(observed)
    spec = mbrila.LatentSpec(2, 1)
    model = mbrila.build_model("dlag", latent_spec=spec, y_dims=data.y_dims, T=data.T, engine="kalman")
    model.fit(masked, progress=False)
    fitted = model.infer(masked).region(0)[..., :2]
    matching = match_latents(fitted, truth.latents_across[:, :, 0, :])
    err = delay_rmse(model.delays(), truth.delays, matching)
    assert err <= DELAY_TOL, err
    assert np.all(matching.corr > 0.9)


@pytest.mark.parametrize("seed", SEEDS)
def test_gpfa_defaults_recover_timescales_of_3_6_and_12_bins(seed):
    # One population, three RBF latents. The AR(4) lift, which matches the kernel over 4 lags, gave 2.77–2.88,
    # 5.22–5.35 and 11.2–14.6 bins on data like these; the RBF's SDE form, whose fidelity does not depend on the
    # timescale, should agree with the dense GP's maximum-likelihood timescales (the independent reference).
    scenario = MultiRegionScenario(
        n_trials=60, T=100, y_dims=(80,), n_across=3, n_within=0, timescales_across=(3.0, 6.0, 12.0),
        delay_amplitude=(0.0, 0.0, 0.0), snr=20.0, seed=seed,
    )  # fmt: skip
    data, _ = scenario.sample()
    found = {}
    for name in ("gpfa", "gpfa_exact"):
        model = mbrila.build_model(name, latent_spec=mbrila.LatentSpec(3, 0), y_dims=data.y_dims, T=data.T)
        assert model.fit(data, progress=False).converged
        found[name] = np.sort(model.timescales()["across"].numpy())
    # Measured: within 1.6 % of the dense fit on seeds 0–2 (itself 0.4–3.6 % from the truth).
    np.testing.assert_allclose(found["gpfa"], found["gpfa_exact"], rtol=0.03)
