"""Squared-exponential (RBF) kernel, called MOSE in the multi-region literature."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mbrila.kernels.base import BaseKernel
from mbrila.utils.constraints import Positive, positive_parameter


class RBFKernel(BaseKernel):
    """``k(τ) = exp(−τ² / (2ℓ²))``; spectral density ``S(ω) = ℓ √(2π) exp(−ℓ²ω²/2)``.

    Parameters
    ----------
    timescale : ``ℓ`` in bins (positive, learnable, settable).
    """

    timescale = Positive("raw_timescale")

    def __init__(self, timescale: float = 5.0) -> None:
        super().__init__()
        self.raw_timescale = positive_parameter(timescale, "timescale")

    def cov(self, tau: Tensor) -> Tensor:
        ell = self.timescale
        return torch.exp(-0.5 * (tau / ell) ** 2)

    def spectral_density(self, omega: Tensor) -> Tensor:
        ell = self.timescale
        return ell * math.sqrt(2 * math.pi) * torch.exp(-0.5 * (ell * omega) ** 2)


#: The multi-region name of the same kernel.
MOSEKernel = RBFKernel
