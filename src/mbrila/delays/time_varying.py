"""Delays that change within a trial, one smooth trajectory per non-reference region and across latent (ADM).

Parametrisation::

    u_k^r(t) = Σ_j Φ_j(t) w_{r,k,j},        Φ_j(t) = g_j(t) / Σ_i g_i(t),   g_j(t) = exp(−(t − c_j)² / (2 h²))
    δ_k^r(t) = b · tanh(u_k^r(t) / b)        (b = max_delay; δ = u without a bound),  δ^0 ≡ 0

with ``n_basis`` centres ``c_j`` evenly spaced over ``[0, T − 1]`` and width ``h`` equal to their spacing. The
normalised Gaussian basis is a partition of unity, so a constant delay is represented exactly (all ``w`` equal)
and the model contains DLAG's constant delays; the basis makes δ(t) smooth by construction, and the optional
prior ``−½ λ Σ_t (Δ²δ_k^r(t))²`` (second differences in time) penalises wiggles the data do not support.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mbrila.delays.base import Delay
from mbrila.utils.constraints import bounded, unbounded


def gaussian_basis(T: int, n_basis: int, dtype: torch.dtype | None = None) -> Tensor:
    """``(T, n_basis)`` normalised Gaussian bumps (rows sum to 1), centres evenly spaced over ``[0, T − 1]``.

    Parameters
    ----------
    T : time bins; n_basis : bumps; dtype : of the result (torch's default when None).
    """
    if n_basis < 1:
        raise ValueError(f"n_basis must be at least 1; got {n_basis}.")
    t = torch.arange(T, dtype=torch.float64)
    if n_basis == 1:
        return torch.ones(T, 1, dtype=dtype or torch.get_default_dtype())
    centres = torch.linspace(0.0, T - 1.0, n_basis, dtype=torch.float64)
    h = (T - 1.0) / (n_basis - 1)
    g = torch.exp(-0.5 * ((t[:, None] - centres[None, :]) / h) ** 2)
    return (g / g.sum(1, keepdim=True)).to(dtype or torch.get_default_dtype())


class TimeVaryingDelay(Delay):
    """Learnable smooth delays ``δ_k^r(t)`` (bins), region 0 pinned to 0 (see the module docstring).

    Parameters
    ----------
    n_regions, n_across : sizes.
    T : trial length the basis is laid out for.
    n_basis : basis functions per trajectory (default ``max(4, T // 4)``: a spacing of about 4 bins).
    max_delay : optional bound ``b`` on ``|δ|`` in bins.
    smoothness : ``λ`` of the second-difference prior (0 turns it off); the log prior is summed over time, regions
        and latents, next to a data term summed over trials and time.
    """

    constant = False

    def __init__(
        self,
        n_regions: int,
        n_across: int,
        T: int,
        *,
        n_basis: int | None = None,
        max_delay: float | None = None,
        smoothness: float = 1e3,
    ) -> None:
        super().__init__(n_regions, n_across)
        if T < 2:
            raise ValueError(f"T must be at least 2 for time-varying delays; got {T}.")
        if max_delay is not None and not max_delay > 0:
            raise ValueError(f"max_delay must be positive (bins) or None; got {max_delay}.")
        if smoothness < 0:
            raise ValueError(f"smoothness must be non-negative; got {smoothness}.")
        self.T = int(T)
        self.n_basis = int(n_basis) if n_basis is not None else max(4, self.T // 4)
        if not 1 <= self.n_basis <= self.T:
            raise ValueError(f"n_basis must lie in [1, T = {self.T}]; got {self.n_basis}.")
        self.max_delay = None if max_delay is None else float(max_delay)
        self.smoothness = float(smoothness)
        self.weights = nn.Parameter(torch.zeros(n_regions - 1, n_across, self.n_basis))

    def _basis(self, T: int) -> Tensor:
        # Built in the weights' dtype on each call (T × n_basis, cheap), so casting the module keeps the basis an
        # exact partition of unity. Another T resamples the same trajectory shape over [0, T − 1].
        w = self.weights
        return gaussian_basis(max(T, 2), self.n_basis, w.dtype).to(w.device)[:T]

    @property
    def basis(self) -> Tensor:
        """``(T, n_basis)`` basis of the trial length the delay was built for."""
        return self._basis(self.T)

    def delays(self, T: int) -> Tensor:
        u = torch.einsum("tj,rkj->trk", self._basis(T), self.weights)  # (T, R−1, K)
        d = bounded(u, self.max_delay)
        return torch.cat([torch.zeros_like(d[:, :1]), d], dim=1)

    def set_delays(self, value: Tensor) -> None:
        """Fit the weights to delays ``(T, R, K)`` / ``(T, R−1, K)`` (least squares) or constants ``(R, K)``/``(R−1, K)``.

        Constants are reproduced exactly; trajectories to the basis's resolution.
        """
        w = self.weights
        v = torch.as_tensor(value, dtype=w.dtype, device=w.device)
        R, K = self.n_regions, self.n_across
        if v.ndim == 2:
            v = v[1:] if v.shape[0] == R else v
            if tuple(v.shape) != (R - 1, K):
                raise ValueError(f"constant delays must have shape {(R, K)} or {(R - 1, K)}; got {tuple(v.shape)}.")
            new = unbounded(v, self.max_delay, "delays", "max_delay")[..., None].expand_as(w)
        else:
            v = v[:, 1:] if v.ndim == 3 and v.shape[1] == R else v
            if tuple(v.shape) != (self.T, R - 1, K):
                raise ValueError(
                    f"delay trajectories must have shape {(self.T, R, K)} or {(self.T, R - 1, K)}; got {tuple(v.shape)}."
                )
            u = unbounded(v, self.max_delay, "delays", "max_delay").reshape(self.T, -1)
            new = torch.linalg.lstsq(self.basis, u).solution.T.reshape(R - 1, K, self.n_basis)
        with torch.no_grad():
            w.copy_(new)

    def set_latent_delays(self, k: int, value: Tensor) -> None:
        """Set the trajectories ``(T, R)`` (or constants ``(R,)``) of across latent ``k`` only."""
        full = self.delays(self.T).detach().clone()
        v = torch.as_tensor(value, dtype=full.dtype, device=full.device)
        full[:, :, k] = v if v.ndim == 2 else v.expand(self.T, -1)
        self.set_delays(full)

    def log_prior(self) -> Tensor:
        """``−½ λ Σ_{t,r,k} (δ_k^r(t+1) − 2δ_k^r(t) + δ_k^r(t−1))²``."""
        if self.smoothness == 0 or self.T < 3:
            return self.weights.new_zeros(())
        d = self.delays(self.T)
        second = d[2:] - 2 * d[1:-1] + d[:-2]
        return -0.5 * self.smoothness * (second**2).sum()
