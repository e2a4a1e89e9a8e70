"""Selected-entry Kalman filter == the dense information filter == dense Gaussian conditioning (float64).

:func:`~mbrila.inference.kalman.selected.filter_selected` takes observation precisions ``J = E J^a Eᵀ`` and
``h = E h^a`` (``E`` selects the state entries ``idx``) in their ``k × k`` form. It must equal
:func:`~mbrila.inference.kalman.sequential.filter_info` given the dense ``J`` and ``h``, and its log-likelihood
must be the information route's ``log ∫ p(s) Π_t exp(h_tᵀ s_t − ½ s_tᵀ J_t s_t) ds``. That integral is checked
densely: writing ``J^a_t = F_tᵀ F_t`` and ``h^a_t = F_tᵀ u_t``, the factor at step ``t`` is
``N(u_t; F_t Eᵀ s_t, I)`` up to ``c_t = −½ (r log 2π + ‖u_t‖²)`` (``r`` rows of ``F_t``), so the integral is
``log N(u; F_big s, I)`` marginalised over the prior (:func:`tests.reference.dense_gaussian.condition`) minus ``Σ c_t``.
"""

from __future__ import annotations

import math

import pytest
import torch

from mbrila.inference.kalman.selected import filter_selected
from mbrila.inference.kalman.sequential import filter_info, smooth, smooth_means
from tests.reference.dense_gaussian import condition, state_moments
from tests.unit.test_kalman_parity import random_model

F64 = torch.float64
TOL = 1e-10
B, T, D = 3, 5, 5
IDX = torch.tensor([0, 3])


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = torch.broadcast_tensors(a, b)
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def factored_observations(rank: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``F (B, T, rank, k)`` and pseudo-data ``u (B, T, rank)``; one step of one trial carries no information."""
    g = torch.Generator().manual_seed(seed)
    k = IDX.numel()
    F = torch.randn(B, T, rank, k, generator=g, dtype=F64)
    F[0, 2] = 0.0  # J^a = 0 (a step whose counts are all masked)
    return F, torch.randn(B, T, rank, generator=g, dtype=F64)


def dense_form(Ja: torch.Tensor, ha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    J = torch.zeros(B, T, D, D, dtype=F64)
    J[:, :, IDX[:, None], IDX] = Ja
    h = torch.zeros(B, T, D, dtype=F64)
    h[:, :, IDX] = ha
    return J, h


def dense_posteriors(params, F: torch.Tensor, u: torch.Tensor) -> list[tuple[torch.Tensor, ...]]:
    """Per trial, the dense posterior of the stacked path given pseudo-data ``u_t ~ N(F_t Eᵀ s_t, I)``: its mean,
    covariance and log-likelihood, and the constant ``c`` that separates that from the information route's."""
    mu, S = state_moments(params.A, params.Q, params.m0, params.P0, T)
    E = torch.zeros(D, IDX.numel(), dtype=F64)
    E[IDX, torch.arange(IDX.numel())] = 1.0
    out = []
    for b in range(B):
        F_big = torch.block_diag(*[F[b, t] @ E.T for t in range(T)])
        ub = u[b].reshape(-1)
        mean, cov, ll = condition(mu, S, F_big, torch.zeros_like(ub), torch.ones_like(ub), ub)
        out.append((mean, cov, ll, -0.5 * (ub.numel() * math.log(2 * math.pi) + ub @ ub)))
    return out


@pytest.mark.parametrize("tv", [False, True])
@pytest.mark.parametrize("rank", [1, 2])
def test_selected_filter_equals_dense_information_filter(tv, rank):
    params = random_model(D, 4, T, tv, seed=11 + tv)
    F, u = factored_observations(rank, seed=rank)
    Ja = F.mT @ F
    ha = (F.mT @ u.unsqueeze(-1)).squeeze(-1)
    J, h = dense_form(Ja, ha)
    sel = filter_selected(params.A, params.Q, params.m0, params.P0, IDX, Ja, ha)
    ref = filter_info(params.A, params.Q, params.m0, params.P0, J, h)
    names = ("mean", "cov", "log_likelihood", "pred_mean", "pred_cov")
    for name, a, b in zip(names, sel, ref, strict=True):
        assert a.shape == b.shape, name
        assert rel_err(a, b) < TOL, name

    # The information-route log-likelihood against dense conditioning on the pseudo-data u_t ~ N(F_t Eᵀ s_t, I).
    for b, (mean, cov, ll, c) in enumerate(dense_posteriors(params, F, u)):
        assert abs(float(sel[2][b] - (ll - c))) < TOL * (1.0 + abs(float(ll - c)))
        # The filtered moments at the last step are the smoothed ones: the dense posterior's last block.
        assert rel_err(sel[0][b, -1], mean[-D:]) < TOL
        assert rel_err(sel[1][b, -1], cov[-D:, -D:]) < TOL


@pytest.mark.parametrize("tv", [False, True])
def test_smoothed_means_alone_equal_dense_posterior_means(tv):
    """``smooth_means`` (what a Newton step reads) == the dense posterior mean of every step, per-trial precisions."""
    params = random_model(D, 4, T, tv, seed=21 + tv)
    F, u = factored_observations(2, seed=5)
    Ja = F.mT @ F
    ha = (F.mT @ u.unsqueeze(-1)).squeeze(-1)
    filt = filter_selected(params.A, params.Q, params.m0, params.P0, IDX, Ja, ha)
    means = smooth_means(params.A, filt[0], filt[1], filt[3], filt[4])
    full_means, covs, _ = smooth(params.A, filt[0], filt[1], filt[3], filt[4])
    for b, (mean, cov, _, _) in enumerate(dense_posteriors(params, F, u)):
        assert rel_err(means[b], mean.reshape(T, D)) < TOL
        for t in range(T):
            assert rel_err(covs[b, t], cov[t * D : (t + 1) * D, t * D : (t + 1) * D]) < TOL
    assert rel_err(means, full_means) < TOL


def test_smoothed_means_alone_with_covariances_shared_by_trials():
    """With one precision for every trial (covariances shared, ``B' = 1``) the means still equal the full pass's."""
    params = random_model(D, 4, T, False, seed=3)
    g = torch.Generator().manual_seed(4)
    Fs = torch.randn(2, D, generator=g, dtype=F64)
    h = torch.randn(B, T, D, generator=g, dtype=F64)
    filt = filter_info(params.A, params.Q, params.m0, params.P0, Fs.T @ Fs, h)
    assert filt[1].shape[0] == 1
    assert (
        rel_err(smooth_means(params.A, filt[0], filt[1], filt[3], filt[4]), smooth(params.A, *filt[:2], *filt[3:])[0])
        < TOL
    )


def test_workspace_reuse_gives_the_fresh_result():
    """A filter writing into a workspace another call filled returns what a call with fresh memory returns."""
    params = random_model(D, 4, T, True, seed=8)
    F1, u1 = factored_observations(1, seed=1)
    F2, u2 = factored_observations(2, seed=2)
    workspace = (torch.full((T, B, D, D), float("nan"), dtype=F64), torch.full((T, B, D, D), float("nan"), dtype=F64))
    args = (params.A, params.Q, params.m0, params.P0, IDX)
    filter_selected(*args, F1.mT @ F1, (F1.mT @ u1.unsqueeze(-1)).squeeze(-1), workspace=workspace)
    Ja, ha = F2.mT @ F2, (F2.mT @ u2.unsqueeze(-1)).squeeze(-1)
    reused = filter_selected(*args, Ja, ha, workspace=workspace)
    fresh = filter_selected(*args, Ja, ha)
    for a, b in zip(reused, fresh, strict=True):
        assert torch.equal(a, b)
    assert reused[1].data_ptr() == workspace[0].data_ptr()
    with pytest.raises(ValueError, match="workspace"):
        filter_selected(*args, Ja, ha, workspace=(workspace[0][:, :1], workspace[1]))


@pytest.mark.parametrize("tv", [False, True])
def test_smoothing_in_place_equals_smoothing_into_new_memory(tv):
    """``smooth(in_place=True)`` writes over the filter's covariances and returns exactly the new-memory results."""
    params = random_model(D, 4, T, tv, seed=31 + tv)
    F, u = factored_observations(2, seed=7)
    Ja, ha = F.mT @ F, (F.mT @ u.unsqueeze(-1)).squeeze(-1)
    filt = filter_selected(params.A, params.Q, params.m0, params.P0, IDX, Ja, ha)
    fresh = smooth(params.A, filt[0], filt[1], filt[3], filt[4])
    kept = [x.clone() for x in filt]
    inplace = smooth(params.A, *kept[:2], *kept[3:], in_place=True)
    for a, b in zip(inplace, fresh, strict=True):
        assert torch.equal(a, b)
    assert inplace[1].data_ptr() == kept[1].data_ptr()
    assert inplace[2].data_ptr() == kept[4][:, 1:].data_ptr()
