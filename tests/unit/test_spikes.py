"""Poisson scores (negative log-likelihood, bits per spike, co-bps) and the count check of a Poisson read-out."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mbrila.metrics import bits_per_spike, co_bps, poisson_nll
from mbrila.observations.counts import check_counts


def _loop_bits_per_spike(rates: np.ndarray, counts: np.ndarray) -> float:
    """Bits per spike written entry by entry, as an independent check of the vectorised version."""
    trials, n_time, n_neurons = counts.shape
    null = []
    for n in range(n_neurons):
        total, seen = 0.0, 0
        for i in range(trials):
            for t in range(n_time):
                if not math.isnan(counts[i, t, n]):
                    total += counts[i, t, n]
                    seen += 1
        null.append(total / seen if seen else 0.0)
    nll_model = nll_null = n_spikes = 0.0
    for i in range(trials):
        for t in range(n_time):
            for n in range(n_neurons):
                y = counts[i, t, n]
                if math.isnan(y):
                    continue
                for rate, which in ((rates[i, t, n], "model"), (null[n], "null")):
                    lam = rate if rate > 0 else 1e-9
                    term = lam - y * math.log(lam) + math.lgamma(y + 1.0)
                    if which == "model":
                        nll_model += term
                    else:
                        nll_null += term
                n_spikes += y
    return (nll_null - nll_model) / (n_spikes * math.log(2.0))


def _poisson_data(seed: int = 0, shape: tuple[int, int, int] = (40, 50, 6)) -> tuple[np.ndarray, np.ndarray]:
    """Counts drawn from strongly time-modulated rates, and those true rates."""
    rng = np.random.default_rng(seed)
    _, n_time, n_neurons = shape
    t = np.linspace(0.0, 2.0 * np.pi, n_time)[None, :, None]
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(1, 1, n_neurons))
    base = rng.uniform(0.3, 3.0, size=(1, 1, n_neurons))
    rates = np.broadcast_to(base * np.exp(np.sin(t + phase)), shape).copy()
    return rng.poisson(rates).astype(np.float64), rates


# ----------------------------------------------------------------------------------------------- poisson_nll


def test_poisson_nll_by_hand_and_zero_rates_become_1e_minus_9():
    # Entries: (rate 2, count 3) and (rate 0.5, count 0): 2 − 3 log 2 + log 3! and 0.5 − 0 + log 0!.
    expected = (2.0 - 3.0 * math.log(2.0) + math.log(6.0)) + (0.5 - 0.0 + 0.0)
    assert poisson_nll(np.array([2.0, 0.5]), np.array([3.0, 0.0])) == pytest.approx(expected, rel=1e-14)
    # A zero rate is scored as 1e-9, as nlb_tools does: 1e-9 − 1·log(1e-9) + log 1!.
    assert poisson_nll(np.array([0.0]), np.array([1.0])) == pytest.approx(1e-9 - math.log(1e-9), rel=1e-14)
    # NaN counts are left out, whatever the rate there.
    assert poisson_nll(np.array([2.0, -5.0]), np.array([3.0, np.nan])) == pytest.approx(
        2.0 - 3.0 * math.log(2.0) + math.log(6.0), rel=1e-14
    )


# ----------------------------------------------------------------------------------------------- bits_per_spike


def test_bits_per_spike_on_a_hand_computed_toy_case():
    # 1 trial, 2 time bins, 2 neurons. Neuron 0 counts 1, 3 (mean 2); neuron 1 counts 0, 2 (mean 1).
    counts = np.array([[[1.0, 0.0], [3.0, 2.0]]])
    rates = np.array([[[1.5, 0.5], [2.5, 1.5]]])
    log = math.log
    nll_model = (
        (1.5 - 1 * log(1.5) + log(1))  # t0 n0: log 1! = 0
        + (0.5 - 0 * log(0.5) + log(1))  # t0 n1
        + (2.5 - 3 * log(2.5) + log(6))  # t1 n0: log 3! = log 6
        + (1.5 - 2 * log(1.5) + log(2))  # t1 n1: log 2! = log 2
    )
    nll_null = (
        (2.0 - 1 * log(2.0) + log(1))
        + (1.0 - 0 * log(1.0) + log(1))
        + (2.0 - 3 * log(2.0) + log(6))
        + (1.0 - 2 * log(1.0) + log(2))
    )
    n_spikes = 1 + 0 + 3 + 2
    expected = (nll_null - nll_model) / (n_spikes * log(2))
    # The same number with the cancellations done: (3 log 1.5 + 3 log 2.5 − 4 log 2) / (6 ln 2) ≈ 0.2868.
    assert expected == pytest.approx((3 * log(1.5) + 3 * log(2.5) - 4 * log(2)) / (6 * log(2)), rel=1e-12)
    assert bits_per_spike(rates, counts) == pytest.approx(expected, rel=1e-12)
    assert bits_per_spike(torch.tensor(rates), torch.tensor(counts)) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("nan_fraction", [0.0, 0.2])
def test_bits_per_spike_matches_an_entry_by_entry_implementation(nan_fraction):
    rng = np.random.default_rng(3)
    shape = (4, 7, 5)
    counts = rng.poisson(rng.uniform(0.1, 4.0, size=shape)).astype(np.float64)
    counts[rng.random(shape) < nan_fraction] = np.nan
    rates = rng.uniform(0.05, 5.0, size=shape)
    rates[0, 0, 0] = 0.0  # exercises the 1e-9 replacement in both implementations
    assert bits_per_spike(rates, counts) == pytest.approx(_loop_bits_per_spike(rates, counts), abs=1e-10)


def test_bits_per_spike_is_zero_for_the_mean_rate_predictor():
    counts, _ = _poisson_data(seed=1)
    mean_rates = np.broadcast_to(counts.mean(axis=(0, 1), keepdims=True), counts.shape)
    assert bits_per_spike(mean_rates, counts) == 0.0


def test_bits_per_spike_is_negative_for_worse_predictors():
    counts, _ = _poisson_data(seed=2)
    means = counts.mean(axis=(0, 1), keepdims=True)
    # The neuron's mean count is the best constant rate, so any other constant is strictly worse.
    assert bits_per_spike(np.broadcast_to(10.0 * means, counts.shape), counts) < 0
    swapped = np.broadcast_to(means[..., ::-1], counts.shape)  # each neuron given another neuron's mean
    assert bits_per_spike(swapped, counts) < 0


def test_bits_per_spike_is_positive_for_the_true_rates():
    counts, rates = _poisson_data(seed=4, shape=(60, 50, 6))
    assert bits_per_spike(rates, counts) > 0.05


def test_bits_per_spike_leaves_nan_counts_out():
    counts, rates = _poisson_data(seed=5, shape=(6, 20, 4))
    rates = rates * np.random.default_rng(6).uniform(0.5, 1.5, size=rates.shape)  # not the null model
    masked_counts, masked_rates = counts.copy(), rates.copy()
    masked_counts[0] = np.nan  # a whole trial unscored ...
    masked_counts[:, :, 2] = np.nan  # ... and a whole neuron
    masked_rates[0] = -1.0  # rates there are never looked at
    masked_rates[:, :, 2] = np.nan
    keep = [0, 1, 3]
    expected = bits_per_spike(rates[1:][:, :, keep], counts[1:][:, :, keep])
    assert bits_per_spike(masked_rates, masked_counts) == pytest.approx(expected, rel=1e-12)


def test_bits_per_spike_errors():
    counts, rates = _poisson_data(seed=7, shape=(3, 4, 5))
    bad = rates.copy()
    bad[0, 1, 2] = -0.5
    with pytest.raises(ValueError, match=r"rates must be finite and non-negative.*\(0, 1, 2\).*-0\.5"):
        bits_per_spike(bad, counts)
    bad[0, 1, 2] = np.nan
    with pytest.raises(ValueError, match=r"rates.*\(0, 1, 2\).*nan"):
        bits_per_spike(bad, counts)
    with pytest.raises(ValueError, match=r"rates \(3, 4, 4\) must have the shape of counts \(3, 4, 5\)"):
        bits_per_spike(rates[..., :4], counts)
    with pytest.raises(ValueError, match=r"counts must have shape \(trials, T, N\); got \(4, 5\)"):
        bits_per_spike(rates[0], counts[0])
    with pytest.raises(ValueError, match="hold no spike"):
        bits_per_spike(rates, np.zeros_like(counts))
    with pytest.raises(ValueError, match="hold no spike"):
        bits_per_spike(rates, np.full_like(counts, np.nan))


# ----------------------------------------------------------------------------------------------- co_bps


def test_co_bps_equals_bits_per_spike_of_the_heldout_columns():
    counts, rates = _poisson_data(seed=8, shape=(10, 30, 7))
    rates = rates * 1.2
    heldout = np.array([False, True, False, True, True, False, False])
    expected = bits_per_spike(rates[..., heldout], counts[..., heldout])
    out = co_bps(counts, rates, heldout)
    assert out.keys() == {"co_bps"}
    assert out["co_bps"] == pytest.approx(expected, rel=1e-12)
    # torch inputs, and the per-entry form of heldout, give the same number.
    out_t = co_bps(torch.tensor(counts), torch.tensor(rates), torch.tensor(heldout))
    assert out_t["co_bps"] == pytest.approx(expected, rel=1e-12)
    per_entry = np.broadcast_to(heldout, counts.shape).copy()
    assert co_bps(counts, rates, per_entry)["co_bps"] == pytest.approx(expected, rel=1e-12)


def test_co_bps_per_region_keys_and_values():
    counts, rates = _poisson_data(seed=9, shape=(10, 30, 7))
    rates = rates * 0.9
    counts[..., 4] = 0.0  # region "M1"'s only held-out neuron never fires: no score for it
    y_dims = (3, 2, 2)
    heldout = np.array([True, True, False, False, True, False, False])  # region 2 has no held-out neuron
    out = co_bps(counts, rates, heldout, y_dims=y_dims, region_names=("V1", "M1", "PFC"))
    assert out.keys() == {"co_bps", "co_bps_V1"}
    assert out["co_bps_V1"] == pytest.approx(bits_per_spike(rates[..., :2], counts[..., :2]), rel=1e-12)
    heldout[5] = True
    out = co_bps(counts, rates, heldout, y_dims=y_dims)
    assert out.keys() == {"co_bps", "co_bps_R0", "co_bps_R2"}
    assert out["co_bps_R2"] == pytest.approx(bits_per_spike(rates[..., 5:6], counts[..., 5:6]), rel=1e-12)
    cols = [0, 1, 4, 5]
    assert out["co_bps"] == pytest.approx(bits_per_spike(rates[..., cols], counts[..., cols]), rel=1e-12)


def test_co_bps_mask_excludes_entries():
    counts, rates = _poisson_data(seed=10, shape=(8, 25, 5))
    rates = rates * 1.3
    heldout = np.array([True, False, True, True, False])
    mask = np.ones(counts.shape, dtype=bool)
    mask[:3] = False  # the first three trials were not recorded
    garbage = rates.copy()
    garbage[:3] = -7.0  # and what is predicted there is never scored
    expected = co_bps(counts[3:], rates[3:], heldout, y_dims=(2, 3))
    out = co_bps(counts, garbage, heldout, y_dims=(2, 3), mask=torch.tensor(mask))
    assert out.keys() == expected.keys() == {"co_bps", "co_bps_R0", "co_bps_R1"}
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, rel=1e-12)


def test_co_bps_errors():
    counts, rates = _poisson_data(seed=11, shape=(3, 4, 5))
    heldout = np.array([True, True, False, False, False])
    bad = rates.copy()
    bad[2, 3, 1] = -1.5
    with pytest.raises(ValueError, match=r"rates.*\(2, 3, 1\).*-1\.5"):
        co_bps(counts, bad, heldout)
    bad[2, 3, 1] = 1.0
    bad[2, 3, 4] = -1.5  # a neuron that is not held out: not scored, so no error
    co_bps(counts, bad, heldout)
    with pytest.raises(ValueError, match=r"rates \(3, 4, 4\) must have the shape of counts \(3, 4, 5\)"):
        co_bps(counts, rates[..., :4], heldout)
    with pytest.raises(ValueError, match=r"heldout of shape \(4,\) does not broadcast"):
        co_bps(counts, rates, heldout[:4])
    with pytest.raises(ValueError, match="heldout must be a bool array"):
        co_bps(counts, rates, heldout.astype(int))
    silent = counts.copy()
    silent[..., :2] = 0.0
    with pytest.raises(ValueError, match="held-out counts hold no spike"):
        co_bps(silent, rates, heldout)
    with pytest.raises(ValueError, match=r"y_dims \[2, 2\] sum to 4 but the data have N = 5"):
        co_bps(counts, rates, heldout, y_dims=(2, 2))
    with pytest.raises(ValueError, match="region_names needs y_dims"):
        co_bps(counts, rates, heldout, region_names=("A", "B"))


# ----------------------------------------------------------------------------------------------- check_counts


def test_check_counts_accepts_integer_counts_in_float_and_int_dtypes():
    counts = torch.poisson(torch.full((3, 4, 5), 2.0), generator=torch.Generator().manual_seed(0))
    check_counts(counts)
    check_counts(counts.double())
    check_counts(counts.to(torch.int64))
    check_counts(counts, mask=torch.ones(5, dtype=torch.bool))


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (-1.0, "negative.*non-negative integers; pass raw counts"),
        (0.5, "not integers.*non-negative integers; pass raw counts, not rates or square-root"),
        (float("nan"), "not finite.*mark missing entries with a mask"),
        (float("inf"), "not finite.*nan_as_missing=True"),
    ],
)
def test_check_counts_names_the_problem_its_first_index_and_the_input(value, problem):
    y = torch.ones(3, 4, 5)
    y[1, 2, 3] = value
    y[2, 3, 4] = value  # a later offender: the message must point at the first one
    with pytest.raises(ValueError, match=rf"^spikes\.y must hold Poisson counts, but 2 .*{problem}"):
        check_counts(y, name="spikes.y")
    with pytest.raises(ValueError, match=r"data\.y .*index \(1, 2, 3\) with value"):
        check_counts(y)


def test_check_counts_rejects_negative_integer_dtype_counts():
    y = torch.zeros(3, 4, 5, dtype=torch.int64)
    y[1, 2, 3] = -2
    with pytest.raises(ValueError, match=r"negative; the first is at \(trial, time, neuron\) index \(1, 2, 3\)"):
        check_counts(y)


def test_check_counts_ignores_masked_entries_and_leaves_the_input_unchanged():
    y = torch.ones(3, 4, 5)
    y[1, 2, 3] = float("nan")
    y[0, 0, 0] = -3.0
    y[2, 1, 0] = 0.25
    before = y.clone()
    mask = torch.ones(3, 4, 5, dtype=torch.bool)
    mask[1, 2, 3] = mask[0, 0, 0] = mask[2, 1, 0] = False
    check_counts(y, mask=mask)
    torch.testing.assert_close(y, before, equal_nan=True, rtol=0, atol=0)
    mask[2, 1, 0] = True
    with pytest.raises(ValueError, match=r"not integers.*\(2, 1, 0\) with value 0\.25"):
        check_counts(y, mask=mask)
    torch.testing.assert_close(y, before, equal_nan=True, rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"mask of data\.y must be a bool tensor"):
        check_counts(y, mask=mask.float())
