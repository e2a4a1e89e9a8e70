"""Synthetic spike counts: ``MultiRegionScenario(observation="poisson")``, its rates, truth and validation."""

from __future__ import annotations

import math

import pytest
import torch

from mbrila.synthetic import MultiRegionScenario, headline_scenario


def counts(**kw):
    base = dict(
        n_trials=8,
        T=30,
        y_dims=(9, 7, 8),
        n_across=2,
        n_within=1,
        timescales_across=(3.0, 1.5),
        observation="poisson",
        base_rate=0.5,
        gain=0.8,
        seed=5,
    )
    base.update(kw)
    return MultiRegionScenario(**base)


def test_counts_are_non_negative_whole_numbers_in_the_requested_dtype():
    d64, _ = counts().sample()
    d32, t32 = counts().sample(dtype=torch.float32)
    for y in (d64.y, d32.y):
        assert torch.all(y >= 0) and torch.equal(y, torch.round(y))
    assert d32.y.dtype == torch.float32 and t32.clean.dtype == torch.float32
    assert torch.equal(d32.y, d64.y.float())  # counts are small integers: exact in float32
    assert float(d64.y.max()) >= 2  # counts, not a binary spike / no-spike indicator


def test_same_seed_same_counts_different_seed_differs():
    d1, t1 = counts(seed=11).sample()
    d2, t2 = counts(seed=11).sample()
    d3, _ = counts(seed=12).sample()
    assert torch.equal(d1.y, d2.y) and torch.equal(t1.clean, t2.clean)
    assert not torch.equal(d1.y, d3.y)


def test_latents_and_loading_directions_match_the_gaussian_scenario_of_the_seed():
    # A base-rate pair makes the Poisson scenario draw more: those draws must come after the latents and loadings.
    _, tg = counts(observation="gaussian").sample()
    _, tp = counts(base_rate=(0.2, 0.6)).sample()
    assert torch.equal(tg.delays, tp.delays) and torch.equal(tg.latents_across, tp.latents_across)
    assert all(torch.equal(a, b) for a, b in zip(tg.latents_within, tp.latents_within, strict=True))
    for cg, cp in zip(tg.C, tp.C, strict=True):
        # Poisson rows are g · C_n / s_n: the same directions, rescaled to norm g (the sd of the log rate).
        torch.testing.assert_close(cp.norm(dim=1), torch.full((cp.shape[0],), 0.8, dtype=cp.dtype))
        torch.testing.assert_close(cp / cp.norm(dim=1, keepdim=True), cg / cg.norm(dim=1, keepdim=True))


def test_gaussian_samples_are_unchanged_and_ignore_the_count_fields():
    # Pinned before the count fields existed: a change in the order of the Gaussian draws changes every value.
    data, truth = MultiRegionScenario(n_trials=3, T=20, y_dims=(6, 5), seed=7).sample()
    assert float(data.y.sum()) == pytest.approx(-110.14018208882548, rel=1e-9)
    torch.testing.assert_close(
        data.y[0, 0, :4],
        torch.tensor(
            [-0.2679538918042201, 0.2005148041683558, 0.5443837869341148, -0.6940958183813328], dtype=torch.float64
        ),
        rtol=1e-9,
        atol=1e-12,
    )
    other, _ = MultiRegionScenario(n_trials=3, T=20, y_dims=(6, 5), seed=7, base_rate=(0.1, 2.0), gain=3.0).sample()
    assert torch.equal(other.y, data.y)
    assert torch.all(truth.d == 0) and torch.all(truth.R == 1 / 20)


def test_mean_count_is_the_base_rate():
    data, _ = counts(n_trials=200, T=100, y_dims=(20, 20), base_rate=0.3, gain=0.5, seed=0).sample()
    mean = float(data.y.mean())
    # Trials are independent draws, so the spread of the per-trial means gives the standard error of the grand mean
    # (≈ 0.0009 here: the latents correlate counts over time and neurons). E[y] = b exactly (the −g²/2 offset), and
    # a model without that offset would be off by b·(exp(g²/2) − 1) ≈ 0.04, ~40 standard errors.
    se = float(data.y.mean(dim=(1, 2)).std()) / math.sqrt(data.y.shape[0])
    assert abs(mean - 0.3) < 4 * se
    assert se < 0.005  # the test is sharp enough to see a 1.5 % bias


def test_log_rate_sd_is_the_gain_for_every_neuron():
    _, truth = counts(n_trials=200, T=100, y_dims=(20, 20), base_rate=0.3, gain=0.5, seed=1).sample()
    sd = truth.clean.log().reshape(-1, 40).std(dim=0)  # per neuron, over 20 000 correlated bins
    # The sd of each neuron's log rate is estimated from ~20 000 bins of a smooth GP (timescales ≤ 4.5 bins): ~2 500
    # effective samples, a standard error of ≈ 1/sqrt(2·2500) ≈ 1.4 %, so 40 neurons stay within 5 % (≈ 3.5 s.e.).
    # The neurons share the latents, so their average is no sharper than one neuron: 3 % is ≈ 2 s.e.
    torch.testing.assert_close(sd, torch.full_like(sd, 0.5), rtol=0.05, atol=0)
    assert float(sd.mean()) == pytest.approx(0.5, rel=0.03)


def test_clean_is_exactly_the_exp_of_the_log_rate_model():
    data, truth = counts().sample()
    drive = torch.cat([truth.region_latents(r) @ truth.C[r].T for r in range(truth.n_regions)], dim=-1)
    assert torch.equal(truth.clean, torch.exp(drive + truth.d))
    # Scalar base rate: d = log b − g²/2 for every neuron.
    torch.testing.assert_close(truth.d, torch.full((24,), math.log(0.5) - 0.8**2 / 2, dtype=torch.float64))
    # No Gaussian noise: R is NaN; the noise floor is the RMSE of the counts around their true rates.
    assert truth.R.shape == (24,) and bool(truth.R.isnan().all())
    assert truth.noise_floor_rmse == pytest.approx(math.sqrt(float(truth.clean.mean())), rel=1e-12)
    assert float((data.y - truth.clean).square().mean().sqrt()) == pytest.approx(truth.noise_floor_rmse, rel=0.1)
    t32 = truth.to(dtype=torch.float32)
    assert t32.R.dtype == torch.float32 and bool(t32.R.isnan().all()) and t32.C[0].dtype == torch.float32


def test_zero_gain_and_regions_without_latents_give_constant_rates():
    _, flat = counts(gain=0.0).sample()
    torch.testing.assert_close(flat.clean, torch.full_like(flat.clean, 0.5), rtol=1e-12, atol=0)
    # Region 1 has no latent (s_n = 0): its neurons fire at b, not at a 0/0 rate; region 0 is still driven.
    sc = counts(n_across=0, n_within=(1, 0, 1), timescales_across=(), delay_amplitude=(), timescales_within=3.0)
    _, truth = sc.sample()
    assert bool(truth.clean.isfinite().all())
    torch.testing.assert_close(truth.clean[..., 9:16], torch.full_like(truth.clean[..., 9:16], 0.5), rtol=1e-12, atol=0)
    assert float(truth.clean[..., :9].std()) > 0.1


def test_headline_like_counts_are_sparse():
    sc = headline_scenario("dlag", observation="poisson", base_rate=(0.2, 0.3), n_trials=10)
    assert (sc.observation, sc.base_rate, sc.gain, sc.y_dims) == ("poisson", (0.2, 0.3), 1.0, (100,) * 5)
    data, _ = sc.sample()
    assert data.y.shape == (10, 200, 500)
    # E[y] = mean base rate ≈ 0.25 and P(y = 0) = E[exp(−λ)] ≥ exp(−0.25) ≈ 0.78 (Jensen): sparse counts.
    assert float(data.y.mean()) <= 0.5
    assert float((data.y == 0).double().mean()) > 0.5


def test_base_rate_pair_gives_heterogeneous_rates_within_the_range():
    lo, hi = 0.05, 0.5
    data, truth = counts(n_trials=100, T=50, y_dims=(30, 30), base_rate=(lo, hi), gain=0.5, seed=2).sample()
    b = torch.exp(truth.d + 0.5**2 / 2)  # the drawn base rates
    assert float(b.min()) >= lo and float(b.max()) <= hi
    assert float(b.max() / b.min()) > 4  # log-uniform over a decade, not one shared rate
    per_neuron = data.y.mean(dim=(0, 1))
    # Loose: a neuron's mean over 5 000 bins has a relative s.e. of ≲ 7 % (Poisson at b = 0.05, latent drive).
    assert float(per_neuron.min()) >= 0.7 * lo and float(per_neuron.max()) <= 1.3 * hi
    assert float(per_neuron.max() / per_neuron.min()) > 4
    assert float(torch.corrcoef(torch.stack([per_neuron, b]))[0, 1]) > 0.9  # each neuron fires at its own rate


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"observation": "binomial"}, r"observation must be one of gaussian, poisson; got 'binomial'"),
        ({"base_rate": 0}, r"base_rate must be .*; got 0\."),
        ({"base_rate": -0.1}, r"base_rate must be .*; got -0\.1\."),
        ({"base_rate": float("inf")}, r"base_rate must be"),
        ({"base_rate": (0.5, 0.1)}, r"base_rate must be .*lo ≤ hi.*; got \(0\.5, 0\.1\)\."),
        ({"base_rate": (0.0, 0.1)}, r"base_rate must be"),
        ({"base_rate": (0.1, 0.2, 0.3)}, r"base_rate must be"),
        ({"gain": -1}, r"gain must be ≥ 0 and finite .*; got -1\."),
        ({"gain": float("nan")}, r"gain must be"),
    ],
)
def test_count_field_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        counts(**kwargs)
