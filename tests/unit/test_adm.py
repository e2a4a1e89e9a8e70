"""ADM: time-varying delays, their lift, the preset and its deflation initialisation."""

from __future__ import annotations

import pytest
import torch

import mbrila
from mbrila.delays import TimeVaryingDelay, gaussian_basis
from mbrila.synthetic import headline_scenario

SPEC = mbrila.LatentSpec(2, 1)


def _small(seed: int = 0, shape: str = "gaussian"):
    return headline_scenario("adm", seed=seed, n_trials=6, T=40, y_dims=(12, 12, 12), delay_shape=shape).sample()


def test_basis_is_a_partition_of_unity():
    B = gaussian_basis(50, 9, torch.float64)
    assert B.shape == (50, 9)
    torch.testing.assert_close(B.sum(1), torch.ones(50, dtype=torch.float64))


def test_constant_delays_are_represented_exactly_and_trajectories_closely():
    d = TimeVaryingDelay(3, 2, T=60, max_delay=4.0).double()
    const = torch.tensor([[0.0, 0.0], [1.5, -0.7], [-2.0, 3.1]], dtype=torch.float64)
    d.set_delays(const)
    torch.testing.assert_close(d.delays(60), const.expand(60, 3, 2), rtol=0, atol=1e-12)
    t = torch.arange(60, dtype=torch.float64)
    traj = torch.zeros(60, 3, 2, dtype=torch.float64)
    traj[:, 1, 0] = 2 * torch.exp(-((t - 20) ** 2) / (2 * 8.0**2))
    traj[:, 2, 1] = torch.sin(2 * torch.pi * t / 60)
    d.set_delays(traj)
    assert float((d.delays(60).detach() - traj).abs().max()) < 0.05


def test_delays_stay_inside_the_bound_and_reference_is_zero():
    d = TimeVaryingDelay(4, 3, T=30, max_delay=2.5)
    with torch.no_grad():
        d.weights.normal_(0, 50.0)
    out = d.delays(30)
    assert out.shape == (30, 4, 3)
    assert float(out.detach().abs().max()) <= 2.5  # tanh saturates to the bound in float32
    assert torch.all(out[:, 0] == 0)
    with pytest.raises(ValueError, match="max_delay"):
        d.set_delays(torch.full((4, 3), 3.0))


def test_lifted_adm_with_constant_delays_equals_dlag_ssm():
    data, _ = _small()
    kw = {"latent_spec": SPEC, "y_dims": data.y_dims, "T": data.T}
    dlag = mbrila.build_model("dlag", engine="kalman", **kw)
    dlag.initialize(data)
    adm = mbrila.build_model("adm", **kw)
    adm.load_state_dict({k: v for k, v in dlag.state_dict().items() if not k.startswith("delay.")}, strict=False)
    adm.delay.set_delays(dlag.delay.region_delays())
    a, b = adm.lgssm(data.T), dlag.lgssm(data.T)
    assert a.A.shape[0] == data.T - 1  # time-varying in form ...
    torch.testing.assert_close(a.A, b.A.expand_as(a.A), rtol=0, atol=1e-10)  # ... constant in value
    torch.testing.assert_close(a.Q, b.Q.expand_as(a.Q), rtol=0, atol=1e-10)
    torch.testing.assert_close(a.P0, b.P0, rtol=0, atol=1e-10)
    ll_a = adm.infer(data).log_likelihood
    ll_b = dlag.infer(data).log_likelihood
    torch.testing.assert_close(ll_a, ll_b, rtol=1e-10, atol=1e-8)


def test_gradient_reaches_every_delay_parameter():
    data, _ = _small()
    adm = mbrila.build_model("adm", latent_spec=SPEC, y_dims=data.y_dims, T=data.T)
    adm.initialize(data)
    with torch.no_grad():
        adm.delay.weights.add_(0.3 * torch.randn_like(adm.delay.weights))
    prior = adm.prior(data.T)
    post = mbrila.inference.kalman.kalman_smoother(adm.lgssm(data.T, prior), data.y.double())
    moments = mbrila.inference.moments.StateMoments.from_posterior(post)
    obj = adm.expected_log_prior(moments, prior.slices, data.T) + adm.delay.log_prior()
    obj.backward()
    g = adm.delay.weights.grad
    assert g is not None and torch.isfinite(g).all()
    assert bool((g.abs() > 0).all()), "every basis weight of every region and latent must receive gradient"


def test_fit_is_deterministic_and_save_load_reproduces_delays(tmp_path):
    data, _ = _small(1)
    runs = []
    for _ in range(2):
        adm = mbrila.build_model("adm", latent_spec=SPEC, y_dims=data.y_dims, T=data.T)
        res = adm.fit(data, max_iter=3, progress=False)
        runs.append((adm, res))
    torch.testing.assert_close(runs[0][0].delays(), runs[1][0].delays(), rtol=0, atol=0)
    assert runs[0][1].score_trace == runs[1][1].score_trace
    assert {"init_multi_region", "init_deflation"} <= set(runs[0][1].timings)
    assert runs[0][1].timings["init_deflation"] > 0
    path = tmp_path / "adm.pt"
    runs[0][0].save(path)
    back = mbrila.load(path)
    torch.testing.assert_close(back.delays(), runs[0][0].delays(), rtol=0, atol=0)
    torch.testing.assert_close(back.predict(data), runs[0][0].predict(data), rtol=0, atol=0)


def test_deflation_can_be_turned_off():
    data, _ = _small()
    adm = mbrila.ADM(SPEC, data.y_dims, data.T, deflation=None)
    res = adm.fit(data, max_iter=1, progress=False)
    assert "init_deflation" not in res.timings


def test_adm_default_engine_uses_its_own_tolerance_and_keeps_a_given_engine():
    from mbrila.inference.kalman_em import KalmanEMEngine
    from mbrila.models.presets import ADM_TOL

    adm = mbrila.build_model("adm", latent_spec=SPEC, y_dims=(4, 4), T=20)
    assert adm.engine.tol == ADM_TOL != KalmanEMEngine().tol
    mine = KalmanEMEngine(tol=1e-9, max_iter=7)
    assert mbrila.build_model("adm", latent_spec=SPEC, y_dims=(4, 4), T=20, engine=mine).engine is mine
    assert mbrila.build_model("dlag_ssm", latent_spec=SPEC, y_dims=(4, 4), T=20).engine.tol == KalmanEMEngine().tol
