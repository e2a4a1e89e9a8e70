"""The contract test every kernel — shipped or yours — should pass.

``check_kernel(kernel)`` verifies, in float64 on a copy of the kernel (yours is never modified):

1. ``cov`` keeps the input's shape and is finite;
2. it is even, ``k(τ) = k(−τ)``, and bounded, ``|k(τ)| ≤ k(0)``;
3. Toeplitz Gram matrices ``[k(tᵢ − tⱼ)]`` on an integer grid and on a non-integer grid are PSD;
4. if present, ``sde_form()`` reproduces ``cov``: ``H expm(Fτ) P∞ Hᵀ = k(τ)`` for ``τ ≥ 0``; an approximate
   ``state_space_form()`` stays within its stated ``state_space_error``;
5. if present, ``spectral_density`` integrates back to ``cov``: ``(1/2π) ∫ S(ω) cos(ωτ) dω = k(τ)``.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from scipy import integrate

from mbrila.kernels.base import BaseKernel


class KernelCheckError(AssertionError):
    """Raised by :func:`check_kernel` with the property that failed and by how much."""


def _fail(kernel: BaseKernel, what: str) -> None:
    raise KernelCheckError(f"{type(kernel).__name__} fails the kernel contract: {what}")


def check_kernel(
    kernel: BaseKernel,
    *,
    max_lag: float | None = None,
    n_grid: int = 64,
    sde_rtol: float = 1e-10,
    spectral_atol: float = 1e-6,
    psd_tol: float = 1e-8,
) -> None:
    """Verify the kernel contract (see the module docstring); raises :class:`KernelCheckError` on failure.

    Parameters
    ----------
    kernel : the kernel to check.
    max_lag : largest lag tested (default: 10 timescales if the kernel has ``timescale``, else 50 bins).
    n_grid : size of the Gram matrices.
    sde_rtol : tolerance of the SDE check, relative to ``k(0)``.
    spectral_atol : absolute tolerance of the spectral check (k(0) = 1 scale).
    psd_tol : smallest Gram eigenvalue allowed, relative to ``k(0)`` (negative of it).
    """
    if not isinstance(kernel, BaseKernel):
        raise TypeError(f"check_kernel expects a mbrila.kernels.BaseKernel; got {type(kernel).__name__}.")
    k = copy.deepcopy(kernel).to(torch.float64)
    ts = getattr(k, "timescale", None)
    scale = float(ts.detach()) if isinstance(ts, torch.Tensor) and ts.numel() == 1 else 5.0
    lag = float(max_lag) if max_lag is not None else 10.0 * scale
    with torch.no_grad():
        tau = torch.linspace(-lag, lag, 401, dtype=torch.float64)
        c = k.cov(tau)
        if c.shape != tau.shape:
            _fail(k, f"cov(tau) returned shape {tuple(c.shape)} for tau of shape {tuple(tau.shape)}")
        if not bool(torch.isfinite(c).all()):
            _fail(k, "cov returned non-finite values")
        c0 = float(k.cov(torch.zeros((), dtype=torch.float64)))
        if not c0 > 0:
            _fail(k, f"cov(0) = {c0} must be positive")
        asym = float((c - c.flip(0)).abs().max())
        if asym > 1e-12 * c0:
            _fail(k, f"cov is not even: max |k(τ) − k(−τ)| = {asym:.3e}")
        excess = float((c.abs() - c0).max())
        if excess > 1e-12 * c0:
            _fail(k, f"|cov(τ)| exceeds cov(0) by {excess:.3e}")
        for step in (max(scale / 4, 0.25), 0.37 * scale):
            t = torch.arange(n_grid, dtype=torch.float64) * step
            G = k.cov(t[:, None] - t[None, :])
            eig = float(torch.linalg.eigvalsh(0.5 * (G + G.T)).min())
            if eig < -psd_tol * c0:
                _fail(
                    k,
                    f"the Gram matrix on a grid with spacing {step:.3g} is not PSD (min eigenvalue {eig:.3e})",
                )
        taus = torch.linspace(0.0, lag, 41, dtype=torch.float64)
        forms = [("sde_form", k.sde_form, sde_rtol)] if k.has_sde_form else []
        if type(k).state_space_form is not BaseKernel.state_space_form:
            stated = float(k.state_space_error)
            forms.append(("state_space_form", k.state_space_form, max(sde_rtol, stated)))
        for name, form, tol in forms:
            sde = form()
            stack = torch.linalg.matrix_exp(sde.F[None] * taus[:, None, None])
            from_sde = (sde.H @ stack @ sde.Pinf @ sde.H.T)[:, 0, 0]
            err = float((from_sde - k.cov(taus)).abs().max())
            if err > tol * c0:
                _fail(k, f"{name} disagrees with cov: max error {err:.3e} (allowed {tol:.3e})")
        if k.has_spectral_density:

            def density(w: float) -> float:
                return float(k.spectral_density(torch.tensor(w, dtype=torch.float64)))

            for tv in taus[::8].tolist():
                val, _ = (
                    integrate.quad(density, 0.0, np.inf, weight="cos", wvar=tv)
                    if tv > 0
                    else integrate.quad(density, 0.0, np.inf, limit=200)
                )
                back = val / math.pi  # (1/2π)∫_{−∞}^{∞} = (1/π)∫_0^∞ for an even density
                err = abs(back - float(k.cov(torch.tensor(tv, dtype=torch.float64))))
                if err > spectral_atol * c0:
                    _fail(
                        k,
                        f"spectral_density does not integrate back to cov at τ = {tv:.3g} (error {err:.3e})",
                    )
