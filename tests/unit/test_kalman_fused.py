"""The fused smoother's steady-state shortcut: engaged when it should be, within its bound of the dense answer."""

from __future__ import annotations

import pytest
import torch

from mbrila.inference.kalman import LGSSM, fused, kalman_smoother
from mbrila.inference.kalman.observation import project_observations
from tests.reference.dense_gaussian import dense_posterior
from tests.unit.test_kalman_parity import random_data, random_model, rel_err

F64 = torch.float64


def _smooth(params: LGSSM, y: torch.Tensor, tol: float | None) -> tuple[torch.Tensor, ...]:
    assert params.C is not None and params.d is not None and params.R is not None
    J, h, c = project_observations(params.C, params.d, params.R, y, None)
    mf, Pf, ll, mp, Pp = fused.filter_info(params.A, params.Q, params.m0, params.P0, J, h, steady_tol=tol)
    ms, Ps, X = fused.smooth(params.A, mf, Pf, mp, Pp, steady_tol=tol)
    return ms, Ps, X, ll + c, Pf, Pp


def test_steady_state_engages_and_matches_the_dense_posterior():
    T = 300
    params = random_model(3, 5, T, tv=False, seed=21)
    y, _ = random_data(4, T, 5, masked=False, seed=21)
    ms, Ps, X, ll, Pf, Pp = _smooth(params, y, None)
    # The recursion stopped early: the trailing covariances are exact copies.
    k = fused._constant_from(Pf[0], Pp[0])
    assert k < T // 4, k
    assert torch.equal(Ps[0, T // 2], Ps[0, T // 2 + 1])
    ref = dense_posterior(
        params.A, params.Q, params.m0, params.P0, params.C, params.d, params.R, y, None, [0, 1, T // 2, T - 1]
    )
    assert rel_err(ms, ref.mean) < 1e-8
    assert rel_err(Ps, ref.cov) < 1e-8
    assert rel_err(X, ref.cross_cov) < 1e-8
    assert rel_err(ll, ref.log_likelihood) < 1e-10


@pytest.mark.parametrize("tol", [1e-4, 1e-6, 1e-8])
def test_shortcut_error_is_bounded_by_its_tolerance(tol):
    T = 200
    params = random_model(4, 6, T, tv=False, seed=5)
    y, _ = random_data(3, T, 6, masked=False, seed=5)
    exact = _smooth(params, y, 0.0)
    approx = _smooth(params, y, tol)
    assert fused._constant_from(approx[4][0], approx[5][0]) < T  # engaged
    assert fused._constant_from(exact[4][0], exact[5][0]) == T - 1  # disabled: only the last step matches itself
    for a, b in zip(approx[:3], exact[:3], strict=True):
        assert rel_err(a, b) < 10 * tol
    assert rel_err(approx[3], exact[3]) < 10 * tol


def test_time_varying_models_never_take_the_shortcut():
    T = 80
    params = random_model(3, 4, T, tv=True, seed=8)
    y, _ = random_data(2, T, 4, masked=False, seed=8)
    out = _smooth(params, y, 1e-3)  # a loose tolerance that would engage if the model were time-invariant
    ref = kalman_smoother(params, y, method="sequential")
    assert rel_err(out[0], ref.mean) < 1e-10
    assert rel_err(out[1], ref.cov) < 1e-10
    assert rel_err(out[3], ref.log_likelihood) < 1e-10


def test_per_trial_precision_falls_back_to_the_sequential_recursion():
    T = 20
    params = random_model(3, 4, T, tv=False, seed=9)
    y, mask = random_data(3, T, 4, masked=True, seed=9)
    a = kalman_smoother(params, y, mask, method="fused")
    b = kalman_smoother(params, y, mask, method="sequential")
    assert a.cov.shape[0] == 3
    torch.testing.assert_close(a.mean, b.mean, rtol=0, atol=0)


def test_float32_follows_the_data_and_uses_its_own_tolerance():
    T = 150
    params = random_model(3, 5, T, tv=False, seed=4)
    y, _ = random_data(2, T, 5, masked=False, seed=4)
    p32 = params.to(dtype=torch.float32)
    post = kalman_smoother(p32, y.float(), method="fused")
    ref = kalman_smoother(params, y, method="sequential")
    assert post.mean.dtype == torch.float32
    assert rel_err(post.mean.double(), ref.mean) < 1e-4


def _partial_read_out(D: int, N: int, T: int, tv: bool, seed: int) -> LGSSM:
    """A random model whose neurons read only the first 3 of its ``D`` state entries (``J`` of rank 3)."""
    params = random_model(D, N, T, tv=tv, seed=seed)
    g = torch.Generator().manual_seed(seed)
    C = torch.randn(N, 3, generator=g, dtype=F64) @ torch.eye(3, D, dtype=F64)
    return LGSSM(A=params.A, Q=params.Q, m0=params.m0, P0=params.P0, C=C, d=params.d, R=params.R)


@pytest.mark.parametrize("tv", [False, True])
def test_low_rank_read_out_matches_the_dense_posterior(tv):
    # A read-out of 3 of 8 state entries (as an AR lift reads only the current lag): J has rank 3, and the
    # covariance update runs on 3 × 3 matrices.
    T, D, N = 40, 8, 20
    params = _partial_read_out(D, N, T, tv, seed=31)
    y, _ = random_data(3, T, N, masked=False, seed=31)
    J, _, _ = project_observations(params.C, params.d, params.R, y, None)
    U = fused._low_rank_factor(J)
    assert U is not None and U.shape == (D, 3)
    ref = dense_posterior(params.A, params.Q, params.m0, params.P0, params.C, params.d, params.R, y, None, None)
    post = kalman_smoother(params, y, method="fused")
    assert rel_err(post.mean, ref.mean) < 1e-8
    assert rel_err(post.cov, ref.cov) < 1e-8
    assert rel_err(post.cross_cov, ref.cross_cov) < 1e-8
    assert rel_err(post.log_likelihood, ref.log_likelihood) < 1e-10


def test_a_precision_that_carries_a_gradient_uses_the_full_update():
    J = torch.eye(4, dtype=F64)[:, :1] @ torch.eye(4, dtype=F64)[:1]
    assert fused._low_rank_factor(J) is not None
    assert fused._low_rank_factor(J.clone().requires_grad_(True)) is None


def test_data_sums_give_the_same_likelihood_and_bad_sums_are_refused():
    from mbrila.inference.kalman.observation import data_sums

    params = random_model(3, 5, 12, tv=False, seed=12)
    y, mask = random_data(4, 12, 5, masked=True, seed=12)
    y = y.nan_to_num()
    plain = kalman_smoother(params, y)
    with_sums = kalman_smoother(params, y, sums=data_sums(y))
    assert rel_err(with_sums.log_likelihood, plain.log_likelihood) < 1e-12
    torch.testing.assert_close(with_sums.mean, plain.mean, rtol=0, atol=0)
    with pytest.raises(ValueError, match="complete data"):
        kalman_smoother(params, y, mask, sums=data_sums(y))
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        kalman_smoother(params, y, sums=data_sums(y[:2]))


def test_a_failed_eigendecomposition_falls_back_to_the_full_update(monkeypatch):
    # LAPACK's float32 eigh returned NaN eigenvalues for a rank-15 60 × 60 DLAG-SSM read-out; the low-rank path
    # then kept no direction and the filter ignored every observation (its means diverged to NaN).
    T, D, N = 30, 8, 20
    params = _partial_read_out(D, N, T, False, seed=5)
    y, _ = random_data(2, T, N, masked=False, seed=5)
    ref = kalman_smoother(params, y, method="sequential")
    real_eigh = torch.linalg.eigh

    def broken_eigh(J):
        evals, evecs = real_eigh(J)
        return evals.index_fill(0, torch.tensor([0]), float("nan")), evecs

    def failing_eigh(J):
        raise torch.linalg.LinAlgError("linalg.eigh: The algorithm failed to converge")

    J, _, _ = project_observations(params.C, params.d, params.R, y, None)
    for bad in (broken_eigh, failing_eigh):
        monkeypatch.setattr(torch.linalg, "eigh", bad)
        assert fused._low_rank_factor(J) is None
        post = kalman_smoother(params, y, method="fused")
        assert rel_err(post.mean, ref.mean) < 1e-8 and rel_err(post.log_likelihood, ref.log_likelihood) < 1e-10
