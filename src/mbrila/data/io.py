"""Loading multi-region recordings from files: a pickle or ``.npz`` holding region name → (trials, T, neurons), or an
NWB file of spike times (binned by :func:`mbrila.data.from_nwb`)."""

from __future__ import annotations

import pickle
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mbrila.core import MultiRegionData
from mbrila.data.nwb import from_nwb


def demo_data_path() -> Path:
    """Path of the shipped V1/V2 recordings (Semedo et al., Neuron 2019): ``data/demo_v1v2_data.pkl``."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent / "data" / "demo_v1v2_data.pkl"
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        "data/demo_v1v2_data.pkl was not found above the installed package; run from a clone of the "
        "mbrila repository or pass the path of your own file."
    )


def _read(p: Path) -> Any:
    """The object a ``.pkl``/``.pickle`` or ``.npz`` file holds, or a ``ValueError`` naming the file."""
    suffix = p.suffix.lower()
    if suffix == ".npz":
        try:
            loaded = np.load(p, allow_pickle=False)
            if not isinstance(loaded, np.lib.npyio.NpzFile):
                return loaded  # a bare .npy array under an .npz name: reported as "not a dict" by the caller
            with loaded as z:
                return {k: z[k] for k in z.files}
        except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
            raise ValueError(
                f"{p}: not a readable .npz file ({type(err).__name__}: {err}). Write it with "
                "numpy.savez(path, **{region_name: array})."
            ) from err
    if suffix in (".pkl", ".pickle"):
        raw = p.read_bytes()  # unpickled from bytes: a corrupt length field fails at once, asking for no huge buffer
        try:
            return pickle.loads(raw)
        # Unpickling a damaged or foreign file can raise almost any exception (UnpicklingError, EOFError,
        # ImportError, AttributeError, UnicodeDecodeError, ...): each means the file is not a readable pickle.
        except Exception as err:
            raise ValueError(
                f"{p}: not a readable pickle file ({type(err).__name__}: {err}). Expected a pickled dict of region "
                "name -> (trials, T, neurons) array."
            ) from err
    raise ValueError(
        f"{p}: unsupported file type {p.suffix!r}; use .pkl, .pickle or .npz (or .nwb, read by load_data with bin_width=)."
    )


def load_regions(
    path: str | Path, *, region_names: Sequence[str] | None = None, allow_nan: bool = False
) -> dict[str, np.ndarray]:
    """Read a dict region name → ``(trials, T, neurons)`` array from a ``.pkl``/``.pickle`` or ``.npz`` file.

    Every problem is reported with the file name: missing file, unreadable file, not a dict, missing region, wrong
    ndim, empty or non-numeric arrays, mismatched trial counts or T, non-finite values (NaN is allowed with
    ``allow_nan=True``, to be treated as missing data; infinite values never are).

    Only read pickle files you trust: unpickling can run code. ``.npz`` files are read without pickle.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file.")
    if isinstance(region_names, str | bytes):
        raise ValueError(f"region_names must list region names; got the string {region_names!r}.")
    raw = _read(p)
    if not isinstance(raw, dict):
        raise ValueError(
            f"{p}: expected a dict of region name -> (trials, T, neurons) array; got {type(raw).__name__}."
        )
    by_name: dict[str, Any] = {}
    for key, value in raw.items():
        if str(key) in by_name:
            raise ValueError(f"{p}: two keys read as the region name {str(key)!r}; region names must be unique.")
        by_name[str(key)] = value
    names = [str(n) for n in region_names] if region_names is not None else list(by_name)
    if not names:
        raise ValueError(f"{p}: holds no regions; expected a dict of region name -> (trials, T, neurons) array.")
    if len(set(names)) != len(names):
        raise ValueError(f"{p}: region_names must be unique; got {names}.")
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"{p}: region(s) {missing} not found; available keys: {sorted(by_name)}.")
    out: dict[str, np.ndarray] = {}
    for n in names:
        try:
            a = np.asarray(by_name[n])
        except (ValueError, TypeError) as err:
            raise ValueError(f"{p}: region {n!r} is not an array of numbers ({err}).") from err
        if a.ndim != 3:
            raise ValueError(f"{p}: region {n!r} must have shape (trials, T, neurons); got {a.shape}.")
        if a.dtype.kind not in "iuf":
            raise ValueError(f"{p}: region {n!r} is not real-valued numeric (dtype {a.dtype}).")
        if 0 in a.shape:
            raise ValueError(f"{p}: region {n!r} is empty (shape {a.shape}); every axis needs at least one entry.")
        inf = int(np.isinf(a).sum()) if a.dtype.kind == "f" else 0
        nan = int(np.isnan(a).sum()) if a.dtype.kind == "f" else 0
        if inf or (nan and not allow_nan):
            hint = "" if inf else " (pass nan_as_missing=True to load_data to treat NaN as missing)"
            raise ValueError(f"{p}: region {n!r} has {inf + nan} non-finite values (NaN or inf){hint}.")
        out[n] = a
    first = names[0]
    for n in names[1:]:
        if out[n].shape[0] != out[first].shape[0]:
            raise ValueError(
                f"{p}: regions disagree on the number of trials: {first!r} has {out[first].shape[0]}, "
                f"{n!r} has {out[n].shape[0]}."
            )
        if out[n].shape[1] != out[first].shape[1]:
            raise ValueError(
                f"{p}: regions disagree on T: {first!r} has {out[first].shape[1]}, {n!r} has {out[n].shape[1]}."
            )
    return out


def load_data(
    path: str | Path,
    *,
    region_names: Sequence[str] | None = None,
    bin_width: float | None = None,
    align_to: str | None = None,
    window: tuple[float, float] | None = None,
    region_column: str | None = None,
    regions: Sequence[str] | None = None,
    **kw: Any,
) -> MultiRegionData:
    """A recording as :class:`MultiRegionData`, by the file's suffix.

    ``.pkl``/``.pickle``/``.npz``: :func:`load_regions` then :meth:`MultiRegionData.from_regions` (keyword arguments
    pass through; with ``nan_as_missing=True`` NaN entries of the file become missing data; ``bin_width`` is stored as
    metadata).

    ``.nwb``: spike times binned by :func:`mbrila.data.from_nwb`, which needs ``bin_width`` (seconds); ``align_to``,
    ``window``, ``region_column`` and ``regions`` (or its synonym ``region_names``) and other keyword arguments
    (``trial_ids``, ``dtype``, ``device``) pass through.
    """
    p = Path(path)
    if p.suffix.lower() == ".nwb":
        if bin_width is None:
            raise ValueError(
                f"{p}: an NWB file holds spike times, not binned counts; pass bin_width= (seconds, e.g. 0.02) to "
                "bin them (or call mbrila.data.from_nwb)."
            )
        if region_names is not None and regions is not None:
            raise ValueError("pass regions= or region_names= (the same thing for an NWB file), not both.")
        return from_nwb(
            p,
            bin_width,
            window=window,
            align_to=align_to,
            region_column=region_column,
            regions=regions if regions is not None else region_names,
            **kw,
        )
    nwb_only = {"align_to": align_to, "window": window, "region_column": region_column, "regions": regions}
    given = [k for k, v in nwb_only.items() if v is not None]
    if given:
        raise ValueError(f"{p}: {', '.join(given)} only apply to NWB (.nwb) files; use region_names= to pick regions.")
    regions_ = load_regions(path, region_names=region_names, allow_nan=bool(kw.get("nan_as_missing", False)))
    return MultiRegionData.from_regions(regions_, bin_width=bin_width, **kw)
