"""Ground-truth delay trajectories for synthetic scenarios.

Every function returns ``δ`` of shape ``(T, n_regions, n_across)`` in time bins (float64 numpy), with region 0
the reference (``δ[:, 0, :] = 0``) and ``δ_k^r(t) > 0`` meaning region ``r`` lags the reference on latent ``k``
(DESIGN.md §2). For latent ``k`` with amplitude ``a_k`` (bins), sign ``σ_k ∈ {−1, +1}`` and region magnitude
``m_r`` (falling linearly from 1.0 at region 1 to 0.5 at the last region; just 1.0 with two regions):

==========  ==================================================================================================
shape       ``δ_k^r(t)``
==========  ==================================================================================================
constant    ``σ_k a_k m_r``
gaussian    ``σ_k a_k m_r exp(−(t − c_k − s_r)² / (2 w_k²))`` — a bump centred at ``c_k`` shifted per region by
            ``s_r``; defaults ``c_k`` evenly from 0.2T (latent 0) to 0.8T (last latent; just 0.2T for one
            latent), ``w_k`` evenly from 0.04T to 0.12T, and ``s_r`` evenly from −0.075T (region 1) to +0.075T
            (last region; 0 when there is a single non-reference region)
sigmoid     ``σ_k a_k m_r / (1 + exp(−(t − c_k − s_r) / w_k))`` — a step from 0 to ``σ_k a_k m_r``; defaults
            ``c_k = 0.5T``, ``w_k = 0.05T``, the same region shifts ``s_r`` as the bump
sine        ``σ_k a_k m_r sin(2π t / P_k + φ_k)``; defaults ``P_k = T / (k + 1)``, ``φ_k = 0``
ramp        ``σ_k a_k m_r (2t / (T − 1) − 1)`` — linear from ``−σ_k a_k m_r`` at ``t = 0`` to ``+σ_k a_k m_r``
            at ``t = T − 1`` (symmetric about zero, so the trial-averaged delay is 0)
==========  ==================================================================================================

Times are bin indices ``t = 0 … T − 1``. :func:`make_delays` dispatches on the shape name.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: The delay shapes :func:`make_delays` knows.
DELAY_SHAPES: tuple[str, ...] = ("constant", "gaussian", "sigmoid", "sine", "ramp")

FloatSeq = Sequence[float] | np.ndarray


# ---------------------------------------------------------------------------------------------------- helpers
def _check_sizes(T: int, n_regions: int) -> None:
    if int(T) != T or T < 1:
        raise ValueError(f"T must be a positive int; got {T!r}.")
    if int(n_regions) != n_regions or n_regions < 1:
        raise ValueError(f"n_regions must be a positive int; got {n_regions!r}.")


def _amplitudes(amplitudes: FloatSeq) -> np.ndarray:
    a = np.asarray(amplitudes, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(
            f"amplitudes must be a 1-D sequence with one value (bins) per across latent; got shape {a.shape}."
        )
    if not np.all(np.isfinite(a)):
        raise ValueError(f"amplitudes must be finite; got {a.tolist()}.")
    return a


def _per_latent(values: FloatSeq | float | None, K: int, name: str, default: np.ndarray) -> np.ndarray:
    """``(K,)`` values: ``default`` when None, a scalar broadcast, or exactly one value per latent."""
    if values is None:
        return default
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0:
        v = np.full(K, float(v))
    if v.shape != (K,):
        raise ValueError(f"{name} needs one value per across latent ({K}); got {v.tolist()}.")
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name} must be finite; got {v.tolist()}.")
    return v


def _signs(signs: FloatSeq | None, K: int) -> np.ndarray:
    s = _per_latent(signs, K, "signs", np.ones(K))
    if not np.all(np.isin(s, (-1.0, 1.0))):
        raise ValueError(f"signs must be +1 or −1 per across latent; got {s.tolist()}.")
    return s


def region_magnitudes(n_regions: int, first: float = 1.0, last: float = 0.5) -> np.ndarray:
    """``(n_regions,)`` delay magnitudes: 0 for the reference, then linear from ``first`` (region 1) to ``last``.

    With two regions the single non-reference region gets ``first``.
    """
    _check_sizes(1, n_regions)
    m = np.zeros(n_regions)
    if n_regions == 2:
        m[1] = first
    elif n_regions > 2:
        m[1:] = np.linspace(first, last, n_regions - 1)
    return m


def region_center_shifts(n_regions: int, T: int, center_shift: float = 0.075) -> np.ndarray:
    """``(n_regions,)`` per-region centre shifts in bins: evenly from ``−center_shift·T`` to ``+center_shift·T``.

    Regions 1 … R−1 are spread; the reference and a lone non-reference region get 0.
    """
    _check_sizes(T, n_regions)
    s = np.zeros(n_regions)
    if n_regions > 2:
        s[1:] = np.linspace(-center_shift, center_shift, n_regions - 1) * T
    return s


def default_centers(n_across: int, T: int) -> np.ndarray:
    """``(n_across,)`` bump centres in bins: 0.2T for latent 0, 0.8T for the last, evenly between."""
    return np.linspace(0.2, 0.8, n_across) * T if n_across > 1 else np.full(n_across, 0.2 * T)


def default_widths(n_across: int, T: int) -> np.ndarray:
    """``(n_across,)`` bump widths in bins: 0.04T for latent 0, 0.12T for the last, evenly between."""
    return np.linspace(0.04, 0.12, n_across) * T if n_across > 1 else np.full(n_across, 0.04 * T)


def _scale(
    T: int, n_regions: int, amplitudes: FloatSeq, signs: FloatSeq | None, magnitudes: FloatSeq | None
) -> tuple[np.ndarray, np.ndarray]:
    """``(1, n_regions, K)`` factor ``σ_k a_k m_r`` (zero for the reference) and the ``(K,)`` amplitudes."""
    _check_sizes(T, n_regions)
    a = _amplitudes(amplitudes)
    K = a.shape[0]
    s = _signs(signs, K)
    if magnitudes is None:
        m = region_magnitudes(n_regions)
    else:
        mv = np.asarray(magnitudes, dtype=np.float64).reshape(-1)
        if mv.shape != (n_regions - 1,) or not np.all(np.isfinite(mv)):
            raise ValueError(
                f"magnitudes needs one finite value per non-reference region ({n_regions - 1}); got {mv.tolist()}."
            )
        m = np.concatenate([[0.0], mv])
    return (s * a)[None, None, :] * m[None, :, None], a


def _times(T: int) -> np.ndarray:
    return np.arange(T, dtype=np.float64)[:, None, None]  # (T, 1, 1) broadcasts over regions and latents


def _shifted_centers(
    centers: FloatSeq | None, default: np.ndarray, T: int, n_regions: int, K: int, center_shift: float
) -> np.ndarray:
    c = _per_latent(centers, K, "centers", default)
    return c[None, None, :] + region_center_shifts(n_regions, T, center_shift)[None, :, None]  # (1, R, K)


def _positive_widths(widths: FloatSeq | None, K: int, default: np.ndarray) -> np.ndarray:
    w = _per_latent(widths, K, "widths", default)
    if np.any(w <= 0):
        raise ValueError(f"widths must be positive (bins); got {w.tolist()}.")
    return w[None, None, :]


# ---------------------------------------------------------------------------------------------------- shapes
def constant_delays(
    T: int,
    n_regions: int,
    amplitudes: FloatSeq,
    *,
    signs: FloatSeq | None = None,
    magnitudes: FloatSeq | None = None,
) -> np.ndarray:
    """``δ_k^r(t) = σ_k a_k m_r`` for every ``t``: ``(T, n_regions, n_across)``.

    Parameters
    ----------
    T, n_regions : trial length (bins) and number of regions (region 0 is the reference).
    amplitudes : ``a_k`` in bins, one per across latent.
    signs : ``σ_k`` (±1) per latent; default all +1 (every region lags the reference).
    magnitudes : ``m_r`` for regions 1 … R−1; default linear from 1.0 to 0.5 (:func:`region_magnitudes`).
    """
    scale, _ = _scale(T, n_regions, amplitudes, signs, magnitudes)
    return np.broadcast_to(scale, (T, n_regions, scale.shape[-1])).copy()


def gaussian_delays(
    T: int,
    n_regions: int,
    amplitudes: FloatSeq,
    *,
    centers: FloatSeq | None = None,
    widths: FloatSeq | None = None,
    center_shift: float = 0.075,
    signs: FloatSeq | None = None,
    magnitudes: FloatSeq | None = None,
) -> np.ndarray:
    """Gaussian bumps ``δ_k^r(t) = σ_k a_k m_r exp(−(t − c_k − s_r)² / (2 w_k²))``: ``(T, n_regions, n_across)``.

    Parameters
    ----------
    centers : ``c_k`` in bins (default :func:`default_centers`: 0.2T, …, 0.8T).
    widths : ``w_k`` in bins (default :func:`default_widths`: 0.04T, …, 0.12T).
    center_shift : the largest per-region shift ``|s_r|`` as a fraction of T (:func:`region_center_shifts`).
    The rest as in :func:`constant_delays`.
    """
    scale, a = _scale(T, n_regions, amplitudes, signs, magnitudes)
    K = a.shape[0]
    c = _shifted_centers(centers, default_centers(K, T), T, n_regions, K, center_shift)
    w = _positive_widths(widths, K, default_widths(K, T))
    return scale * np.exp(-((_times(T) - c) ** 2) / (2.0 * w**2))


def sigmoid_delays(
    T: int,
    n_regions: int,
    amplitudes: FloatSeq,
    *,
    centers: FloatSeq | None = None,
    widths: FloatSeq | None = None,
    center_shift: float = 0.075,
    signs: FloatSeq | None = None,
    magnitudes: FloatSeq | None = None,
) -> np.ndarray:
    """Steps ``δ_k^r(t) = σ_k a_k m_r / (1 + exp(−(t − c_k − s_r) / w_k))``: ``(T, n_regions, n_across)``.

    Parameters
    ----------
    centers : ``c_k`` in bins (default 0.5T for every latent).
    widths : ``w_k`` in bins, the step's softness (default 0.05T).
    The rest as in :func:`gaussian_delays`.
    """
    scale, a = _scale(T, n_regions, amplitudes, signs, magnitudes)
    K = a.shape[0]
    c = _shifted_centers(centers, np.full(K, 0.5 * T), T, n_regions, K, center_shift)
    w = _positive_widths(widths, K, np.full(K, 0.05 * T))
    z = (_times(T) - c) / w
    # 0.5 (1 + tanh(z/2)) is the logistic function without overflow for large |z|.
    return scale * 0.5 * (1.0 + np.tanh(0.5 * z))


def sine_delays(
    T: int,
    n_regions: int,
    amplitudes: FloatSeq,
    *,
    periods: FloatSeq | None = None,
    phases: FloatSeq | None = None,
    signs: FloatSeq | None = None,
    magnitudes: FloatSeq | None = None,
) -> np.ndarray:
    """Oscillations ``δ_k^r(t) = σ_k a_k m_r sin(2π t / P_k + φ_k)``: ``(T, n_regions, n_across)``.

    Parameters
    ----------
    periods : ``P_k`` in bins (default ``T / (k + 1)``). phases : ``φ_k`` in radians (default 0).
    The rest as in :func:`constant_delays`.
    """
    scale, a = _scale(T, n_regions, amplitudes, signs, magnitudes)
    K = a.shape[0]
    P = _per_latent(periods, K, "periods", T / np.arange(1.0, K + 1.0))
    if np.any(P <= 0):
        raise ValueError(f"periods must be positive (bins); got {P.tolist()}.")
    phi = _per_latent(phases, K, "phases", np.zeros(K))
    return scale * np.sin(2.0 * np.pi * _times(T) / P[None, None, :] + phi[None, None, :])


def ramp_delays(
    T: int,
    n_regions: int,
    amplitudes: FloatSeq,
    *,
    signs: FloatSeq | None = None,
    magnitudes: FloatSeq | None = None,
) -> np.ndarray:
    """Linear ramps ``δ_k^r(t) = σ_k a_k m_r (2t / (T − 1) − 1)``, from ``−σ a m`` to ``+σ a m``.

    Shape ``(T, n_regions, n_across)``; parameters as in :func:`constant_delays` (``T ≥ 2``).
    """
    if T < 2:
        raise ValueError(f"a ramp needs T ≥ 2; got {T!r}.")
    scale, _ = _scale(T, n_regions, amplitudes, signs, magnitudes)
    return scale * (2.0 * _times(T) / (T - 1) - 1.0)


_SHAPE_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "constant": constant_delays,
    "gaussian": gaussian_delays,
    "sigmoid": sigmoid_delays,
    "sine": sine_delays,
    "ramp": ramp_delays,
}

_SHAPE_OPTIONS: dict[str, tuple[str, ...]] = {
    "constant": ("signs", "magnitudes"),
    "gaussian": ("centers", "widths", "center_shift", "signs", "magnitudes"),
    "sigmoid": ("centers", "widths", "center_shift", "signs", "magnitudes"),
    "sine": ("periods", "phases", "signs", "magnitudes"),
    "ramp": ("signs", "magnitudes"),
}


def make_delays(shape: str, T: int, n_regions: int, amplitudes: FloatSeq, **kwargs: Any) -> np.ndarray:
    """Delay trajectories ``(T, n_regions, n_across)`` of the named shape (see the module docstring).

    Parameters
    ----------
    shape : one of :data:`DELAY_SHAPES`.
    T, n_regions : trial length (bins) and number of regions.
    amplitudes : ``a_k`` in bins, one per across latent.
    **kwargs : options of that shape's function (e.g. ``centers``, ``widths``, ``signs``); an option the shape
        does not take raises ``ValueError``.
    """
    if shape not in _SHAPE_FUNCTIONS:
        raise ValueError(f"unknown delay_shape {shape!r}; valid shapes are {', '.join(DELAY_SHAPES)}.")
    unknown = sorted(set(kwargs) - set(_SHAPE_OPTIONS[shape]))
    if unknown:
        raise ValueError(
            f"delay_shape {shape!r} takes the options {', '.join(_SHAPE_OPTIONS[shape])}; got unknown {unknown}."
        )
    return _SHAPE_FUNCTIONS[shape](T, n_regions, amplitudes, **kwargs)
