"""A Gaussian-process latent with its exact (dense) covariance over a trial.

For a latent observed in ``V`` views (the regions that see it, each at its own delay ``δ^v(t)``), the views
stacked view-major, ``z = [z^0(0 … T−1); …; z^{V−1}(0 … T−1)]`` (``V·T`` entries), have

    Cov(z^v(t), z^w(t')) = (1 − ε) k((t − δ^v(t)) − (t' − δ^w(t'))) + ε 1[v = w, t = t']

— the same kernel, delay convention and nugget ``ε`` as the AR(P) lift of :mod:`mbrila.dynamics.lift`, so the two
describe one model (the lift reproduces this covariance exactly when ``P = T − 1``). A single-view latent whose
kernel has an exact SDE form is lifted by that SDE, which carries the smooth part ``(1 − ε) k`` and no white part;
its dense covariance is then ``(1 − ε) k`` too (``exact_sde=False`` keeps the white part), so that here as well
both forms are one model. The expected complete-data
log prior needed by EM is ``E[log N(z; 0, K)] = −½ (n log|2πK| + tr(K⁻¹ S))`` with ``S = Σ_trials E[z zᵀ]``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from mbrila.kernels import BaseKernel


def check_gp_latent(kernel: BaseKernel, n_views: int, eps: float) -> None:
    """The arguments every GP latent block checks: a :class:`BaseKernel`, at least one view, a nugget in [0, 1)."""
    if not isinstance(kernel, BaseKernel):
        raise ValueError(f"kernel must be a mbrila.kernels.BaseKernel; got {type(kernel).__name__}.")
    if n_views < 1:
        raise ValueError(f"n_views must be at least 1; got {n_views}.")
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps (the GP nugget) must lie in [0, 1); got {eps}.")


class ExactGPLatent(nn.Module):
    """One GP latent with a dense covariance over the trial (see the module docstring).

    Parameters
    ----------
    kernel : the latent's kernel (its parameters, e.g. the timescale, are learned).
    n_views : ``V``, the regions that observe this latent (1 for a within latent).
    eps : GP nugget ``ε`` in ``[0, 1)`` (DLAG's convention, fixed): keeps ``K`` well conditioned.
    exact_sde : match the state-space form's exact SDE for a single-view latent with an SDE kernel (module
        docstring): no white part.
    """

    def __init__(self, kernel: BaseKernel, n_views: int = 1, eps: float = 1e-3, exact_sde: bool = True) -> None:
        super().__init__()
        check_gp_latent(kernel, n_views, eps)
        self.kernel = kernel
        self.n_views = int(n_views)
        self.eps = float(eps)
        self.white = not (exact_sde and self.n_views == 1 and kernel.has_sde_form)

    @property
    def nugget(self) -> float:
        """Variance of the white part on each view: ``ε``, or 0 for an SDE-form single-view latent."""
        return self.eps if self.white else 0.0

    def sample_times(self, delays: Tensor | None, T: int) -> Tensor:
        """``(V, T)`` delayed sample times ``t − δ^v(t)``; ``delays`` is ``(V,)``, ``(T, V)`` or None (no delay)."""
        ref = self._reference_tensor()
        t = torch.arange(T, dtype=ref.dtype, device=ref.device)
        if delays is None:
            return t.expand(self.n_views, T)
        if delays.shape[-1] != self.n_views:
            raise ValueError(f"delays must have {self.n_views} views in the last dimension; got {tuple(delays.shape)}.")
        d = delays.to(ref.dtype)
        return t[None, :] - (d[:, None] if d.ndim == 1 else d[:T].mT)

    def covariance(self, delays: Tensor | None, T: int) -> Tensor:
        """``(V·T, V·T)`` covariance of the stacked views (view-major), differentiable in kernel and delays."""
        s = self.sample_times(delays, T).reshape(-1)
        tau = s[:, None] - s[None, :]
        eye = torch.eye(s.shape[0], dtype=s.dtype, device=s.device)
        return (1.0 - self.eps) * self.kernel.cov(tau) + self.nugget * eye

    def spectral_density(self, omega: Tensor) -> Tensor:
        """``(1 − ε) S(ω) + nugget``: the spectral density of one view with its white part (ω in radians per bin)."""
        return (1.0 - self.eps) * self.kernel.spectral_density(omega) + self.nugget

    def _reference_tensor(self) -> Tensor:
        return self.kernel.reference_tensor()


def dense_expected_log_prior(cov: Tensor, second_moment: Tensor, n: int) -> Tensor:
    """``Σ_trials E[log N(z; 0, cov)]`` for ``n`` trials whose summed ``E[z zᵀ]`` is ``second_moment``.

    Differentiable in ``cov``; a covariance that is not positive definite raises a ``ValueError``.
    """
    L, info = torch.linalg.cholesky_ex(cov)
    if bool((info != 0).any()):
        raise ValueError(
            "a latent's dense GP covariance is not positive definite (delayed views that coincide exactly, or a "
            "kernel that is not positive definite); raise the GP nugget eps."
        )
    logdet = 2 * L.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    quad = torch.cholesky_solve(second_moment, L).diagonal(dim1=-2, dim2=-1).sum(-1)
    M = cov.shape[-1]
    return -0.5 * (n * (logdet + M * math.log(2 * math.pi)) + quad)
