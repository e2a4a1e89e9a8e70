"""The kernel extension point.

A kernel is a stationary, unit-variance correlation function of the lag ``τ`` (in time bins, real-valued)::

    k(τ) = Cov(z(t), z(t − τ)),   k(0) = 1,   k(−τ) = k(τ)

mbrila fixes the GP variance to 1 (the loadings carry the scale). A subclass implements ``cov``; it may also
implement

* ``spectral_density(ω) = ∫ k(τ) e^{−iωτ} dτ`` (ω in radians per bin, so ``k(τ) = (1/2π) ∫ S(ω) e^{iωτ} dω``),
  which the frequency-domain engine uses;
* ``sde_form()``, an exact finite-dimensional SDE with ``k(τ) = H expm(F|τ|) P∞ Hᵀ``, which gives an exact
  state-space latent without the AR(P) approximation;
* ``state_space_form()``, a finite SDE that approximates ``k`` to within ``state_space_error`` at every lag (the
  RBF's, whose error does not depend on the timescale). It defaults to ``sde_form()`` (error 0). Undelayed
  state-space latents use it instead of the AR(P) lift.

Run :func:`mbrila.kernels.check_kernel` on your kernel to verify the contract.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from mbrila.kernels.sde import SDEForm


def _plain_value(value: Any) -> Any:
    """Tensors and numpy values as Python numbers or lists (what a model file can hold)."""
    if isinstance(value, (Tensor, np.ndarray, np.generic)):
        return value.tolist()
    return value


class BaseKernel(nn.Module):
    """Base class of stationary GP kernels; subclasses implement :meth:`cov` (see the module docstring)."""

    def cov(self, tau: Tensor) -> Tensor:
        """``k(τ)`` elementwise for lags ``tau`` of any shape (bins)."""
        raise NotImplementedError(f"{type(self).__name__} must implement cov(tau).")

    def spectral_density(self, omega: Tensor) -> Tensor:
        """``S(ω) = ∫ k(τ) e^{−iωτ} dτ`` elementwise, ω in radians per bin (optional)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no spectral_density(omega); implement it to use frequency-domain engines."
        )

    def sde_form(self) -> SDEForm:
        """Exact SDE ``(F, H, P∞)`` with ``k(τ) = H expm(F|τ|) P∞ Hᵀ`` (optional)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no sde_form(); implement it to get an exact state-space latent."
        )

    def state_space_form(self) -> SDEForm:
        """A finite SDE ``(F, H, P∞)`` with ``|H expm(F|τ|) P∞ Hᵀ − k(τ)| ≤ state_space_error`` (optional).

        The default is the exact :meth:`sde_form`. Override it to give state-space latents a Markov form whose
        fidelity you control; :func:`~mbrila.kernels.check_kernel` verifies the stated error.
        """
        return self.sde_form()

    @property
    def state_space_error(self) -> float:
        """Largest ``|k_ss(τ) − k(τ)|`` of :meth:`state_space_form` over all lags (0 for an exact SDE)."""
        return 0.0

    @property
    def has_state_space_form(self) -> bool:
        return self.has_sde_form or type(self).state_space_form is not BaseKernel.state_space_form

    @property
    def has_spectral_density(self) -> bool:
        return type(self).spectral_density is not BaseKernel.spectral_density

    @property
    def has_sde_form(self) -> bool:
        return type(self).sde_form is not BaseKernel.sde_form

    def __new__(cls, *args: Any, **kwargs: Any) -> BaseKernel:
        # Remember the constructor arguments, so that get_config (and model files) can rebuild the kernel's
        # structure without each subclass writing one.
        obj = super().__new__(cls)
        object.__setattr__(obj, "_init_args", (args, kwargs))
        return obj

    def get_config(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this kernel (plain data), by name.

        Model files rebuild a kernel as ``type(kernel)(**kernel.get_config())`` and then load its parameters. The
        default returns the arguments the kernel was constructed with (tensors and numpy values as lists or
        numbers); override it if your constructor takes ``*args`` or objects that are not plain data.
        """
        args, kwargs = getattr(self, "_init_args", ((), {}))
        signature = inspect.signature(type(self).__init__)
        params = signature.parameters
        if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params.values()):
            raise TypeError(f"{type(self).__name__} takes *args: override get_config() to return its arguments.")
        bound = signature.bind(self, *args, **kwargs).arguments
        out: dict[str, Any] = {}
        for name, value in bound.items():
            if name == "self":
                continue
            if params[name].kind is inspect.Parameter.VAR_KEYWORD:
                out.update({k: _plain_value(v) for k, v in value.items()})
            else:
                out[name] = _plain_value(value)
        return out

    def forward(self, tau: Tensor) -> Tensor:
        return self.cov(tau)

    def reference_tensor(self) -> Tensor:
        """A tensor with the kernel's dtype and device (its first parameter or buffer; a CPU scalar if none)."""
        for p in self.parameters():
            return p
        for b in self.buffers():
            return b
        return torch.zeros(())

    def extra_repr(self) -> str:
        ts = getattr(self, "timescale", None)
        if isinstance(ts, Tensor) and ts.numel() == 1:
            return f"timescale={float(ts.detach()):.4g}"
        return ""
