"""The data container every model consumes.

``y`` has shape ``(trials, T, N)`` with ``N = Σ_r n_r``: the neurons of region 0, then region 1, … An optional
bool ``mask`` of the same shape marks observed entries (False = missing); ragged trials are padded to a
common ``T`` and masked past their ``lengths``. No NaN is ever stored: missing entries hold 0.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

ArrayLike = Any  # numpy array or torch tensor


def _check_dtype(dtype: Any) -> torch.dtype | None:
    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        raise TypeError(f"dtype must be a torch dtype such as torch.float64 or torch.float32; got {dtype!r}.")
    if not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating dtype (torch.float64, torch.float32, …); got {dtype}.")
    return dtype


def _check_device(device: Any) -> torch.device | None:
    if device is None:
        return None
    try:
        return torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"device must be a torch device or its name (e.g. 'cpu', 'cuda:0'); got {device!r}.") from err


def _as_tensor(x: ArrayLike, name: str, dtype: torch.dtype | None, device: torch.device | str | None) -> Tensor:
    """A new tensor holding ``x`` (the input is never shared or changed); integer counts become floating."""
    dtype, device = _check_dtype(dtype), _check_device(device)
    if isinstance(x, Tensor):
        t = x.detach()
        integer = not (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)
        if t.dtype == torch.bool or t.is_complex():
            hint = _BOOL_HINT if t.dtype == torch.bool else ""
            raise ValueError(f"{name} must hold real numbers; got dtype {t.dtype}{hint}.")
    elif isinstance(x, np.ndarray):
        kind = x.dtype.kind
        if kind not in "iuf":
            hint = _BOOL_HINT if kind == "b" else ""
            raise ValueError(f"{name} must hold real numbers; got dtype {x.dtype}{hint}.")
        integer = kind in "iu"
        # A copy in native byte order, of a type torch holds: integers as float64, unusual float widths as float64.
        keep = kind == "f" and x.dtype.itemsize in (2, 4, 8)
        t = torch.from_numpy(np.array(x, dtype=x.dtype.newbyteorder("=") if keep else np.float64, copy=True))
    else:
        raise ValueError(f"{name} must be a numpy array or torch tensor; got {type(x).__name__}.")
    # Floating input keeps its precision unless a dtype is asked for; integer counts become the default dtype.
    target = dtype or (torch.get_default_dtype() if integer else t.dtype)
    return t.to(dtype=target, device=device).clone()


_BOOL_HINT = " (for 0/1 data pass it as numbers, e.g. y.astype(float))"


def _as_counts(values: Any, name: str) -> tuple[int, ...]:
    """A sequence of whole numbers as a tuple of ints, else a ``ValueError`` naming ``name``."""
    if isinstance(values, str | bytes | Mapping) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name} must list one count per entry (e.g. [10, 12]); got {values!r}.")
    out = []
    for v in values.tolist() if hasattr(values, "tolist") else values:
        whole = isinstance(v, numbers.Integral) or (isinstance(v, numbers.Real) and float(v).is_integer())
        if isinstance(v, bool) or not whole:
            raise ValueError(f"{name} must hold whole numbers; got {values!r}.")
        out.append(int(v))
    return tuple(out)


def _as_bool(mask: Any, name: str, device: torch.device) -> Tensor:
    """``mask`` as a tensor (its dtype is checked by the caller), else a ``ValueError`` naming ``name``."""
    try:
        return torch.as_tensor(mask, device=device)
    except (TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{name} must be a bool array (True = observed); got {type(mask).__name__}.") from err


def _check_names(region_names: Any) -> None:
    """``region_names`` is None or a sequence (of one name per region), else a ``ValueError``."""
    if region_names is not None and (
        isinstance(region_names, str | bytes) or not isinstance(region_names, Sequence | np.ndarray)
    ):
        raise ValueError(f"region_names must list one name per region; got {region_names!r}.")


def _check_bin_width(bin_width: Any) -> float | None:
    """``bin_width`` as a positive finite float in seconds (or None), else a ``ValueError``."""
    if bin_width is None:
        return None
    if isinstance(bin_width, bool) or not isinstance(bin_width, numbers.Real) or not 0 < float(bin_width) < np.inf:
        raise ValueError(f"bin_width must be a positive finite number of seconds (e.g. 0.02); got {bin_width!r}.")
    return float(bin_width)


def _check_unit_ids(unit_ids: Any, N: int) -> tuple[Any, ...] | None:
    """``unit_ids`` as a tuple of ``N`` plain values (numpy scalars become Python ones), else a ``ValueError``."""
    if unit_ids is None:
        return None
    if isinstance(unit_ids, str | bytes | Mapping) or not hasattr(unit_ids, "__iter__"):
        raise ValueError(f"unit_ids must list one id per neuron column; got {unit_ids!r}.")
    values = unit_ids.tolist() if isinstance(unit_ids, np.ndarray | Tensor) else list(unit_ids)
    ids = tuple(v.item() if isinstance(v, np.generic) else v for v in values)
    if len(ids) != N:
        raise ValueError(f"unit_ids must list one id per neuron column (N = {N}); got {len(ids)}.")
    return ids


def _first_bad(bad: Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in bad.nonzero()[0])


@dataclass(frozen=True, init=False)
class MultiRegionData:
    """Multi-region recordings ``y (trials, T, N)`` with region sizes, names, and optional missing data.

    Parameters
    ----------
    y : ``(trials, T, N)`` array (numpy or torch).
    y_dims : neurons per region, summing to ``N``.
    region_names : one name per region (default ``"R0", "R1", …``).
    mask : optional bool ``(trials, T, N)``, True = observed.
    lengths : optional per-trial lengths; time steps ``t ≥ lengths[i]`` are masked.
    nan_as_missing : treat NaN as missing (mask False) instead of raising.
    dtype, device : of the stored ``y`` (default: the input's floating dtype, torch's default dtype for integer
        counts; the input's device).
    bin_width : optional width of a time bin in seconds (positive, finite), e.g. of spike counts binned from a file.
    unit_ids : optional id per neuron column (``N`` of them), e.g. the unit ids of the file the counts came from.

    ``bin_width`` and ``unit_ids`` are metadata: no model reads them, and trial selection, :meth:`to` and
    :meth:`with_mask` keep them.
    """

    y: Tensor
    y_dims: tuple[int, ...]
    region_names: tuple[str, ...]
    mask: Tensor | None
    lengths: Tensor | None
    # Class-level defaults: containers made before these fields existed (or by object.__new__) read None.
    bin_width: float | None = None
    unit_ids: tuple[Any, ...] | None = None

    def __init__(
        self,
        y: ArrayLike,
        y_dims: Sequence[int],
        region_names: Sequence[str] | None = None,
        mask: ArrayLike | None = None,
        lengths: ArrayLike | None = None,
        *,
        nan_as_missing: bool = False,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        bin_width: float | None = None,
        unit_ids: Sequence[Any] | None = None,
    ) -> None:
        y_t = _as_tensor(y, "y", dtype, device)
        if y_t.ndim != 3:
            raise ValueError(f"y must have shape (trials, T, N); got {tuple(y_t.shape)}.")
        B, T, N = y_t.shape
        if B == 0 or T == 0:
            raise ValueError(f"y needs at least one trial and one time step; got shape {tuple(y_t.shape)}.")
        dims = _as_counts(y_dims, "y_dims")
        if not dims or any(n <= 0 for n in dims):
            raise ValueError(f"y_dims must list a positive neuron count per region; got {dims}.")
        if sum(dims) != N:
            raise ValueError(f"y_dims {dims} sum to {sum(dims)} but y has N = {N} neurons.")
        _check_names(region_names)
        names = (
            tuple(str(n) for n in region_names)
            if region_names is not None
            else tuple(f"R{r}" for r in range(len(dims)))
        )
        if len(names) != len(dims):
            raise ValueError(f"region_names has {len(names)} names but y_dims has {len(dims)} regions.")
        if len(set(names)) != len(names):
            raise ValueError(f"region_names must be unique; got {names}.")
        width = _check_bin_width(bin_width)
        ids = _check_unit_ids(unit_ids, N)
        m: Tensor | None = None
        if mask is not None:
            m = _as_bool(mask, "mask", y_t.device)
            if m.dtype != torch.bool:
                raise ValueError(f"mask must be a bool array (True = observed); got dtype {m.dtype}.")
            if m.shape != y_t.shape:
                raise ValueError(f"mask must have the shape of y {tuple(y_t.shape)}; got {tuple(m.shape)}.")
            m = m.clone()
        lens: Tensor | None = None
        if lengths is not None:
            lens = torch.tensor(_as_counts(lengths, "lengths"), dtype=torch.long, device=y_t.device)
            if lens.shape[0] != B:
                raise ValueError(f"lengths must have one entry per trial ({B}); got {lens.shape[0]}.")
            if bool((lens < 1).any()) or bool((lens > T).any()):
                raise ValueError(f"lengths must lie in [1, T = {T}]; got min {int(lens.min())}, max {int(lens.max())}.")
            valid = torch.arange(T, device=y_t.device)[None, :] < lens[:, None]
            valid = valid[:, :, None].expand(B, T, N)
            m = valid.clone() if m is None else (m & valid)
        nonfinite = ~torch.isfinite(y_t)
        if m is not None:
            nonfinite = nonfinite & m
        if bool(nonfinite.any()):
            isinf = torch.isinf(y_t) & nonfinite
            if bool(isinf.any()) or not nan_as_missing:
                bad = isinf if bool(isinf.any()) else nonfinite
                b, t, n = _first_bad(bad)
                r = int(np.searchsorted(np.cumsum(dims), n, side="right"))
                kind = "infinite" if bool(isinf.any()) else "NaN"
                hint = "" if kind == "infinite" else " Pass nan_as_missing=True to treat NaN as missing data."
                raise ValueError(
                    f"y has {int(bad.sum())} {kind} entries; the first is trial {b}, time {t}, neuron {n} "
                    f"(region {names[r]!r}, neuron {n - sum(dims[:r])} of that region).{hint}"
                )
            m = (~nonfinite) if m is None else (m & ~nonfinite)
        if m is not None:
            y_t = torch.where(m, y_t, torch.zeros((), dtype=y_t.dtype, device=y_t.device))
        object.__setattr__(self, "y", y_t)
        object.__setattr__(self, "y_dims", dims)
        object.__setattr__(self, "region_names", names)
        object.__setattr__(self, "mask", m)
        object.__setattr__(self, "lengths", lens)
        object.__setattr__(self, "bin_width", width)
        object.__setattr__(self, "unit_ids", ids)

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_regions(
        cls,
        regions: Mapping[str, ArrayLike] | Sequence[ArrayLike],
        *,
        region_names: Sequence[str] | None = None,
        mask: ArrayLike | None = None,
        lengths: ArrayLike | None = None,
        nan_as_missing: bool = False,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
        bin_width: float | None = None,
        unit_ids: Sequence[Any] | None = None,
    ) -> MultiRegionData:
        """Build from one ``(trials, T, n_r)`` array per region (a dict name → array, or a list).

        ``unit_ids`` lists the ids of all neuron columns, region after region (as ``y`` is laid out).
        """
        if isinstance(regions, np.ndarray | Tensor | str | bytes) or not isinstance(regions, Mapping | Sequence):
            raise ValueError(
                "regions must be a dict region name -> (trials, T, n_r) array, or a list of such arrays; got "
                f"{type(regions).__name__}. For one (trials, T, N) array use MultiRegionData(y, y_dims)."
            )
        _check_names(region_names)
        if isinstance(regions, Mapping):
            names = list(regions.keys()) if region_names is None else list(region_names)
            arrays = list(regions.values())
        else:
            arrays = list(regions)
            names = list(region_names) if region_names is not None else [f"R{r}" for r in range(len(arrays))]
        if not arrays:
            raise ValueError("regions is empty; pass at least one (trials, T, n_r) array.")
        if len(names) != len(arrays):
            raise ValueError(f"region_names must list one name per region ({len(arrays)}); got {region_names!r}.")
        tensors = []
        for name, a in zip(names, arrays, strict=True):
            t = _as_tensor(a, f"region {name!r}", dtype, device)
            if t.ndim != 3:
                raise ValueError(f"region {name!r} must have shape (trials, T, n_r); got {tuple(t.shape)}.")
            if t.shape[-1] == 0:
                raise ValueError(f"region {name!r} has no neurons (shape {tuple(t.shape)}).")
            tensors.append(t)
        for name, t in zip(names[1:], tensors[1:], strict=True):
            if t.shape[0] != tensors[0].shape[0]:
                raise ValueError(
                    f"regions disagree on the number of trials: {names[0]!r} has {tensors[0].shape[0]}, "
                    f"{name!r} has {t.shape[0]}."
                )
            if t.shape[1] != tensors[0].shape[1]:
                raise ValueError(
                    f"regions disagree on T: {names[0]!r} has {tensors[0].shape[1]} time bins, {name!r} has {t.shape[1]}."
                )
        y = torch.cat(tensors, -1)
        return cls(
            y,
            [t.shape[-1] for t in tensors],
            names,
            mask,
            lengths,
            nan_as_missing=nan_as_missing,
            dtype=y.dtype,
            bin_width=bin_width,
            unit_ids=unit_ids,
        )

    @classmethod
    def from_ragged(
        cls, trials: Sequence[Sequence[ArrayLike]], region_names: Sequence[str] | None = None, **kw: Any
    ) -> MultiRegionData:
        """Build from trials of different lengths: ``trials[i]`` lists region arrays ``(T_i, n_r)``.

        Trials are zero-padded to the longest and the padding is masked. Keyword arguments (``dtype``, ``device``,
        ``nan_as_missing``, ``bin_width``, ``unit_ids``) pass through to the constructor.
        """
        if isinstance(trials, np.ndarray | Tensor | str | bytes | Mapping) or not isinstance(trials, Sequence):
            raise ValueError(
                f"trials must be a list with, per trial, a list of (T_i, n_r) arrays; got {type(trials).__name__}."
            )
        if not trials:
            raise ValueError("trials is empty.")
        converted: list[list[Tensor]] = []
        for i, tr in enumerate(trials):
            if isinstance(tr, np.ndarray | Tensor | str | bytes) or not isinstance(tr, Sequence) or not tr:
                raise ValueError(
                    f"trials[{i}] must be a non-empty list of region arrays (T_i, n_r); got {type(tr).__name__}."
                )
            arrays = [_as_tensor(a, f"trials[{i}][{r}]", kw.get("dtype"), kw.get("device")) for r, a in enumerate(tr)]
            for r, a in enumerate(arrays):
                if a.ndim != 2:
                    raise ValueError(f"trials[{i}][{r}] must have shape (T_i, n_r); got {tuple(a.shape)}.")
            if len(arrays) != len(trials[0]):
                raise ValueError(f"trials[{i}] has {len(arrays)} regions but trials[0] has {len(trials[0])}.")
            if converted:
                for r, (a, a0) in enumerate(zip(arrays, converted[0], strict=True)):
                    if a.shape[1] != a0.shape[1]:
                        raise ValueError(
                            f"trials[{i}][{r}] has {a.shape[1]} neurons but trials[0][{r}] has {a0.shape[1]}."
                        )
            if any(a.shape[0] != arrays[0].shape[0] for a in arrays):
                raise ValueError(
                    f"the regions of trials[{i}] disagree on its length: {[int(a.shape[0]) for a in arrays]} bins."
                )
            if arrays[0].shape[0] == 0:
                raise ValueError(f"trials[{i}] has no time bins; leave empty trials out.")
            converted.append(arrays)
        dims = [a.shape[-1] for a in converted[0]]
        per_trial = [torch.cat(tr, -1) for tr in converted]
        lengths = [t.shape[0] for t in per_trial]
        T, N = max(lengths), per_trial[0].shape[-1]
        y = per_trial[0].new_zeros(len(per_trial), T, N)
        for i, t in enumerate(per_trial):  # building a container, not a hot path
            y[i, : t.shape[0]] = t
        return cls(y, dims, region_names, lengths=lengths, **kw)

    # ------------------------------------------------------------ properties
    @property
    def n_trials(self) -> int:
        return int(self.y.shape[0])

    @property
    def T(self) -> int:
        return int(self.y.shape[1])

    @property
    def N(self) -> int:
        return int(self.y.shape[2])

    @property
    def n_regions(self) -> int:
        return len(self.y_dims)

    @property
    def device(self) -> torch.device:
        return self.y.device

    @property
    def dtype(self) -> torch.dtype:
        return self.y.dtype

    @property
    def has_missing(self) -> bool:
        return self.mask is not None and not bool(self.mask.all())

    @property
    def region_slices(self) -> tuple[slice, ...]:
        out, o = [], 0
        for n in self.y_dims:
            out.append(slice(o, o + n))
            o += n
        return tuple(out)

    def region(self, key: int | str) -> Tensor:
        """``(trials, T, n_r)`` data of one region, by index or name."""
        r = self.region_names.index(key) if isinstance(key, str) else int(key)
        return self.y[..., self.region_slices[r]]

    def observed_mask(self) -> Tensor:
        """The mask, or all True when nothing is missing."""
        return self.mask if self.mask is not None else torch.ones_like(self.y, dtype=torch.bool)

    # ------------------------------------------------------------ copies
    def _replace(self, y: Tensor, mask: Tensor | None, lengths: Tensor | None) -> MultiRegionData:
        """A container with new ``y``, ``mask`` and ``lengths`` (of the same neurons); everything else is kept."""
        new = object.__new__(MultiRegionData)
        object.__setattr__(new, "y", y)
        object.__setattr__(new, "y_dims", self.y_dims)
        object.__setattr__(new, "region_names", self.region_names)
        object.__setattr__(new, "mask", mask)
        object.__setattr__(new, "lengths", lengths)
        object.__setattr__(new, "bin_width", self.bin_width)
        object.__setattr__(new, "unit_ids", self.unit_ids)
        return new

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> MultiRegionData:
        """A copy on ``device`` with ``y`` cast to ``dtype`` (the mask stays bool)."""
        return self._replace(
            self.y.to(device=device, dtype=dtype),
            None if self.mask is None else self.mask.to(device),
            None if self.lengths is None else self.lengths.to(device),
        )

    def __getitem__(self, idx: Any) -> MultiRegionData:
        """Select trials (int, slice, list, array or bool mask); an int keeps a trial dimension of 1."""
        if isinstance(idx, int):
            idx = [idx]
        if isinstance(idx, np.ndarray):
            idx = torch.from_numpy(idx)
        if isinstance(idx, Tensor):
            idx = idx.to(self.y.device)
        return self._replace(
            self.y[idx],
            None if self.mask is None else self.mask[idx],
            None if self.lengths is None else self.lengths[idx],
        )

    def with_mask(self, mask: ArrayLike) -> MultiRegionData:
        """A copy whose mask is the AND of the current one and ``mask`` (bool, broadcastable to y)."""
        m = torch.as_tensor(mask, device=self.y.device)
        if m.dtype != torch.bool:
            raise ValueError(f"mask must be bool (True = observed); got {m.dtype}.")
        try:
            m = m.expand_as(self.y)
        except RuntimeError as err:
            raise ValueError(f"mask of shape {tuple(m.shape)} does not broadcast to y {tuple(self.y.shape)}.") from err
        new_mask = m.clone() if self.mask is None else (self.mask & m)
        y = torch.where(new_mask, self.y, torch.zeros((), dtype=self.y.dtype, device=self.y.device))
        return self._replace(y, new_mask, self.lengths)

    def __repr__(self) -> str:
        regions = ", ".join(f"{n}: {d}" for n, d in zip(self.region_names, self.y_dims, strict=True))
        missing = 0.0 if self.mask is None else 1.0 - float(self.mask.float().mean())
        extra = "" if self.bin_width is None else f", bin_width={self.bin_width:g} s"
        if self.unit_ids is not None:
            shown = ", ".join(repr(u) for u in self.unit_ids[:3]) + (", …" if len(self.unit_ids) > 3 else "")
            extra += f", unit_ids=({shown})"
        return (
            f"MultiRegionData(trials={self.n_trials}, T={self.T}, regions={{{regions}}}, "
            f"missing={missing:.1%}, dtype={self.dtype}, device={self.device}{extra})"
        )
