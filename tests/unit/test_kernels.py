"""Kernels: the contract check, exact SDE forms, spectral densities, and a user-written kernel."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import integrate

from mbrila.kernels import (
    BaseKernel,
    KernelCheckError,
    Matern12Kernel,
    Matern32Kernel,
    Matern52Kernel,
    MOSEKernel,
    RBFKernel,
    check_kernel,
    discretize_sde,
)
from mbrila.utils.constraints import Positive, positive_parameter

ALL = [RBFKernel, Matern12Kernel, Matern32Kernel, Matern52Kernel]
MATERN = [Matern12Kernel, Matern32Kernel, Matern52Kernel]


class RationalQuadratic(BaseKernel):
    """k(τ) = (1 + τ² / (2αℓ²))^(−α): what a user writes to bring their own kernel."""

    timescale = Positive("raw_timescale")
    alpha = Positive("raw_alpha")

    def __init__(self, timescale: float = 3.0, alpha: float = 1.5) -> None:
        super().__init__()
        self.raw_timescale = positive_parameter(timescale, "timescale")
        self.raw_alpha = positive_parameter(alpha, "alpha")

    def cov(self, tau: torch.Tensor) -> torch.Tensor:
        return (1 + tau**2 / (2 * self.alpha * self.timescale**2)) ** (-self.alpha)


class OddKernel(BaseKernel):
    def cov(self, tau):
        return torch.exp(-(tau**2)) * (1 + 0.3 * torch.tanh(tau))


class BoxcarCosine(BaseKernel):
    """Even and bounded, but not positive semi-definite."""

    def cov(self, tau):
        return torch.cos(tau) * (tau.abs() < 3).to(tau.dtype)


@pytest.mark.parametrize("cls", [*ALL, RationalQuadratic])
@pytest.mark.parametrize("ts", [0.7, 4.47])
def test_every_kernel_passes_the_contract(cls, ts):
    check_kernel(cls(timescale=ts))


def test_user_kernel_capabilities():
    k = RationalQuadratic()
    assert not k.has_sde_form and not k.has_spectral_density
    assert RBFKernel().has_spectral_density and not RBFKernel().has_sde_form
    assert Matern52Kernel().has_sde_form and Matern52Kernel().has_spectral_density
    assert MOSEKernel is RBFKernel
    with pytest.raises(NotImplementedError, match="sde_form"):
        k.sde_form()


def test_broken_kernels_fail_the_contract():
    with pytest.raises(KernelCheckError, match="not even"):
        check_kernel(OddKernel())
    with pytest.raises(KernelCheckError, match="not PSD"):
        check_kernel(BoxcarCosine())


@pytest.mark.parametrize("cls", MATERN)
def test_matern_sde_reproduces_cov(cls):
    k = cls(timescale=2.3).double()
    sde = k.sde_form()
    tau = torch.linspace(0, 25, 101, dtype=torch.float64)
    from_sde = torch.stack([(sde.H @ torch.linalg.matrix_exp(sde.F * t) @ sde.Pinf @ sde.H.T)[0, 0] for t in tau])
    assert float((from_sde - k.cov(tau)).detach().abs().max()) < 1e-10


@pytest.mark.parametrize("cls", MATERN)
def test_discretised_sde_is_stationary_with_kernel_lags(cls):
    k = cls(timescale=3.1).double()
    sde = k.sde_form()
    A, Q = discretize_sde(sde, 1.0)
    torch.testing.assert_close(A @ sde.Pinf @ A.T + Q, sde.Pinf, rtol=0, atol=1e-12)
    assert float(torch.linalg.eigvalsh(Q.detach()).min()) > -1e-12
    lags = torch.stack([(sde.H @ torch.linalg.matrix_power(A, n) @ sde.Pinf @ sde.H.T)[0, 0] for n in range(12)])
    torch.testing.assert_close(lags, k.cov(torch.arange(12, dtype=torch.float64)), rtol=0, atol=1e-12)


@pytest.mark.parametrize("cls", ALL)
def test_spectral_density_integrates_back_to_cov(cls):
    k = cls(timescale=2.0).double()

    def S(w: float) -> float:
        return float(k.spectral_density(torch.tensor(w, dtype=torch.float64)).detach())

    for tau in (0.0, 0.5, 1.7, 4.0):
        if tau == 0:
            val = integrate.quad(S, 0, math.inf, limit=200)[0]
        else:
            val = integrate.quad(S, 0, math.inf, weight="cos", wvar=tau)[0]
        assert abs(val / math.pi - float(k.cov(torch.tensor(tau, dtype=torch.float64)).detach())) < 1e-6


@pytest.mark.parametrize("cls", ALL)
def test_gradients_reach_the_timescale(cls):
    k = cls(timescale=2.0).double()
    out = k.cov(torch.linspace(-3, 3, 7, dtype=torch.float64)).sum()
    out = out + k.spectral_density(torch.linspace(0, 2, 5, dtype=torch.float64)).sum()
    if k.has_sde_form:
        out = out + k.sde_form().Pinf.sum() + discretize_sde(k.sde_form())[0].sum()
    (g,) = torch.autograd.grad(out, k.raw_timescale)
    assert torch.isfinite(g) and float(g.abs()) > 0


def test_timescale_is_settable_and_validated(dtype):
    k = RBFKernel(timescale=2.0).to(dtype)
    k.timescale = 7.5
    assert k.raw_timescale.dtype == dtype
    assert abs(float(k.timescale.detach()) - 7.5) < 1e-5
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timescale"):
            k.timescale = bad
        with pytest.raises(ValueError, match="timescale"):
            RBFKernel(timescale=bad)


def test_float32_cov(dtype):
    k = Matern32Kernel(timescale=3.0).to(torch.float32)
    out = k.cov(torch.arange(5, dtype=torch.float32))
    assert out.dtype == torch.float32 and torch.isfinite(out).all()


def test_check_kernel_does_not_touch_the_users_kernel():
    k = RBFKernel(timescale=2.0).float()
    check_kernel(k)
    assert k.raw_timescale.dtype == torch.float32
