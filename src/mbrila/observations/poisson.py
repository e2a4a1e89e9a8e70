"""Poisson read-out of region-specific latents: spike counts through a rate link, and its second-order M-step.

Region ``r`` sees ``x^r_t ∈ R^{D_r}`` (its across latents as seen from ``r``, then its within latents)::

    y^r_{n,t} ~ Poisson(f(η_{n,t})),    η_{n,t} = c_nᵀ x^r_t + d_n

with ``f = exp`` (default; the canonical link) or ``f = softplus``. Both links make the log-likelihood
``ℓ(η) = y log f(η) − f(η) − log y!`` concave in ``η``, so the latent posterior is log-concave and has one mode
(:mod:`mbrila.inference.laplace` finds it). Loadings are stored stacked as ``C (N, Σ_r D_r)``, block-structured
by region, as in :class:`~mbrila.observations.MultiRegionLinearObservation`.

M-step. Under a Gaussian posterior ``x_t ~ N(m_t, V_t)`` the drive ``η = cᵀx + d`` is ``N(μ, v)`` with
``μ = cᵀm + d`` and ``v = cᵀVc``. For the exp link the expected log-likelihood is exact,
``E[ℓ] = y μ − exp(μ + v/2) − log y!``, concave in ``(c, d)``; each neuron's ``(c_n, d_n)`` is found by
Newton's method with backtracking (all neurons of a region at once). For softplus the expectations are
Gauss–Hermite sums over ``η``, and the Newton matrix drops the terms that need third and fourth derivatives of
``ℓ`` (it stays negative definite; the backtracking keeps every accepted step an ascent).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from mbrila.distributed import all_sum
from mbrila.observations.linear import region_blocks

#: Names of the links :class:`PoissonObservation` accepts.
LINKS = ("exp", "softplus")


def log_factorial(y: Tensor) -> Tensor:
    """``log y!`` elementwise (``y`` whole numbers ≥ 0)."""
    return torch.lgamma(y + 1)


def link_rate(eta: Tensor, link: str) -> Tensor:
    """``f(η)``: the rate for a log-rate-like drive ``η``."""
    return torch.exp(eta) if link == "exp" else torch.nn.functional.softplus(eta)


def loglik_terms(y: Tensor, eta: Tensor, link: str, log_fact: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """``ℓ``, ``∂ℓ/∂η`` and ``w = −∂²ℓ/∂η² ≥ 0`` of ``ℓ(η) = y log f(η) − f(η) − log y!``, elementwise.

    ``log_fact``: ``log y!`` when the caller has it (it does not change between Newton steps).
    """
    lf = log_factorial(y) if log_fact is None else log_fact
    if link == "exp":
        rate = torch.exp(eta)
        return y * eta - rate - lf, y - rate, rate
    f = torch.nn.functional.softplus(eta)
    sig = torch.sigmoid(eta)
    ratio = y / f
    ll = y * torch.log(f) - f - lf
    grad = (ratio - 1.0) * sig
    # d/dη[(y/f − 1) σ] = −y σ²/f² + (y/f − 1) σ(1 − σ); minus that is ≥ 0 because f is convex and log-concave.
    w = ratio * sig.square() / f - (ratio - 1.0) * sig * (1.0 - sig)
    return ll, grad, w.clamp_min(0.0)


class PoissonObservation(nn.Module):
    """Per-region Poisson read-out of the latents (see the module docstring).

    Parameters
    ----------
    y_dims : neurons per region ``(n_1, …, n_R)``.
    latent_dims : latents seen by each region ``(D_1, …, D_R)``.
    link : ``"exp"`` (default) or ``"softplus"``.
    newton_steps : Newton iterations per M-step (each neuron's ``(c_n, d_n)``; warm-started, so a few suffice).
    quadrature : Gauss–Hermite nodes of the softplus expectations.
    """

    C: Tensor
    d: Tensor
    support: Tensor

    #: What this read-out offers an engine (:mod:`mbrila.core.capabilities`).
    capabilities = frozenset({"poisson_observation"})

    def __init__(
        self,
        y_dims: tuple[int, ...],
        latent_dims: tuple[int, ...],
        link: str = "exp",
        newton_steps: int = 2,
        quadrature: int = 20,
    ) -> None:
        super().__init__()
        if len(y_dims) != len(latent_dims):
            raise ValueError(f"y_dims has {len(y_dims)} regions but latent_dims has {len(latent_dims)}.")
        if link not in LINKS:
            raise ValueError(f"link must be one of {LINKS}; got {link!r}.")
        if int(newton_steps) < 1:
            raise ValueError(f"newton_steps must be ≥ 1; got {newton_steps!r}.")
        self.y_dims = tuple(int(n) for n in y_dims)
        self.latent_dims = tuple(int(k) for k in latent_dims)
        self.link = link
        self.newton_steps = int(newton_steps)
        self.quadrature = int(quadrature)
        N, K = sum(self.y_dims), sum(self.latent_dims)
        self.register_buffer("C", torch.zeros(N, K))
        self.register_buffer("d", torch.zeros(N))
        support = torch.zeros(N, K, dtype=torch.bool)
        for neurons, lat in self.region_blocks():
            support[neurons, lat] = True
        self.register_buffer("support", support)

    def region_blocks(self) -> list[tuple[slice, slice]]:
        """``(neuron slice, latent slice)`` per region."""
        return region_blocks(self.y_dims, self.latent_dims)

    def mean_loadings(self) -> tuple[Tensor, Tensor]:
        """``(C, d)``: loadings ``(N, Σ D_r)`` and offsets ``(N,)`` of the drive ``η = C x + d``."""
        return self.C, self.d

    def set_floor(self, y: Tensor, mask: Tensor | None) -> None:
        """No noise variance to floor (kept so that engines treat every read-out alike)."""

    def at_floor(self, rtol: float = 1e-6) -> Tensor:
        """Bool ``(N,)``, all False: a Poisson read-out has no noise variance that could collapse."""
        return torch.zeros(self.d.shape[0], dtype=torch.bool, device=self.d.device)

    def rate(self, eta: Tensor) -> Tensor:
        """``f(η)``."""
        return link_rate(eta, self.link)

    def expected_rate(self, mean: Tensor, var: Tensor) -> Tensor:
        """``E[f(η)]`` for ``η ~ N(mean, var)`` (exact for exp, Gauss–Hermite for softplus)."""
        if self.link == "exp":
            return torch.exp(mean + 0.5 * var)
        z, w = self._nodes(mean)
        eta = mean.unsqueeze(-1) + var.clamp_min(0).sqrt().unsqueeze(-1) * z
        return (link_rate(eta, self.link) * w).sum(-1)

    def _nodes(self, ref: Tensor) -> tuple[Tensor, Tensor]:
        """Standard-normal quadrature: nodes ``z`` and weights summing to 1 (probabilists' Gauss–Hermite)."""
        z, w = np.polynomial.hermite_e.hermegauss(self.quadrature)
        return (
            torch.as_tensor(z, dtype=ref.dtype, device=ref.device),
            torch.as_tensor(w / math.sqrt(2 * math.pi), dtype=ref.dtype, device=ref.device),
        )

    # ------------------------------------------------------------------------------------------------ M-step
    def expected_loglik(self, y: Tensor, mask: Tensor | None, mu: Tensor, v: Tensor) -> Tensor:
        """``Σ_{b,t} E[ℓ] + log y!`` per neuron for drives ``η ~ N(mu, v)`` (``log y!`` does not depend on the
        parameters); ``y, mu, v`` are ``(B, T, n)``, ``mask`` bool or None (unobserved entries may hold anything)."""
        if self.link == "exp":
            terms = y * mu - torch.exp(mu + 0.5 * v)
        else:
            z, q = self._nodes(mu)
            eta = mu.unsqueeze(-1) + v.clamp_min(0).sqrt().unsqueeze(-1) * z
            ll, _, _ = loglik_terms(y.unsqueeze(-1), eta, self.link)
            terms = (ll * q).sum(-1) + log_factorial(y)
        if mask is not None:
            terms = torch.where(mask, terms, torch.zeros((), dtype=terms.dtype, device=terms.device))
        return terms.sum((0, 1))

    def _moment_derivatives(self, y: Tensor, mu: Tensor, v: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(F_μ, F_v, F_μμ)`` of ``F(μ, v) = E[ℓ(η)]``, ``η ~ N(μ, v)`` (Price's theorem: ``F_v = ½ E[ℓ'']``)."""
        if self.link == "exp":
            lam = torch.exp(mu + 0.5 * v)
            return y - lam, -0.5 * lam, -lam
        z, q = self._nodes(mu)
        eta = mu.unsqueeze(-1) + v.clamp_min(0).sqrt().unsqueeze(-1) * z
        _, g, w = loglik_terms(y.unsqueeze(-1), eta, self.link)
        second = -(w * q).sum(-1)
        return (g * q).sum(-1), 0.5 * second, second

    def m_step(self, y: Tensor, mask: Tensor | None, Ex: Tensor, Vx: Tensor) -> None:
        """Newton updates of ``C, d`` from the latent posterior (see the module docstring).

        Parameters
        ----------
        y : ``(B, T, N)`` counts; mask : ``(B, T, N)`` bool or None.
        Ex : ``(B, T, K)`` posterior means of the stacked region latents.
        Vx : ``(B, T, K, K)`` (or broadcastable) posterior covariances of the region latents at each step.
        """
        for neurons, lat in self.region_blocks():
            C, d = self._m_step_region(
                y[..., neurons],
                None if mask is None else mask[..., neurons],
                Ex[..., lat],
                Vx[..., lat, lat],
                self.C[neurons, lat],
                self.d[neurons],
            )
            self.C[neurons, lat] = C
            self.d[neurons] = d

    def _m_step_region(
        self, y: Tensor, mask: Tensor | None, m: Tensor, V: Tensor, C: Tensor, d: Tensor
    ) -> tuple[Tensor, Tensor]:
        K = m.shape[-1]
        n = y.shape[-1]
        # Flatten trials and time: rows r = (b, t).
        m = m.reshape(-1, K)
        V = V.expand(*y.shape[:2], K, K).reshape(-1, K, K)
        rows_mask = None if mask is None else mask.reshape(1, -1, n)
        w = None if mask is None else mask.reshape(-1, n).to(y.dtype)
        y0 = y if mask is None else torch.where(mask, y, torch.zeros((), dtype=y.dtype, device=y.device))
        y0 = y0.reshape(-1, n)
        a = torch.cat([m, torch.ones_like(m[:, :1])], -1)  # (rows, K+1): ∂μ/∂θ for θ = [c; d]
        eps = torch.finfo(m.dtype).eps
        eye = torch.eye(K + 1, dtype=m.dtype, device=m.device)

        # Row moments as flat features, so every sum over rows below is one (rows × features) × (features × n) GEMM.
        VV = V.reshape(-1, K * K)
        aa = (a.unsqueeze(-1) * a.unsqueeze(-2)).reshape(-1, (K + 1) ** 2)
        aV = (a[:, :, None, None] * V[:, None]).reshape(-1, (K + 1) * K * K) if self.link == "exp" else None
        VxV = (V[:, :, :, None, None] * V[:, None, None]).reshape(-1, K**4) if self.link == "exp" else None

        def drive(C: Tensor, d: Tensor) -> tuple[Tensor, Tensor]:
            CC = (C.unsqueeze(-1) * C.unsqueeze(-2)).reshape(n, K * K)
            return m @ C.mT + d, VV @ CC.mT  # μ = cᵀm + d and v = cᵀVc, each (rows, n)

        def objective(C: Tensor, d: Tensor) -> Tensor:
            mu, v = drive(C, d)
            # Summed over every process's trials in a data-parallel fit, as are the gradient and Hessian below.
            return all_sum(self.expected_loglik(y0[None], rows_mask, mu[None], v[None]))[0]

        f = objective(C, d)
        for _ in range(self.newton_steps):
            mu, v = drive(C, d)
            F_mu, F_v, F_mumu = self._moment_derivatives(y0, mu, v)
            if w is not None:
                F_mu, F_v, F_mumu = F_mu * w, F_v * w, F_mumu * w
            SV = (F_v.mT @ VV).reshape(n, K, K)  # Σ_r F_v V_r per neuron
            # Gradient (∂v/∂c = 2 V c): Σ_r F_μ a_r + 2 [Σ_r F_v V_r c; 0].
            grad = F_mu.mT @ a  # (n, K+1)
            grad[:, :K] += 2 * (SV @ C.unsqueeze(-1)).squeeze(-1)
            hess = (F_mumu.mT @ aa).reshape(n, K + 1, K + 1)
            if aV is not None and VxV is not None:
                # Exact Hessian of the exp link: Σ_r F_μμ (u uᵀ) + 2 Σ_r F_v [V 0; 0 0] with u = a + [V c; 0]
                # (F_μμ = −λ̄); the u uᵀ cross terms are contractions of Σ_r λ̄ a ⊗ V and Σ_r λ̄ V ⊗ V with c.
                aVc = torch.einsum("nikl,nl->nik", (F_mumu.mT @ aV).reshape(n, K + 1, K, K), C)
                VcVc = torch.einsum("nijkl,nj,nl->nik", (F_mumu.mT @ VxV).reshape(n, K, K, K, K), C, C)
                hess[:, :, :K] += aVc
                hess[:, :K, :] += aVc.mT
                hess[:, :K, :K] += VcVc
            hess[:, :K, :K] += 2 * SV
            grad, hess = all_sum(grad, hess)
            # −hess is positive definite for every neuron with data; a ridge of relative size √ε guards the rest.
            neg = -hess
            scale = neg.diagonal(dim1=-2, dim2=-1).amax(-1).clamp_min(1.0)
            neg = neg + eps**0.5 * scale[:, None, None] * eye
            step = torch.linalg.solve(neg, grad.unsqueeze(-1)).squeeze(-1)
            # Backtracking per neuron: halve the step until E[ℓ] does not fall by more than its round-off.
            slack = 64 * eps * (f.abs() + 1)
            alpha = torch.ones(n, dtype=m.dtype, device=m.device)
            C_new, d_new, f_new = C, d, f
            done = torch.zeros(n, dtype=torch.bool, device=m.device)
            for _ in range(30):
                C_try, d_try = C + alpha[:, None] * step[:, :K], d + alpha * step[:, K]
                f_try = objective(C_try, d_try)
                take = (f_try >= f - slack) & ~done
                C_new = torch.where(take[:, None], C_try, C_new)
                d_new = torch.where(take, d_try, d_new)
                f_new = torch.where(take, f_try, f_new)
                done = done | take
                if bool(done.all()):
                    break
                alpha = 0.5 * alpha
            C, d, f = C_new, d_new, f_new
        return C, d
