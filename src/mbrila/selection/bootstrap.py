"""Bootstrap confidence intervals for delays and timescales.

Replicate ``b`` resamples the ``n`` trials with replacement, ``I_b ~ Uniform{0..n−1}^n``, and refits the model on
``y[I_b]`` starting from the fitted parameters θ̂ (a warm start: the replicate stays in θ̂'s basin, which is what
the interval should describe; it saves the initialisation, but EM's slow final approach to the replicate's optimum
still takes about as many iterations as a cold fit's). Latents are identified only up to order and
sign, so each replicate's latents are matched back to the original's before its estimates are read: on the
original trials, the replicate's posterior means of the across latents (as region 0 sees them) are matched to
θ̂'s by correlation (:func:`mbrila.metrics.match_latents`), and each region's within latents likewise.

From the ``B`` matched replicates: the percentile interval ``[q_{(1−level)/2}, q_{(1+level)/2}]`` of every delay
``δ_k^r(t)`` (pointwise in time for time-varying delays) and every timescale, and ``P(δ > 0)``, the fraction of
replicates in which a delay is positive (near 1 or 0: the direction of the interaction is clear).
"""

from __future__ import annotations

import copy
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from mbrila.core import MultiRegionData
from mbrila.inference.em import quiet_fits
from mbrila.metrics import match_latents
from mbrila.selection.workers import check_workers, run_tasks


@dataclass
class Interval:
    """A point estimate with its bootstrap samples and percentile interval (arrays of one shape, ``lower ≤ upper``).

    ``samples`` has one more leading axis (replicates); entries a replicate did not have (an ARD latent switched
    off in a region) are NaN and left out of the percentiles.
    """

    estimate: np.ndarray
    samples: np.ndarray
    lower: np.ndarray
    upper: np.ndarray

    @property
    def width(self) -> np.ndarray:
        return self.upper - self.lower

    def covers(self, value: Any) -> np.ndarray:
        """Bool: ``lower ≤ value ≤ upper``, elementwise."""
        v = np.asarray(value, dtype=np.float64)
        return (self.lower <= v) & (v <= self.upper)


@dataclass
class BootstrapResult:
    """What :func:`bootstrap_delays` measured.

    Attributes
    ----------
    delays : ``(T, n_regions, n_across)`` delays (bins); for constant delays every time bin holds the same value.
    fraction_positive : ``(T, n_regions, n_across)`` share of replicates with ``δ > 0``.
    timescales_across : ``(n_across,)``; timescales_within : one ``(n_within_r,)`` interval per region.
    constant : whether the delays are constant in time.
    level : the interval's coverage level.
    region_names : the data's regions (region 0 is the delay reference).
    n_iter, wall_time_s : per replicate (the warm-started refit).
    match_corr : ``(n_boot, n_across)`` correlation of each matched replicate latent with the original's.
    total_time_s : seconds the whole bootstrap took.
    """

    delays: Interval
    fraction_positive: np.ndarray
    timescales_across: Interval
    timescales_within: list[Interval]
    constant: bool
    level: float
    region_names: tuple[str, ...]
    n_iter: list[int]
    wall_time_s: list[float]
    match_corr: np.ndarray
    total_time_s: float = 0.0

    @property
    def n_boot(self) -> int:
        return int(self.delays.samples.shape[0])

    def delay_table(self) -> list[dict[str, Any]]:
        """Per non-reference region and across latent: estimate, interval and ``P(δ > 0)`` (time-averaged for
        time-varying delays, with the interval's mean width)."""
        rows = []
        _, R, K = self.delays.estimate.shape
        for r in range(1, R):
            for k in range(K):
                sl = (slice(None), r, k)
                rows.append(
                    {
                        "region": self.region_names[r],
                        "latent": k,
                        "estimate": float(np.mean(self.delays.estimate[sl])),
                        "lower": float(np.mean(self.delays.lower[sl])),
                        "upper": float(np.mean(self.delays.upper[sl])),
                        "width": float(np.mean(self.delays.width[sl])),
                        "fraction_positive": float(np.mean(self.fraction_positive[sl])),
                    }
                )
        return rows

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        out: dict[str, Any] = {
            "n_boot": self.n_boot,
            "level": self.level,
            "constant_delays": self.constant,
            "delays": self.delay_table(),
            "timescales_across": {
                "estimate": self.timescales_across.estimate.tolist(),
                "lower": self.timescales_across.lower.tolist(),
                "upper": self.timescales_across.upper.tolist(),
            },
            "replicate_n_iter": self.n_iter,
            "replicate_wall_time_s": self.wall_time_s,
            "min_match_corr": float(np.nanmin(self.match_corr)) if self.match_corr.size else None,
        }
        if not self.constant:
            out["delays_over_time"] = {
                "estimate": self.delays.estimate.tolist(),
                "lower": self.delays.lower.tolist(),
                "upper": self.delays.upper.tolist(),
            }
        return out


def _numpy(x: torch.Tensor) -> np.ndarray:
    return x.detach().to("cpu", torch.float64).numpy()


def reference_latents(model: Any, data: MultiRegionData) -> list[np.ndarray]:
    """The latents replicates are matched to: region 0's across latents, then each region's within latents, as
    posterior means ``(trials, T, k)`` on ``data``."""
    post = model.infer(data)
    n_a = model.latent_spec.n_across
    out = [_numpy(post.region(0)[..., :n_a])]
    out += [_numpy(post.region(r)[..., n_a:]) for r in range(model.n_regions)]
    return out


def _perm(fitted: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Permutation of ``fitted``'s latents onto ``ref``'s and the matched correlations (identity when empty)."""
    K = ref.shape[-1]
    if K == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    m = match_latents(fitted, ref)
    return m.perm, m.corr


def match_replicate(
    latents: list[np.ndarray], reference: list[np.ndarray], delays: np.ndarray, timescales: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """A replicate's delays and timescales with its latents in the original's order.

    Parameters
    ----------
    latents, reference : as :func:`reference_latents`, for the replicate and for the original model.
    delays : the replicate's ``(T, R, n_across)``; timescales : its :meth:`timescales` as numpy.

    Returns the matched delays, across timescales, within timescales per region, and the across correlations.
    """
    perm, corr = _perm(latents[0], reference[0])
    within = [
        np.asarray(ts)[_perm(lat, ref)[0]]
        for lat, ref, ts in zip(latents[1:], reference[1:], timescales["within"], strict=True)
    ]
    return delays[..., perm], np.asarray(timescales["across"])[perm], within, corr


def _replicate_task(shared: dict[str, Any], task: tuple[int, np.ndarray]) -> dict[str, Any]:
    """Refit one bootstrap replicate from the original parameters and match it back (runs in a worker)."""
    b, idx = task
    data: MultiRegionData = shared["data"]
    model = copy.deepcopy(shared["model"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(shared["seed"] * 1_000_003 + b)
        with quiet_fits():  # the table reports each fit's iterations
            fit = model.fit(data[idx], init=False, progress=False, **shared["fit_kwargs"])
    ts = model.timescales()
    timescales = {"across": _numpy(ts["across"]), "within": [_numpy(w) for w in ts["within"]]}
    delays, across, within, corr = match_replicate(
        reference_latents(model, data), shared["reference"], _numpy(model.delays()), timescales
    )
    return {
        "delays": delays,
        "across": across,
        "within": within,
        "corr": corr,
        "n_iter": int(fit.n_iter),
        "wall_time_s": float(fit.wall_time_s),
    }


def _interval(estimate: np.ndarray, samples: np.ndarray, level: float) -> Interval:
    lo, hi = (1.0 - level) / 2.0, (1.0 + level) / 2.0
    if samples.size == 0:
        return Interval(estimate, samples, estimate.copy(), estimate.copy())
    with warnings.catch_warnings():
        # An ARD latent off in every replicate has no interval (NaN), which numpy warns about.
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanquantile(samples, [lo, hi], axis=0)
    return Interval(estimate, samples, q[0], q[1])


def bootstrap_delays(
    model: Any,
    data: MultiRegionData,
    n_boot: int = 100,
    *,
    seed: int = 0,
    level: float = 0.95,
    fit_kwargs: dict[str, Any] | None = None,
    n_workers: int = 1,
    threads_per_worker: int | None = None,
) -> BootstrapResult:
    """Bootstrap intervals for a fitted model's delays and timescales (module docstring).

    Parameters
    ----------
    model : a model fitted to ``data`` (it is not changed; each replicate refits a copy).
    data : the trials the model was fitted to.
    n_boot : replicates.
    seed : decides the resampled trials and every refit's random stream; a seed gives the same result.
    level : coverage of the percentile intervals, in (0, 1).
    fit_kwargs : passed to each replicate's ``fit`` (default: the engine's defaults). Keep the engine's ``tol``:
        a replicate approaches its optimum from θ̂, so a looser one stops it short and narrows the intervals
        (``benchmarks/selection.py tolerance``, 12 replicates of the reduced headline DLAG-SSM scenario: at 1e-5
        a replicate's delay fell up to 14% short of its distance from θ̂, at 1e-6 up to 7%, at the default 1e-7
        under 1%).
    n_workers, threads_per_worker : replicates run in ``n_workers`` processes (CPU models only).
    """
    if not isinstance(data, MultiRegionData):
        raise ValueError(f"data must be a mbrila.MultiRegionData; got {type(data).__name__}.")
    if tuple(data.y_dims) != tuple(getattr(model, "y_dims", ())):
        raise ValueError(f"data has y_dims {tuple(data.y_dims)} but the model was built for {model.y_dims}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 2:
        raise ValueError(f"n_boot must be an int ≥ 2 (100 or more for 95% intervals); got {n_boot!r}.")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must lie in (0, 1), e.g. 0.95; got {level!r}.")
    check_workers(n_workers, threads_per_worker)
    if n_workers > 1 and model._reference().device.type != "cpu":
        raise ValueError(
            "n_workers > 1 runs replicates in CPU processes, but the model lives on "
            f"{model._reference().device}; on a GPU use n_workers=1 (one process keeps the device busy)."
        )
    t0 = time.perf_counter()
    reference = reference_latents(model, data)
    rng = np.random.default_rng(seed)
    tasks = [(b, rng.integers(0, data.n_trials, size=data.n_trials)) for b in range(n_boot)]
    shared = {
        "model": model,
        "data": data,
        "reference": reference,
        "fit_kwargs": dict(fit_kwargs or {}),
        "seed": int(seed),
    }
    reps = run_tasks(_replicate_task, tasks, shared, n_workers, threads_per_worker)
    ts = model.timescales()
    est_delays = _numpy(model.delays())
    delay_samples = np.stack([r["delays"] for r in reps])
    with np.errstate(invalid="ignore"):
        positive = np.where(np.isnan(delay_samples), np.nan, delay_samples > 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        fraction_positive = np.nanmean(positive, axis=0)
    return BootstrapResult(
        delays=_interval(est_delays, delay_samples, level),
        fraction_positive=fraction_positive,
        timescales_across=_interval(_numpy(ts["across"]), np.stack([r["across"] for r in reps]), level),
        timescales_within=[
            _interval(_numpy(w), np.stack([r["within"][i] for r in reps]), level) for i, w in enumerate(ts["within"])
        ],
        constant=bool(model.delay.constant),
        level=level,
        region_names=tuple(data.region_names),
        n_iter=[r["n_iter"] for r in reps],
        wall_time_s=[r["wall_time_s"] for r in reps],
        match_corr=np.stack([r["corr"] for r in reps]),
        total_time_s=time.perf_counter() - t0,
    )
