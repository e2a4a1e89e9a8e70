"""The circulant approximation of a stationary GP on ``L`` time bins, in the frequency domain.

Treating a trial as one period of a periodic signal makes the GP covariance circulant, ``Σ = Fᴴ diag(S) F`` with
``F`` the unitary DFT and ``S_j = S(ω_j)`` the kernel's spectral density at ``ω_j = 2π j / L`` (radians per bin, in
``torch.fft.fftfreq`` order). A delay ``δ`` is then the operator ``Fᴴ diag(e^{−iω_j δ}) F``: a circular shift by
``δ`` bins (fractional shifts by band-limited interpolation). At the Nyquist bin of an even ``L`` the two halves of
the spectrum meet, and only the real part ``cos(π δ)`` keeps the shifted signal real; we use it, so every
operator here maps real signals to real signals and the model stays an exact real Gaussian model. The
approximation error of the circulant covariance is confined to the trial's edges (lags near ``L``), so it
vanishes relative to ``L`` as trials grow.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def angular_frequencies(L: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(L,)`` angular frequencies ``ω_j = 2π · fftfreq(L)_j`` (radians per bin)."""
    return 2 * math.pi * torch.fft.fftfreq(L, dtype=dtype, device=device)


def delay_operator(omega: Tensor, delays: Tensor) -> Tensor:
    """``(R, L, K)`` complex ``e^{−iω δ}`` for delays ``(R, K)`` in bins (real part only at an even ``L``'s Nyquist bin)."""
    phase = -omega[None, :, None] * delays[:, None, :]
    Q = torch.polar(torch.ones_like(phase), phase)
    L = omega.shape[0]
    if L % 2 == 0:
        nyq = torch.zeros(L, dtype=torch.bool, device=omega.device)
        nyq[L // 2] = True
        Q = torch.where(nyq[None, :, None], Q.real.to(Q.dtype), Q)
    return Q


def unitary_fft(x: Tensor, dim: int = -2) -> Tensor:
    """Unitary DFT along ``dim`` (``Σ_t |x_t|² = Σ_j |X_j|²``)."""
    return torch.fft.fft(x, dim=dim, norm="ortho")


def unitary_ifft(X: Tensor, dim: int = -2) -> Tensor:
    """Inverse of :func:`unitary_fft`."""
    return torch.fft.ifft(X, dim=dim, norm="ortho")
