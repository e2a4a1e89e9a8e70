"""Spike-count models: the Poisson read-out's M-step, the presets with ``observation="poisson"`` and their plumbing.

Sizes are tiny (2 regions × 6 neurons, a few EM iterations) except for the one delay-recovery smoke test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from numpy.polynomial.hermite_e import hermegauss
from scipy import stats

import mbrila
from mbrila.experiments.cosmoothing import run_cosmoothing
from mbrila.inference.laplace_em import LaplaceEMEngine
from mbrila.observations.poisson import PoissonObservation, link_rate, loglik_terms
from mbrila.synthetic import MultiRegionScenario

F64 = torch.float64
Y_DIMS = (6, 6)
T = 24
SPEC = mbrila.LatentSpec(1, 1)
#: Neurons hidden from inference in the co-smoothing checks: the first two of each region.
HIDDEN = (0, 1, 6, 7)


def count_scenario(**overrides):
    fields = dict(
        n_trials=8,
        T=T,
        y_dims=Y_DIMS,
        n_across=1,
        n_within=1,
        timescales_across=(3.0,),
        delay_amplitude=(2.0,),
        observation="poisson",
        base_rate=0.5,
        gain=1.0,
        seed=3,
    )
    fields.update(overrides)
    return MultiRegionScenario(**fields)


@pytest.fixture(scope="module")
def counts():
    return count_scenario().sample()


def observed_neurons() -> torch.Tensor:
    keep = torch.ones(sum(Y_DIMS), dtype=torch.bool)
    keep[list(HIDDEN)] = False
    return keep


def build(name: str, **kw):
    if name == "gpfa":
        return mbrila.GPFA(SPEC, Y_DIMS, T, observation="poisson", **kw)
    if name == "dlag":
        return mbrila.build_model(
            "dlag", latent_spec=SPEC, y_dims=Y_DIMS, T=T, engine="kalman", observation="poisson", **kw
        )
    if name == "adm":
        return mbrila.ADM(SPEC, Y_DIMS, T, observation="poisson", **kw)
    assert name == "lds"
    return mbrila.LDS(SPEC, Y_DIMS, T, observation="poisson", **kw)


PRESETS = ("gpfa", "dlag", "adm", "lds")


@pytest.fixture(scope="module")
def fitted(counts):
    """``fitted(name) -> (model, FitResult)``: each preset fitted once (3 iterations) on the shared counts."""
    cache: dict[str, tuple] = {}

    def get(name: str):
        if name not in cache:
            model = build(name)
            cache[name] = (model, model.fit(counts[0], max_iter=3, progress=False))
        return cache[name]

    return get


def corr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.corrcoef(torch.stack([a.flatten(), b.flatten()]))[0, 1])


# ------------------------------------------------------------------------------------------- the read-out
def gauss_expectation(fn, mu: np.ndarray, v: np.ndarray, nodes: int = 80) -> np.ndarray:
    """``E[fn(η)]`` for ``η ~ N(mu, v)`` elementwise, by probabilists' Gauss–Hermite quadrature."""
    z, w = hermegauss(nodes)
    eta = mu[..., None] + np.sqrt(v)[..., None] * z
    return (fn(eta) * w).sum(-1) / math.sqrt(2 * math.pi)


def drive_moments():
    """Drive means ``mu``, variances ``v`` and counts ``y``, each ``(2, 1, 5)``."""
    mu = torch.tensor([-3.0, -0.5, 0.0, 0.7, 2.5], dtype=F64).expand(2, 1, 5).clone()
    v = torch.tensor([0.01, 0.3, 1.0, 2.0, 0.5], dtype=F64).expand(2, 1, 5).clone()
    y = torch.tensor([[[0.0, 1, 3, 2, 5]], [[2.0, 0, 1, 4, 0]]], dtype=F64)
    return mu, v, y


def test_exp_expected_loglik_and_rate_match_quadrature():
    mu, v, y = drive_moments()
    obs = PoissonObservation((5,), (1,), link="exp")
    yn = y.numpy()[..., None]
    # expected_loglik leaves out the constant −log y!: E[y η − e^η] summed over trials and time, per neuron.
    want = gauss_expectation(lambda e: yn * e - np.exp(e), mu.numpy(), v.numpy()).sum((0, 1))
    got = obs.expected_loglik(y, None, mu, v).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(
        obs.expected_rate(mu, v).numpy(), gauss_expectation(np.exp, mu.numpy(), v.numpy()), rtol=1e-10
    )
    # A masked entry drops out of the sum.
    mask = torch.ones_like(y, dtype=torch.bool)
    mask[1, 0, 3] = False
    masked = obs.expected_loglik(y, mask, mu, v).numpy()
    want_masked = gauss_expectation(lambda e: yn[0] * e - np.exp(e), mu.numpy()[0], v.numpy()[0]).sum(0)
    np.testing.assert_allclose(masked[3], want_masked[3], rtol=1e-10)
    np.testing.assert_allclose(np.delete(masked, 3), np.delete(got, 3), rtol=1e-12)


@pytest.mark.parametrize(("quadrature", "rtol"), [(20, 1e-5), (60, 1e-9)])
def test_softplus_expected_loglik_and_rate_match_quadrature(quadrature, rtol):
    mu, v, y = drive_moments()
    obs = PoissonObservation((5,), (1,), link="softplus", quadrature=quadrature)
    yn = y.numpy()[..., None]

    def softplus(e):
        return np.logaddexp(0.0, e)

    want_rate = gauss_expectation(softplus, mu.numpy(), v.numpy(), nodes=200)
    np.testing.assert_allclose(obs.expected_rate(mu, v).numpy(), want_rate, rtol=rtol)
    want = gauss_expectation(lambda e: yn * np.log(softplus(e)) - softplus(e), mu.numpy(), v.numpy(), nodes=200)
    np.testing.assert_allclose(obs.expected_loglik(y, None, mu, v).numpy(), want.sum((0, 1)), rtol=rtol)


@pytest.mark.parametrize("link", ["exp", "softplus"])
def test_loglik_terms_match_poisson_logpmf_and_autograd(link):
    y = torch.tensor([0.0, 1.0, 3.0, 7.0], dtype=F64)[:, None].expand(4, 15)
    eta = torch.linspace(-4.0, 3.0, 15, dtype=F64).expand(4, 15).clone().requires_grad_()
    ll, grad, curv = loglik_terms(y, eta.detach(), link)
    rate = torch.exp(eta) if link == "exp" else torch.nn.functional.softplus(eta)
    np.testing.assert_allclose(ll.numpy(), stats.poisson.logpmf(y.numpy(), rate.detach().numpy()), rtol=1e-12)
    ref = y * torch.log(rate) - rate - torch.lgamma(y + 1)
    (d1,) = torch.autograd.grad(ref.sum(), eta, create_graph=True)
    (d2,) = torch.autograd.grad(d1.sum(), eta)
    np.testing.assert_allclose(grad.numpy(), d1.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(curv.numpy(), -d2.numpy(), rtol=1e-10, atol=1e-12)
    assert bool((curv >= 0).all()) and bool((curv > 0).any())
    # log_fact, when given, replaces log y!.
    ll0, _, _ = loglik_terms(y, eta.detach(), link, log_fact=torch.zeros_like(y))
    np.testing.assert_allclose(ll0.numpy(), (ll + torch.lgamma(y + 1)).numpy(), rtol=1e-12, atol=1e-12)


def m_step_problem(link: str):
    """A Poisson read-out of 2 regions (2 and 3 latents) and counts drawn from known loadings."""
    gen = torch.Generator().manual_seed(0)
    lat, B, Tn = (2, 3), 8, 25
    K, N = sum(lat), sum(Y_DIMS)
    obs = PoissonObservation(Y_DIMS, lat, link=link).to(F64)
    Ex = 0.8 * torch.randn(B, Tn, K, generator=gen, dtype=F64)
    A = 0.15 * torch.randn(B, Tn, K, K, generator=gen, dtype=F64)
    Vx = A @ A.mT + 0.02 * torch.eye(K, dtype=F64)  # small, full (cross-region entries too: m_step must ignore them)
    C_true = 0.6 * torch.randn(N, K, generator=gen, dtype=F64) * obs.support
    d_true = torch.full((N,), 0.3 if link == "exp" else 1.0, dtype=F64)
    x = Ex + (torch.linalg.cholesky(Vx) @ torch.randn(B, Tn, K, 1, generator=gen, dtype=F64)).squeeze(-1)
    y = torch.poisson(link_rate(x @ C_true.T + d_true, link), generator=gen)
    mask = torch.rand(B, Tn, N, generator=gen) > 0.1
    y = torch.where(mask, y, torch.full_like(y, 1000.0))  # junk under the mask: it must not count
    return obs, y, mask, Ex, Vx


def total_expected_loglik(obs, C, d, y, mask, Ex, Vx) -> torch.Tensor:
    """``Σ_n E_q[ℓ]`` with each region's drive ``η = c_nᵀ x^r + d_n`` built here (differentiable in C, d)."""
    total = torch.zeros((), dtype=F64)
    for neurons, lat in obs.region_blocks():
        Cr = C[neurons, lat]
        mu = Ex[..., lat] @ Cr.T + d[neurons]
        v = torch.einsum("btij,ni,nj->btn", Vx[..., lat, lat], Cr, Cr)
        total = total + obs.expected_loglik(y[..., neurons], mask[..., neurons], mu, v).sum()
    return total


@pytest.mark.parametrize("link", ["exp", "softplus"])
def test_m_step_reaches_the_stationary_point_of_the_expected_loglik(link):
    obs, y, mask, Ex, Vx = m_step_problem(link)

    def value_and_grad():
        C = obs.C.clone().requires_grad_()
        d = obs.d.clone().requires_grad_()
        f = total_expected_loglik(obs, C, d, y, mask, Ex, Vx)
        gC, gd = torch.autograd.grad(f, (C, d))
        return float(f.detach()), torch.cat([gC[obs.support], gd])

    assert not bool(obs.C.any()) and not bool(obs.d.any())  # starts from C = 0, d = 0
    f, g0 = value_and_grad()
    values = [f]
    for _ in range(10):
        obs.m_step(y, mask, Ex, Vx)
        f, g = value_and_grad()
        values.append(f)
        assert bool((obs.C[~obs.support] == 0).all())
    steps = np.diff(values)
    assert steps.min() >= -1e-10 * abs(values[-1]), steps
    assert values[-1] > values[0] + 1.0
    assert float(g.norm()) <= 1e-6 * float(g0.norm()), (float(g.norm()), float(g0.norm()))
    assert bool(obs.C[obs.support].abs().min() > 0)  # every loading on the support moved


# ------------------------------------------------------------------------------------------- the presets
@pytest.mark.parametrize("name", PRESETS)
def test_poisson_preset_fits_counts_and_predicts_rates(name, counts, fitted):
    data, truth = counts
    model, result = fitted(name)
    assert isinstance(model.engine, LaplaceEMEngine)
    assert isinstance(model.observation, PoissonObservation) and model.observation.link == "exp"
    assert 1 <= result.n_iter <= 3 and len(result.score_trace) == result.n_iter + 1
    assert all(math.isfinite(s) for s in result.score_trace)
    assert result.score_trace[-1] > result.score_trace[0]

    pred = model.predict(data)
    assert pred.shape == data.y.shape
    assert bool(torch.isfinite(pred).all()) and bool((pred > 0).all())
    # Rates, not square-root counts or log-rates: their total matches the spikes, and they track the true rates.
    assert 0.9 < float(pred.sum() / data.y.sum()) < 1.1
    assert corr(pred, truth.clean) > 0.7

    keep = observed_neurons()
    co = model.predict(data, observed=keep)
    assert co.shape == data.y.shape
    assert bool(torch.isfinite(co).all()) and bool((co > 0).all())
    hidden = ~keep
    assert float((co - pred)[..., hidden].abs().max()) > 1e-3  # hiding the neurons changed their prediction
    assert corr(co[..., hidden], truth.clean[..., hidden]) > 0.5  # predicted from the other neurons alone


def test_softplus_gpfa_fits_counts(counts):
    data, truth = counts
    model = build("gpfa", link="softplus")
    assert model.observation.link == "softplus"
    result = model.fit(data, max_iter=3, progress=False)
    assert all(math.isfinite(s) for s in result.score_trace)
    assert result.score_trace[-1] > result.score_trace[0]
    pred = model.predict(data, observed=observed_neurons())
    assert bool(torch.isfinite(pred).all()) and bool((pred > 0).all())
    assert corr(pred, truth.clean) > 0.6


@pytest.mark.parametrize("name", ["dlag", "gpfa"])
def test_exact_engine_refuses_counts_and_names_laplace_em(name):
    with pytest.raises(ValueError) as err:
        mbrila.build_model(name, latent_spec=SPEC, y_dims=Y_DIMS, T=T, engine="exact", observation="poisson")
    msg = str(err.value)
    assert "LaplaceEMEngine" in msg and "linear_observation" in msg


def test_mdlag_does_not_take_counts():
    with pytest.raises(ValueError, match="observation='poisson'"):
        mbrila.build_model("mdlag", latent_spec=mbrila.LatentSpec(1, 0), y_dims=Y_DIMS, T=T, observation="poisson")


@pytest.mark.parametrize("name", PRESETS)
def test_unknown_observation_or_link_is_refused(name):
    with pytest.raises(ValueError) as err:
        mbrila.build_model(name, latent_spec=SPEC, y_dims=Y_DIMS, T=T, observation="binomial")
    msg = str(err.value)
    assert "'binomial'" in msg and "'gaussian'" in msg and "'poisson'" in msg
    with pytest.raises(ValueError, match="softplus"):
        mbrila.build_model(name, latent_spec=SPEC, y_dims=Y_DIMS, T=T, observation="poisson", link="probit")


# ------------------------------------------------------------------------------------------- bad counts
@pytest.mark.parametrize(("value", "problem"), [(-1.0, "negative"), (0.5, "not integers")])
def test_fit_refuses_values_that_are_not_counts(value, problem, counts):
    y = counts[0].y.clone()
    y[3, 0, 0] = value
    y[1, 4, 7] = value  # the first in (trial, time, neuron) order
    data = mbrila.MultiRegionData(y, Y_DIMS)
    before = data.y.clone()
    with pytest.raises(ValueError) as err:
        build("gpfa").fit(data, max_iter=2, progress=False)
    msg = str(err.value)
    assert "data.y" in msg and "(1, 4, 7)" in msg and problem in msg and "2 observed entries" in msg
    assert torch.equal(data.y, before)


def test_nan_counts_need_a_mask(counts):
    y = counts[0].y.clone()
    y[1, 4, 7] = float("nan")
    y[2, 3, 1] = -1.0
    with pytest.raises(ValueError, match=r"NaN.*trial 1, time 4, neuron 7"):
        mbrila.MultiRegionData(y, Y_DIMS)

    # Masked, the NaN (and a masked negative) are accepted; the caller's arrays are left as they were.
    mask = torch.ones_like(y, dtype=torch.bool)
    mask[1, 4, 7] = mask[2, 3, 1] = False
    y_before, mask_before = y.clone(), mask.clone()
    data = mbrila.MultiRegionData(y, Y_DIMS, mask=mask)
    model = build("gpfa")
    result = model.fit(data, max_iter=2, progress=False)
    assert all(math.isfinite(s) for s in result.score_trace)
    assert bool(torch.isfinite(model.predict(data)).all())
    assert bool(torch.isnan(y[1, 4, 7])) and float(data.y[1, 4, 7]) == 0.0  # the container stores 0 there
    assert torch.equal(y.nan_to_num(123.0), y_before.nan_to_num(123.0)) and torch.equal(mask, mask_before)

    # A NaN on an observed entry that got past the container (written into data.y) is caught by the engine.
    bad = mbrila.MultiRegionData(counts[0].y.clone(), Y_DIMS)
    bad.y[1, 4, 7] = float("nan")
    for call in (lambda: model.fit(bad, max_iter=1, progress=False, init=False), lambda: model.predict(bad)):
        with pytest.raises(ValueError) as err:
            call()
        msg = str(err.value)
        assert "data.y" in msg and "(1, 4, 7)" in msg and "not finite" in msg


# ------------------------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("name", PRESETS)
def test_fitted_poisson_model_round_trips(name, counts, fitted, tmp_path):
    data, _ = counts
    model, _ = fitted(name)
    path = tmp_path / f"{name}.pt"
    model.save(path)
    loaded = mbrila.load(path)
    assert type(loaded) is type(model) and isinstance(loaded.engine, LaplaceEMEngine)
    assert isinstance(loaded.observation, PoissonObservation) and loaded.observation.link == model.observation.link
    assert torch.equal(loaded.observation.C, model.observation.C) and torch.equal(
        loaded.observation.d, model.observation.d
    )
    assert torch.equal(loaded.predict(data), model.predict(data))
    keep = observed_neurons()
    assert torch.equal(loaded.predict(data, observed=keep), model.predict(data, observed=keep))


def test_softplus_link_survives_save_and_load(counts, tmp_path):
    data, _ = counts
    model = build("lds", link="softplus")
    model.fit(data, max_iter=1, progress=False)
    model.save(tmp_path / "lds.pt")
    loaded = mbrila.load(tmp_path / "lds.pt")
    assert loaded.observation.link == "softplus"
    assert torch.equal(loaded.predict(data), model.predict(data))


# ------------------------------------------------------------------------------------------- recovery
def test_poisson_dlag_recovers_a_delay_from_counts():
    data, truth = count_scenario(
        n_trials=30, T=60, y_dims=(20, 20), timescales_across=(4.0,), delay_amplitude=(2.0,), seed=0
    ).sample()
    true_delay = float(truth.delays[0, 1, 0])
    assert true_delay == 2.0
    model = mbrila.DLAG(SPEC, (20, 20), 60, engine="kalman", observation="poisson")
    model.fit(data, max_iter=0, progress=False)
    at_init = corr(model.predict(data), truth.clean)
    result = model.fit(data, max_iter=20, progress=False, init=False)
    delay = float(model.delays()[0, 1, 0])
    assert delay > 0 and abs(delay - true_delay) < 0.5, delay
    assert result.score_trace[-1] > result.score_trace[0]
    fitted_corr = corr(model.predict(data), truth.clean)
    assert fitted_corr > 0.95 and fitted_corr > at_init, (at_init, fitted_corr)


# ------------------------------------------------------------------------------------------- co-smoothing
def bits_per_spike(y: np.ndarray, rates: np.ndarray) -> float:
    """Bits per spike against each neuron's mean count (NLB's definition), written out for ``(trials, T, n)``."""
    null = np.broadcast_to(y.mean((0, 1), keepdims=True), y.shape)

    def ll(r):
        r = np.where(r == 0, 1e-9, r)  # a silent neuron's null rate, as NLB does
        return float(np.sum(y * np.log(r) - r))  # the log y! terms cancel

    return (ll(rates) - ll(null)) / (y.sum() * math.log(2.0))


def test_cosmoothing_reports_bits_per_spike_for_counts():
    data, _ = count_scenario(n_trials=16).sample()
    result = run_cosmoothing(
        lambda d: mbrila.GPFA(SPEC, d.y_dims, d.T, observation="poisson"),
        data,
        n_holdout_seeds=1,
        select_on_validation=False,
        fit_kwargs={"max_iter": 3, "progress": False},
    )
    keys = {"co_bps", "co_bps_R0", "co_bps_R1"}
    for metrics in (result.metrics, *result.baselines.values()):
        assert keys <= set(metrics)
        assert all(math.isfinite(metrics[k]) for k in keys)
    assert set(result.baselines) == {"psth", "mean"}
    # The model's number is bits per spike of its rates on the held-out neurons of the test trials.
    y = data.y[result.test_idx].numpy()
    pred = result.prediction.numpy()
    held = result.heldout
    assert bool((pred > 0).all())
    assert result.metrics["co_bps"] == pytest.approx(bits_per_spike(y[..., held], pred[..., held]), rel=1e-10)
    r0 = held & (np.arange(sum(Y_DIMS)) < Y_DIMS[0])
    assert result.metrics["co_bps_R0"] == pytest.approx(bits_per_spike(y[..., r0], pred[..., r0]), rel=1e-10)
    assert result.metrics["co_bps"] > result.baselines["mean"]["co_bps"]
