"""Synthetic scenarios: delay shapes, exact delayed-GP sampling, loadings, noise, presets and validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbrila.core import MultiRegionData
from mbrila.kernels import Matern32Kernel, RBFKernel
from mbrila.synthetic import (
    DELAY_SHAPES,
    HEADLINE_SCENARIOS,
    MultiRegionScenario,
    gaussian_delays,
    headline_scenario,
    make_delays,
    region_center_shifts,
    region_magnitudes,
)

# ----------------------------------------------------------------------------------------------- delay shapes


@pytest.mark.parametrize("shape", DELAY_SHAPES)
@pytest.mark.parametrize("n_regions", [1, 2, 5])
def test_delay_shapes_have_the_right_shape_and_a_zero_reference(shape, n_regions):
    d = make_delays(shape, 50, n_regions, [3.0, 1.0, 2.0])
    assert d.shape == (50, n_regions, 3)
    assert d.dtype == np.float64
    assert np.all(d[:, 0, :] == 0.0)
    assert np.all(np.isfinite(d))


def test_region_magnitudes_fall_linearly_from_one_to_a_half():
    np.testing.assert_allclose(region_magnitudes(5), [0.0, 1.0, 5 / 6, 4 / 6, 0.5])
    np.testing.assert_allclose(region_magnitudes(2), [0.0, 1.0])
    np.testing.assert_allclose(region_magnitudes(1), [0.0])


def test_constant_delays_are_amplitude_times_magnitude():
    d = make_delays("constant", 7, 5, [3.0, 1.0])
    mag = region_magnitudes(5)
    for k, a in enumerate([3.0, 1.0]):
        np.testing.assert_allclose(d[:, :, k], np.broadcast_to(a * mag, (7, 5)))
    np.testing.assert_allclose(d[0, 1:, 0], [3.0, 2.5, 2.0, 1.5])


def test_signs_flip_the_delay_direction_per_latent():
    d = make_delays("constant", 4, 3, [2.0, 1.0], signs=[1, -1])
    assert np.all(d[:, 1:, 0] > 0) and np.all(d[:, 1:, 1] < 0)
    g = make_delays("gaussian", 40, 3, [2.0, 1.0], signs=[-1, 1])
    np.testing.assert_allclose(g[:, :, 0], -make_delays("gaussian", 40, 3, [2.0, 1.0])[:, :, 0])
    with pytest.raises(ValueError, match="signs must be"):
        make_delays("constant", 4, 3, [2.0, 1.0], signs=[1, 0.5])


def test_gaussian_bumps_peak_at_the_shifted_centres():
    T, R = 200, 5
    d = gaussian_delays(T, R, [3.0, 1.0])
    shifts = region_center_shifts(R, T)
    np.testing.assert_allclose(shifts[1:], [-15.0, -5.0, 5.0, 15.0])  # ±0.075 T, evenly
    mag = region_magnitudes(R)
    for k, (centre, amp) in enumerate([(40.0, 3.0), (160.0, 1.0)]):  # 0.2 T and 0.8 T
        for r in range(1, R):
            assert int(np.argmax(d[:, r, k])) == int(centre + shifts[r])
            assert d[:, r, k].max() == pytest.approx(amp * mag[r])
    # Width: at one width (0.04 T = 8 bins for latent 0) from the centre the bump is exp(−1/2) of its peak.
    c = int(40 + shifts[1])
    assert d[c + 8, 1, 0] == pytest.approx(3.0 * np.exp(-0.5))
    # A single non-reference region is not shifted.
    d2 = gaussian_delays(T, 2, [3.0, 1.0])
    assert int(np.argmax(d2[:, 1, 0])) == 40 and int(np.argmax(d2[:, 1, 1])) == 160


def test_other_shapes_follow_their_formulas():
    T = 101
    t = np.arange(T)
    ramp = make_delays("ramp", T, 2, [2.0])
    np.testing.assert_allclose(ramp[:, 1, 0], 2.0 * (2 * t / (T - 1) - 1))
    assert ramp[0, 1, 0] == pytest.approx(-2.0) and ramp[-1, 1, 0] == pytest.approx(2.0)
    sine = make_delays("sine", T, 2, [1.5, 1.0], periods=[50.0, 20.0], phases=[0.0, 0.3])
    np.testing.assert_allclose(sine[:, 1, 1], np.sin(2 * np.pi * t / 20.0 + 0.3))
    sig = make_delays("sigmoid", T, 2, [2.0], centers=[30.0], widths=[4.0])
    np.testing.assert_allclose(sig[:, 1, 0], 2.0 / (1 + np.exp(-(t - 30.0) / 4.0)))


def test_delay_shape_validation():
    with pytest.raises(ValueError, match="constant, gaussian, sigmoid, sine, ramp"):
        make_delays("square", 10, 2, [1.0])
    with pytest.raises(ValueError, match="unknown"):
        make_delays("constant", 10, 2, [1.0], widths=[2.0])
    with pytest.raises(ValueError, match="one value per across latent"):
        make_delays("gaussian", 10, 2, [1.0, 2.0], centers=[3.0])
    with pytest.raises(ValueError, match="widths must be positive"):
        make_delays("gaussian", 10, 2, [1.0], widths=[0.0])


# ----------------------------------------------------------------------------------------------- scenario


def small(**kw):
    base = dict(n_trials=6, T=25, y_dims=(8, 6, 7), n_across=2, n_within=1, timescales_across=(3.0, 1.5), seed=3)
    base.update(kw)
    return MultiRegionScenario(**base)


def test_sample_shapes_and_truth_layout():
    sc = small(n_within=(0, 1, 2))
    data, truth = sc.sample()
    assert isinstance(data, MultiRegionData)
    assert data.y.shape == (6, 25, 21) and data.y_dims == (8, 6, 7)
    assert data.region_names == ("R0", "R1", "R2")
    assert truth.delays.shape == (25, 3, 2) and torch.all(truth.delays[:, 0] == 0)
    assert truth.latents_across.shape == (6, 25, 3, 2)
    assert [tuple(x.shape) for x in truth.latents_within] == [(6, 25, 0), (6, 25, 1), (6, 25, 2)]
    assert [tuple(c.shape) for c in truth.C] == [(8, 2), (6, 3), (7, 4)]
    assert torch.all(truth.d == 0) and torch.allclose(truth.R, torch.full((21,), 1 / 20, dtype=torch.float64))
    assert truth.noise_floor_rmse == pytest.approx(np.sqrt(0.05))
    torch.testing.assert_close(truth.timescales_across, torch.tensor([3.0, 1.5], dtype=torch.float64))
    # y = C x + d + noise, region by region, with x = (delayed across view, own within latents).
    start = 0
    for r, n in enumerate(data.y_dims):
        torch.testing.assert_close(truth.clean[..., start : start + n], truth.region_latents(r) @ truth.C[r].T)
        start += n
    assert data.y.dtype == torch.float64


def test_same_seed_same_sample_different_seed_differs():
    d1, t1 = small(seed=11).sample()
    d2, t2 = small(seed=11).sample()
    d3, _ = small(seed=12).sample()
    assert torch.equal(d1.y, d2.y) and torch.equal(t1.latents_across, t2.latents_across)
    assert all(torch.equal(a, b) for a, b in zip(t1.C, t2.C, strict=True))
    assert not torch.allclose(d1.y, d3.y)


def test_dtype_and_device_options_do_not_change_the_draw():
    d64, t64 = small().sample()
    d32, t32 = small().sample(dtype=torch.float32, device="cpu")
    assert d32.y.dtype == torch.float32 and t32.latents_across.dtype == torch.float32
    torch.testing.assert_close(t32.latents_across, t64.latents_across.float())
    torch.testing.assert_close(d32.y, d64.y.float())


def test_loadings_are_orthonormal_per_region():
    _, truth = small(y_dims=(10, 5, 9), n_within=(1, 2, 3)).sample()
    for C in truth.C:
        torch.testing.assert_close(C.T @ C, torch.eye(C.shape[1], dtype=C.dtype), atol=1e-12, rtol=0)


def test_noise_variance_is_one_over_snr():
    data, truth = small(n_trials=40, T=50, snr=8.0).sample()
    resid = data.y - truth.clean
    assert float(resid.mean()) == pytest.approx(0.0, abs=0.01)
    assert float(resid.var()) == pytest.approx(1 / 8.0, rel=0.03)  # 42 000 draws: s.e. ≈ 0.7 %


def _empirical_vs_exact(delays, kernels, T, x):
    """Max |empirical − exact| over the joint (region, time) covariance of each across latent."""
    t = torch.arange(T, dtype=torch.float64)
    errs = []
    for k, kern in enumerate(kernels):
        s = (t[:, None] - delays[:, :, k]).T.reshape(-1)  # region-major (r, t)
        exact = kern.double().cov(s[:, None] - s[None, :]).detach()
        xs = x[..., k].permute(0, 2, 1).reshape(x.shape[0], -1)  # (trials, R·T), region-major
        emp = xs.T @ xs / xs.shape[0]  # zero-mean process
        errs.append(float((emp - exact).abs().max()))
    return max(errs)


def test_across_latents_have_the_exact_delayed_gp_covariance():
    T, n = 20, 4000
    sc = MultiRegionScenario(
        n_trials=n,
        T=T,
        y_dims=(3, 3),
        n_across=1,
        n_within=0,
        timescales_across=(2.0,),
        delay_amplitude=(3.0,),
        snr=20.0,
        seed=5,
    )
    _, truth = sc.sample()
    x = truth.latents_across  # (n, T, 2, 1)
    assert torch.all(truth.delays[:, 1, 0] == 3.0)
    # Joint covariance over both regions and all times matches k(s_r(t) − s_s(t')) within sampling error
    # (s.e. of one entry ≤ sqrt(2/4000) ≈ 0.022; 1600 entries).
    assert _empirical_vs_exact(truth.delays, [RBFKernel(2.0)], T, x) < 0.1
    # Region 1 lags region 0 by 3 bins: Cov(x¹(t), x⁰(t − lag)) peaks at lag = +3.
    x0, x1 = x[:, :, 0, 0], x[:, :, 1, 0]
    lags = list(range(-6, 7))
    cross = [float((x1[:, 8:14] * x0[:, 8 - lag : 14 - lag]).mean()) for lag in lags]
    assert lags[int(np.argmax(cross))] == 3
    assert max(cross) == pytest.approx(1.0, abs=0.05)


def test_time_varying_delays_are_sampled_exactly():
    T, n = 16, 3000
    sc = MultiRegionScenario(
        n_trials=n,
        T=T,
        y_dims=(2, 2, 2),
        n_across=1,
        n_within=0,
        timescales_across=(3.0,),
        kernels=[Matern32Kernel(3.0)],
        delay_shape="sine",
        delay_amplitude=(2.5,),
        seed=9,
    )
    _, truth = sc.sample()
    assert truth.delays[:, 1, 0].std() > 1.0  # genuinely time-varying
    assert _empirical_vs_exact(truth.delays, [Matern32Kernel(3.0)], T, truth.latents_across) < 0.11


def test_within_latents_are_stationary_gps_with_their_own_timescales():
    _, truth = MultiRegionScenario(
        n_trials=3000,
        T=12,
        y_dims=(3, 3),
        n_across=0,
        n_within=1,
        timescales_across=(),
        delay_amplitude=(),
        timescales_within=(1.0, 4.0),
        seed=2,
    ).sample()
    for r, ell in enumerate([1.0, 4.0]):
        x = truth.latents_within[r][..., 0]
        emp = x.T @ x / x.shape[0]
        tau = torch.arange(12, dtype=torch.float64)
        exact = torch.exp(-0.5 * ((tau[:, None] - tau[None, :]) / ell) ** 2)
        assert float((emp - exact).abs().max()) < 0.1
    torch.testing.assert_close(truth.timescales_within[1], torch.tensor([4.0], dtype=torch.float64))


def test_user_kernels_are_not_modified():
    k = RBFKernel(2.0)
    before = k.raw_timescale.detach().clone()
    small(n_across=1, n_within=0, kernels=[k], timescales_across=(2.0,), delay_amplitude=(1.0,)).sample()
    assert k.raw_timescale.dtype == before.dtype and torch.equal(k.raw_timescale.detach(), before)


@pytest.mark.parametrize(
    ("kind", "n_regions", "n_within", "shape"),
    [
        ("dlag", 5, 1, "constant"),
        ("dlag_exact", 2, 1, "constant"),
        ("mdlag", 3, 0, "constant"),
        ("adm", 5, 1, "gaussian"),
    ],
)
def test_headline_scenarios(kind, n_regions, n_within, shape):
    sc = headline_scenario(kind)
    assert (sc.n_trials, sc.T, sc.n_across, sc.delay_shape, sc.snr) == (50, 200, 2, shape, 20.0)
    assert sc.y_dims == (100,) * n_regions and sc.n_within_per_region == (n_within,) * n_regions
    assert sc.timescales_across == (4.47, 1.41) and sc.delay_amplitude == (3.0, 1.0)
    delays = sc.delays()
    assert delays.shape == (200, n_regions, 2)
    assert float(delays[:, 1:, 0].max()) == pytest.approx(3.0) and float(delays[:, -1, 0].max()) == pytest.approx(
        3.0 if n_regions == 2 else 1.5
    )
    data, truth = headline_scenario(kind, seed=1, n_trials=2, T=30).sample()
    assert data.y.shape == (2, 30, 100 * n_regions)
    assert truth.latents_across.shape == (2, 30, n_regions, 2)


def test_headline_validation():
    assert set(HEADLINE_SCENARIOS) == {"dlag", "dlag_exact", "mdlag", "adm"}
    with pytest.raises(ValueError, match="valid kinds are"):
        headline_scenario("gpfa")
    with pytest.raises(ValueError, match="unknown MultiRegionScenario fields"):
        headline_scenario("dlag", n_neurons=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_trials": 0}, "n_trials"),
        ({"T": 1}, "T must be"),
        ({"snr": 0.0}, "snr must be positive"),
        ({"snr": -1.0}, "snr must be positive"),
        ({"n_within": (1, 1)}, "n_within has 2 counts"),
        ({"timescales_within": (1.0, 2.0)}, "timescales_within has 2 values"),
        ({"timescales_across": (1.0,)}, "timescales_across has 1 values"),
        ({"delay_amplitude": (1.0, 2.0, 3.0)}, "delay_amplitude has 3 values"),
        ({"delay_shape": "zigzag"}, "valid shapes are constant, gaussian"),
        ({"y_dims": (8, 2, 7)}, "orthonormal loadings"),
        ({"n_across": 0, "n_within": 0, "timescales_across": (), "delay_amplitude": ()}, "at least one latent"),
        ({"kernels": [RBFKernel(1.0)]}, "kernels must list 5 kernels"),
        ({"timescales_across": (1.0, -2.0)}, "positive"),
    ],
)
def test_scenario_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        small(**kwargs)


def test_bad_delay_kwargs_raise_at_sampling():
    with pytest.raises(ValueError, match="unknown"):
        small(delay_kwargs={"periods": [1.0, 2.0]}).sample()
