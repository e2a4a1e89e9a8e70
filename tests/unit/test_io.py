"""Loading recordings from files, with errors that name the file."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import mbrila
from mbrila.data import demo_data_path, load_data, load_regions


def _write(tmp_path, obj, name="d.pkl"):
    p = tmp_path / name
    if name.endswith(".npz"):
        np.savez(p, **obj)
    else:
        p.write_bytes(pickle.dumps(obj))
    return p


def test_round_trip_pickle_and_npz(tmp_path):
    obj = {"A": np.ones((3, 5, 2)), "B": np.zeros((3, 5, 4))}
    for name in ("d.pkl", "d.npz"):
        d = load_data(_write(tmp_path, obj, name))
        assert d.y_dims == (2, 4) and d.region_names == ("A", "B")


@pytest.mark.parametrize(
    "obj,match",
    [
        ({"A": np.ones((3, 5, 2))}, "region.*'B'.*available"),
        ({"A": np.ones((3, 5)), "B": np.ones((3, 5, 2))}, "'A' must have shape"),
        ({"A": np.ones((3, 5, 2)), "B": np.ones((4, 5, 2))}, "number of trials"),
        ({"A": np.full((3, 5, 2), np.nan), "B": np.ones((3, 5, 2))}, "30 non-finite"),
        ([1, 2], "expected a dict"),
    ],
)
def test_bad_files_name_the_file(tmp_path, obj, match):
    p = _write(tmp_path, obj)
    with pytest.raises(ValueError, match=match) as err:
        load_regions(p, region_names=["A", "B"] if isinstance(obj, dict) else None)
    assert str(p) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pkl"):
        load_regions(tmp_path / "nope.pkl")


def test_shipped_v1v2_data():
    d = mbrila.data.load_data(demo_data_path())
    assert d.region_names == ("V1", "V2") and d.y_dims == (72, 22) and d.T == 64 and d.n_trials == 400
