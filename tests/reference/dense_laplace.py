"""Dense reference for the Laplace approximation of a Poisson read-out of a linear-Gaussian state path.

The stacked path ``s = [s_0; …; s_{T−1}]`` has the prior ``N(0, S)`` (``S`` from :func:`.dense_gaussian.state_moments`)
and the counts ``y_{t,n} ~ Poisson(f(η_{t,n}))``, ``η_t = C s_t + d``, ``f = exp`` or ``softplus``. ``S`` may be
singular (an AR(P)-lifted GP's state repeats its lags, so the path lies in a subspace), so the path is written as
``s = L z`` with ``S = L Lᵀ``, ``z ~ N(0, I)``, and everything is done in ``z``, where the prior has full rank::

    Φ(z) = −½ ‖z‖² + Σ ℓ(y, G z + d_big),    G = C_big L,    ℓ(y, η) = y log f(η) − f(η) − log y!
    ∇Φ = Gᵀ g − z,    −∇²Φ = H = I + Gᵀ W G,    g = ∂ℓ/∂η,  W = diag(−∂²ℓ/∂η²)

Plain Newton ``z ← z + H⁻¹ ∇Φ`` (halved while ``Φ`` falls) finds the mode ``ẑ``. The Laplace approximation is
``z | y ≈ N(ẑ, H⁻¹)``, so ``s | y ≈ N(L ẑ, L H⁻¹ Lᵀ)``, and::

    log p(y) ≈ Σ ℓ(y, η̂) − ½ ‖ẑ‖² − ½ log det H

(``∫ exp(Φ(ẑ) − ½ (z − ẑ)ᵀ H (z − ẑ)) (2π)^{−n/2} dz``). No recursion of any kind, and nothing from the library:
the link functions and their derivatives are written out here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from tests.reference.dense_gaussian import state_moments


@dataclass
class DenseLaplace:
    mean: Tensor  # (B, T, D) mode
    cov: Tensor  # (B, T, D, D) marginal covariances
    cross_cov: Tensor  # (B, T-1, D, D): Cov(s_{t+1}, s_t | y)
    log_likelihood: Tensor  # (B,) Laplace log p(y), log y! included


def poisson_terms(y: Tensor, eta: Tensor, link: str) -> tuple[Tensor, Tensor, Tensor]:
    """``ℓ``, ``ℓ' = ∂ℓ/∂η`` and ``w = −∂²ℓ/∂η²`` of ``ℓ = y log f(η) − f(η) − log y!``, elementwise.

    exp: ``ℓ = y η − e^η − log y!``, ``ℓ' = y − e^η``, ``w = e^η``.
    softplus: ``f = log(1 + e^η)``, ``f' = σ(η)``, ``f'' = σ(1 − σ)``, so ``ℓ' = (y/f − 1) σ`` and
    ``ℓ'' = −y σ²/f² + (y/f − 1) σ (1 − σ)``.
    """
    log_y_fact = torch.lgamma(y + 1)
    if link == "exp":
        rate = torch.exp(eta)
        return y * eta - rate - log_y_fact, y - rate, rate
    if link == "softplus":
        f = torch.logaddexp(eta, torch.zeros_like(eta))
        sig = 1.0 / (1.0 + torch.exp(-eta))
        r = y / f
        ll = y * torch.log(f) - f - log_y_fact
        return ll, (r - 1.0) * sig, y * sig**2 / f**2 - (r - 1.0) * sig * (1.0 - sig)
    raise ValueError(f"unknown link {link!r}")


def prior_factor(S: Tensor) -> Tensor:
    """``L (T·D, r)`` with ``S = L Lᵀ`` for a PSD, possibly singular ``S``.

    Eigenvalues below zero are round-off and clamped at 0. Those within ``n ε λ_max`` of 0 are round-off too (they
    are the null space of a lift, computed inexactly): their columns are dropped, which changes ``S`` by less than
    its own error and makes the Newton systems ``r × r`` with ``r`` the rank, not ``n = T·D``.
    """
    evals, evecs = torch.linalg.eigh(0.5 * (S + S.T))
    evals = evals.clamp_min(0.0)
    keep = evals > S.shape[0] * torch.finfo(S.dtype).eps * evals.max()
    return evecs[:, keep] * evals[keep].sqrt()


def laplace_dense_one(
    L: Tensor, G: Tensor, db: Tensor, yb: Tensor, link: str, n_iter: int = 40
) -> tuple[Tensor, Tensor, Tensor]:
    """One trial: mode ``L ẑ``, covariance ``L H⁻¹ Lᵀ`` and Laplace ``log p(y)`` for the observed rows ``G, db, yb``."""
    n = L.shape[1]
    eye = torch.eye(n, dtype=L.dtype)

    def objective(z: Tensor) -> Tensor:
        return poisson_terms(yb, G @ z + db, link)[0].sum() - 0.5 * z @ z

    z = torch.zeros(n, dtype=L.dtype)
    phi = objective(z)
    for _ in range(n_iter):
        ll, g, w = poisson_terms(yb, G @ z + db, link)
        grad = G.T @ g - z
        H = eye + G.T @ (w[:, None] * G)
        step = torch.cholesky_solve(grad[:, None], torch.linalg.cholesky(H))[:, 0]
        # Near the mode Φ's increase falls below its round-off: allow a fall of that size, so the last (exact,
        # quadratic-regime) steps are taken and the iteration reaches machine precision.
        slack = 64 * torch.finfo(L.dtype).eps * (1.0 + ll.abs().sum() + z @ z)
        alpha = 1.0
        for _ in range(50):
            phi_try = objective(z + alpha * step)
            if phi_try >= phi - slack:
                break
            alpha *= 0.5
        else:
            raise AssertionError("step halving found no ascent")
        z, phi = z + alpha * step, phi_try
    ll, g, w = poisson_terms(yb, G @ z + db, link)
    grad = G.T @ g - z
    assert float(grad.abs().max()) <= 1e-10 * (1.0 + float(z.abs().max())), f"Newton did not converge: {grad}"
    H = eye + G.T @ (w[:, None] * G)
    chol = torch.linalg.cholesky(H)
    logdet = 2 * chol.diagonal().log().sum()
    Hinv = torch.cholesky_inverse(chol)
    cov = L @ Hinv @ L.T
    return L @ z, 0.5 * (cov + cov.T), ll.sum() - 0.5 * z @ z - 0.5 * logdet


def dense_laplace_from_cov(
    S: Tensor, C: Tensor, d: Tensor, y: Tensor, mask: Tensor | None = None, link: str = "exp"
) -> DenseLaplace:
    """Laplace posterior marginals and ``log p(y)`` per trial for the path prior ``N(0, S)``, ``S (T·D, T·D)``.

    ``y (B, T, N)`` counts; ``mask (B, T, N)`` bool, True = observed (masked entries are dropped entirely).
    """
    B, T, N = y.shape
    D = C.shape[1]
    L = prior_factor(S)
    C_big = torch.block_diag(*([C] * T))
    d_big = d.repeat(T)
    obs = torch.ones(B, T, N, dtype=torch.bool) if mask is None else mask
    means, covs, crosses, lls = [], [], [], []
    for b in range(B):
        o = obs[b].reshape(-1)
        mean, cov, ll = laplace_dense_one(L, C_big[o] @ L, d_big[o], y[b].reshape(-1)[o], link)
        means.append(mean.reshape(T, D))
        covs.append(torch.stack([cov[t * D : (t + 1) * D, t * D : (t + 1) * D] for t in range(T)]))
        crosses.append(
            torch.stack([cov[(t + 1) * D : (t + 2) * D, t * D : (t + 1) * D] for t in range(T - 1)])
            if T > 1
            else torch.zeros(0, D, D, dtype=y.dtype)
        )
        lls.append(ll)
    return DenseLaplace(torch.stack(means), torch.stack(covs), torch.stack(crosses), torch.stack(lls))


def dense_laplace(
    A: Tensor, Q: Tensor, P0: Tensor, C: Tensor, d: Tensor, y: Tensor, mask: Tensor | None = None, link: str = "exp"
) -> DenseLaplace:
    """:func:`dense_laplace_from_cov` for the state-space prior ``s_0 ~ N(0, P0)``, ``s_{t+1} = A_t s_t + N(0, Q_t)``."""
    T = y.shape[1]
    _, S = state_moments(A, Q, torch.zeros(P0.shape[0], dtype=P0.dtype), P0, T)
    return dense_laplace_from_cov(S, C, d, y, mask, link)
