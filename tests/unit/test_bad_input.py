"""Bad or degenerate input a new user feeds the models: each gets a clear error, a warning naming what is
ill-posed, or a fit that runs to the end with finite results (issue 21, points 4 and 6)."""

from __future__ import annotations

import re
import warnings

import pytest
import torch

import mbrila
from mbrila.core import LatentSpec, MultiRegionData
from mbrila.init import DataWarning
from mbrila.synthetic import MultiRegionScenario

#: Every preset (DLAG with both engines), with a latent spec it accepts.
PRESETS = {
    "gpfa": LatentSpec(1, 1),
    "dlag": LatentSpec(1, 1),  # exact engine (the default)
    "dlag_ssm": LatentSpec(1, 1),
    "adm": LatentSpec(1, 1),
    "lds": LatentSpec(1, 1),
    "mdlag": LatentSpec(2, 0),
}


def regions(seed=0, n_trials=10, T=20, y_dims=(6, 8), names=("A", "B"), n_within=1):
    """Small synthetic data (one across latent, ``n_within`` within) as a dict of ``(trials, T, n_r)`` arrays."""
    data, _ = MultiRegionScenario(
        n_trials=n_trials,
        T=T,
        y_dims=y_dims,
        n_across=1,
        n_within=n_within,
        timescales_across=(3.0,),
        timescales_within=3.0,
        delay_amplitude=(1.0,),
        snr=5.0,
        seed=seed,
    ).sample()
    return {name: data.region(r).clone() for r, name in enumerate(names)}


def build(name, data, T=None, **kw):
    return mbrila.build_model(name, latent_spec=PRESETS[name], y_dims=data.y_dims, T=data.T if T is None else T, **kw)


def fit(model, data, max_iter=5):
    return model.fit(data, max_iter=max_iter, progress=False)


def data_warnings(record):
    return [str(w.message) for w in record if issubclass(w.category, DataWarning)]


# --------------------------------------------------------------------------------------------- point 6


@pytest.mark.parametrize("name", list(PRESETS))
def test_a_constant_neuron_fits_every_preset_with_a_warning_naming_it(name):
    regs = regions()
    regs["B"][..., 2] = 3.0  # a constant neuron
    regs["A"][..., 4] = 0.0  # a silent one
    data = MultiRegionData.from_regions(regs)
    model = build(name, data)
    with pytest.warns(DataWarning) as record:
        fit(model, data)
    msgs = [m for m in data_warnings(record) if "constant" in m]
    assert any("'A'" in m and "[4]" in m for m in msgs), msgs
    assert any("'B'" in m and "[2]" in m for m in msgs), msgs
    pred = model.predict(data)
    assert torch.isfinite(pred).all()
    torch.testing.assert_close(pred[..., 6 + 2], torch.full_like(pred[..., 0], 3.0))  # its mean, exactly


def test_a_silent_neuron_in_spike_counts_fits():
    data, _ = MultiRegionScenario(
        n_trials=10,
        T=20,
        y_dims=(6, 8),
        n_across=1,
        n_within=1,
        timescales_across=(3.0,),
        delay_amplitude=(1.0,),
        observation="poisson",
        base_rate=1.0,
        seed=0,
    ).sample()
    y = data.y.clone()
    y[..., 3] = 0.0
    data = MultiRegionData(y, data.y_dims, data.region_names)
    model = mbrila.GPFA(LatentSpec(1, 1), data.y_dims, data.T, observation="poisson")
    with pytest.warns(DataWarning, match=r"region 'R0'.*\[3\]"):
        fit(model, data)
    assert torch.isfinite(model.predict(data)).all()


@pytest.mark.parametrize("name", ["gpfa", "dlag_ssm", "mdlag"])
def test_b_regions_in_another_order_are_refused(name):
    regs = regions(y_dims=(7, 7))
    data = MultiRegionData.from_regions(regs)
    model = build(name, data)
    assert model.region_names is None
    fit(model, data)
    assert model.region_names == ("A", "B")
    swapped = MultiRegionData.from_regions({"B": regs["B"], "A": regs["A"]})
    for call in (model.predict, model.infer, lambda d: fit(model, d)):
        with pytest.raises(ValueError, match=r"\('B', 'A'\).*\('A', 'B'\).*Reorder"):
            call(swapped)
    renamed = MultiRegionData.from_regions({"A": regs["A"], "C": regs["B"]})
    with pytest.raises(ValueError, match="rename"):
        model.predict(renamed)
    assert torch.isfinite(model.predict(data)).all()  # the same names still work


def test_c_time_varying_delays_need_data_of_the_model_length():
    data = MultiRegionData.from_regions(regions(T=40))
    model = build("adm", data, T=50)
    with pytest.raises(ValueError, match=r"T = 40.*T = 50.*T=40"):
        fit(model, data)
    model = build("adm", data)
    fit(model, data, max_iter=2)
    longer = MultiRegionData.from_regions(regions(T=60))
    for call in (model.predict, model.infer):
        with pytest.raises(ValueError, match=r"T = 60.*T = 40"):
            call(longer)


@pytest.mark.parametrize("name", ["gpfa", "dlag", "dlag_ssm", "lds", "mdlag"])
def test_c_constant_delay_presets_take_trials_up_to_the_model_length(name):
    short = MultiRegionData.from_regions(regions(T=40))
    model = build(name, short, T=50)
    fit(model, short)  # shorter trials: legal (the model's T bounds the trial length)
    assert model.delays().shape[0] == 50
    assert model.predict(short).shape == short.y.shape
    longer = MultiRegionData.from_regions(regions(T=60))
    for call in (model.predict, model.infer, lambda d: fit(model, d)):
        with pytest.raises(ValueError, match=r"T = 60.*T = 50.*T=60"):
            call(longer)


def test_c_ragged_trials_use_the_padded_length():
    regs = regions(T=30)
    lengths = torch.full((10,), 30)
    lengths[::2] = 25
    data = MultiRegionData(torch.cat([regs["A"], regs["B"]], -1), (6, 8), ("A", "B"), lengths=lengths)
    model = build("adm", data)
    fit(model, data, max_iter=2)
    assert torch.isfinite(model.predict(data)).all()


def test_d_observed_mask_shapes_and_dtype_are_checked():
    data = MultiRegionData.from_regions(regions())
    model = build("dlag_ssm", data)
    fit(model, data)
    B, T, N = data.y.shape
    for shape in [(B, T, N + 1), (B, N), (T, N), (1, T, N), (B, T)]:
        expected = ".*".join(re.escape(str(s)) for s in [(N,), (B, T, N), tuple(shape)])
        with pytest.raises(ValueError, match=expected):
            model.predict(data, observed=torch.ones(shape, dtype=torch.bool))
    for bad in (torch.ones(N), torch.ones(B, T, N, dtype=torch.int64), [1] * N):
        with pytest.raises(TypeError, match="bool"):
            model.predict(data, observed=bad)
    held = torch.ones(N, dtype=torch.bool)
    held[:3] = False
    full = held.expand(B, T, N).clone()
    before = full.clone()
    torch.testing.assert_close(model.predict(data, observed=held), model.predict(data, observed=full))
    assert torch.equal(full, before)  # the user's mask is not changed


@pytest.mark.parametrize("name", list(PRESETS))
def test_e_a_single_time_bin_is_refused_at_construction(name):
    with pytest.raises(ValueError, match=r"T must be at least 2.*got T=1"):
        mbrila.build_model(name, latent_spec=PRESETS[name], y_dims=(6, 8), T=1)


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"T": float("nan")}, "T must be a positive"),
        ({"T": float("inf")}, "T must be a positive"),
        ({"T": None}, "T must be a positive"),
        ({"T": "5"}, "T must be a positive"),
        ({"T": 5.5}, "T must be a positive"),
        ({"y_dims": 5}, "y_dims must list"),
        ({"y_dims": "ab"}, "y_dims must list"),
        ({"y_dims": [-1, 3]}, "y_dims must list"),
        ({"y_dims": [None, 3]}, "y_dims must list"),
        ({"y_dims": [2.5, 3]}, "y_dims must list"),
        ({"y_dims": [True, 3]}, "y_dims must list"),
        ({"latent_spec": (1, 0)}, "latent_spec must be a mbrila.LatentSpec"),
        ({"latent_spec": None}, "latent_spec must be a mbrila.LatentSpec"),
    ],
)
def test_constructor_arguments_are_checked_before_use(name, kw, match):
    args = {"latent_spec": PRESETS[name], "y_dims": (6, 8), "T": 20, **kw}
    with pytest.raises(ValueError, match=match):
        mbrila.build_model(name, **args)


def test_adm_needs_two_regions():
    with pytest.raises(ValueError, match=r"ADM needs at least 2 regions.*GPFA"):
        mbrila.ADM(LatentSpec(1, 0), (3,), 5)


@pytest.mark.parametrize("name", list(PRESETS))
def test_e_two_time_bins_fit(name):
    data = MultiRegionData.from_regions(regions(T=2, n_trials=30))
    model = build(name, data)
    fit(model, data)
    assert torch.isfinite(model.predict(data)).all()


def test_f_more_latents_than_neurons_warns_naming_the_region():
    regs = regions(y_dims=(6, 2))
    data = MultiRegionData.from_regions(regs)
    model = mbrila.DLAG(LatentSpec(1, 2), data.y_dims, data.T, engine="kalman")
    with pytest.warns(DataWarning, match=r"region 'B' has 2 neurons but 3 latents \(1 across \+ 2 within\)"):
        fit(model, data)
    assert torch.isfinite(model.predict(data)).all()


def test_f_an_all_zero_region_warns_naming_it():
    regs = regions()
    regs["B"] = torch.zeros_like(regs["B"])
    data = MultiRegionData.from_regions(regs)
    model = build("dlag_ssm", data)
    with pytest.warns(DataWarning) as record:
        fit(model, data)
    msgs = data_warnings(record)
    assert any("region 'B' is all zeros" in m for m in msgs), msgs
    assert not any("constant" in m for m in msgs), msgs  # one warning for the region, not one per neuron
    assert torch.isfinite(model.predict(data)).all()


@pytest.mark.parametrize("name", ["gpfa", "dlag", "mdlag"])
def test_a_neuron_never_observed_in_training_is_refused(name):
    data = MultiRegionData.from_regions(regions())
    mask = torch.ones_like(data.y, dtype=torch.bool)
    mask[..., 6 + 4] = False
    model = build(name, data)
    with pytest.raises(ValueError, match=r"missing in every trial.*region 'B': neurons \[4\]"):
        fit(model, data.with_mask(mask))
    mask[0, :, 6 + 4] = True  # observed in one trial: fits
    fit(model, data.with_mask(mask))
    assert torch.isfinite(model.predict(data)).all()


@pytest.mark.parametrize(("name", "observation"), [("gpfa", "gaussian"), ("mdlag", "gaussian"), ("gpfa", "poisson")])
def test_data_with_every_neuron_constant_is_refused(name, observation):
    data = MultiRegionData.from_regions({"A": torch.ones(4, 6, 3), "B": torch.full((4, 6, 2), 3.0)})
    kw = {} if observation == "gaussian" else {"observation": "poisson"}
    model = build(name, data, **kw)
    with pytest.raises(ValueError, match="every neuron of the data is constant"):
        fit(model, data)


@pytest.mark.parametrize("name", ["gpfa", "mdlag"])
def test_a_single_region_with_fewer_neurons_than_across_latents_fits(name):
    data = MultiRegionData.from_regions({"A": regions(y_dims=(2, 2))["A"]})
    model = mbrila.build_model(name, latent_spec=LatentSpec(3, 0), y_dims=data.y_dims, T=data.T)
    with pytest.warns(DataWarning) if name == "gpfa" else warnings.catch_warnings():
        fit(model, data)
    assert torch.isfinite(model.predict(data)).all()


def test_well_posed_data_gives_no_data_warning():
    data = MultiRegionData.from_regions(regions())
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        fit(build("dlag_ssm", data), data)


# --------------------------------------------------------------------------------------------- point 4

DEGENERATE = ["gpfa", "dlag_ssm"]


def fit_to_the_end(name, data, spec=None, max_iter=15):
    model = mbrila.build_model(name, latent_spec=spec or PRESETS[name], y_dims=data.y_dims, T=data.T)
    res = model.fit(data, max_iter=max_iter, tol=0.0, progress=False)
    assert res.n_iter == max_iter
    assert all(torch.isfinite(torch.as_tensor(s)) for s in res.score_trace)
    for p in [*model.parameters(), *model.buffers()]:
        assert torch.isfinite(p).all()
    pred = model.predict(data)
    assert torch.isfinite(pred).all()
    return model, pred


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_zero_variance_neuron(name):
    regs = regions()
    regs["A"][..., 1] = -2.5
    data = MultiRegionData.from_regions(regs)
    with pytest.warns(DataWarning, match=r"region 'A'.*\[1\].*constant"):
        fit_to_the_end(name, data)


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_duplicated_neurons(name):
    regs = regions()
    regs["B"][..., 5] = regs["B"][..., 1]
    regs["A"][..., 0] = regs["B"][..., 3]  # a copy across regions too
    data = MultiRegionData.from_regions(regs)
    with pytest.warns(DataWarning) as record:
        fit_to_the_end(name, data)
    msgs = [m for m in data_warnings(record) if "identical" in m]
    assert len(msgs) == 1, msgs
    assert "'B' neuron 1 = 'B' neuron 5" in msgs[0] and "'A' neuron 0 = 'B' neuron 3" in msgs[0], msgs


@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_region_with_one_neuron(name):
    regs = regions(y_dims=(6, 1), n_within=(1, 0))
    data = MultiRegionData.from_regions(regs)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # one across latent: identified by the other region
        fit_to_the_end(name, data, spec=LatentSpec(1, 0))
    with pytest.warns(DataWarning, match=r"region 'B' has 1 neuron but 2 latents"):
        fit_to_the_end(name, data)


@pytest.mark.parametrize("scale", [1e-6, 1e6])
@pytest.mark.parametrize("name", DEGENERATE)
def test_degenerate_scaled_data_gives_scaled_predictions(name, scale):
    regs = regions()
    data = MultiRegionData.from_regions(regs)
    scaled = MultiRegionData.from_regions({k: v * scale for k, v in regs.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        _, pred = fit_to_the_end(name, data)
        _, pred_scaled = fit_to_the_end(name, scaled)
    torch.testing.assert_close(pred_scaled / scale, pred, rtol=1e-3, atol=1e-3 * float(pred.abs().max()))
