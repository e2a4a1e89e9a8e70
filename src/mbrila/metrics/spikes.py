"""Poisson likelihood scores of predicted firing rates: negative log-likelihood, bits per spike, co-smoothing.

Counts ``y`` and predicted rates ``λ`` are ``(trials, T, N)`` (numpy or torch); an entry whose count is NaN is
not scored (that is how the Neural Latents Benchmark marks unscored entries). Over the scored entries ``S``::

    NLL(λ; y) = Σ_{itn ∈ S} λ_{itn} − y_{itn} log λ_{itn} + log Γ(y_{itn} + 1)        (λ = 0 is replaced by 1e-9)
    λ⁰_{itn}  = Σ_{i't' : (i't'n) ∈ S} y_{i't'n} / |{i't' : (i't'n) ∈ S}|              (each neuron's mean count)
    bps(λ; y) = (NLL(λ⁰; y) − NLL(λ; y)) / (Σ_{itn ∈ S} y_{itn} · ln 2)

``bps`` is the information the predicted rates carry about the spikes beyond each neuron's mean rate, in bits
per spike: 0 for the mean-rate predictor, negative for anything worse. Co-smoothing bits per spike (co-bps) is
``bps`` restricted to the held-out neurons of the test trials (entries not held out, or not recorded, leave
``S``); the null rate ``λ⁰`` is then each held-out neuron's mean over its scored entries.

This matches ``nlb_tools.evaluation.neg_log_likelihood`` and ``nlb_tools.evaluation.bits_per_spike`` of the
Neural Latents Benchmark (Pei et al., 2021): the null rate there is the ``nanmean`` of the counts over every axis
but the last, tiled to the data's shape, and zero rates become 1e-9 before the log. ``nlb_tools`` pins
pandas ≤ 1.3.4, which does not install on Python 3.11, so it is not a dependency; the tests check the numbers
against a hand computation and an independent loop implementation instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.special import gammaln

from mbrila.metrics.matching import as_numpy
from mbrila.metrics.reconstruction import _bool_mask, _names, region_slices

#: What a zero predicted rate is replaced by before taking its log (the value ``nlb_tools`` uses).
ZERO_RATE = 1e-9
#: Smallest rate a model's prediction is clipped to before it is scored (a Gaussian model can predict below 0).
RATE_FLOOR = ZERO_RATE


def _first_index(bad: np.ndarray) -> tuple[int, ...]:
    """The first True entry of ``bad`` in row-major order, as a tuple of ints."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), bad.shape))


def _same_shape(rates: np.ndarray, counts: np.ndarray) -> None:
    if rates.shape != counts.shape:
        raise ValueError(
            f"rates {rates.shape} must have the shape of counts {counts.shape}; pass one predicted rate per "
            "count (an unscored entry can carry a NaN count)."
        )


def _poisson_nll(rates: np.ndarray, counts: np.ndarray) -> float:
    """``NLL`` over the non-NaN counts; ``rates`` and ``counts`` are float64 arrays of one shape."""
    scored = ~np.isnan(counts)
    # Rates at unscored entries are never used, so a model may leave them NaN (e.g. outside a trial's length).
    bad = scored & ~(np.isfinite(rates) & (rates >= 0))
    if bad.any():
        idx = _first_index(bad)
        raise ValueError(
            f"rates must be finite and non-negative wherever the count is scored; {int(bad.sum())} entries are "
            f"not, the first at index {idx} with value {float(rates[idx])}. Pass Poisson rates (e.g. exp of the "
            "log-rate), not log-rates or centred predictions."
        )
    r = np.where(rates[scored] == 0, ZERO_RATE, rates[scored])
    y = counts[scored]
    return float(np.sum(r - y * np.log(r) + gammaln(y + 1.0)))


def poisson_nll(rates: Any, counts: Any) -> float:
    """Total Poisson negative log-likelihood ``Σ λ − y log λ + log Γ(y + 1)`` over the non-NaN counts.

    Parameters
    ----------
    rates : predicted rates ``λ`` (expected counts per bin), any shape; must be finite and ≥ 0 where the
        count is scored. A zero rate is replaced by 1e-9 before the log, as ``nlb_tools`` does.
    counts : spike counts ``y`` of the same shape; NaN marks an entry that is not scored.

    Returns
    -------
    The summed negative log-likelihood in nats (0 when no entry is scored).
    """
    r, y = as_numpy(rates, "rates"), as_numpy(counts, "counts")
    _same_shape(r, y)
    return _poisson_nll(r, y)


def _null_rates(counts: np.ndarray) -> np.ndarray:
    """Each neuron's mean count over its scored entries, tiled to ``counts.shape`` (NLB's null model)."""
    scored = ~np.isnan(counts)
    axes = tuple(range(counts.ndim - 1))
    n_scored = scored.sum(axis=axes, keepdims=True)
    total = np.where(scored, counts, 0.0).sum(axis=axes, keepdims=True)
    # A neuron with no scored entry never enters the likelihood; giving it 0 (not NaN) avoids nanmean's warning.
    mean = np.divide(total, n_scored, out=np.zeros_like(total), where=n_scored > 0)
    return np.broadcast_to(mean, counts.shape)


def _bits_per_spike(rates: np.ndarray, counts: np.ndarray, what: str = "counts") -> float:
    n_spikes = float(np.nansum(counts))
    if n_spikes <= 0:
        n_scored = int((~np.isnan(counts)).sum())
        raise ValueError(
            f"bits per spike divides by the number of spikes, but the {n_scored} scored entries of {what} hold no "
            "spike. Score data that contain spikes (check that the held-out neurons and the mask select the "
            "entries you mean)."
        )
    nll_model = _poisson_nll(rates, counts)
    nll_null = _poisson_nll(_null_rates(counts), counts)
    return (nll_null - nll_model) / (n_spikes * np.log(2.0))


def _trials_time_neurons(rates: np.ndarray, counts: np.ndarray) -> None:
    if counts.ndim != 3:
        raise ValueError(f"counts must have shape (trials, T, N); got {counts.shape}. Add singleton axes if needed.")
    _same_shape(rates, counts)


def bits_per_spike(rates: Any, counts: Any) -> float:
    """Bits per spike of ``rates`` against each neuron's mean rate (NLB's ``bits_per_spike``; module docstring).

    Parameters
    ----------
    rates : ``(trials, T, N)`` predicted rates (expected counts per bin), finite and ≥ 0 where scored.
    counts : ``(trials, T, N)`` spike counts; NaN entries are not scored (nor used for the null rates).

    Returns
    -------
    ``(NLL_null − NLL_model) / (Σ counts · ln 2)``; 0 for the mean-rate predictor, > 0 when ``rates`` explain
    the spikes better than it.
    """
    r, y = as_numpy(rates, "rates"), as_numpy(counts, "counts")
    _trials_time_neurons(r, y)
    return _bits_per_spike(r, y)


def co_bps(
    counts: Any,
    rates: Any,
    heldout: Any,
    y_dims: Sequence[int] | None = None,
    region_names: Sequence[str] | None = None,
    mask: Any = None,
) -> dict[str, float]:
    """Co-smoothing bits per spike on the held-out neurons, overall and per region.

    Parameters
    ----------
    counts : ``(trials, T, N)`` recorded spike counts of the test trials (NaN = not scored).
    rates : ``(trials, T, N)`` predicted rates; only the scored held-out entries are used.
    heldout : bool ``(N,)`` (True = neuron hidden from inference) or ``(trials, T, N)`` per entry.
    y_dims : neurons per region; when given, one score per region is added.
    region_names : names used in the keys (default ``"R0", "R1", …``); needs ``y_dims``.
    mask : optional bool, broadcastable to ``(trials, T, N)``, True = recorded; unrecorded entries are not scored.

    Returns
    -------
    ``{"co_bps": …}`` over all held-out neurons, plus ``"co_bps_<name>"`` for each region whose scored entries
    hold at least one spike (a region with no held-out neuron, or no held-out spike, is left out).
    """
    y, r = as_numpy(counts, "counts"), as_numpy(rates, "rates")
    _trials_time_neurons(r, y)
    scored = _bool_mask(heldout, y.shape, "heldout")
    if mask is not None:
        scored = scored & _bool_mask(mask, y.shape, "mask")
    # NaN is how bits_per_spike (and NLB) leave an entry out of both the model and the null likelihood.
    y_held = np.where(scored, y, np.nan)
    out = {"co_bps": _bits_per_spike(r, y_held, "the held-out counts")}
    if y_dims is None:
        if region_names is not None:
            raise ValueError("region_names needs y_dims (the neurons per region) to know which neurons they name.")
        return out
    slices = region_slices(y_dims)
    if slices[-1].stop != y.shape[-1]:
        raise ValueError(f"y_dims {list(y_dims)} sum to {slices[-1].stop} but the data have N = {y.shape[-1]}.")
    for name, sl in zip(_names(region_names, len(slices)), slices, strict=True):
        if np.nansum(y_held[..., sl]) > 0:
            out[f"co_bps_{name}"] = _bits_per_spike(r[..., sl], y_held[..., sl])
    return out
