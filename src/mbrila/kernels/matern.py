"""Matérn kernels of half-integer order ν = p + ½ (p = 0, 1, 2), with exact SDE forms.

With ``λ = √(2ν) / ℓ`` and ``r = |τ|``::

    ν = 1/2:  k = exp(−r/ℓ)
    ν = 3/2:  k = (1 + λr) exp(−λr)
    ν = 5/2:  k = (1 + λr + λ²r²/3) exp(−λr)

Spectral density ``S(ω) = c_ν λ^{2ν} (λ² + ω²)^{−(ν+½)}`` with ``c_ν = 2√π Γ(ν+½) / Γ(ν)``. The SDE is the
companion form of ``(d/dt + λ)^{p+1} z = white noise`` (Hartikainen & Särkkä 2010), scaled to unit variance.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mbrila.kernels.base import BaseKernel
from mbrila.kernels.sde import SDEForm
from mbrila.utils.constraints import Positive, positive_parameter


class _Matern(BaseKernel):
    p: int = 0  # ν = p + ½

    timescale = Positive("raw_timescale")

    def __init__(self, timescale: float = 5.0) -> None:
        super().__init__()
        self.raw_timescale = positive_parameter(timescale, "timescale")

    @property
    def nu(self) -> float:
        return self.p + 0.5

    def _lam(self) -> Tensor:
        return math.sqrt(2 * self.nu) / self.timescale

    def cov(self, tau: Tensor) -> Tensor:
        x = self._lam() * tau.abs()
        if self.p == 0:
            poly = torch.ones_like(x)
        elif self.p == 1:
            poly = 1 + x
        else:
            poly = 1 + x + x**2 / 3
        return poly * torch.exp(-x)

    def spectral_density(self, omega: Tensor) -> Tensor:
        lam = self._lam()
        nu = self.nu
        c = 2 * math.sqrt(math.pi) * math.gamma(nu + 0.5) / math.gamma(nu)
        return c * lam ** (2 * nu) * (lam**2 + omega**2) ** (-(nu + 0.5))

    def sde_form(self) -> SDEForm:
        lam = self._lam()
        S = self.p + 1
        ref = self.raw_timescale
        # Companion matrix of (s + λ)^S: last row holds −binom(S, j) λ^{S−j}.
        F = torch.zeros(S, S, dtype=ref.dtype, device=ref.device)
        if S > 1:
            F = F + torch.diag(torch.ones(S - 1, dtype=ref.dtype, device=ref.device), 1)
        coeffs = torch.stack([-math.comb(S, j) * lam ** (S - j) for j in range(S)])
        last = torch.zeros(S, S, dtype=ref.dtype, device=ref.device)
        last = last.index_put((torch.full((S,), S - 1), torch.arange(S)), coeffs)
        F = F + last
        H = torch.zeros(1, S, dtype=ref.dtype, device=ref.device)
        H[0, 0] = 1.0
        return SDEForm(F=F, H=H, Pinf=_stationary_cov(self.p, lam))


def _stationary_cov(p: int, lam: Tensor) -> Tensor:
    """``P∞`` of the unit-variance Matérn-(p+½) SDE: covariances of ``(z, z′, z″)``, i.e. ``±k^{(i+j)}(0)``."""
    one = torch.ones_like(lam)
    zero = torch.zeros_like(lam)
    if p == 0:
        return one.reshape(1, 1)
    if p == 1:
        return torch.stack([torch.stack([one, zero]), torch.stack([zero, lam**2])])
    k2 = lam**2 / 3  # −k″(0)
    k4 = lam**4  # k⁗(0)
    return torch.stack(
        [
            torch.stack([one, zero, -k2]),
            torch.stack([zero, k2, zero]),
            torch.stack([-k2, zero, k4]),
        ]
    )


class Matern12Kernel(_Matern):
    """Matérn-1/2 (exponential / Ornstein–Uhlenbeck) kernel ``exp(−|τ|/ℓ)``; timescale ``ℓ`` in bins."""

    p = 0


class Matern32Kernel(_Matern):
    """Matérn-3/2 kernel ``(1 + √3|τ|/ℓ) exp(−√3|τ|/ℓ)``; timescale ``ℓ`` in bins."""

    p = 1


class Matern52Kernel(_Matern):
    """Matérn-5/2 kernel ``(1 + √5|τ|/ℓ + 5τ²/(3ℓ²)) exp(−√5|τ|/ℓ)``; timescale ``ℓ`` in bins."""

    p = 2
