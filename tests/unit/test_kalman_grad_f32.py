"""Autograd through the Kalman core (gradcheck in float64) and float32 stability at long T."""

from __future__ import annotations

import pytest
import torch

from mbrila.inference.kalman import LGSSM, kalman_smoother
from tests.unit.test_kalman_parity import random_data, random_model

F64 = torch.float64


@pytest.mark.parametrize("method", ["sequential", "parallel", "fused"])
@pytest.mark.parametrize("masked", [False, True])
def test_gradcheck_loglik_wrt_A_Q_C_R(method, masked):
    D, N, T, B = 3, 4, 5, 2
    base = random_model(D, N, T, tv=False, seed=11)
    y, mask = random_data(B, T, N, masked, seed=11)
    G0 = torch.linalg.cholesky(base.Q).clone().requires_grad_(True)
    r0 = base.R.log().clone().requires_grad_(True)
    A0 = base.A.clone().requires_grad_(True)
    C0 = base.C.clone().requires_grad_(True)

    def loglik(A, G, C, r):
        # Q = G Gᵀ + 0.05 I and R = exp(r) stay valid under gradcheck's perturbations.
        Q = G @ G.mT + 0.05 * torch.eye(D, dtype=F64)
        p = LGSSM(A=A, Q=Q, m0=base.m0, P0=base.P0, C=C, d=base.d, R=r.exp())
        return kalman_smoother(p, y, mask, method=method).log_likelihood.sum()

    assert torch.autograd.gradcheck(loglik, (A0, G0, C0, r0), eps=1e-6, atol=1e-6)


def test_parallel_and_sequential_gradients_agree():
    params = random_model(4, 6, 11, tv=True, seed=2)
    y, mask = random_data(3, 11, 6, True, seed=2)
    grads = []
    for method in ("sequential", "parallel", "fused"):
        A = params.A.clone().requires_grad_(True)
        C = params.C.clone().requires_grad_(True)
        p = LGSSM(A=A, Q=params.Q, m0=params.m0, P0=params.P0, C=C, d=params.d, R=params.R)
        ll = kalman_smoother(p, y, mask, method=method).log_likelihood.sum()
        grads.append(torch.autograd.grad(ll, (A, C)))
    for other in grads[1:]:
        for a, b in zip(grads[0], other, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("method", ["parallel", "sequential", "fused"])
def test_float32_long_sequence_is_stable(method):
    D, N, T, B = 4, 10, 10_000, 2
    g = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=F64))
    A = 0.95 * q  # spectral radius 0.95
    Q = 0.1 * torch.eye(D, dtype=F64)
    C = torch.randn(N, D, generator=g, dtype=F64)
    p64 = LGSSM(
        A=A,
        Q=Q,
        m0=torch.zeros(D, dtype=F64),
        P0=torch.eye(D, dtype=F64),
        C=C,
        d=torch.zeros(N, dtype=F64),
        R=torch.full((N,), 0.5, dtype=F64),
    )
    x = torch.zeros(B, D, dtype=F64)
    xs = []
    noise = torch.randn(B, T, D, generator=g, dtype=F64) * 0.1**0.5
    for t in range(T):  # simulate once, for test data only
        x = x @ A.T + noise[:, t]
        xs.append(x)
    y = torch.stack(xs, 1) @ C.T + 0.5**0.5 * torch.randn(B, T, N, generator=g, dtype=F64)
    ref = kalman_smoother(p64, y, method="sequential").mean
    out = kalman_smoother(p64.to(dtype=torch.float32), y.float(), method=method).mean
    assert torch.isfinite(out).all()
    rel = float((out.double() - ref).norm() / ref.norm())
    assert rel < 1e-2, rel
