"""fast-mDLAG (Gokcen et al. 2025): mDLAG's variational EM with the circulant GP prior in the frequency domain.

Each latent's undelayed process ``z_k`` gets the circulant prior of :mod:`mbrila.frequency.circulant`; region ``r``
sees ``x^r = Q_r z`` with the delay operator ``Q_r = diag(e^{−iω δ^r})``. Under the unitary DFT the trial's
``K·L`` latent values decouple into ``L`` independent ``K``-dimensional complex Gaussians, one per frequency::

    P_ω = diag(1/S_k(ω)) + Σ_r Q_rᴴ J_r Q_r,     z̄_ω = P_ω⁻¹ Σ_r Q_rᴴ h_{r,ω}
    log Z = Σ_ω [½ b_ωᴴ z̄_ω − ½ Σ_k log S_k(ω) − ½ log|P_ω|]

(``J_r = ⟨C^rᵀ diag(φ) C^r⟩``, ``h_{r,ω}`` the DFT of ``h_t = ⟨C^r⟩ᵀ diag⟨φ⟩ (y_t − ⟨d⟩)``), so ``q(X)`` costs
``O(L K³ + B L log L · R K)`` instead of ``O((R K L)³)``. Everything else is the time-domain variational EM of
:mod:`mbrila.inference.vem_ard`: the latents' moments are mapped back to time (Parseval) for the same closed-form
read-out updates, and the ELBO is computed exactly for the circulant model. Timescales enter only the prior
(``Σ_ω −½ log S − ½ E|z_ω|²/S``) and delays only the likelihood (through ``Q_r``); both are learned by guarded
optimiser steps on those terms. Trials of different lengths are grouped by length (each its own frequencies);
missing entries inside a trial are not supported (use the time or Kalman engine).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, ClassVar

import torch
from torch import Tensor

from mbrila.core.capabilities import register_engine
from mbrila.frequency import angular_frequencies, delay_operator, unitary_fft, unitary_ifft
from mbrila.inference.vem_ard import LatentPosterior, _ARDEngine


def trial_lengths(mask: Tensor | None, B: int, T: int, device: torch.device) -> Tensor:
    """``(B,)`` lengths of complete trials padded at the end; ``ValueError`` for any other missing entry."""
    if mask is None:
        return torch.full((B,), T, dtype=torch.long, device=device)
    full = mask.all(-1)  # (B, T)
    lengths = full.sum(1)
    expected = torch.arange(T, device=device)[None, :, None] < lengths[:, None, None]
    if not bool((mask == expected.expand_as(mask)).all()):
        raise ValueError(
            "VEMARDFreqEngine needs complete trials: missing entries are allowed only as the padding of ragged "
            "trials (MultiRegionData(lengths=...)). Use MDLAG(engine='time') or engine='kalman' for data with "
            "missing entries."
        )
    if bool((lengths < 2).any()):
        raise ValueError("VEMARDFreqEngine needs trials of at least 2 bins.")
    return lengths


@dataclass
class _Group:
    """One group of equal-length trials in the frequency domain (the statistics the gradient steps read)."""

    idx: Tensor  # (n,) trial indices
    L: int
    omega: Tensor  # (L,)
    prior_second: Tensor  # (K, L): Σ_trials E|z_kω|²
    lin: Tensor  # (R, L, K) complex: Σ_b conj(h_{r,bωk}) z̄_{bωk}
    W: Tensor  # (L, K, K) complex: Σ_b E[z_ω z_ωᴴ]
    J: Tensor  # (R, K, K) region blocks of J


@register_engine("freq")
@dataclass
class VEMARDFreqEngine(_ARDEngine):
    """fast-mDLAG's frequency-domain variational EM (see the module docstring).

    Parameters as :class:`~mbrila.inference.em.EMEngine` (default ``tol =``
    :data:`~mbrila.inference.vem_ard.ARD_TOL`). Needs kernels with ``spectral_density`` and constant delays.
    """

    requires: ClassVar[frozenset[str]] = frozenset(
        {"ard_observation", "dense_gp", "spectral_density", "constant_delay"}
    )
    latent_form: ClassVar[str] = "dense"

    # ------------------------------------------------------------------ q(X) in the frequency domain
    def _spectra(self, model: Any, omega: Tensor) -> Tensor:
        """``(K, L)`` spectral densities (with nugget) of the latents at ``omega``."""
        return torch.stack([blk.spectral_density(omega) for blk in model.across])

    def _condition(
        self,
        model: Any,
        y: Tensor,
        mask: Tensor | None,
        neurons: Tensor | None = None,
        stats: dict[str, Tensor] | None = None,
    ) -> tuple[LatentPosterior, Tensor]:
        obs = model.observation
        B, T, _ = y.shape
        R, K = model.n_regions, model.latent_spec.n_across
        lengths = trial_lengths(mask, B, T, y.device)
        mean = y.new_zeros(B, T, R * K)
        cov = y.new_zeros(B, T, R * K, R * K)
        log_z = y.new_zeros(B)
        c_all = y.new_zeros(B)
        second = y.new_zeros(1, R * K, R * K)
        groups = []
        delays = model.delay.region_delays().detach()
        for L in torch.unique(lengths).tolist():  # one pass per distinct trial length
            idx = torch.nonzero(lengths == L).flatten()
            whole = L == T and idx.shape[0] == B
            yg = y if whole else y[idx, :L]
            J, h, c = obs.information(yg, None, neurons, stats if whole else None)
            Jr = torch.stack([J[r * K : (r + 1) * K, r * K : (r + 1) * K] for r in range(R)])  # (R, K, K)
            omega = angular_frequencies(L, y.dtype, y.device)
            S = self._spectra(model, omega).detach()  # (K, L)
            Q = delay_operator(omega, delays)  # (R, L, K)
            cdt = Q.dtype
            P = torch.diag_embed((1.0 / S).mT.to(cdt)) + torch.einsum("rfk,rkl,rfl->fkl", Q.conj(), Jr.to(cdt), Q)
            P = 0.5 * (P + P.mH)
            Lc, info = torch.linalg.cholesky_ex(P)
            if bool((info != 0).any()):
                raise ValueError("the frequency-domain posterior precision is not positive definite; use float64.")
            Pinv = torch.cholesky_inverse(Lc)
            hf = unitary_fft(h, dim=1).reshape(len(idx), L, R, K)
            b = torch.einsum("rfk,bfrk->bfk", Q.conj(), hf)
            zbar = torch.einsum("fkl,bfl->bfk", Pinv, b)
            logdet_P = 2 * Lc.diagonal(dim1=-2, dim2=-1).real.log().sum()
            log_z[idx] = 0.5 * (b.conj() * zbar).sum((1, 2)).real - 0.5 * S.log().sum() - 0.5 * logdet_P
            c_all[idx] = c
            xf = Q.permute(1, 0, 2)[None] * zbar[:, :, None, :]  # (n, L, R, K)
            mean[idx, :L] = unitary_ifft(xf, dim=1).real.reshape(len(idx), L, R * K)
            W = len(idx) * Pinv + torch.einsum("bfk,bfl->fkl", zbar, zbar.conj())
            X = Q.permute(1, 0, 2).reshape(L, R * K)  # the stacked delay operators, one row per (r, k)
            K_rep = torch.arange(R * K, device=y.device) % K
            # Cov(x_t) is the same at every t under the circulant model: (1/L) Σ_ω X_ω P_ω⁻¹ X_ωᴴ.
            Px = X[:, :, None] * Pinv[:, K_rep][:, :, K_rep] * X.conj()[:, None, :]
            cov[idx, :L] = (Px.sum(0).real / L).expand(len(idx), L, R * K, R * K)
            Wx = X[:, :, None] * W[:, K_rep][:, :, K_rep] * X.conj()[:, None, :]
            second[0] += Wx.sum(0).real
            lin = torch.einsum("bfrk,bfk->rfk", hf.conj(), zbar)
            groups.append(_Group(idx, L, omega, W.diagonal(dim1=-2, dim2=-1).real.mT, lin, W, Jr))
        full = bool((lengths == T).all())
        if not full:
            # Ragged trials: the read-out's masked updates need per-trial moments (zero beyond each length).
            valid = (torch.arange(T, device=y.device)[None, :] < lengths[:, None]).to(y.dtype)
            cov = cov * valid[:, :, None, None]
            second = cov + mean.unsqueeze(-1) * mean.unsqueeze(-2)
        cov_out = cov[:1] if full else cov
        return LatentPosterior(mean, second, cov_out, log_z, groups), c_all

    # ------------------------------------------------------------------ engine hooks
    def _begin(self, model: Any, y: Tensor, mask: Tensor | None) -> Any:
        trial_lengths(mask, y.shape[0], y.shape[1], y.device)  # refuse unsupported masks before fitting
        obs = model.observation
        obs.set_floor(y, mask)
        return SimpleNamespace(y=y, mask=mask, T=y.shape[1], stats=obs.data_statistics(y, mask))

    def _prior_objective(self, model: Any, state: Any, stats: LatentPosterior) -> Any:
        groups: list[_Group] = stats.extra

        def objective() -> Tensor:
            total = state.y.new_zeros(())
            delays = model.delay.region_delays()
            for g in groups:  # one per distinct trial length
                n = g.idx.shape[0]
                S = self._spectra(model, g.omega)
                total = total - 0.5 * (n * S.log() + g.prior_second / S).sum()
                Q = delay_operator(g.omega, delays)
                quad = torch.einsum("rkl,flk,rfl,rfk->", g.J.to(Q.dtype), g.W, Q, Q.conj())
                total = total + (Q * g.lin).sum().real - 0.5 * quad.real
            return total

        return objective, (state.y.shape[0], state.T)
