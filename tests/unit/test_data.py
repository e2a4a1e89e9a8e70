"""MultiRegionData, LatentSpec and the split helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mbrila.core import LatentSpec, MultiRegionData, holdout_neuron_folds, holdout_neuron_mask, split_trials


def regions(B=4, T=6, dims=(3, 2), seed=0):
    rng = np.random.default_rng(seed)
    return {f"A{i}": rng.standard_normal((B, T, n)).astype(np.float32) for i, n in enumerate(dims)}


def test_from_regions_dict_and_list():
    r = regions()
    d = MultiRegionData.from_regions(r)
    assert d.y.shape == (4, 6, 5) and d.y_dims == (3, 2) and d.region_names == ("A0", "A1")
    assert d.T == 6 and d.n_trials == 4 and d.n_regions == 2 and not d.has_missing
    np.testing.assert_array_equal(d.region("A1").numpy(), r["A1"])
    d2 = MultiRegionData.from_regions([torch.as_tensor(a) for a in r.values()])
    assert d2.region_names == ("R0", "R1") and torch.equal(d.y, d2.y)
    assert "A0: 3" in repr(d)


def test_to_index_and_mask():
    d = MultiRegionData.from_regions(regions())
    d64 = d.to(dtype=torch.float64)
    assert d64.dtype == torch.float64 and d.dtype == torch.float32
    assert d[1].y.shape == (1, 6, 5)
    assert d[[0, 2]].n_trials == 2 and d[np.array([True, False, True, False])].n_trials == 2
    keep = torch.tensor([True, False, True, True, True])
    m = d.with_mask(keep)
    assert m.has_missing and bool((m.y[..., 1] == 0).all()) and d.mask is None


def test_nan_handling_and_no_in_place_change():
    r = regions()
    r["A1"][2, 3, 1] = np.nan
    before = r["A1"].copy()
    with pytest.raises(ValueError, match=r"1 NaN.*trial 2, time 3.*'A1'.*nan_as_missing"):
        MultiRegionData.from_regions(r)
    d = MultiRegionData.from_regions(r, nan_as_missing=True)
    assert not bool(d.mask[2, 3, 4]) and float(d.y[2, 3, 4]) == 0.0 and torch.isfinite(d.y).all()
    np.testing.assert_array_equal(np.isnan(r["A1"]), np.isnan(before))
    r["A1"][0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        MultiRegionData.from_regions(r, nan_as_missing=True)


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"a": np.zeros((4, 6, 3)), "b": np.zeros((5, 6, 2))}, "trials.*'a' has 4.*'b' has 5"),
        ({"a": np.zeros((4, 6, 3)), "b": np.zeros((4, 7, 2))}, "T"),
        ({"a": np.zeros((4, 6))}, r"\(trials, T, n_r\)"),
        ({"a": np.zeros((4, 6, 0))}, "no neurons"),
        ({}, "empty"),
    ],
)
def test_validation_messages(bad, match):
    with pytest.raises(ValueError, match=match):
        MultiRegionData.from_regions(bad)


def test_constructor_validation():
    y = np.zeros((2, 3, 4))
    with pytest.raises(ValueError, match="sum to 5"):
        MultiRegionData(y, (3, 2))
    with pytest.raises(ValueError, match="mask"):
        MultiRegionData(y, (2, 2), mask=np.ones((2, 3, 3), dtype=bool))
    with pytest.raises(ValueError, match="lengths"):
        MultiRegionData(y, (2, 2), lengths=[1, 9])
    with pytest.raises(ValueError, match="unique"):
        MultiRegionData(y, (2, 2), region_names=("x", "x"))


def test_ragged_trials_are_padded_and_masked():
    rng = np.random.default_rng(1)
    trials = [[rng.standard_normal((T, 3)), rng.standard_normal((T, 2))] for T in (5, 3, 4)]
    d = MultiRegionData.from_ragged(trials)
    assert d.y.shape == (3, 5, 5) and d.lengths.tolist() == [5, 3, 4]
    assert not bool(d.mask[1, 3:].any()) and bool(d.mask[1, :3].all())


def test_bin_width_and_unit_ids_metadata():
    y = np.zeros((3, 4, 3))
    plain = MultiRegionData(y, (2, 1))
    assert plain.bin_width is None and plain.unit_ids is None and "bin_width" not in repr(plain)
    d = MultiRegionData(y, (2, 1), bin_width=0.02, unit_ids=np.array([7, 3, 9]))
    assert d.bin_width == 0.02 and d.unit_ids == (7, 3, 9) and all(type(u) is int for u in d.unit_ids)
    assert "bin_width=0.02 s" in repr(d) and "unit_ids=(7, 3, 9)" in repr(d)
    masked = d.with_mask(np.array([True, False, True]))
    for copy in (d[[0, 2]], d[1], d.to(dtype=torch.float32), masked, d._replace(d.y, None, None)):
        assert copy.bin_width == 0.02 and copy.unit_ids == (7, 3, 9)
    r = MultiRegionData.from_regions({"A": y[..., :2], "B": y[..., 2:]}, bin_width=0.5, unit_ids=["a", "b", "c"])
    assert r.bin_width == 0.5 and r.unit_ids == ("a", "b", "c")
    ragged = MultiRegionData.from_ragged([[np.zeros((T, 2))] for T in (2, 3)], bin_width=0.1, unit_ids=[1, 2])
    assert ragged.bin_width == 0.1 and ragged.unit_ids == (1, 2)
    for bad in (0, -1.0, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(ValueError, match="bin_width"):
            MultiRegionData(y, (2, 1), bin_width=bad)
    for bad in ([1, 2], [1, 2, 3, 4], "abc", 5):
        with pytest.raises(ValueError, match="unit_ids"):
            MultiRegionData(y, (2, 1), unit_ids=bad)


def test_latent_spec():
    s = LatentSpec(2, 1).for_regions(3)
    assert s.n_within == (1, 1, 1) and s.total(3) == 5 and s.dims_per_region(3) == (3, 3, 3)
    with pytest.raises(ValueError, match="3 regions"):
        LatentSpec(1, (1, 2)).for_regions(3)
    with pytest.raises(ValueError, match="n_across"):
        LatentSpec(-1)
    with pytest.raises(ValueError, match="at least one latent"):
        LatentSpec(0, 0).for_regions(2)


def test_splits_are_reproducible_and_disjoint():
    a = split_trials(400, 300, 50, 50, seed=1)
    b = split_trials(400, 300, 50, 50, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert len(set(np.concatenate(a))) == 400
    assert not np.array_equal(a[0], split_trials(400, 300, 50, 50, seed=2)[0])
    with pytest.raises(ValueError, match="exceeds"):
        split_trials(10, 8, 2, 2, seed=0)


def test_holdout_mask_counts():
    keep = holdout_neuron_mask((72, 22), 0.2, seed=0)
    assert (~keep[:72]).sum() == 14 and (~keep[72:]).sum() == 4
    assert np.array_equal(keep, holdout_neuron_mask((72, 22), 0.2, seed=0))
    assert not np.array_equal(keep, holdout_neuron_mask((72, 22), 0.2, seed=1))


@pytest.mark.parametrize("y_dims", [(72, 22), (3, 1, 7), (2, 5)])
def test_holdout_folds_hide_every_neuron_once(y_dims):
    folds = holdout_neuron_folds(y_dims, 0.2, seed=3)
    assert len(folds) == 5 and all(f.dtype == np.bool_ and f.shape == (sum(y_dims),) for f in folds)
    hidden = np.stack([~f for f in folds]).sum(0)
    edges = np.cumsum([0, *y_dims])
    for n, a, b in zip(y_dims, edges[:-1], edges[1:], strict=True):
        assert np.array_equal(hidden[a:b], np.full(n, 1 if n > 1 else 0))  # once each; a lone neuron never
        per_fold = [int((~f[a:b]).sum()) for f in folds]
        assert max(per_fold) < n and max(per_fold) - min(per_fold) <= 1  # never the whole region, even sizes
    assert all(np.array_equal(x, y) for x, y in zip(folds, holdout_neuron_folds(y_dims, 0.2, seed=3), strict=True))
    with pytest.raises(ValueError, match="fraction"):
        holdout_neuron_folds(y_dims, 0.0, seed=0)
