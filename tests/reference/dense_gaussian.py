"""Dense reference for linear-Gaussian state-space models: build the joint Gaussian of all states and all
observed entries, and condition. No recursion of any kind — slow, obvious, and independent of the library."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class DensePosterior:
    mean: Tensor  # (B, T, D)
    cov: Tensor  # (B, T, D, D)
    cross_cov: Tensor  # (B, T-1, D, D): Cov(x_{t+1}, x_t | y)
    log_likelihood: Tensor  # (B,)
    filt_mean: Tensor  # (B, T, D)
    filt_cov: Tensor  # (B, T, D, D)


def state_moments(A: Tensor, Q: Tensor, m0: Tensor, P0: Tensor, T: int) -> tuple[Tensor, Tensor]:
    """Prior mean ``(T·D,)`` and covariance ``(T·D, T·D)`` of the stacked states ``x_0 … x_{T−1}``."""
    D = m0.shape[0]
    At = [A[t] if A.ndim == 3 else A for t in range(T - 1)]
    Qt = [Q[t] if Q.ndim == 3 else Q for t in range(T - 1)]
    means, covs = [m0], [P0]
    for t in range(T - 1):
        means.append(At[t] @ means[-1])
        covs.append(At[t] @ covs[-1] @ At[t].T + Qt[t])
    S = torch.zeros(T * D, T * D, dtype=m0.dtype)
    for s in range(T):
        S[s * D : (s + 1) * D, s * D : (s + 1) * D] = covs[s]
        Phi = torch.eye(D, dtype=m0.dtype)  # Cov(x_u, x_s) = A_{u-1} … A_s P_s for u > s
        for u in range(s + 1, T):
            Phi = At[u - 1] @ Phi
            block = Phi @ covs[s]
            S[u * D : (u + 1) * D, s * D : (s + 1) * D] = block
            S[s * D : (s + 1) * D, u * D : (u + 1) * D] = block.T
    return torch.cat(means), S


def condition(mu: Tensor, S: Tensor, Cb: Tensor, db: Tensor, Rb: Tensor, yb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Posterior of ``x ~ N(mu, S)`` given ``y = Cb x + db + e``, ``e ~ N(0, diag Rb)``; also ``log p(y)``."""
    if yb.numel() == 0:
        return mu, S, torch.zeros((), dtype=mu.dtype)
    Sy = Cb @ S @ Cb.T + torch.diag(Rb)
    L = torch.linalg.cholesky(Sy)
    K = torch.cholesky_solve(Cb @ S, L).T  # S Cbᵀ Sy⁻¹
    r = yb - (Cb @ mu + db)
    mean = mu + K @ r
    cov = S - K @ Cb @ S
    alpha = torch.cholesky_solve(r[:, None], L)[:, 0]
    ll = (
        -0.5 * (r @ alpha)
        - L.diagonal().log().sum()
        - 0.5 * r.numel() * torch.log(torch.tensor(2 * torch.pi, dtype=mu.dtype))
    )
    return mean, 0.5 * (cov + cov.T), ll


def dense_posterior(A, Q, m0, P0, C, d, R, y, mask=None, filter_times=None) -> DensePosterior:
    """Smoothed and filtered marginals and ``log p(observed y)`` per trial (float64, loops are fine here).

    ``filter_times`` limits the (expensive) filtered marginals to some steps; the others are left as NaN.
    """
    B, T, N = y.shape
    D = m0.shape[0]
    mu, S = state_moments(A, Q, m0, P0, T)
    obs = torch.ones(B, T, N, dtype=torch.bool) if mask is None else mask
    Cfull = torch.block_diag(*([C] * T))
    dfull = d.repeat(T)
    Rfull = R.repeat(T)
    means, covs, crosses, lls, fmeans, fcovs = [], [], [], [], [], []
    for b in range(B):
        o = obs[b].reshape(-1)
        yb = y[b].reshape(-1)
        mean, cov, ll = condition(mu, S, Cfull[o], dfull[o], Rfull[o], yb[o])
        means.append(mean.reshape(T, D))
        covs.append(torch.stack([cov[t * D : (t + 1) * D, t * D : (t + 1) * D] for t in range(T)]))
        crosses.append(
            torch.stack([cov[(t + 1) * D : (t + 2) * D, t * D : (t + 1) * D] for t in range(T - 1)])
            if T > 1
            else torch.zeros(0, D, D, dtype=y.dtype)
        )
        lls.append(ll)
        fm = [torch.full((D,), float("nan"), dtype=y.dtype) for _ in range(T)]
        fc = [torch.full((D, D), float("nan"), dtype=y.dtype) for _ in range(T)]
        for t in range(T) if filter_times is None else filter_times:
            # Filtering: condition on observations up to and including t only.
            ot = o.clone()
            ot[(t + 1) * N :] = False
            m_t, c_t, _ = condition(mu, S, Cfull[ot], dfull[ot], Rfull[ot], yb[ot])
            fm[t] = m_t[t * D : (t + 1) * D]
            fc[t] = c_t[t * D : (t + 1) * D, t * D : (t + 1) * D]
        fmeans.append(torch.stack(fm))
        fcovs.append(torch.stack(fc))
    return DensePosterior(
        torch.stack(means),
        torch.stack(covs),
        torch.stack(crosses),
        torch.stack(lls),
        torch.stack(fmeans),
        torch.stack(fcovs),
    )
