"""Property-based tests (hypothesis) of the public entry points.

Covered: ``MultiRegionData`` (constructor, ``from_regions``, ``from_ragged``), ``LatentSpec``, every preset's
constructor, ``fit`` / ``infer`` / ``predict``, ``mbrila.data.load_data`` and ``mbrila.load``. Random shapes, dtypes
(float16/32/64, integer counts, bool, complex, object), NaN / Inf entries, empty regions, constant, silent and
duplicated neurons, a single trial, ``T = 1``, more latents than neurons, bad latent counts, data scaled by 1e±6,
corrupted files. The property, everywhere: a call gives EITHER a correct result (shapes right, finite outputs for
finite inputs) OR a ``ValueError`` / ``TypeError`` whose message names the offending argument — never an error from
deep inside (a linear-algebra or broadcasting ``RuntimeError``, an ``UnpicklingError``, an ``OSError``), never a
silent NaN, never a changed input array. Warnings are allowed (and required where a model is ill-posed).

Every test is derandomised, writes no example database, and draws tiny data (T <= 12, <= 3 regions x 6 neurons, <= 6
trials, 2-4 EM iterations), so the file runs in about a minute on two cores and gives the same result on every run.
"""

from __future__ import annotations

import io
import pickle
import re
import tempfile
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

import mbrila
from mbrila import LatentSpec, MultiRegionData
from mbrila.data import load_data
from mbrila.init import Deflation

# Deterministic, database-free hypothesis settings (max_examples is set per test).
COMMON: dict[str, Any] = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "print_blob": False,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
}

PRESETS = ["gpfa", "gpfa_exact", "dlag", "dlag_ssm", "adm", "lds", "mdlag", "mdlag_freq", "mdlag_ssm"]
POISSON_PRESETS = ["gpfa", "dlag_ssm", "adm", "lds"]  # the state-space presets that take observation="poisson"


# ---------------------------------------------------------------------------------------------------------- helpers
def assert_named_error(err: BaseException, *words: str) -> None:
    """``err`` is a ValueError / TypeError whose message contains one of ``words``.

    A word is matched case-insensitively as a substring, except one written as a regex starting with ``\\b`` (e.g.
    ``r"\\bT\\b"`` for the trial length), which is matched as given.
    """
    assert isinstance(err, ValueError | TypeError), (
        f"expected a ValueError or TypeError, got {type(err).__name__}: {err}"
    )
    msg = str(err)
    for w in words:
        if re.search(w, msg) if w.startswith("\\b") else w.lower() in msg.lower():
            return
    raise AssertionError(f"{type(err).__name__} message names none of {words}: {msg!r}")


def call(fn: Any, *words: str) -> tuple[Any, BaseException | None]:
    """``(fn(), None)``, or ``(None, err)`` for a ValueError / TypeError naming one of ``words``; anything else
    (another exception type, a message that names nothing) fails the test."""
    try:
        return fn(), None
    except (ValueError, TypeError) as err:
        assert_named_error(err, *words)
        return None, err


def snapshot(obj: Any) -> Any:
    """A deep copy of the arrays and tensors in ``obj`` (nested in dicts, lists and tuples)."""
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {k: snapshot(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(snapshot(v) for v in obj)
    return obj


def assert_unchanged(before: Any, after: Any) -> None:
    """The arrays and tensors of ``after`` equal the copies in ``before`` (NaN equal to NaN), same dtypes."""
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray) and before.dtype == after.dtype and before.shape == after.shape
        assert np.array_equal(before, after, equal_nan=before.dtype.kind in "fc"), "an input numpy array was changed"
    elif isinstance(before, torch.Tensor):
        assert isinstance(after, torch.Tensor) and before.dtype == after.dtype and before.shape == after.shape
        same = torch.equal(before, after)
        if not same and (before.is_floating_point() or before.is_complex()):
            same = torch.equal(before.isnan(), after.isnan()) and torch.equal(before.nan_to_num(), after.nan_to_num())
        assert same, "an input tensor was changed"
    elif isinstance(before, dict):
        assert before.keys() == after.keys()
        for k in before:
            assert_unchanged(before[k], after[k])
    elif isinstance(before, list | tuple):
        assert len(before) == len(after)
        for b, a in zip(before, after, strict=True):
            assert_unchanged(b, a)


def assert_finite(t: torch.Tensor, what: str) -> None:
    assert bool(torch.isfinite(t).all()), f"{what} holds {int((~torch.isfinite(t)).sum())} non-finite values"


class RecordWarnings(warnings.catch_warnings):
    """Record every warning (they are allowed); ``with RecordWarnings() as log`` gives the list of them."""

    def __init__(self) -> None:
        super().__init__(record=True)

    def __enter__(self) -> list[warnings.WarningMessage]:
        log = super().__enter__()
        warnings.simplefilter("always")
        assert log is not None
        return log


# ------------------------------------------------------------------------------------------------------ LatentSpec
def _count_value(v: Any) -> int | None:
    """The int a latent count ``v`` stands for, or None when it is not a valid count."""
    if isinstance(v, bool | np.bool_) or isinstance(v, str) or v is None:
        return None
    if isinstance(v, np.ndarray):
        return _count_value(v.item()) if v.ndim == 0 else None
    if isinstance(v, int | np.integer):
        return int(v) if v >= 0 else None
    if isinstance(v, float | np.floating):
        return int(v) if np.isfinite(v) and float(v).is_integer() and v >= 0 else None
    return None


counts = st.one_of(
    st.integers(-3, 12),
    st.integers(10**6, 10**12),  # huge but legal for the spec itself
    st.floats(allow_nan=True, allow_infinity=True, width=64),
    st.sampled_from([2.0, 0.0, -1.0, 2.5]),
    st.integers(-2, 5).map(np.int64),
    st.integers(0, 5).map(np.int32),
    st.integers(0, 3).map(np.array),  # 0-d arrays
    st.sampled_from(["2", "", None, True, False, np.True_, 1j, [1], {}]),
)
within_counts = st.one_of(
    counts,
    st.lists(st.one_of(st.integers(-1, 4), st.sampled_from([1.5, "1", None, 2.0, True])), max_size=4),
    st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple),
    st.lists(st.integers(0, 4), min_size=1, max_size=4).map(np.array),
    st.lists(st.integers(0, 4), min_size=1, max_size=4).map(torch.tensor),
)


@settings(max_examples=200, **COMMON)
@given(n_across=counts, n_within=within_counts, n_regions=st.integers(1, 4))
def test_latent_spec_accepts_counts_and_names_bad_ones(n_across, n_within, n_regions):
    a = _count_value(n_across)
    if isinstance(n_within, list | tuple | np.ndarray | torch.Tensor) and not (
        isinstance(n_within, np.ndarray) and n_within.ndim == 0
    ):
        entries = n_within.tolist() if isinstance(n_within, np.ndarray | torch.Tensor) else list(n_within)
        w_entries = [_count_value(w) for w in entries]
        w: Any = tuple(w_entries) if entries and None not in w_entries else None
    else:
        w = _count_value(n_within)
    before = snapshot([n_across, n_within])
    spec, err = call(lambda: LatentSpec(n_across, n_within), "n_across", "n_within")
    assert_unchanged(before, [n_across, n_within])
    if a is None or w is None:
        assert err is not None, f"LatentSpec({n_across!r}, {n_within!r}) was accepted: {spec}"
        bad = ["n_across"] if a is None else ["n_within"]
        assert_named_error(err, *bad)  # the message names the argument that is wrong
        return
    assert err is None
    assert type(spec.n_across) is int and spec.n_across == a
    assert spec.n_within == w and (type(w) is int or all(type(x) is int for x in spec.n_within))
    assert spec == LatentSpec(a, w) and hash(spec) == hash(LatentSpec(a, w))
    per_region = w if isinstance(w, tuple) else (w,) * n_regions
    if len(per_region) != n_regions:
        _, err = call(lambda: spec.for_regions(n_regions), "n_within")
        assert err is not None
    elif a + sum(per_region) == 0:
        _, err = call(lambda: spec.for_regions(n_regions), "latent")
        assert err is not None
    else:
        assert spec.dims_per_region(n_regions) == tuple(a + x for x in per_region)
        assert spec.total(n_regions) == a + sum(per_region)


def test_latent_spec_list_of_within_counts():
    """The new user's case: ``LatentSpec(2, [1, 1, 1])`` (a list) is one count per region."""
    spec = LatentSpec(2, [1, 1, 1])
    assert spec.n_within == (1, 1, 1) and spec.dims_per_region(3) == (3, 3, 3)
    with pytest.raises(ValueError, match="n_within"):
        LatentSpec(2, [1, -1])


# ------------------------------------------------------------------------------------------------- MultiRegionData
NP_DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.uint8, np.bool_, np.complex128, ">f8"]


@dataclass
class RegionsCase:
    """Per-region arrays for ``from_regions``: sizes, dtype and the faults to put in."""

    dims: list[int]
    B: int
    T: int
    dtype: Any
    torch_input: bool
    mapping: bool
    scale: float
    n_nan: int
    n_inf: int
    mismatch: str | None  # "trials", "T", "ndim" or None
    nan_as_missing: bool
    constant_neuron: bool
    layout: str  # "C", "F" (Fortran order) or "view" (a strided view of a larger array)
    seed: int

    def arrays(self) -> list[Any]:
        rng = np.random.default_rng(self.seed)
        out: list[Any] = []
        for r, n in enumerate(self.dims):
            B, T = self.B, self.T
            if r == len(self.dims) - 1 and self.mismatch == "trials":
                B += 1
            if r == len(self.dims) - 1 and self.mismatch == "T":
                T += 1
            a = rng.normal(size=(B, T, n)) * self.scale
            if np.issubdtype(np.dtype(self.dtype), np.integer) or np.dtype(self.dtype).kind == "b":
                a = rng.poisson(2.0, size=(B, T, n))
            if self.constant_neuron and n:
                a[..., 0] = 3.0
            with np.errstate(over="ignore"):  # float16 overflows to inf at scale 1e6: an infinite entry
                a = a.astype(self.dtype)
            if a.dtype.kind in "fc" and a.size:
                flat = a.reshape(-1)
                flat[rng.integers(0, a.size, self.n_nan)] = np.nan
                flat[rng.integers(0, a.size, self.n_inf)] = np.inf
            if r == 0 and self.mismatch == "ndim":
                a = a.reshape(-1)
            if self.layout == "F":
                a = np.asfortranarray(a)
            elif self.layout == "view":
                big = np.zeros((*a.shape[:-1], 2 * a.shape[-1]), dtype=a.dtype) if a.ndim else a
                big[..., ::2] = a
                a = big[..., ::2]
            if self.torch_input:
                t = torch.from_numpy(a.astype(a.dtype.newbyteorder("=")))
                if self.layout != "C" and t.ndim == 3:
                    t = t.permute(2, 1, 0).contiguous().permute(2, 1, 0)  # not contiguous
                a = t.requires_grad_(True) if t.is_floating_point() else t
            out.append(a)
        return out


regions_cases = st.builds(
    RegionsCase,
    dims=st.lists(st.integers(0, 6), min_size=1, max_size=3),
    B=st.integers(0, 5),
    T=st.integers(0, 12),
    dtype=st.sampled_from(NP_DTYPES),
    torch_input=st.booleans(),
    mapping=st.booleans(),
    scale=st.sampled_from([1.0, 1e-6, 1e6]),
    n_nan=st.integers(0, 2),
    n_inf=st.sampled_from([0, 0, 0, 1]),
    mismatch=st.sampled_from([None, None, None, "trials", "T", "ndim"]),
    nan_as_missing=st.booleans(),
    constant_neuron=st.booleans(),
    layout=st.sampled_from(["C", "F", "view"]),
    seed=st.integers(0, 2**16),
).map(
    # Regions disagree only when there are two of them.
    lambda c: replace(c, mismatch=None) if len(c.dims) == 1 and c.mismatch in ("trials", "T") else c
)


@settings(max_examples=200, **COMMON)
@given(case=regions_cases)
def test_from_regions(case: RegionsCase):
    arrays = case.arrays()
    names = [f"region{r}" for r in range(len(arrays))]
    regions: Any = dict(zip(names, arrays, strict=True)) if case.mapping else arrays
    before = snapshot(arrays)
    data, err = call(
        lambda: MultiRegionData.from_regions(regions, nan_as_missing=case.nan_as_missing),
        "region",
        "trials",
        r"\bT\b",
        r"\by\b",
        "neurons",
    )
    assert_unchanged(before, arrays)

    np_arrays = [a.detach().numpy() if isinstance(a, torch.Tensor) else a for a in arrays]
    kind = np.dtype(case.dtype).kind
    n_inf = sum(int(np.isinf(a).sum()) for a in np_arrays if a.dtype.kind in "fc")
    n_nan = sum(int(np.isnan(a).sum()) for a in np_arrays if a.dtype.kind in "fc")
    must_fail = (
        case.mismatch is not None
        or 0 in case.dims
        or case.B == 0
        or case.T == 0
        or kind in "bc"
        or n_inf > 0
        or (n_nan > 0 and not case.nan_as_missing)
    )
    if must_fail:
        assert err is not None, f"accepted bad regions: {case}"
        if n_inf and case.mismatch is None and 0 not in case.dims and kind not in "bc":
            assert_named_error(err, "infinite", "non-finite", "inf")
        if kind in "bc" and case.mismatch != "ndim":
            assert_named_error(err, "dtype", "real", "number")
        if (
            n_nan
            and not n_inf
            and case.mismatch is None
            and 0 not in case.dims
            and kind not in "bc"
            and case.B * case.T
        ):
            assert_named_error(err, "NaN")
        return
    assert err is None, f"refused good regions: {case}: {err}"
    expected = np.concatenate([a.astype(np.float64) for a in np_arrays], -1)
    assert data.y.shape == expected.shape and data.y_dims == tuple(case.dims)
    assert data.region_names == (tuple(names) if case.mapping else tuple(f"R{r}" for r in range(len(arrays))))
    assert data.y.is_floating_point() and not data.y.requires_grad
    if kind == "f":
        assert data.y.dtype == torch.from_numpy(np.zeros(1, dtype=np.dtype(case.dtype).newbyteorder("="))).dtype
    assert_finite(data.y, "data.y")  # NaN is never stored
    missing = np.isnan(expected)
    if n_nan:
        assert data.mask is not None and torch.equal(data.mask, torch.from_numpy(~missing))
    else:
        assert data.mask is None or bool(data.mask.all())
    stored = data.y.double().numpy()
    assert np.all(stored[missing] == 0)
    np.testing.assert_allclose(stored[~missing], expected[~missing], rtol=1e-3 if kind == "f" else 0)


@st.composite
def constructor_args(draw):
    """``MultiRegionData(y, y_dims, region_names, mask, lengths)`` arguments, each possibly wrong."""
    B, T = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    dims = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    N = sum(dims)
    y = np.random.default_rng(draw(st.integers(0, 999))).normal(size=(B, T, N))
    y_dims: Any = draw(
        st.one_of(
            st.just(dims),
            st.just(tuple(dims)),
            st.just(np.array(dims)),
            st.just([float(n) for n in dims]),
            st.just([*dims, 1]),  # sums wrong
            st.just([d + 0.5 for d in dims]),
            st.just([str(d) for d in dims]),
            st.just([None] * len(dims)),
            st.just(N),
            st.just([N, 0]),
            st.just([]),
        )
    )
    names: Any = draw(
        st.one_of(
            st.none(),
            st.just([f"n{r}" for r in range(len(dims))]),
            st.just(list(range(len(dims)))),  # non-string names become strings
            st.just(["same"] * len(dims)),
            st.just([f"n{r}" for r in range(len(dims) + 1)]),
            st.just("ab"),
            st.just(7),
        )
    )
    mask: Any = draw(
        st.one_of(
            st.none(),
            st.just(np.random.default_rng(1).random((B, T, N)) > 0.2),
            st.just(torch.ones(B, T, N, dtype=torch.bool)),
            st.just(np.ones((B, T, N))),  # float 0/1
            st.just(np.ones((T, N), dtype=bool)),  # wrong shape
            st.just("mask"),
        )
    )
    lengths: Any = draw(
        st.one_of(
            st.none(),
            st.lists(st.integers(1, T), min_size=B, max_size=B),
            st.lists(st.integers(1, T), min_size=B, max_size=B).map(np.array),
            st.lists(st.integers(1, T), min_size=B, max_size=B).map(lambda v: [x - 0.5 for x in v]),
            st.lists(st.integers(0, T + 1), min_size=B, max_size=B),
            st.lists(st.integers(1, T), min_size=B + 1, max_size=B + 1),
            st.just([[T] * B]),
            st.just(T),
        )
    )
    return y, dims, y_dims, names, mask, lengths


@settings(max_examples=200, **COMMON)
@given(args=constructor_args())
def test_constructor_validates_every_argument(args):
    y, dims, y_dims, names, mask, lengths = args
    B, T, N = y.shape
    before = snapshot([y, y_dims, mask, lengths])
    data, err = call(
        lambda: MultiRegionData(y, y_dims, names, mask, lengths), "y_dims", "region_names", "mask", "lengths"
    )
    assert_unchanged(before, [y, y_dims, mask, lengths])

    bad = []
    entries = np.asarray(y_dims).tolist() if not isinstance(y_dims, int) else None
    if not (
        isinstance(entries, list)
        and entries
        and all(isinstance(v, int | float) and not isinstance(v, bool) and float(v).is_integer() for v in entries)
        and all(v > 0 for v in entries)
        and sum(entries) == N
    ):
        bad.append("y_dims")
    n_regions = len(entries) if isinstance(entries, list) else 0
    if names is not None and (
        not isinstance(names, list | tuple) or len(names) != n_regions or len(set(map(str, names))) != len(names)
    ):
        bad.append("region_names")
    if mask is not None and not (
        isinstance(mask, np.ndarray | torch.Tensor)
        and mask.dtype in (bool, torch.bool)
        and tuple(mask.shape) == y.shape
    ):
        bad.append("mask")
    if lengths is not None:
        lv = np.asarray(lengths)
        if not (lv.ndim == 1 and lv.shape[0] == B and np.all(lv == np.round(lv)) and lv.min() >= 1 and lv.max() <= T):
            bad.append("lengths")
    if bad:
        assert err is not None, f"accepted bad {bad}"
        if bad == ["y_dims"] or (bad[0] == "y_dims"):
            assert_named_error(err, *bad)
        return
    assert err is None
    assert data.y_dims == tuple(dims) and data.y.shape == y.shape
    assert data.region_names == (
        tuple(map(str, names)) if names is not None else tuple(f"R{r}" for r in range(len(dims)))
    )
    expected = np.ones(y.shape, dtype=bool)
    if mask is not None:
        expected &= np.asarray(mask)
    if lengths is not None:
        expected &= np.arange(T)[None, :, None] < np.asarray(lengths)[:, None, None]
    observed = data.observed_mask().numpy()
    np.testing.assert_array_equal(observed, expected)
    np.testing.assert_array_equal(data.y.numpy(), np.where(expected, y, 0.0))


@st.composite
def ragged_trials(draw):
    """``from_ragged`` input: per trial, a list of ``(T_i, n_r)`` arrays, possibly with one fault."""
    dims = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3))
    lengths = draw(st.lists(st.integers(1, 8), min_size=1, max_size=4))
    rng = np.random.default_rng(draw(st.integers(0, 999)))
    trials: list[Any] = [[rng.normal(size=(L, n)) for n in dims] for L in lengths]
    fault = draw(st.sampled_from([None, None, "regions", "neurons", "T_within", "ndim", "empty", "zero_length"]))
    i = draw(st.integers(0, len(trials) - 1))
    if fault in ("regions", "neurons") and len(trials) == 1:
        fault = None  # a single trial sets the regions and their sizes itself
    if fault == "T_within" and len(dims) == 1:
        fault = None  # a single region sets the trial's length itself
    i = max(i, 1) if fault in ("regions", "neurons") else i
    if fault == "regions":
        trials[i] = [*trials[i], rng.normal(size=(lengths[i], 1))]
    elif fault == "neurons":
        trials[i][-1] = rng.normal(size=(lengths[i], dims[-1] + 1))
    elif fault == "T_within":
        trials[i][-1] = rng.normal(size=(lengths[i] + 1, dims[-1]))
    elif fault == "ndim":
        trials[i][0] = trials[i][0][None]
    elif fault == "empty":
        trials[i] = []
    elif fault == "zero_length":
        trials[i] = [np.zeros((0, n)) for n in dims]
    return trials, dims, lengths, fault


@settings(max_examples=100, **COMMON)
@given(args=ragged_trials())
def test_from_ragged(args):
    trials, dims, lengths, fault = args
    before = snapshot(trials)
    data, err = call(lambda: MultiRegionData.from_ragged(trials), "trials", "trial")
    assert_unchanged(before, trials)
    if fault is not None:
        assert err is not None, f"accepted ragged trials with fault {fault}"
        return
    assert err is None
    T = max(lengths)
    assert data.y.shape == (len(lengths), T, sum(dims)) and data.y_dims == tuple(dims)
    assert data.lengths is not None and data.lengths.tolist() == lengths
    observed = data.observed_mask()
    for i, L in enumerate(lengths):
        assert bool(observed[i, :L].all()) and not bool(observed[i, L:].any())
        np.testing.assert_array_equal(data.y[i, :L].numpy(), np.concatenate(trials[i], -1))


# --------------------------------------------------------------------------------------------- preset constructors
ydims_args = st.one_of(
    st.lists(st.integers(1, 6), min_size=1, max_size=3),
    st.lists(st.integers(1, 6), min_size=1, max_size=3).map(tuple),
    st.lists(st.sampled_from([1, 3, 0, -1, 2.5, "2", None, True]), min_size=1, max_size=3),
    st.sampled_from([5, [], "ab", None]),
)
T_args = st.one_of(
    st.integers(-1, 12), st.sampled_from([2.5, "5", True, None, np.int64(6), 8.0, float("nan"), float("inf")])
)
spec_args = st.one_of(
    st.builds(LatentSpec, st.integers(0, 3), st.integers(0, 2)),
    st.builds(LatentSpec, st.integers(0, 2), st.lists(st.integers(0, 2), min_size=1, max_size=3).map(tuple)),
    st.builds(LatentSpec, st.integers(20, 40), st.integers(0, 1)),  # far more latents than neurons
    st.sampled_from([(1, 0), 2, None, "2"]),  # not a LatentSpec
)


def _valid_dims(y_dims: Any) -> tuple[int, ...] | None:
    if not isinstance(y_dims, list | tuple) or not y_dims:
        return None
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in y_dims):
        return None
    return tuple(y_dims)


def _valid_T(T: Any) -> int | None:
    if isinstance(T, bool) or not isinstance(T, int | np.integer | float):
        return None
    if not np.isfinite(T) or not float(T).is_integer() or T < 1:
        return None
    return int(T)


@pytest.mark.parametrize("name", PRESETS)
@settings(max_examples=60, **COMMON)
@given(
    y_dims=ydims_args,
    T=T_args,
    spec=spec_args,
    observation=st.sampled_from(["gaussian", "gaussian", "poisson", "spikes"]),
)
def test_preset_constructor(name, y_dims, T, spec, observation):
    kw = {} if observation == "gaussian" else {"observation": observation}
    before = snapshot([y_dims])
    spec_words = ("latent_spec", "n_across", "n_within", "latent")
    with RecordWarnings():
        model, err = call(
            lambda: mbrila.build_model(name, latent_spec=spec, y_dims=y_dims, T=T, **kw),
            *spec_words,
            "y_dims",
            r"\bT\b",
            "observation",
            "engine",
            "region",
        )
    assert_unchanged(before, [y_dims])
    dims, T_ok = _valid_dims(y_dims), _valid_T(T)
    # Each problem with the arguments, as the words an error about it may use.
    problems: list[tuple[str, ...]] = []
    if dims is None:
        problems.append(("y_dims",))
    elif name == "adm" and len(dims) < 2:  # ADM's delays are between regions
        problems.append(("y_dims", "region"))
    if T_ok is None or (name == "adm" and T_ok < 2):
        problems.append((r"\bT\b",))
    if observation not in ("gaussian", "poisson") or (
        observation == "poisson" and name not in [*POISSON_PRESETS, "dlag"]
    ):
        problems.append(("observation", "engine", "poisson"))
    if not isinstance(spec, LatentSpec):
        problems.append(("latent_spec",))
    else:
        n_regions = len(y_dims) if isinstance(y_dims, list | tuple) and y_dims else 1
        within = spec.n_within if isinstance(spec.n_within, tuple) else (spec.n_within,) * n_regions
        if len(within) != n_regions or spec.n_across + sum(within) == 0:
            problems.append(spec_words)
        elif name.startswith("mdlag") and (spec.n_across < 1 or any(within)):
            problems.append(spec_words)
    if problems:
        assert err is not None, f"{name} accepted y_dims={y_dims!r}, T={T!r}, latent_spec={spec!r}, {observation=}"
        if len(problems) == 1 and T_ok != 1:
            assert_named_error(err, *problems[0])  # the one bad argument is the one named
        return
    if T_ok == 1:  # a single time bin: built, or refused with a message about T
        if err is not None:
            assert_named_error(err, r"\bT\b")
            return
    assert err is None, f"{name} refused legal arguments: {err}"
    assert isinstance(spec, LatentSpec) and dims is not None
    assert model.y_dims == dims and model.T == T_ok
    assert model.latent_dims == spec.dims_per_region(len(dims))


# ------------------------------------------------------------------------------------------ fit / infer / predict
#: ``FitCase.constant`` for "every neuron".
ALL = 99


@dataclass
class FitCase:
    """A tiny data set and model for one fit; the arrays are drawn from ``seed``."""

    dims: list[int]
    B: int
    T: int
    n_across: int
    n_within: int
    data_dtype: Any
    model_dtype: torch.dtype
    scale: float
    constant: int  # neurons set to a constant (or silent, for counts), from the first; ALL: every neuron
    duplicate: bool  # the last neuron copies the first
    missing: str  # "none"; NaN "entries", a whole "neuron" or "trial" (nan_as_missing=True); "ragged" lengths
    max_iter: int
    seed: int

    def arrays(self, counts: bool) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        B, T, N = self.B, self.T, sum(self.dims)
        x = rng.normal(size=(B, T, 2))
        if counts:
            rate = np.exp(0.5 * x @ rng.normal(size=(2, N)) + rng.normal(size=N) * 0.3)
            y = rng.poisson(rate).astype(np.int64)
            y[..., : self.constant] = 0  # silent neurons
        else:
            y = (x @ rng.normal(size=(2, N)) + 0.5 * rng.normal(size=(B, T, N))) * self.scale
            y[..., : self.constant] = 2.0 * self.scale  # constant neurons
        if self.duplicate and N > 1:
            y[..., -1] = y[..., 0]
        nan = self.missing in ("entries", "neuron", "trial")
        y = y.astype(np.float64 if counts and nan else self.data_dtype if not counts else np.int64)
        if self.missing == "entries":
            y.reshape(-1)[rng.integers(0, y.size, 2)] = np.nan
        elif self.missing == "neuron":
            y[..., -1] = np.nan
        elif self.missing == "trial":
            y[0] = np.nan
        out, o = {}, 0
        for r, n in enumerate(self.dims):
            out[f"R{r}"] = y[..., o : o + n].copy()
            o += n
        return out


@st.composite
def fit_cases(draw, name: str) -> FitCase:
    mdlag = name.startswith("mdlag")
    R = draw(st.integers(2 if name == "adm" else 1, 3))  # ADM's delays need two regions
    n_across = draw(st.integers(1, 4) if mdlag else st.integers(0, 2))
    missing = draw(st.sampled_from(["none", "none", "entries", "neuron", "trial", "ragged"]))
    return FitCase(
        dims=draw(st.lists(st.integers(1, 6), min_size=R, max_size=R)),
        B=draw(st.integers(2 if missing == "trial" else 1, 6)),  # a data set with some observed trial
        T=draw(st.sampled_from([5, 2, 3, 8, 12, 1])),
        n_across=n_across,
        n_within=0 if mdlag else draw(st.integers(0 if n_across else 1, 2)),
        data_dtype=draw(st.sampled_from([np.float64, np.float32])),
        model_dtype=draw(st.sampled_from([torch.float64, torch.float64, torch.float32])),
        scale=draw(st.sampled_from([1.0, 1.0, 1e-6, 1e6])),
        constant=draw(st.sampled_from([0, 0, 1, ALL])),
        duplicate=draw(st.booleans()),
        missing=missing,
        max_iter=draw(st.integers(2, 4)),
        seed=draw(st.integers(0, 2**16)),
    )


FIT_COMBOS = [(n, "gaussian") for n in PRESETS] + [(n, "poisson") for n in POISSON_PRESETS]
#: Engines without a float32-safe factorisation may refuse a float32 fit, if they say to use float64.
DENSE_PRESETS = {"gpfa_exact", "dlag", "mdlag", "mdlag_freq"}
OBSERVED_KINDS = ["neurons", "no_neurons", "entries", "too_long", "trials_by_neurons", "time_by_neurons", "float"]


def _model_kwargs(name: str, observation: str, dtype: torch.dtype) -> dict[str, Any]:
    kw: dict[str, Any] = {"dtype": dtype}
    if observation == "poisson":
        kw["observation"] = "poisson"
    if name == "adm":
        kw["deflation"] = Deflation(max_iter=2)
    return kw


def _observed(kind: str, B: int, T: int, N: int, seed: int) -> tuple[Any, bool]:
    """An ``observed`` argument of ``predict`` and whether it is valid."""
    g = torch.Generator().manual_seed(seed)
    if kind == "neurons":
        m = torch.rand(N, generator=g) > 0.5
        m[int(torch.randint(N, (1,), generator=g))] = True
        return m, True
    if kind == "no_neurons":
        return torch.zeros(N, dtype=torch.bool), True
    if kind == "entries":
        return torch.rand(B, T, N, generator=g) > 0.3, True
    if kind == "too_long":
        return torch.ones(N + 1, dtype=torch.bool), False
    if kind == "trials_by_neurons":
        return np.ones((B, N), dtype=bool), False
    if kind == "time_by_neurons":
        return torch.ones(T, N, dtype=torch.bool), False
    return torch.ones(N, dtype=torch.float64), False  # a float 0/1 mask


def _every_neuron_constant(data: MultiRegionData) -> bool:
    y, m = data.y, data.observed_mask()
    for n in range(data.N):
        v = y[..., n][m[..., n]]
        if v.numel() and not bool((v == v[0]).all()):
            return False
    return True


def _check_fit(name: str, observation: str, case: FitCase, observed_kind: str) -> None:
    counts = observation == "poisson"
    arrays = case.arrays(counts)
    arrays_before = snapshot(arrays)
    lengths = [case.T] + [int(v) for v in np.random.default_rng(case.seed).integers(1, case.T + 1, case.B - 1)]
    data = MultiRegionData.from_regions(
        arrays, nan_as_missing=case.missing != "none", lengths=lengths if case.missing == "ragged" else None
    )
    data_before = snapshot([data.y, data.mask])
    B, T, N = data.n_trials, data.T, data.N
    allowed: list[str] = []
    if T == 1:
        allowed += [r"\bT\b", "bins"]
    if case.missing == "neuron":  # a neuron never observed: nothing to learn its loadings from
        allowed += ["mask", "missing"]
    if _every_neuron_constant(data):  # no signal at all: fitted with a warning, or refused saying so
        allowed += ["constant"]
    if case.missing in ("entries", "neuron", "trial") and name == "mdlag_freq":
        allowed += ["missing", "mask", "lengths", "complete"]
    if case.missing == "ragged" and name == "mdlag_freq" and min(lengths) < 2:
        allowed += ["lengths"]  # the circulant engine needs 2 bins per trial
    if case.model_dtype == torch.float32 and name in DENSE_PRESETS:
        allowed += ["float64"]
    spec = LatentSpec(case.n_across, case.n_within)
    kw = _model_kwargs(name, observation, case.model_dtype)
    with RecordWarnings() as log:
        model, err = call(lambda: mbrila.build_model(name, latent_spec=spec, y_dims=data.y_dims, T=T, **kw), *allowed)
        if err is not None:
            event(f"build refused: {str(err)[:40]}")
            return
        result, err = call(lambda: model.fit(data, max_iter=case.max_iter, progress=False), *allowed)
        assert_unchanged(arrays_before, arrays)
        assert_unchanged(data_before, [data.y, data.mask])
        if err is not None:
            event(f"fit refused: {str(err)[:40]}")
            return
        event("fitted")
        # Legal but ill-posed data fit to the end, with a warning that says what is wrong.
        said = " ".join(str(w.message) for w in log if issubclass(w.category, UserWarning))
        if case.constant:
            assert "constant" in said or "zeros" in said, f"no warning for a constant neuron: {said!r}"
        if case.duplicate and N > 1 and not case.constant and case.missing == "none":
            assert "identical" in said, f"no warning for a duplicated neuron: {said!r}"
        if not name.startswith("mdlag") and any(d > n for d, n in zip(model.latent_dims, data.y_dims, strict=True)):
            assert "latents" in said, f"no warning for {model.latent_dims} latents on {data.y_dims} neurons: {said!r}"
        assert 0 <= result.n_iter <= case.max_iter
        assert len(result.score_trace) == result.n_iter + 1
        assert np.all(np.isfinite(result.score_trace)), f"score trace {result.score_trace}"

        post = model.infer(data)
        assert post.mean.shape == (B, T, sum(model.latent_dims))
        assert_finite(post.mean, "infer().mean")
        assert_finite(post.cov, "infer().cov")
        assert_finite(post.log_likelihood, "infer().log_likelihood")

        pred = model.predict(data)
        assert pred.shape == (B, T, N)
        assert_finite(pred, "predict()")
        if counts:
            assert bool((pred >= 0).all()), "negative predicted rates"

        one = model.predict(data[[B - 1]])  # new data: one trial
        assert one.shape == (1, T, N)
        assert_finite(one, "predict() on one trial")

        observed, valid = _observed(observed_kind, B, T, N, case.seed)
        observed_before = snapshot(observed)
        words = ["observed"] + (["missing", "complete"] if name == "mdlag_freq" else [])
        out, err = call(lambda: model.predict(data, observed=observed), *words)
        assert_unchanged(observed_before, observed)
        assert_unchanged(data_before, [data.y, data.mask])
        if observed_kind == "neurons" or (observed_kind == "entries" and name != "mdlag_freq"):
            assert err is None, f"predict refused observed={observed_kind}: {err}"
        elif not valid:
            assert err is not None, f"predict accepted observed of shape {tuple(observed.shape)} ({observed.dtype})"
        if err is None:
            assert out.shape == (B, T, N)
            assert_finite(out, f"predict(observed={observed_kind})")


@pytest.mark.parametrize(("name", "observation"), FIT_COMBOS)
def test_fit_infer_predict(name, observation):
    """Fit a tiny, possibly degenerate data set (T = 1, one trial, constant / silent / duplicated neurons, missing
    entries, scale 1e±6, more latents than neurons, float32) for a few iterations; infer and predict must be finite
    and the inputs unchanged."""

    @settings(max_examples=6 if name == "adm" else 12, **COMMON)
    @given(case=fit_cases(name), observed_kind=st.sampled_from(OBSERVED_KINDS))
    def run(case, observed_kind):
        _check_fit(name, observation, case, observed_kind)

    # Cases that must always run (each found a defect once), besides the drawn ones.
    base = FitCase(
        dims=[2, 2], B=3, T=5, n_across=1, n_within=0, data_dtype=np.float64, model_dtype=torch.float64,
        scale=1.0, constant=0, duplicate=False, missing="none", max_iter=2, seed=0,
    )  # fmt: skip
    cases = [
        replace(base, constant=ALL),  # every neuron constant (silent, for counts)
        replace(base, dims=[3, 1], missing="neuron"),  # a neuron never observed
        replace(base, B=1, missing="ragged"),  # lengths given, every trial full length
        replace(base, missing="trial"),  # a whole trial missing
    ]
    if name != "adm":  # ADM needs two regions
        cases.append(replace(base, dims=[2], n_across=3))  # one region, more latents than neurons
    for case in cases:
        run = example(case=case, observed_kind="neurons")(run)
    run()


_TINY = np.random.default_rng(0).normal(size=(3, 6, 4))


@settings(max_examples=40, **COMMON)
@given(
    max_iter=st.one_of(st.integers(-2, 3), st.sampled_from([2.5, "3", True, float("nan")])),
    tol=st.one_of(st.none(), st.sampled_from([1e-3, 0.0, float("inf"), -1.0, float("nan"), "x"])),
    callback=st.sampled_from([None, "stop", 5]),
    data_kind=st.sampled_from(["data", "data", "array", "dict"]),
)
def test_fit_arguments(max_iter, tol, callback, data_kind):
    """``fit``'s own arguments: iteration counts, tolerances and callbacks that are not what they should be get a
    ValueError / TypeError naming them."""
    data = MultiRegionData.from_regions([_TINY[..., :2], _TINY[..., 2:]])
    arg = {"data": data, "array": _TINY, "dict": {"R0": _TINY[..., :2], "R1": _TINY[..., 2:]}}[data_kind]
    cb = (lambda k, score: k >= 1) if callback == "stop" else callback
    model = mbrila.build_model("gpfa_exact", latent_spec=LatentSpec(1, 0), y_dims=(2, 2), T=6)
    before = snapshot([_TINY])
    with RecordWarnings():
        result, err = call(
            lambda: model.fit(arg, max_iter=max_iter, tol=tol, callback=cb, progress=False),
            "max_iter",
            "tol",
            "callback",
            "MultiRegionData",
        )
    assert_unchanged(before, [_TINY])
    ok_iter = type(max_iter) is int and max_iter >= 0
    ok_tol = tol is None or (isinstance(tol, float) and tol >= 0)
    ok_cb = callback != 5
    if not (ok_iter and ok_tol and ok_cb and data_kind == "data"):
        assert err is not None, f"fit accepted max_iter={max_iter!r}, tol={tol!r}, callback={callback!r}, {data_kind}"
        return
    assert err is None
    assert result.n_iter <= (min(max_iter, 1) if callback == "stop" else max_iter)
    assert len(result.score_trace) == result.n_iter + 1 and np.all(np.isfinite(result.score_trace))


MISMATCHES = ["T_shorter", "T_longer", "neurons", "region_order"]


@pytest.mark.parametrize("name", ["gpfa_exact", "dlag", "dlag_ssm", "lds", "mdlag"])
@settings(max_examples=8, **COMMON)
@given(kind=st.sampled_from(MISMATCHES), n=st.integers(2, 4), T=st.integers(4, 8), seed=st.integers(0, 999))
def test_data_that_does_not_match_the_model(name, kind, n, T, seed):
    """Data whose T, neuron counts or region order differ from the model's: a ValueError naming what differs, or
    (for a different T, where a preset handles it) correct finite outputs."""
    rng = np.random.default_rng(seed)
    regions = {"A": rng.normal(size=(3, T, n)), "B": rng.normal(size=(3, T, n))}
    data = MultiRegionData.from_regions(regions)
    spec = LatentSpec(1, 0)
    with RecordWarnings():
        model = mbrila.build_model(name, latent_spec=spec, y_dims=data.y_dims, T=T)
        if kind.startswith("T_"):
            T2 = T - 2 if kind == "T_shorter" else T + 3
            other = MultiRegionData.from_regions({k: rng.normal(size=(3, T2, n)) for k in regions})
            result, err = call(lambda: model.fit(other, max_iter=2, progress=False), r"\bT\b")
            if err is None:
                assert len(result.score_trace) == result.n_iter + 1
                assert model.delays().shape[0] >= T2, "delays() do not cover the data the model was fitted on"
                assert_finite(model.predict(other), "predict()")
            model.fit(data, max_iter=2, progress=False)
            pred, err = call(lambda: model.predict(other), r"\bT\b")
            if err is None:
                assert pred.shape == other.y.shape
                assert_finite(pred, "predict()")
            return
        model.fit(data, max_iter=2, progress=False)
        if kind == "neurons":
            other = MultiRegionData.from_regions({"A": regions["A"], "B": regions["B"][..., :-1]})
            _, err = call(lambda: model.predict(other), "y_dims")
        else:
            other = MultiRegionData.from_regions({"B": regions["B"], "A": regions["A"]})
            _, err = call(lambda: model.predict(other), "region")
        assert err is not None, f"predict accepted data with {kind} different from the training data"


# --------------------------------------------------------------------------------------------------------- files
#: Pickle opcodes that reach a callable (GLOBAL, INST, STACK_GLOBAL, EXT*, REDUCE, BUILD, OBJ, NEWOBJ*): removed
#: from random bytes so that unpickling a fuzzed file can never run anything.
_CALLING_OPCODES = frozenset(b"cioRb") | {0x81, 0x82, 0x83, 0x84, 0x92, 0x93}


def _harmless(raw: bytes) -> bytes:
    return bytes(b for b in raw if b not in _CALLING_OPCODES)


garbage_bytes = st.one_of(
    st.binary(max_size=300).map(_harmless),
    st.text(max_size=200).map(lambda s: _harmless(s.encode("utf-8"))),
    st.sampled_from(
        [
            b"",
            b"region,A\n1,2,3\n",
            b'{"A": [[[1.0]]]}',
            b"\x80\x04",  # a pickle header, nothing else
            b"PK\x03\x04garbage",  # a zip header, nothing else
            b"\x93NUMPY\x01\x00",  # a truncated .npy header
        ]
    ),
)


@dataclass
class FileCase:
    """A data file to write: its content kind, the fault in it and its suffix."""

    fault: str
    suffix: str
    dims: list[int]
    B: int
    T: int
    int_counts: bool
    cut: float  # where a truncated file is cut, as a fraction of its length
    seed: int


FILE_FAULTS = [
    None,
    None,
    "nan",
    "nan_as_missing",
    "inf",
    "ndim",
    "trials",
    "T",
    "empty_axis",
    "wrong_key",
    "int_keys",
    "duplicate_keys",
    "no_regions",
    "bool",
    "complex",
    "object",
    "ragged_list",
    "not_a_dict",
    "truncated",
]


def _file_content(case: FileCase) -> tuple[Any, list[str] | None]:
    """The object to save and the region_names to ask for."""
    rng = np.random.default_rng(case.seed)

    def arr(B: int, T: int, n: int) -> np.ndarray:
        return rng.poisson(2.0, size=(B, T, n)) if case.int_counts else rng.normal(size=(B, T, n))

    obj: dict[Any, Any] = {f"R{r}": arr(case.B, case.T, n) for r, n in enumerate(case.dims)}
    names = None
    last = f"R{len(case.dims) - 1}"
    f = case.fault
    if f in ("nan", "nan_as_missing", "inf"):
        obj["R0"] = obj["R0"].astype(float)
        obj["R0"].reshape(-1)[0] = np.inf if f == "inf" else np.nan
    elif f == "ndim":
        obj[last] = obj[last][0]
    elif f == "trials":
        obj["extra"] = arr(case.B + 1, case.T, 1)
    elif f == "T":
        obj["extra"] = arr(case.B, case.T + 1, 1)
    elif f == "empty_axis":
        obj[last] = arr(case.B, case.T, 0)
    elif f == "wrong_key":
        names = ["R0", "missing_region"]
    elif f == "int_keys":
        obj = {r: v for r, v in enumerate(obj.values())}  # fine: keys are read as strings
    elif f == "duplicate_keys":
        obj = {0: obj["R0"], "0": obj["R0"]}
    elif f == "no_regions":
        obj = {}
    elif f == "bool":
        obj[last] = obj[last] > 0
    elif f == "complex":
        obj[last] = obj[last] + 1j
    elif f == "object":
        obj[last] = np.array([[["a"]]], dtype=object)
    elif f == "ragged_list":
        obj[last] = [[[1.0, 2.0]], [[1.0]]]
    elif f == "not_a_dict":
        return list(obj.values()), None
    return obj, names


def _write(path: Path, obj: Any) -> None:
    if path.suffix.lower() == ".npz":
        if isinstance(obj, dict):
            np.savez(
                path, **{str(k): np.asarray(v, dtype=object) if isinstance(v, list) else v for k, v in obj.items()}
            )
        else:
            np.save(path.with_suffix(".npy"), np.stack(obj) if obj else np.zeros(0))
            path.with_suffix(".npy").rename(path)
    else:
        path.write_bytes(pickle.dumps(obj))


@settings(max_examples=150, **COMMON)
@given(
    case=st.builds(
        FileCase,
        fault=st.sampled_from(FILE_FAULTS),
        suffix=st.sampled_from([".pkl", ".pickle", ".npz", ".PKL", ".txt"]),
        dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
        B=st.integers(1, 4),
        T=st.integers(1, 6),
        int_counts=st.booleans(),
        cut=st.floats(0.0, 0.99),
        seed=st.integers(0, 999),
    )
)
def test_load_data_files(case: FileCase):
    """A valid file loads to the arrays it holds; every faulty one raises a ValueError naming the file."""
    obj, names = _file_content(case)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"recording{case.suffix}"
        if case.suffix == ".txt":
            path.write_text("not a recording\n")
        else:
            _write(path, obj)
        if case.fault == "truncated":
            raw = path.read_bytes()
            path.write_bytes(raw[: int(case.cut * len(raw))])
        kw = {"nan_as_missing": True} if case.fault == "nan_as_missing" else {}
        data, err = call(lambda: load_data(path, region_names=names, **kw), str(path))
    valid = case.fault in (None, "int_keys", "nan_as_missing") and case.suffix != ".txt"
    if not valid:
        assert err is not None, f"load_data accepted a file with fault {case.fault!r} ({case.suffix})"
        assert isinstance(err, ValueError)
        return
    assert err is None
    expected = np.concatenate([np.asarray(v, dtype=np.float64) for v in obj.values()], -1)
    assert data.y_dims == tuple(case.dims) and data.region_names == tuple(
        f"R{r}" if case.fault != "int_keys" else str(r) for r in range(len(case.dims))
    )
    if case.fault == "nan_as_missing":
        assert data.mask is not None and not bool(data.mask.reshape(-1)[0])
        expected.reshape(-1)[0] = 0.0
    np.testing.assert_allclose(data.y.double().numpy(), expected, rtol=1e-6)


@settings(max_examples=60, **COMMON)
@given(raw=garbage_bytes, suffix=st.sampled_from([".pkl", ".npz"]))
def test_load_data_garbage(raw, suffix):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"junk{suffix}"
        path.write_bytes(raw)
        data, err = call(lambda: load_data(path), str(path))
    assert err is not None or isinstance(data, MultiRegionData)


_MODEL_BYTES: dict[str, bytes] = {}


def _model_file_bytes() -> bytes:
    """The bytes of a small saved model (built once per process)."""
    if "gpfa" not in _MODEL_BYTES:
        model = mbrila.build_model("gpfa_exact", latent_spec=LatentSpec(1, 0), y_dims=(2, 2), T=4)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pt"
            model.save(str(path))
            _MODEL_BYTES["gpfa"] = path.read_bytes()
    return _MODEL_BYTES["gpfa"]


def _torch_saved(obj: Any) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


model_file_garbage = st.one_of(
    garbage_bytes,
    st.floats(0.0, 0.999).map(lambda f: _model_file_bytes()[: int(f * len(_model_file_bytes()))]),
    st.sampled_from(["tensor", "list", "wrong_format", "wrong_version", "no_model"]).map(
        lambda k: _torch_saved(
            {
                "tensor": torch.zeros(3),
                "list": [1, 2],
                "wrong_format": {"format": "something-else", "format_version": 1},
                "wrong_version": {"format": "mbrila-model", "format_version": 999},
                "no_model": {"format": "mbrila-model"},
            }[k]
        )
    ),
)


@settings(max_examples=60, **COMMON)
@given(raw=model_file_garbage)
def test_load_model_garbage(raw):
    """``mbrila.load`` on random bytes, text, a truncated model file or a torch file of something else: a
    ValueError that names the file (never an UnpicklingError, OSError or RuntimeError from the reader)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.pt"
        path.write_bytes(raw)
        with RecordWarnings():
            with pytest.raises(ValueError) as info:
                mbrila.load(str(path))
    assert str(path) in str(info.value)


def test_load_model_round_trip():
    """The file the garbage test truncates is a valid model file: it loads and predicts identically."""
    rng = np.random.default_rng(0)
    data = MultiRegionData.from_regions([rng.normal(size=(3, 4, 2)), rng.normal(size=(3, 4, 2))])
    model = mbrila.build_model("gpfa_exact", latent_spec=LatentSpec(1, 0), y_dims=(2, 2), T=4)
    with RecordWarnings():
        model.fit(data, max_iter=2, progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.pt"
            model.save(str(path))
            loaded = mbrila.load(str(path))
    assert torch.equal(loaded.predict(data), model.predict(data))
