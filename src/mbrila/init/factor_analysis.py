"""Factor analysis by EM: ``y = C z + d + e``, ``z ~ N(0, I_k)``, ``e ~ N(0, diag R)``.

Used to initialise loadings and noise variances. Each EM step works in the ``k``-dimensional factor space
(Woodbury identity), so it costs ``O(N k²)`` after the ``N × N`` sample covariance is formed once.
"""

from __future__ import annotations

import torch
from torch import Tensor

from mbrila.distributed import all_sum, dmean, global_count
from mbrila.observations.linear import floored_variance


def factor_analysis(
    Y: Tensor,
    k: int,
    *,
    n_iter: int = 200,
    tol: float = 1e-8,
    min_var_frac: float = 0.01,
    seed: int = 0,
    reference_var: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Maximum-likelihood factor analysis.

    Each noise variance is held at or above ``min_var_frac ·`` its neuron's variance, where a constant neuron's
    zero variance is first raised to a small fraction of a typical one
    (:func:`~mbrila.observations.linear.floored_variance`): constant neurons get zero loadings and a finite noise
    variance instead of a singular system.

    Parameters
    ----------
    Y : ``(n_samples, N)`` observations.
    k : number of factors (0 returns empty loadings and the (floored) sample variances).
    n_iter, tol : EM iterations and relative log-likelihood tolerance.
    min_var_frac : floor of each noise variance as a fraction of that neuron's variance.
    seed : seed of the random initial loadings (deterministic).
    reference_var : the typical variance behind the floor of constant neurons (default: the median of the positive
        variances of ``Y``; pass the whole data's when ``Y`` may be all constant).

    Returns
    -------
    C ``(N, k)``, d ``(N,)``, R ``(N,)``.
    """
    n, N = Y.shape
    # Sums over the trials of every process in a data-parallel fit (mbrila.distributed); the EM below reads only S.
    d = dmean(Y, 0)
    Yc = Y - d
    S = all_sum(Yc.mT @ Yc)[0] / global_count(n)
    var = floored_variance(S.diagonal(), reference_var)
    floor = min_var_frac * var
    if k == 0:
        return Y.new_zeros(N, 0), d, var
    gen = torch.Generator(device="cpu").manual_seed(seed)
    scale = (var.mean() / k).sqrt()
    C = torch.randn(N, k, generator=gen, dtype=Y.dtype).to(Y.device) * scale
    R = var.clone()
    eye = torch.eye(k, dtype=Y.dtype, device=Y.device)
    prev = None
    for _ in range(n_iter):
        # E-step in factor space: β = Cᵀ(CCᵀ + R)⁻¹ = (I + CᵀR⁻¹C)⁻¹ CᵀR⁻¹.
        CtRinv = C.mT / R
        M = eye + CtRinv @ C
        L = torch.linalg.cholesky(M)
        beta = torch.cholesky_solve(CtRinv, L)
        SbT = S @ beta.mT  # (N, k)
        Ezz = eye - beta @ C + beta @ SbT
        C = torch.linalg.solve(Ezz, SbT.mT).mT
        R = torch.maximum((S.diagonal() - (C * SbT).sum(-1)), floor)
        # Log-likelihood (up to constants) for the stopping rule: −½[log|CCᵀ+R| + tr((CCᵀ+R)⁻¹S)].
        CtRinv = C.mT / R
        L = torch.linalg.cholesky(eye + CtRinv @ C)
        logdet = 2 * L.diagonal().log().sum() + R.log().sum()
        trace = (S.diagonal() / R).sum() - torch.cholesky_solve(CtRinv @ S @ CtRinv.mT, L).diagonal().sum()
        ll = float(-0.5 * (logdet + trace))
        if prev is not None and abs(ll - prev) < tol * max(abs(prev), 1.0):
            break
        prev = ll
    return C, d, R
