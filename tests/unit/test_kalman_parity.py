"""Parallel == sequential == fused == dense Gaussian conditioning, for the smoother and the filter (float64)."""

from __future__ import annotations

import pytest
import torch

from mbrila.inference.kalman import LGSSM, kalman_filter, kalman_smoother
from tests.reference.dense_gaussian import dense_posterior

F64 = torch.float64
TOL = 1e-8
METHODS = ("sequential", "parallel", "fused")


def random_model(D: int, N: int, T: int, tv: bool, seed: int) -> LGSSM:
    g = torch.Generator().manual_seed(seed)

    def stable() -> torch.Tensor:
        q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=F64))
        return q * (0.5 + 0.48 * torch.rand(D, generator=g, dtype=F64))

    def psd() -> torch.Tensor:
        G = torch.randn(D, D, generator=g, dtype=F64) / D**0.5
        return G @ G.T + 0.1 * torch.eye(D, dtype=F64)

    n = max(T - 1, 0)
    if tv:
        A = torch.stack([stable() for _ in range(n)]) if n else torch.zeros(0, D, D, dtype=F64)
        Q = torch.stack([psd() for _ in range(n)]) if n else torch.zeros(0, D, D, dtype=F64)
    else:
        A, Q = stable(), psd()
    return LGSSM(
        A=A,
        Q=Q,
        m0=torch.randn(D, generator=g, dtype=F64),
        P0=psd(),
        C=torch.randn(N, D, generator=g, dtype=F64),
        d=torch.randn(N, generator=g, dtype=F64),
        R=0.3 + 1.7 * torch.rand(N, generator=g, dtype=F64),
    )


def random_data(B: int, T: int, N: int, masked: bool, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(seed + 1000)
    y = torch.randn(B, T, N, generator=g, dtype=F64) * 2
    if not masked:
        return y, None
    mask = torch.rand(B, T, N, generator=g) > 0.3
    mask[:, T // 2] = False  # a fully unobserved time step in every trial
    if B > 1:
        mask[1, ::2] = False  # a trial observed only on odd steps
    y = torch.where(mask, y, torch.full_like(y, float("nan")))  # missing entries may hold NaN
    return y, mask


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.broadcast_tensors(a, b)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


CASES = [
    # (D, N, T)
    (3, 4, 1),
    (3, 4, 2),
    (12, 60, 7),
    (4, 5, 7),
    (6, 8, 64),
    (2, 3, 257),
]


@pytest.mark.parametrize("D,N,T", CASES)
@pytest.mark.parametrize("B", [1, 5])
@pytest.mark.parametrize("tv", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_smoother_and_filter_match_dense(D, N, T, B, tv, masked):
    seed = D * 1000 + N * 10 + T
    params = random_model(D, N, T, tv, seed)
    y, mask = random_data(B, T, N, masked, seed)
    filter_times = None if T <= 64 else [0, 1, T // 2, T - 1]
    ref = dense_posterior(
        params.A,
        params.Q,
        params.m0,
        params.P0,
        params.C,
        params.d,
        params.R,
        y.nan_to_num(),
        mask,
        filter_times,
    )
    ft = torch.tensor(filter_times) if filter_times is not None else torch.arange(T)
    for method in METHODS:
        post = kalman_smoother(params, y, mask, method=method)
        assert post.mean.shape == (B, T, D)
        assert post.cross_cov.shape[-3:] == (max(T - 1, 0), D, D)
        assert rel_err(post.mean, ref.mean) < TOL, method
        assert rel_err(post.cov, ref.cov) < TOL, method
        if T > 1:
            assert rel_err(post.cross_cov, ref.cross_cov) < TOL, method
        assert rel_err(post.log_likelihood, ref.log_likelihood) < TOL, method
        filt = kalman_filter(params, y, mask, method=method)
        assert rel_err(filt.mean[:, ft], ref.filt_mean[:, ft]) < TOL, method
        assert rel_err(filt.cov[:, ft], ref.filt_cov[:, ft]) < TOL, method
        assert rel_err(filt.log_likelihood, ref.log_likelihood) < TOL, method


@pytest.mark.parametrize("T", [1, 2, 7, 64, 257])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("method", ["parallel", "fused"])
def test_scan_and_fused_equal_sequential_larger_state(T, masked, method):
    params = random_model(8, 20, T, tv=False, seed=T)
    y, mask = random_data(5, T, 20, masked, seed=T)
    a = kalman_smoother(params, y, mask, method=method)
    b = kalman_smoother(params, y, mask, method="sequential")
    for f in ("mean", "cov", "cross_cov", "log_likelihood"):
        if getattr(b, f).numel():
            assert rel_err(getattr(a, f), getattr(b, f)) < TOL, f


def _information_form(params: LGSSM, y: torch.Tensor, mask: torch.Tensor | None):
    """J, h and the y-only terms, written directly from their definitions (per trial and step)."""
    B, T, N = y.shape
    o = torch.ones(B, T, N, dtype=F64) if mask is None else mask.to(F64)
    r = torch.where(o.bool(), y - params.d, torch.zeros_like(y))
    W = o / params.R
    J = torch.einsum("btn,nd,ne->btde", W, params.C, params.C)
    h = torch.einsum("btn,btn,nd->btd", W, r, params.C)
    c = (-0.5 * (torch.log(2 * torch.pi * params.R) + r**2 / params.R) * o).sum((1, 2))
    return J, h, c


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("masked", [False, True])
def test_information_route_matches_observation_route(method, masked):
    D, N, T, B = 4, 7, 9, 3
    params = random_model(D, N, T, tv=True, seed=7)
    y, mask = random_data(B, T, N, masked, seed=7)
    via_y = kalman_smoother(params, y, mask, method=method)
    J, h, c = _information_form(params, y.nan_to_num(), mask)
    if not masked:
        J = J[0, 0]  # shared (D, D) form
    info = kalman_smoother(LGSSM(A=params.A, Q=params.Q, m0=params.m0, P0=params.P0), J=J, h=h, method=method)
    for f in ("mean", "cov", "cross_cov"):
        assert rel_err(getattr(info, f), getattr(via_y, f)) < TOL, f
    assert rel_err(info.log_likelihood + c, via_y.log_likelihood) < TOL


@pytest.mark.parametrize("method", METHODS)
def test_shared_covariances_have_one_trial_dimension(method):
    params = random_model(3, 4, 10, tv=False, seed=3)
    y, _ = random_data(6, 10, 4, masked=False, seed=3)
    post = kalman_smoother(params, y, method=method)
    assert post.cov.shape == (1, 10, 3, 3)
    assert post.cross_cov.shape == (1, 9, 3, 3)


def test_nan_in_masked_entries_changes_nothing_and_inputs_are_untouched():
    params = random_model(3, 4, 12, tv=False, seed=5)
    y, mask = random_data(2, 12, 4, masked=True, seed=5)
    y_zero = y.nan_to_num()
    y_copy, mask_copy = y.clone(), mask.clone()
    params_copy = {k: v.clone() for k, v in vars(params).items() if v is not None}
    a = kalman_smoother(params, y, mask, method="parallel")
    b = kalman_smoother(params, y_zero, mask, method="parallel")
    torch.testing.assert_close(a.mean, b.mean, rtol=0, atol=0)
    assert torch.equal(y.isnan(), y_copy.isnan()) and torch.equal(y.nan_to_num(), y_copy.nan_to_num())
    assert torch.equal(mask, mask_copy)
    for k, v in params_copy.items():
        assert torch.equal(getattr(params, k), v), k
