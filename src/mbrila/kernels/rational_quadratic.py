"""The rational-quadratic kernel: a kernel written the way a user writes one (``cov`` only).

``k(τ) = (1 + τ² / (2 α ℓ²))^(−α)``, a scale mixture of RBF kernels (``α → ∞`` gives the RBF with timescale ``ℓ``).
It has no ``spectral_density`` in closed form and no finite SDE, so it runs on the AR(P) lift and the dense engines,
not on the frequency-domain engine — which is also what makes it the custom-kernel demos' example.
"""

from __future__ import annotations

from torch import Tensor

from mbrila.kernels.base import BaseKernel
from mbrila.utils.constraints import Positive, positive_parameter


class RationalQuadraticKernel(BaseKernel):
    """``k(τ) = (1 + τ² / (2 α ℓ²))^(−α)``.

    Parameters
    ----------
    timescale : ``ℓ`` in bins (positive, learnable).
    alpha : ``α`` (positive, learnable): small values give heavier tails.
    """

    timescale = Positive("raw_timescale")
    alpha = Positive("raw_alpha")

    def __init__(self, timescale: float = 5.0, alpha: float = 2.0) -> None:
        super().__init__()
        self.raw_timescale = positive_parameter(timescale, "timescale")
        self.raw_alpha = positive_parameter(alpha, "alpha")

    def cov(self, tau: Tensor) -> Tensor:
        return (1 + tau**2 / (2 * self.alpha * self.timescale**2)) ** (-self.alpha)
