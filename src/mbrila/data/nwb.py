"""Spike counts binned from a Neurodata Without Borders (NWB) file: :func:`from_nwb`.

pynwb is an optional dependency (``uv sync --extra nwb`` or ``pip install pynwb``); it is imported only when a file
is read.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mbrila.core import MultiRegionData

# Bin counts are floor(duration / bin_width) up to this much floating-point rounding (0.3 / 0.1 = 2.9999999999999996
# still gives 3 bins).
_ROUNDING = 1e-9
# The largest counts array (trials x T x neurons entries) a file may ask for: 2**31 float64 entries are 16 GiB.
_MAX_ENTRIES = 2**31


class _FileProblem(ValueError):
    """A readable NWB file that lacks what :func:`from_nwb` needs (raised as is, not as 'not an NWB file')."""


@dataclass
class _Contents:
    """What :func:`from_nwb` reads from a file, as numpy arrays (the file is closed once this exists)."""

    unit_ids: list[Any]
    spikes: list[np.ndarray]  # spike times (seconds) per unit, in file order
    labels: list[str | None]  # region per unit; None = none found
    no_label_reason: str  # why a unit has no region, for the error message
    trial_ids: list[Any]
    start: np.ndarray
    stop: np.ndarray
    align: np.ndarray | None


def _strings(values: Any) -> list[str]:
    """Column values as ``str`` (bytes decoded as UTF-8), stripped of surrounding white space."""
    out = []
    for v in np.asarray(values, dtype=object).ravel().tolist():
        s = v.decode("utf-8", errors="replace") if isinstance(v, bytes) else str(v)
        out.append(s.strip())
    return out


def _plain_column(table: Any, name: str, p: Path, what: str) -> Any:
    """Column ``name`` of ``table`` when it holds one value per row, else a :class:`_FileProblem`."""
    from hdmf.common.table import DynamicTableRegion, VectorIndex

    if name not in table.colnames:
        raise _FileProblem(f"{p}: the {what} table has no column {name!r}; its columns are {list(table.colnames)}.")
    col = table[name]
    if isinstance(col, VectorIndex | DynamicTableRegion):
        raise _FileProblem(
            f"{p}: column {name!r} of the {what} table holds a list or a table reference per row, not one value; "
            "name a column with one value per row."
        )
    values = col[:]
    if len(values) != len(table):
        raise _FileProblem(f"{p}: column {name!r} of the {what} table has {len(values)} values for {len(table)} rows.")
    return values


def _times(table: Any, name: str, p: Path, what: str) -> np.ndarray:
    values = _plain_column(table, name, p, what)
    try:
        return np.asarray(values, dtype=np.float64).reshape(len(table))
    except (TypeError, ValueError) as err:
        raise _FileProblem(f"{p}: column {name!r} of the {what} table is not one time (seconds) per row.") from err


def _ragged(index: Any, n_rows: int, p: Path, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The flat values and end offsets of an indexed (ragged) column, checked for consistency."""
    ends = np.asarray(index.data[:], dtype=np.int64).reshape(-1)
    flat = np.asarray(index.target.data[:]).reshape(-1)
    if ends.shape[0] != n_rows or (ends.size and (ends[0] < 0 or np.any(np.diff(ends) < 0) or ends[-1] > flat.size)):
        raise _FileProblem(f"{p}: the index of the {what} column is inconsistent with its data; the file is damaged.")
    return flat, ends


def _unit_regions(units: Any, region_column: str | None, p: Path) -> tuple[list[str | None], str]:
    """One region name (or None) per unit, and the reason a unit would have none."""
    from hdmf.common.table import DynamicTableRegion, VectorIndex

    n = len(units)
    if region_column is not None:
        values = _strings(_plain_column(units, region_column, p, "units"))
        return [v or None for v in values], f"its {region_column!r} value is empty"
    if "electrodes" not in units.colnames:
        reason = (
            "the units table has no electrodes column to take the electrode location from; pass region_column= "
            f"naming a units-table column that holds each unit's region (columns: {list(units.colnames)})"
        )
        return [None] * n, reason
    col = units["electrodes"]
    if isinstance(col, VectorIndex):
        region = col.target
        rows, ends = _ragged(col, n, p, "units electrodes")
    elif isinstance(col, DynamicTableRegion):
        region = col
        rows, ends = np.asarray(col.data[:]).reshape(-1), np.arange(1, n + 1)
    else:
        raise _FileProblem(f"{p}: the units table's electrodes column does not reference the electrodes table.")
    table = region.table
    if table is None or "location" not in table.colnames:
        raise _FileProblem(
            f"{p}: the electrodes table has no location column; pass region_column= naming a units-table column "
            "that holds each unit's region."
        )
    locations = _strings(_plain_column(table, "location", p, "electrodes"))
    rows = rows.astype(np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= len(locations)):
        raise _FileProblem(f"{p}: the units table references electrodes outside the electrodes table.")
    labels: list[str | None] = []
    starts = np.concatenate([[0], ends[:-1]])
    ids = units.id.data[:]
    for u in range(n):
        found = sorted({locations[r] for r in rows[starts[u] : ends[u]].tolist()} - {""})
        if len(found) > 1:
            raise _FileProblem(
                f"{p}: unit {ids[u]} sits on electrodes in several locations {found}; pass region_column= naming a "
                "units-table column with one region per unit."
            )
        labels.append(found[0] if found else None)
    return labels, "its electrodes have no (or an empty) location"


def _extract(nwbfile: Any, p: Path, align_to: str | None, region_column: str | None) -> _Contents:
    units, trials = nwbfile.units, nwbfile.trials
    if trials is None:
        raise _FileProblem(
            f"{p}: has no trials table (nwbfile.trials); from_nwb bins spikes trial by trial. Add trials with "
            "NWBFile.add_trial(start_time=..., stop_time=...) when writing the file."
        )
    if units is None:
        raise _FileProblem(
            f"{p}: has no units table (nwbfile.units); from_nwb bins the spike times of sorted units. Add them with "
            "NWBFile.add_unit(spike_times=...) when writing the file."
        )
    if "spike_times" not in units.colnames:
        raise _FileProblem(
            f"{p}: the units table has no spike_times column (its columns are {list(units.colnames)}); "
            "add units with NWBFile.add_unit(spike_times=...)."
        )
    if len(units) == 0:
        raise _FileProblem(f"{p}: the units table has no units.")
    if len(trials) == 0:
        raise _FileProblem(f"{p}: the trials table has no trials.")
    flat, ends = _ragged(units["spike_times"], len(units), p, "units spike_times")
    flat = flat.astype(np.float64)
    spikes = np.split(flat, ends[:-1])
    labels, reason = _unit_regions(units, region_column, p)
    return _Contents(
        unit_ids=np.asarray(units.id.data[:]).tolist(),
        spikes=spikes,
        labels=labels,
        no_label_reason=reason,
        trial_ids=np.asarray(trials.id.data[:]).tolist(),
        start=_times(trials, "start_time", p, "trials"),
        stop=_times(trials, "stop_time", p, "trials"),
        align=None if align_to is None else _times(trials, align_to, p, "trials"),
    )


def _read(p: Path, align_to: str | None, region_column: str | None) -> _Contents:
    try:
        import pynwb
    except ImportError as err:
        raise ImportError(
            "Reading NWB files needs pynwb, an optional dependency of mbrila: run `uv sync --extra nwb` in a clone "
            "of the repository, or `pip install pynwb`."
        ) from err
    if not p.is_file():
        raise ValueError(f"{p}: no such file; pass the path of an NWB (.nwb) file.")
    try:
        with pynwb.NWBHDF5IO(str(p), "r") as io:
            return _extract(io.read(), p, align_to, region_column)
    except _FileProblem:
        raise
    # A file that is not HDF5, or HDF5 without the NWB layout, fails inside h5py / hdmf / pynwb with almost any
    # exception type (OSError, KeyError, ValueError, TypeError, ...): each means the file is not a readable NWB file.
    except Exception as err:
        raise ValueError(
            f"{p}: not a readable NWB file ({type(err).__name__}: {err}). Pass an NWB 2 file written with pynwb or "
            "MatNWB (NWBHDF5IO(path, 'r') must open it)."
        ) from err


def _check_window(window: Any) -> tuple[float, float] | None:
    if window is None:
        return None
    if isinstance(window, str | bytes) or not isinstance(window, Sequence | np.ndarray) or len(window) != 2:
        raise ValueError(f"window must be (pre, post) in seconds, e.g. (-0.1, 0.5); got {window!r}.")
    if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in window):
        raise ValueError(f"window must hold two finite numbers of seconds (pre, post); got {window!r}.")
    pre, post = float(window[0]), float(window[1])
    if pre >= post:
        raise ValueError(f"window (pre, post) = ({pre}, {post}) is empty: pre must be less than post.")
    return pre, post


def _region_order(labels: list[str], regions: Sequence[str] | None, p: Path) -> list[str]:
    present = list(dict.fromkeys(labels))  # order of first appearance
    if regions is None:
        return present
    if isinstance(regions, str | bytes) or not isinstance(regions, Sequence):
        raise ValueError(f"regions must list region names, e.g. ['V1', 'V2']; got {regions!r}.")
    names = [str(r) for r in regions]
    if not names:
        raise ValueError("regions is empty; list at least one region name (or pass None for all regions).")
    if len(set(names)) != len(names):
        raise ValueError(f"regions must be unique; got {names}.")
    missing = [r for r in names if r not in present]
    if missing:
        raise ValueError(f"{p}: region(s) {missing} not found; the file's units are in {present}.")
    return names


def _trial_rows(file_ids: list[Any], trial_ids: Sequence[Any] | None, p: Path) -> np.ndarray:
    if trial_ids is None:
        return np.arange(len(file_ids))
    if isinstance(trial_ids, str | bytes) or not isinstance(trial_ids, Sequence | np.ndarray):
        raise ValueError(f"trial_ids must list trials-table ids, e.g. [0, 1, 5]; got {trial_ids!r}.")
    wanted = np.asarray(trial_ids).tolist()
    if not wanted:
        raise ValueError("trial_ids is empty; list at least one trial id (or pass None for all trials).")
    row = {tid: i for i, tid in enumerate(file_ids)}
    missing = [t for t in wanted if t not in row]
    if missing:
        shown = file_ids if len(file_ids) <= 10 else [*file_ids[:10], "..."]
        raise ValueError(f"{p}: trial id(s) {missing} not in the trials table (its ids: {shown}).")
    return np.array([row[t] for t in wanted], dtype=np.int64)


def from_nwb(
    path: str | Path,
    bin_width: float,
    *,
    window: tuple[float, float] | None = None,
    align_to: str | None = None,
    region_column: str | None = None,
    regions: Sequence[str] | None = None,
    trial_ids: Sequence[Any] | None = None,
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> MultiRegionData:
    """Spike counts of an NWB file's units, binned trial by trial and grouped by brain region.

    For trial ``i`` starting at ``a_i`` (seconds), bin width ``Δ = bin_width`` and unit ``n``::

        y[i, t, n] = #{spikes of unit n in [a_i + t·Δ, a_i + (t+1)·Δ)},   t = 0, …, T_i - 1

    (bins are half-open). Returns a :class:`~mbrila.core.MultiRegionData` with ``y`` of shape ``(trials, T, N)``,
    ``T = max_i T_i`` and ``N`` the selected units, the units of region 0 first, then region 1, … (within a region,
    in file order). Trials of different lengths are zero-padded to ``T`` and masked past their ``lengths``.
    ``bin_width`` is stored on the result, and ``unit_ids`` holds the units-table id of each neuron column.

    Spikes are taken from the file's units table (column ``spike_times``), trials from its trials table. Spikes that
    fall in no trial's bins are not counted; the bins of overlapping trials each count the spikes they hold.

    Parameters
    ----------
    path : an NWB 2 file (HDF5). The file is opened read-only and closed before this returns.
    bin_width : ``Δ`` in seconds, positive.
    window : ``(pre, post)`` in seconds (``pre`` may be negative). With ``align_to`` trial ``i`` spans
        ``[t_i + pre, t_i + post)`` for the trials-table column value ``t_i``; without it, ``[start_time + pre,
        start_time + post)``. Every trial then has ``T = floor((post - pre) / Δ)`` bins.
        Default: ``[start_time, stop_time)`` with ``T_i = floor((stop_time - start_time) / Δ)`` bins (a bin that would
        end after ``stop_time`` is dropped).
    align_to : trials-table column (one time per trial, e.g. ``"stim_on"``) to align trials to; needs ``window``.
    region_column : units-table column naming each unit's region. Default: the ``location`` of the unit's electrodes
        (units-table ``electrodes`` column → electrodes-table ``location``).
    regions : region names to keep, in this order (default: every region, in order of first appearance).
    trial_ids : trials-table ids of the trials to keep, in this order (default: every trial, in file order).
    dtype, device : of the returned counts (default: torch's default dtype, the CPU).

    Raises
    ------
    ImportError : pynwb is not installed (``uv sync --extra nwb`` or ``pip install pynwb``).
    ValueError : naming the file and the fix, for a missing or non-NWB file, a file without a trials table, a units
        table or spike times, a unit without a region (electrodes without a location, or no electrodes column and no
        ``region_column``; all units need one, even with ``regions``), a unit on electrodes in several locations,
        ``regions`` or ``trial_ids`` not in the file, a non-positive ``bin_width``, an empty ``window``,
        ``align_to`` without ``window``, and a trial too short for one bin.
    """
    if isinstance(bin_width, bool) or not isinstance(bin_width, numbers.Real) or not 0 < float(bin_width) < math.inf:
        raise ValueError(f"bin_width must be a positive finite number of seconds (e.g. 0.02); got {bin_width!r}.")
    width = float(bin_width)
    win = _check_window(window)
    if align_to is not None and win is None:
        raise ValueError(f"align_to={align_to!r} needs window=(pre, post): the seconds around it that make a trial.")
    p = Path(path)
    contents = _read(p, align_to, region_column)

    for uid, label in zip(contents.unit_ids, contents.labels, strict=True):
        if label is None:
            raise ValueError(f"{p}: unit {uid} has no region: {contents.no_label_reason}.")
    labels = [str(label) for label in contents.labels]
    names = _region_order(labels, regions, p)
    order = [u for name in names for u in range(len(labels)) if labels[u] == name]
    dims = [labels.count(name) for name in names]

    rows = _trial_rows(contents.trial_ids, trial_ids, p)
    tids = [contents.trial_ids[i] for i in rows.tolist()]
    if win is None:
        first, last = contents.start[rows], contents.stop[rows]
    else:
        base = contents.start[rows] if contents.align is None else contents.align[rows]
        first, last = base + win[0], base + win[1]
    for tid, a, b in zip(tids, first.tolist(), last.tolist(), strict=True):
        if not (math.isfinite(a) and math.isfinite(b)):
            what = f"its {align_to!r} time" if align_to is not None else "its start or stop time"
            raise ValueError(f"{p}: trial {tid}: {what} is not a finite number of seconds.")
    bins = np.floor((last - first) / width + _ROUNDING)  # float: checked before it becomes an int
    if bins.min() < 1:
        i = int(np.argmin(bins))
        raise ValueError(
            f"{p}: trial {tids[i]} spans {last[i] - first[i]:g} s, shorter than one bin of {width:g} s; pass a "
            "smaller bin_width, a window, or trial_ids without it."
        )
    B, N = len(tids), len(order)
    if float(bins.max()) * B * N > _MAX_ENTRIES:
        raise ValueError(
            f"{p}: {B} trials x {float(bins.max()):.0f} bins x {N} units is too many counts to hold; pass a larger "
            "bin_width, a window or fewer trial_ids."
        )
    n_bins = bins.astype(np.int64)
    T = int(n_bins.max())

    # Every bin of every trial at once: bin k of the concatenation is bin step[k] of trial trial[k].
    trial = np.repeat(np.arange(B), n_bins)
    step = np.arange(trial.size) - np.repeat(np.cumsum(n_bins) - n_bins, n_bins)
    lo = first[trial] + step * width
    hi = first[trial] + (step + 1) * width
    counts = np.zeros((trial.size, N), dtype=np.int64)
    for j, u in enumerate(order):
        s = contents.spikes[u]
        s = np.sort(s[np.isfinite(s)])
        counts[:, j] = np.searchsorted(s, hi, side="left") - np.searchsorted(s, lo, side="left")
    y = np.zeros((B, T, N), dtype=np.int64)
    y[trial, step] = counts
    ragged = bool((n_bins != T).any())
    return MultiRegionData(
        y,
        dims,
        names,
        lengths=n_bins.tolist() if ragged else None,
        dtype=dtype,
        device=device,
        bin_width=width,
        unit_ids=[contents.unit_ids[u] for u in order],
    )
