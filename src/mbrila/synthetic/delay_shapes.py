"""Ground-truth delay trajectories ``δ_k^r(t)`` for synthetic scenarios, ``(T, n_regions, n_across)`` in bins.

Region 0 is the reference (all zeros). Region ``r = 1 … R−1`` is scaled by a magnitude falling linearly from
1.0 to 0.5. For latent ``k`` with amplitude ``a_k`` (bins) and sign ``σ_k``:

* ``constant``: ``δ = σ a m_r``
* ``gaussian``: ``δ(t) = σ a m_r exp(−(t − c_k^r)² / (2 w_k²))`` — a bump centred at ``c_k`` (default 0.2T, 0.8T,
  …) shifted per region evenly within ±0.075T, width ``w_k`` (default 0.04T, 0.12T, …)
* ``sigmoid``: ``δ(t) = σ a m_r / (1 + exp(−(t − c_k^r) / w_k))``
* ``sine``: ``δ(t) = σ a m_r sin(2π t / period_k)`` with ``period_k = T / (k + 1)``
* ``ramp``: ``δ(t) = σ a m_r (2t / (T − 1) − 1)``, from −a m_r to +a m_r
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DELAY_SHAPES = ("constant", "gaussian", "sigmoid", "sine", "ramp")


def region_magnitudes(n_regions: int) -> np.ndarray:
    """``(n_regions,)``: 0 for the reference, then linear from 1.0 to 0.5 over regions 1 … R−1."""
    if n_regions < 2:
        return np.zeros(n_regions)
    return np.concatenate([[0.0], np.linspace(1.0, 0.5, n_regions - 1)])


def _default(values: Sequence[float] | None, k: int, fallback: np.ndarray) -> np.ndarray:
    if values is None:
        return fallback[:k]
    arr = np.asarray(values, dtype=float)
    if arr.shape != (k,):
        raise ValueError(f"expected {k} per-latent values; got {arr.tolist()}.")
    return arr


def make_delays(
    shape: str,
    T: int,
    n_regions: int,
    amplitudes: Sequence[float],
    *,
    centers: Sequence[float] | None = None,
    widths: Sequence[float] | None = None,
    center_shift: float = 0.075,
    signs: Sequence[float] | None = None,
) -> np.ndarray:
    """Delay trajectories ``(T, n_regions, n_across)`` (see the module docstring).

    Parameters
    ----------
    shape : one of :data:`DELAY_SHAPES`.
    amplitudes : ``a_k`` in bins, one per across latent.
    centers, widths : bump/sigmoid centres and widths in bins (defaults as in the module docstring).
    center_shift : largest per-region centre shift, as a fraction of T.
    signs : ``σ_k`` (±1) per latent (default all +1).
    """
    if shape not in DELAY_SHAPES:
        raise ValueError(f"delay_shape must be one of {DELAY_SHAPES}; got {shape!r}.")
    amp = np.asarray(amplitudes, dtype=float)
    K = amp.shape[0]
    sgn = _default(signs, K, np.ones(max(K, 1)))
    mag = region_magnitudes(n_regions)
    t = np.arange(T, dtype=float)[:, None]
    c = _default(centers, K, np.linspace(0.2, 0.8, max(K, 2))[:K] * T if K > 1 else np.array([0.2 * T]))
    w = _default(widths, K, np.linspace(0.04, 0.12, max(K, 2))[:K] * T if K > 1 else np.array([0.04 * T]))
    shifts = np.zeros(n_regions)
    if n_regions > 2:
        shifts[1:] = np.linspace(-center_shift, center_shift, n_regions - 1) * T
    out = np.zeros((T, n_regions, K))
    for k in range(K):  # a handful of latents; each line is vectorised over time and regions
        scale = sgn[k] * amp[k] * mag[None, :]
        ck = c[k] + shifts[None, :]
        if shape == "constant":
            prof = np.ones((T, n_regions))
        elif shape == "gaussian":
            prof = np.exp(-((t - ck) ** 2) / (2 * w[k] ** 2))
        elif shape == "sigmoid":
            prof = 1.0 / (1.0 + np.exp(-(t - ck) / w[k]))
        elif shape == "sine":
            prof = np.sin(2 * np.pi * t / (T / (k + 1))) * np.ones((1, n_regions))
        else:
            prof = (2 * t / max(T - 1, 1) - 1) * np.ones((1, n_regions))
        out[:, :, k] = scale * prof
    out[:, 0, :] = 0.0
    return out
