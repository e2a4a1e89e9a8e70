"""Squared-exponential (RBF) kernel, called MOSE in the multi-region literature."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mbrila.kernels.base import BaseKernel
from mbrila.kernels.rbf_state_space import check_state_order, rbf_state_space_error, unit_rbf_state_space
from mbrila.kernels.sde import SDEForm
from mbrila.utils.constraints import Positive, positive_parameter


class RBFKernel(BaseKernel):
    """``k(τ) = exp(−τ² / (2ℓ²))``; spectral density ``S(ω) = ℓ √(2π) exp(−ℓ²ω²/2)``.

    State-space latents without delays use :meth:`state_space_form`, an SDE of ``state_order`` states whose
    covariance is a function of ``τ/ℓ`` alone (:mod:`mbrila.kernels.rbf_state_space`): its largest error against
    ``k`` is :attr:`state_space_error` (0.0016 at the default order 8) at every timescale.

    Parameters
    ----------
    timescale : ``ℓ`` in bins (positive, learnable, settable).
    state_order : states of the SDE approximation, 1 to 12 (default 8).
    """

    timescale = Positive("raw_timescale")

    def __init__(self, timescale: float = 5.0, state_order: int = 8) -> None:
        super().__init__()
        self.raw_timescale = positive_parameter(timescale, "timescale")
        self.state_order = check_state_order(state_order)

    def cov(self, tau: Tensor) -> Tensor:
        ell = self.timescale
        return torch.exp(-0.5 * (tau / ell) ** 2)

    def spectral_density(self, omega: Tensor) -> Tensor:
        ell = self.timescale
        return ell * math.sqrt(2 * math.pi) * torch.exp(-0.5 * (ell * omega) ** 2)

    def state_space_form(self) -> SDEForm:
        """``F = F₁/ℓ``, ``H = H₁``, ``P∞ = I``: the Taylor approximation of the RBF's spectral density."""
        F1, H1 = unit_rbf_state_space(self.state_order)
        ref = self.raw_timescale
        F = torch.tensor(F1, dtype=ref.dtype, device=ref.device) / self.timescale
        H = torch.tensor(H1, dtype=ref.dtype, device=ref.device)  # a copy: the cached array stays intact
        return SDEForm(F=F, H=H, Pinf=torch.eye(self.state_order, dtype=ref.dtype, device=ref.device))

    @property
    def state_space_error(self) -> float:
        return rbf_state_space_error(self.state_order)


#: The multi-region name of the same kernel.
MOSEKernel = RBFKernel
