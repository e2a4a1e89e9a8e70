"""mbrila.data.from_nwb: spike times of an NWB file binned into MultiRegionData, checked against counts by hand."""

from __future__ import annotations

import argparse
import pickle
import sys
from datetime import UTC, datetime

import numpy as np
import pytest
import torch
from pynwb import NWBHDF5IO, NWBFile

import mbrila.data
from mbrila.data import from_nwb, load_data
from mbrila.experiments.cli import add_data_args, data_from_args, v1v2_demo

# Units in file order: id, electrode row, spike times (s), "area" column. Electrode rows 0, 1 are in V1, row 2 in V2.
# Unit 12's spikes are deliberately unsorted; unit 13 only spikes outside every trial.
UNITS = [
    (10, 2, [0.05, 0.15, 0.2, 1.25, 2.05, 2.76], "a"),
    (11, 0, [0.0, 0.25, 0.99, 1.0, 1.1, 1.5], "b"),
    (12, 1, [2.5, 0.5, 5.0], "a"),
    (13, 2, [1.75, 3.0], "b"),
]
# Trials: start, stop, stim_on. With bin width 0.25 s they have 4, 2 and 3 bins (2.75-2.8 s is less than a bin).
TRIALS = [(0.0, 1.0, 0.25), (1.0, 1.5, 1.25), (2.0, 2.8, 2.5)]
BIN = 0.25

# Counts by hand, columns = units 10, 13 (V2, first to appear), then 11, 12 (V1); padding rows are zero.
EXPECTED = np.array(
    [
        [[3, 0, 1, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 1, 0]],
        [[0, 0, 2, 0], [1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
        [[1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]],
    ]
)
# align_to="stim_on", window=(-0.25, 0.25): [stim_on - 0.25, stim_on), [stim_on, stim_on + 0.25).
EXPECTED_ALIGNED = np.array(
    [
        [[3, 0, 1, 0], [0, 0, 1, 0]],
        [[0, 0, 2, 0], [1, 0, 0, 0]],
        [[0, 0, 0, 0], [0, 0, 0, 1]],
    ]
)


def write_nwb(path, *, trials=True, units=True, electrodes=True, area=None, rows=None):
    """A small NWB file: two electrode groups (V1, V2), the UNITS and the TRIALS above."""
    f = NWBFile(
        session_description="mbrila test",
        identifier="mbrila-test",
        session_start_time=datetime(2024, 1, 1, tzinfo=UTC),
    )
    device = f.create_device(name="probe")
    v1 = f.create_electrode_group(name="shank0", description="V1 shank", location="V1", device=device)
    v2 = f.create_electrode_group(name="shank1", description="V2 shank", location="V2", device=device)
    for group in (v1, v1, v2):
        f.add_electrode(location=group.location, group=group)
    if units:
        f.add_unit_column(name="area", description="region label")
        for i, (uid, row, spikes, label) in enumerate(UNITS):
            extra = {"electrodes": rows[i] if rows else [row]} if electrodes else {}
            f.add_unit(id=uid, spike_times=spikes, area=area[i] if area else label, **extra)
    if trials:
        f.add_trial_column(name="stim_on", description="stimulus onset (s)")
        for start, stop, stim in TRIALS:
            f.add_trial(start_time=start, stop_time=stop, stim_on=stim)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(f)
    return path


@pytest.fixture(scope="module")
def nwb_path(tmp_path_factory):
    return write_nwb(tmp_path_factory.mktemp("nwb") / "session.nwb")


def counts(data):
    return data.y.cpu().numpy()


def test_counts_regions_and_metadata(nwb_path):
    d = from_nwb(nwb_path, BIN)
    assert d.region_names == ("V2", "V1") and d.y_dims == (2, 2)
    assert d.unit_ids == (10, 13, 11, 12) and d.bin_width == BIN
    assert d.y.shape == (3, 4, 4)
    np.testing.assert_array_equal(counts(d), EXPECTED)
    assert "bin_width=0.25 s" in repr(d) and "unit_ids=(10, 13, 11" in repr(d)


def test_ragged_trials_are_padded_and_masked(nwb_path):
    d = from_nwb(nwb_path, BIN)
    assert d.lengths is not None and d.lengths.tolist() == [4, 2, 3]
    mask = d.mask.cpu().numpy()
    assert mask[0].all() and mask[1, :2].all() and not mask[1, 2:].any() and mask[2, :3].all() and not mask[2, 3].any()
    # Selecting trials keeps the metadata.
    sub = d[[1]]
    assert sub.bin_width == BIN and sub.unit_ids == d.unit_ids and sub.lengths.tolist() == [2]


def test_spikes_outside_every_trial_are_not_counted(nwb_path):
    d = from_nwb(nwb_path, BIN)
    # Unit 13 only spikes at 1.75 s and 3.0 s (between and after the trials): an all-zero column.
    assert counts(d)[..., 1].sum() == 0
    # Of unit 11's six spikes, 1.5 s is the (excluded) end of trial 1 and in no other trial: five are counted.
    assert counts(d)[..., 2].sum() == 5
    # Unit 10's spike at 2.76 s lies past trial 2's last whole bin (2.5-2.75 s).
    assert counts(d)[..., 0].sum() == 5


def test_align_to_and_window(nwb_path):
    d = from_nwb(nwb_path, BIN, align_to="stim_on", window=(-0.25, 0.25))
    assert d.y.shape == (3, 2, 4) and d.lengths is None and d.mask is None
    np.testing.assert_array_equal(counts(d), EXPECTED_ALIGNED)
    # A window without align_to is relative to each trial's start time.
    w = from_nwb(nwb_path, BIN, window=(0.0, 0.5))
    np.testing.assert_array_equal(counts(w), EXPECTED[:, :2])


def test_region_column_regions_and_trial_ids(nwb_path):
    d = from_nwb(nwb_path, BIN, region_column="area")
    assert d.region_names == ("a", "b") and d.unit_ids == (10, 12, 11, 13)
    np.testing.assert_array_equal(counts(d), EXPECTED[..., [0, 3, 2, 1]])
    v1 = from_nwb(nwb_path, BIN, regions=["V1"])
    assert v1.region_names == ("V1",) and v1.y_dims == (2,) and v1.unit_ids == (11, 12)
    np.testing.assert_array_equal(counts(v1), EXPECTED[..., 2:])
    both = from_nwb(nwb_path, BIN, regions=["V1", "V2"])
    assert both.region_names == ("V1", "V2") and both.unit_ids == (11, 12, 10, 13)
    np.testing.assert_array_equal(counts(both), EXPECTED[..., [2, 3, 0, 1]])
    t = from_nwb(nwb_path, BIN, trial_ids=[2, 0], dtype=torch.float64)
    assert t.dtype == torch.float64
    np.testing.assert_array_equal(counts(t)[:, :, :], EXPECTED[[2, 0]])


def test_bin_width_rounding(nwb_path):
    # 1.0 / 0.1 and 0.8 / 0.1 are not whole numbers in floating point: still 10, 5 and 8 bins.
    d = from_nwb(nwb_path, 0.1)
    assert d.lengths.tolist() == [10, 5, 8]


@pytest.mark.parametrize("bad", [0, -0.1, float("nan"), float("inf"), True, "0.1"])
def test_bad_bin_width(nwb_path, bad):
    with pytest.raises(ValueError, match="bin_width"):
        from_nwb(nwb_path, bad)


@pytest.mark.parametrize("window", [(0.5, 0.5), (0.5, 0.0), (0.0,), (0.0, float("nan"))])
def test_bad_window(nwb_path, window):
    with pytest.raises(ValueError, match="window"):
        from_nwb(nwb_path, BIN, window=window)


def test_argument_errors(nwb_path):
    with pytest.raises(ValueError, match="needs window"):
        from_nwb(nwb_path, BIN, align_to="stim_on")
    with pytest.raises(ValueError, match=r"no column 'go_cue'.*stim_on"):
        from_nwb(nwb_path, BIN, align_to="go_cue", window=(0, 0.5))
    with pytest.raises(ValueError, match=r"\['LGN'\] not found.*V2"):
        from_nwb(nwb_path, BIN, regions=["V1", "LGN"])
    with pytest.raises(ValueError, match="no column 'depth'"):
        from_nwb(nwb_path, BIN, region_column="depth")
    with pytest.raises(ValueError, match=r"trial id\(s\) \[7\]"):
        from_nwb(nwb_path, BIN, trial_ids=[0, 7])
    # Trial 1 lasts 0.5 s: no whole bin of 0.6 s.
    with pytest.raises(ValueError, match=r"session\.nwb: trial 1 spans 0\.5 s, shorter than one bin"):
        from_nwb(nwb_path, 0.6)


def test_missing_and_non_nwb_files(tmp_path):
    with pytest.raises(ValueError, match=r"nothere\.nwb: no such file"):
        from_nwb(tmp_path / "nothere.nwb", BIN)
    text = tmp_path / "notes.nwb"
    text.write_text("not an HDF5 file")
    with pytest.raises(ValueError, match=r"notes\.nwb: not a readable NWB file"):
        from_nwb(text, BIN)
    h5py = pytest.importorskip("h5py")  # installed with pynwb
    plain = tmp_path / "plain.nwb"
    with h5py.File(plain, "w") as fh:
        fh["x"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"plain\.nwb: not a readable NWB file"):
        from_nwb(plain, BIN)


def test_file_without_trials_or_units(tmp_path):
    with pytest.raises(ValueError, match=r"no_trials\.nwb: has no trials table"):
        from_nwb(write_nwb(tmp_path / "no_trials.nwb", trials=False), BIN)
    with pytest.raises(ValueError, match=r"no_units\.nwb: has no units table"):
        from_nwb(write_nwb(tmp_path / "no_units.nwb", units=False), BIN)


def test_unit_without_region(tmp_path):
    path = write_nwb(tmp_path / "no_electrodes.nwb", electrodes=False)
    with pytest.raises(ValueError, match=r"no_electrodes\.nwb: unit 10 has no region: .*region_column"):
        from_nwb(path, BIN)
    d = from_nwb(path, BIN, region_column="area")  # the fix the message names
    assert d.region_names == ("a", "b")
    blank = write_nwb(tmp_path / "blank.nwb", area=["a", "b", "", "b"])
    with pytest.raises(ValueError, match=r"blank\.nwb: unit 12 has no region: its 'area' value is empty"):
        from_nwb(blank, BIN, region_column="area")


def test_unit_on_electrodes_in_two_locations(tmp_path):
    path = write_nwb(tmp_path / "two.nwb", rows=[[2], [0, 1], [1, 2], [2]])  # unit 12 on a V1 and a V2 electrode
    with pytest.raises(ValueError, match=r"two\.nwb: unit 12 sits on electrodes in several locations \['V1', 'V2'\]"):
        from_nwb(path, BIN)
    assert from_nwb(path, BIN, region_column="area").unit_ids == (10, 12, 11, 13)


def test_missing_pynwb_is_named(nwb_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pynwb", None)  # `import pynwb` now raises ImportError
    with pytest.raises(ImportError, match=r"uv sync --extra nwb.*pip install pynwb"):
        from_nwb(nwb_path, BIN)


def test_load_data_dispatches_nwb(nwb_path, tmp_path):
    d = load_data(nwb_path, bin_width=BIN, align_to="stim_on", window=(-0.25, 0.25), regions=["V1"])
    np.testing.assert_array_equal(counts(d), EXPECTED_ALIGNED[..., 2:])
    assert d.unit_ids == (11, 12) and d.bin_width == BIN
    by_names = mbrila.data.load_data(nwb_path, bin_width=BIN, region_names=["V1"])
    assert by_names.region_names == ("V1",)
    with pytest.raises(ValueError, match=r"session\.nwb: an NWB file holds spike times.*bin_width"):
        load_data(nwb_path)
    pkl = tmp_path / "rec.pkl"
    pkl.write_bytes(pickle.dumps({"A": np.ones((2, 3, 4))}))
    with pytest.raises(ValueError, match="align_to only apply to NWB"):
        load_data(pkl, align_to="stim_on")
    assert load_data(pkl, bin_width=0.01).bin_width == 0.01  # metadata for binned files


def test_cli_flags(nwb_path, tmp_path):
    (tmp_path / "rec.pkl").write_bytes(pickle.dumps({"A": np.ones((2, 3, 4))}))
    ap = argparse.ArgumentParser()
    add_data_args(ap)
    argv = ["--data-path", str(nwb_path), "--bin-width", "0.25", "--align-to", "stim_on", "--window", "-0.25", "0.25"]
    path, d = data_from_args(ap, ap.parse_args(argv), torch.float64)
    assert path == nwb_path and d.dtype == torch.float64
    np.testing.assert_array_equal(counts(d), EXPECTED_ALIGNED)
    path, d = data_from_args(
        ap,
        ap.parse_args(["--data-path", str(nwb_path), "--bin-width", "0.25", "--region-column", "area"]),
        torch.float32,
    )
    assert d.region_names == ("a", "b")
    with pytest.raises(SystemExit):
        data_from_args(ap, ap.parse_args(["--data-path", str(nwb_path), "--align-to", "stim_on"]), torch.float64)
    with pytest.raises(SystemExit):  # --align-to without --window
        data_from_args(
            ap,
            ap.parse_args(["--data-path", str(nwb_path), "--bin-width", "0.25", "--align-to", "stim_on"]),
            torch.float64,
        )
    with pytest.raises(SystemExit):  # NWB flags with a pickle
        data_from_args(
            ap, ap.parse_args(["--data-path", str(tmp_path / "rec.pkl"), "--bin-width", "0.25"]), torch.float64
        )
    # The V1/V2 demo refuses an NWB path without --bin-width before fitting anything.
    with pytest.raises(SystemExit):
        v1v2_demo("dlag", "test", argv=["--data-path", str(nwb_path), "--device", "cpu", "--out-dir", str(tmp_path)])


def test_too_many_bins_is_refused_before_allocating(nwb_path):
    with pytest.raises(ValueError, match="too many counts"):
        from_nwb(nwb_path, BIN, window=(0.0, 1e300))
