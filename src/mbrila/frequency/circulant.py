"""The circulant (periodic) approximation of stationary delayed GPs, in the frequency domain.

On a circle of ``L`` bins a stationary GP has a circulant covariance, ``Σ = Fᴴ diag(S) F`` with ``F`` the unitary
DFT and ``S_j = S(ω_j)`` the kernel's spectral density at ``ω_j = 2π · fftfreq(L)_j`` (radians per bin). A latent seen
by ``R`` regions with delays ``δ^r`` and a per-view nugget ``ε`` (the model of :mod:`mbrila.dynamics.exact_gp`) has,
at each frequency, the ``R × R`` cross-spectrum

    Σ_ω = (1 − ε) S(ω) q_ω q_ωᴴ + ε I,     q_ω[r] = e^{−iω δ^r}

a rank-one term plus a scaled identity, so its inverse and determinant are closed form (Sherman–Morrison). At the
Nyquist bin of an even ``L`` the two halves of the spectrum meet and only ``Re e^{−iπδ} = cos(πδ)`` keeps the
delayed signal real; we use it there, so every operator maps real signals to real signals and the model is an exact
real Gaussian model. On the circle, the covariance between lags ``τ`` and ``τ − L`` is shared (wrap-around); the
engine observes only ``T ≤ L`` consecutive bins, so that a gap of ``L − T`` unobserved bins separates the trial's
two ends.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def angular_frequencies(L: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``(L,)`` angular frequencies ``ω_j = 2π · fftfreq(L)_j`` (radians per bin)."""
    return 2 * math.pi * torch.fft.fftfreq(L, dtype=dtype, device=device)


def delay_phases(omega: Tensor, delays: Tensor) -> Tensor:
    """``(R, L, K)`` complex ``e^{−iω δ}`` for delays ``(R, K)`` in bins (real part only at an even ``L``'s Nyquist bin)."""
    phase = -omega[None, :, None] * delays[:, None, :]
    q = torch.polar(torch.ones_like(phase), phase)
    L = omega.shape[0]
    if L % 2 == 0:
        nyq = torch.zeros(L, dtype=torch.bool, device=omega.device)
        nyq[L // 2] = True
        q = torch.where(nyq[None, :, None], q.real.to(q.dtype), q)
    return q


def rank_one_plus_identity(a: Tensor, q: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """Inverse and log-determinant of ``Σ = a q qᴴ + ε I`` (``a ≥ 0`` real ``(...,)``, ``q (..., R)`` complex).

    Returns ``Σ⁻¹ (..., R, R)`` and ``log|Σ| (...)``.
    """
    R = q.shape[-1]
    qq = (q.conj() * q).real.sum(-1)
    denom = eps + a * qq
    eye = torch.eye(R, dtype=q.dtype, device=q.device)
    inv = (eye - (a / denom)[..., None, None] * (q[..., :, None] * q.conj()[..., None, :])) / eps
    return inv, (R - 1) * math.log(eps) + torch.log(denom)


def _trace_terms(a: Tensor, q: Tensor, eps: float, W: Tensor) -> tuple[Tensor, Tensor]:
    """``(tr(Σ_ω⁻¹ W_ω), ε + a qᴴq)`` per frequency for ``Σ_ω = a q qᴴ + ε I`` (Sherman–Morrison)."""
    qq = (q.conj() * q).real.sum(-1)
    denom = eps + a * qq
    trW = W.diagonal(dim1=-2, dim2=-1).real.sum(-1)
    qWq = torch.einsum("...r,...rs,...s->...", q.conj(), W, q).real
    return (trW - a * qWq / denom) / eps, denom


def expected_log_density(a: Tensor, q: Tensor, eps: float, W: Tensor, n: int) -> Tensor:
    """``Σ_ω [−½ n log|Σ_ω| − ½ tr(Σ_ω⁻¹ W_ω)]`` (constants dropped) for ``Σ_ω = a q qᴴ + ε I``.

    ``W (..., R, R)`` are the summed second moments ``Σ_trials E[x_ω x_ωᴴ]``; differentiable in ``a`` and ``q``.
    """
    trace, denom = _trace_terms(a, q, eps, W)
    logdet = (q.shape[-1] - 1) * math.log(eps) + torch.log(denom)
    return -0.5 * (n * logdet + trace).sum()


def prior_quadratic(a: Tensor, q: Tensor, eps: float, W: Tensor) -> Tensor:
    """``Σ_ω tr(Σ_ω⁻¹ W_ω)`` over the last frequency axis: ``Σ_trials E[xᴴ K⁻¹ x]`` of each latent (``a (K, L)``,
    ``q (K, L, R)``, ``W (K, L, R, R)`` → ``(K,)``), the part of :func:`expected_log_density` that scales with
    ``x``."""
    return _trace_terms(a, q, eps, W)[0].sum(-1)


def unitary_fft(x: Tensor, dim: int = -2) -> Tensor:
    """Unitary DFT along ``dim`` (``Σ_t |x_t|² = Σ_j |X_j|²``)."""
    return torch.fft.fft(x, dim=dim, norm="ortho")


def unitary_ifft(X: Tensor, dim: int = -2) -> Tensor:
    """Inverse of :func:`unitary_fft`."""
    return torch.fft.ifft(X, dim=dim, norm="ortho")
