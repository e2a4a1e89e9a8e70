"""Loading multi-region recordings from files: a pickle or ``.npz`` holding region name → (trials, T, neurons)."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mbrila.core import MultiRegionData


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


def load_regions(path: str | Path, *, region_names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Read a dict region name → ``(trials, T, neurons)`` array from a ``.pkl``/``.pickle`` or ``.npz`` file.

    Every problem is reported with the file name: missing file, not a dict, missing region, wrong ndim,
    mismatched trial counts or T, non-finite values.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such file.")
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            raw: Any = {k: z[k] for k in z.files}
    elif p.suffix in (".pkl", ".pickle"):
        with p.open("rb") as f:
            raw = pickle.load(f)
    else:
        raise ValueError(f"{p}: unsupported file type {p.suffix!r}; use .pkl, .pickle or .npz.")
    if not isinstance(raw, dict):
        raise ValueError(
            f"{p}: expected a dict of region name -> (trials, T, neurons) array; got {type(raw).__name__}."
        )
    names = list(region_names) if region_names is not None else list(raw.keys())
    if not names:
        raise ValueError(f"{p}: holds no regions; expected a dict of region name -> (trials, T, neurons) array.")
    missing = [n for n in names if n not in raw]
    if missing:
        raise ValueError(f"{p}: region(s) {missing} not found; available keys: {sorted(map(str, raw))}.")
    out: dict[str, np.ndarray] = {}
    for n in names:
        a = np.asarray(raw[n])
        if a.ndim != 3:
            raise ValueError(f"{p}: region {n!r} must have shape (trials, T, neurons); got {a.shape}.")
        if not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"{p}: region {n!r} is not numeric (dtype {a.dtype}).")
        bad = int((~np.isfinite(a)).sum())
        if bad:
            raise ValueError(f"{p}: region {n!r} has {bad} non-finite values (NaN or inf).")
        out[str(n)] = a
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


def load_data(path: str | Path, *, region_names: Sequence[str] | None = None, **kw: Any) -> MultiRegionData:
    """:func:`load_regions` then :meth:`MultiRegionData.from_regions` (keyword arguments pass through)."""
    return MultiRegionData.from_regions(load_regions(path, region_names=region_names), **kw)
