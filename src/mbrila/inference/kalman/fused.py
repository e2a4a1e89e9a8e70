"""Kalman filter and RTS smoother fused across trials, for observations whose precision is shared by all trials.

When ``J = CᵀR⁻¹C`` carries no trial or time dimension (no missing data, or co-smoothing with the hidden neurons
dropped), the covariance recursion does not depend on the data. It runs once, on ``D × D`` matrices, and every
trial's means then follow the affine recursions

    filter:    m_t = W_t m_{t−1} + u_t,       W_t = (I − P_t J) A_{t−1},   u_t = P_t h_t
    smoother:  m^s_t = G_t m^s_{t+1} + v_t,   v_t = m_t − G_t A_t m_t

whose per-step work is one ``(B, D) × (D, D)`` product for all trials; ``u``, ``v``, the predicted means and the
log-likelihood terms are computed for every step at once. The sequential recursion (:mod:`.sequential`) instead
issues about a dozen small operations per step, and at the sizes of neural data that per-step overhead is most of
its time.

For a time-invariant model (``A``, ``Q`` without a time dimension) the Riccati recursion converges to its steady
state; once the predicted covariance changes by less than ``steady_tol`` (relative, Frobenius) from one step to
the next, the remaining steps reuse it, and the backward covariance recursion stops the same way. The filter is
exponentially stable, so the neglected change is of the order of ``steady_tol`` times the covariance's scale;
the default ``steady_tol = ε^0.75`` of the dtype (≈1.8e-12 in float64) keeps results within round-off of the full
recursion (``tests/unit/test_kalman_fused.py`` bounds it). ``steady_tol=0`` disables the shortcut.

Same signature and results as :mod:`.sequential` and :mod:`.parallel`; a per-trial ``J`` (``(B, T, D, D)``)
is passed on to :mod:`.sequential`.
"""

from __future__ import annotations

from functools import partial

import torch
from torch import Tensor

from mbrila.inference.kalman import sequential
from mbrila.inference.kalman.steps import info_update_cov, smoother_gain
from mbrila.utils.linalg import eye_like, symmetrize


def _default_tol(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps) ** 0.75


def _converged(new: Tensor, old: Tensor, tol: float) -> bool:
    return bool(torch.linalg.matrix_norm(new - old) <= tol * torch.linalg.matrix_norm(old))


def _low_rank_factor(J: Tensor) -> Tensor | None:
    """``U`` ``(D, r)`` with ``J = U Uᵀ`` (eigenvalues below ``D·ε·λ_max`` dropped), when ``r ≤ D/2``; else None.

    A read-out that sees only some state entries (an AR(P) lift reads the current lag, not the older ones) has a
    precision of low rank, and the update then needs an ``r × r`` factorisation instead of a ``D × D`` one. Not
    used when ``J`` carries a gradient: the eigenvectors of its null space are not differentiable.
    """
    if J.requires_grad and torch.is_grad_enabled():
        return None
    D = J.shape[-1]
    # LAPACK's float32 eigh can fail on a J with many near-zero eigenvalues (seen on rank-15 60 × 60 DLAG-SSM
    # read-outs): it raises, or returns NaN, which would hide every observation from the filter. The full update
    # needs no eigendecomposition.
    try:
        evals, evecs = torch.linalg.eigh(J)
    except torch.linalg.LinAlgError:
        return None
    if not bool(torch.isfinite(evals).all()) or not bool(torch.isfinite(evecs).all()):
        return None
    keep = evals > D * torch.finfo(J.dtype).eps * evals.max().clamp_min(0)
    r = int(keep.sum())
    if r > D // 2:
        return None
    return evecs[:, keep] * evals[keep].sqrt()


def _update_low_rank(P_pred: Tensor, U: Tensor, eye_r: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`~.steps.info_update_cov` for ``J = U Uᵀ``: ``P⁺ = P⁻ − P⁻U (I + UᵀP⁻U)⁻¹ UᵀP⁻`` and ``|I + P⁻J| = |I + UᵀP⁻U|`` (Sylvester)."""
    PU = P_pred @ U
    L = torch.linalg.cholesky(symmetrize(eye_r + U.mT @ PU))
    Y = torch.linalg.solve_triangular(L, PU.mT, upper=False)
    return symmetrize(P_pred - Y.mT @ Y), 2 * L.diagonal().log().sum()


def _riccati(A: Tensor, Q: Tensor, P0: Tensor, J: Tensor, T: int, tol: float) -> tuple[Tensor, Tensor, Tensor]:
    """Filtered and predicted covariances ``(T, D, D)`` and ``log|I + P⁻_t J|`` ``(T,)`` of the shared recursion."""
    steady = tol > 0 and A.ndim == 2 and Q.ndim == 2
    U = _low_rank_factor(J)
    if U is None:
        update = partial(info_update_cov, J=J)
    else:
        update = partial(_update_low_rank, U=U, eye_r=torch.eye(U.shape[-1], dtype=U.dtype, device=U.device))
    P_pred = P0
    filt, pred, logdet = [], [], []
    for t in range(T):
        P, ld = update(P_pred)
        filt.append(P)
        pred.append(P_pred)
        logdet.append(ld)
        if t + 1 == T:
            break
        A_t = sequential._at(A, t)
        P_next = symmetrize(A_t @ P @ A_t.mT + sequential._at(Q, t))
        if steady and _converged(P_next, P_pred, tol):
            n = T - t - 1
            filt.extend([P] * n)
            pred.extend([P_next] * n)
            logdet.extend([logdet[-1]] * n)
            break
        P_pred = P_next
    return torch.stack(filt), torch.stack(pred), torch.stack(logdet)


def filter_info(
    A: Tensor, Q: Tensor, m0: Tensor, P0: Tensor, J: Tensor, h: Tensor, steady_tol: float | None = None
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Kalman filter with information-form observations (shapes as :func:`.sequential.filter_info`).

    Parameters
    ----------
    A, Q : ``(D, D)`` or ``(T-1, D, D)``; m0 ``(D,)``; P0 ``(D, D)``; J ``(D, D)`` (a ``(B, T, D, D)`` J goes to
        the sequential recursion); h ``(B, T, D)``.
    steady_tol : relative tolerance of the steady-state shortcut (module docstring); None: ``ε^0.75``.
    """
    if J.ndim != 2:
        return sequential.filter_info(A, Q, m0, P0, J, h)
    B, T, D = h.shape
    tol = _default_tol(h.dtype) if steady_tol is None else steady_tol
    P, P_pred, logdet = _riccati(A, Q, P0, J, T, tol)
    h_t = h.transpose(0, 1)  # (T, B, D): each step's rows contiguous
    u = torch.bmm(h_t, P.mT)  # P_t h_t for every step at once
    eye = eye_like(J)
    W_T = ((eye - P @ J)[1:] @ (A if A.ndim == 3 else A.expand(T - 1, D, D))).mT  # (T−1, D, D), transposed
    means = [u[0] + (m0 - P[0] @ (J @ m0)).expand(B, D)]
    for t in range(1, T):
        means.append(torch.addmm(u[t], means[-1], W_T[t - 1]))
    m = torch.stack(means)  # (T, B, D)
    m_pred = torch.cat([m0.expand(1, B, D), _propagate(A, m[:-1])])
    # log-likelihood of every step at once (:func:`.steps.info_update`, with g = h − J m⁻).
    Jm = m_pred @ J
    g = h_t - Jm
    quad = (g * torch.bmm(g, P.mT)).sum(-1) + 2 * (h_t * m_pred).sum(-1) - (m_pred * Jm).sum(-1)
    ll = (0.5 * quad).sum(0) - 0.5 * logdet.sum()
    return m.transpose(0, 1), P.unsqueeze(0), ll, m_pred.transpose(0, 1), P_pred.unsqueeze(0)


def _propagate(A: Tensor, m: Tensor) -> Tensor:
    """``A_t m_t`` for ``m`` ``(T', B, D)`` (time-major) with ``A`` shared or ``(T', D, D)``."""
    return m @ A.mT if A.ndim == 2 else torch.bmm(m, A.mT)


def _constant_from(P: Tensor, P_pred: Tensor) -> int:
    """First step ``k`` from which the filtered and predicted covariances all equal the last ones (``T`` if none)."""
    same = (P == P[-1]).all(dim=(-2, -1)) & (P_pred == P_pred[-1]).all(dim=(-2, -1))
    # Length of the trailing run of True.
    run = int(same.flip(0).to(torch.int64).cumprod(0).sum())
    return P.shape[0] - run


def smooth(
    A: Tensor, mean_f: Tensor, cov_f: Tensor, mean_p: Tensor, cov_p: Tensor, steady_tol: float | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """RTS backward pass (shapes as :func:`.sequential.smooth`); per-trial covariances go to the sequential code."""
    if cov_f.shape[0] != 1 or cov_p.shape[0] != 1:
        return sequential.smooth(A, mean_f, cov_f, mean_p, cov_p)
    T, D = mean_f.shape[1:]
    if T == 1:
        return mean_f, cov_f, cov_f.new_zeros(1, 0, D, D)
    tol = _default_tol(mean_f.dtype) if steady_tol is None else steady_tol
    P, P_pred = cov_f[0], cov_p[0]
    # Steps k … T−1 share their covariances when the forward pass stopped at its steady state; then every gain
    # G_t with t ≥ k is the same matrix.
    k = _constant_from(P, P_pred) if (tol > 0 and A.ndim == 2) else T
    if k >= T - 1:  # the last step always matches itself: no steady state
        k = T
    n_gain = min(k, T - 2) + 1  # distinct gains G_0 … G_{n_gain−1}
    A_t = A if A.ndim == 3 else A.expand(n_gain, D, D)
    G = smoother_gain(P[:n_gain], A_t[:n_gain], P_pred[1 : n_gain + 1])
    if n_gain < T - 1:
        G = torch.cat([G, G[-1].expand(T - 1 - n_gain, D, D)])
    m = mean_f.transpose(0, 1)
    mp = mean_p.transpose(0, 1)
    G_T = G.mT
    v = m[:-1] - torch.bmm(mp[1:], G_T)
    ms = [m[-1]]
    for t in range(T - 2, -1, -1):
        ms.append(torch.addmm(v[t], ms[-1], G_T[t]))
    ms.reverse()
    # Smoothed covariances, shared by the trials: one D × D recursion. Over the constant steps t ≥ k its factors
    # do not change, and it reaches its own (backward) steady state.
    Ps = [P[-1]]
    t = T - 2
    while t >= 0:
        Pn = symmetrize(P[t] + G[t] @ (Ps[-1] - P_pred[t + 1]) @ G[t].mT)
        if t >= k and _converged(Pn, Ps[-1], tol):
            Ps.extend([Pn] * (t - k + 1))
            t = k - 1
            continue
        Ps.append(Pn)
        t -= 1
    Ps.reverse()
    cov = torch.stack(Ps)
    cross = cov[1:] @ G_T
    return torch.stack(ms, 1), cov.unsqueeze(0), cross.unsqueeze(0)
