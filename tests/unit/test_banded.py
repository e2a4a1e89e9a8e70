"""Banded Newton solves for lifted GP state paths == dense linear algebra on the stacked path (float64).

:mod:`mbrila.inference.banded` writes a lifted prior as the precision ``Λ`` of its component path
``z = (z_{−P+1}, …, z_{T−1})`` in block-band storage and solves ``(Λ + J) z = h`` by a banded Cholesky. The
references here never form a band: the path's covariance is read off the stacked state's dense covariance
(:func:`tests.reference.dense_gaussian.state_moments`), and the solve is ``Σ (I + J Σ)⁻¹ h`` on it.
"""

from __future__ import annotations

import pytest
import torch

import mbrila
import mbrila.inference.laplace as laplace_module
from mbrila.inference.banded import BandedPrior, LagLayout, lag_layout
from mbrila.inference.kalman.selected import filter_selected
from mbrila.inference.kalman.sequential import smooth_means
from mbrila.inference.laplace import laplace_smoother
from tests.reference.dense_gaussian import state_moments
from tests.unit.test_laplace import adm_params, dlag_params, lifted_params, random_model, rel_err, sample_counts

F64 = torch.float64
TOL = 1e-9


def lifted(preset: str, T: int):
    return dlag_params(T, seed=2) if preset == "dlag" else adm_params(T, seed=2)


def read_out_entries(params) -> torch.Tensor:
    return torch.nonzero(params.C.abs().sum(0) > 0).flatten()


def path_covariance(params, layout: LagLayout, T: int) -> torch.Tensor:
    """Dense covariance of the component path, each path entry read from a state entry that holds it."""
    _, S = state_moments(params.A, params.Q, params.m0, params.P0, T)
    D, P, k = params.state_dim, layout.n_lags, layout.n_comp
    where = torch.full((T + P - 1, k), -1, dtype=torch.long)
    blocks = layout.block(T)
    for t in range(T):
        for i in range(D):
            where[blocks[t, i], layout.comp[i]] = t * D + i
    assert bool((where >= 0).all())
    sel = where.reshape(-1)
    return S[sel][:, sel]


def dense_from_band(band: torch.Tensor, n: int) -> torch.Tensor:
    P1, k = band.shape[1], band.shape[-1]
    M = torch.zeros(n * k, n * k, dtype=band.dtype)
    for j in range(n):
        for m in range(P1):
            if j + m < n:
                M[(j + m) * k : (j + m + 1) * k, j * k : (j + 1) * k] = band[j, m]
    return torch.tril(M) + torch.tril(M, -1).T


@pytest.mark.parametrize("preset", ["dlag", "adm"])
def test_layout_follows_the_copies_of_the_lift(preset):
    params = lifted(preset, 10)
    layout = lag_layout(params.A, params.Q)
    assert layout is not None
    A = params.A if params.A.ndim == 2 else params.A[3]
    D = params.state_dim
    assert layout.n_lags * layout.n_comp == D
    pairs = set(zip(layout.comp.tolist(), layout.lag.tolist(), strict=True))
    assert len(pairs) == D
    for i in range(D):
        if int(layout.lag[i]) > 0:  # a copy: s_{t+1}[i] = s_t[j] with j one lag younger, same component
            (j,) = torch.nonzero(A[i]).flatten().tolist()
            assert float(A[i, j]) == 1.0
            assert int(layout.lag[j]) == int(layout.lag[i]) - 1 and int(layout.comp[j]) == int(layout.comp[i])
    assert bool((layout.lag[read_out_entries(params)] == 0).all())


def test_no_layout_without_copies():
    """SDE latents, a free LDS and a random dense transition have no lag layout: the Kalman route is used."""
    assert lag_layout(random_model(4, 3, 6, tv=False, seed=1).A, random_model(4, 3, 6, tv=False, seed=1).Q) is None
    gpfa = mbrila.build_model("gpfa", latent_spec=mbrila.LatentSpec(2, 0), y_dims=(4,), T=8).double()
    lds = mbrila.build_model("lds", latent_spec=mbrila.LatentSpec(2, 0), y_dims=(4,), T=8).double()
    for m in (gpfa, lds):
        p = lifted_params(m, 8, seed=0)
        assert lag_layout(p.A, p.Q) is None
        assert BandedPrior.build(p.A, p.Q, p.P0, read_out_entries(p), 8) is None


@pytest.mark.parametrize("preset", ["dlag", "adm"])
def test_band_is_the_inverse_of_the_path_covariance(preset):
    T = 9
    params = lifted(preset, T)
    prior = BandedPrior.build(params.A, params.Q, params.P0, read_out_entries(params), T)
    assert prior is not None
    n = T + prior.layout.n_lags - 1
    assert bool((prior.band[n:] == 0).all())  # the padding
    Lam = dense_from_band(prior.band, n)
    S = path_covariance(params, prior.layout, T)
    eye = torch.eye(S.shape[0], dtype=F64)
    assert float((Lam @ S - eye).abs().max()) < 1e-8


@pytest.mark.parametrize("preset", ["dlag", "adm"])
def test_newton_target_equals_dense_solve_and_kalman_means(preset):
    T, B = 11, 3
    params = lifted(preset, T)
    idx = read_out_entries(params)
    prior = BandedPrior.build(params.A, params.Q, params.P0, idx, T)
    assert prior is not None
    g = torch.Generator().manual_seed(6)
    F = torch.randn(B, T, 2, idx.numel(), generator=g, dtype=F64)
    F[1, 4] = 0.0  # a step without information
    Ja = F.mT @ F
    ha = torch.randn(B, T, idx.numel(), generator=g, dtype=F64)
    target = prior.newton_target(Ja, ha)
    assert target is not None and target.shape == (B, T, params.state_dim)

    layout, k = prior.layout, prior.layout.n_comp
    S = path_covariance(params, layout, T)
    n = T + layout.n_lags - 1
    c = layout.comp[idx]
    for b in range(B):
        J = torch.zeros(n * k, n * k, dtype=F64)
        h = torch.zeros(n * k, dtype=F64)
        for t in range(T):
            rows = (t + layout.n_lags - 1) * k + c
            J[rows[:, None], rows] = Ja[b, t]
            h[rows] = ha[b, t]
        z = S @ torch.linalg.solve(torch.eye(n * k, dtype=F64) + J @ S, h)
        dense = z.reshape(n, k)[layout.block(T), layout.comp]
        assert rel_err(target[b], dense) < TOL

    filt = filter_selected(params.A, params.Q, params.m0, params.P0, idx, Ja, ha)
    assert rel_err(target, smooth_means(params.A, filt[0], filt[1], filt[3], filt[4])) < TOL


def test_failed_factorisation_returns_none():
    """A pseudo-precision that makes Λ + J indefinite is reported (None), never solved with garbage."""
    T = 10
    params = lifted("dlag", T)
    idx = read_out_entries(params)
    prior = BandedPrior.build(params.A, params.Q, params.P0, idx, T)
    assert prior is not None
    Ja = -1e6 * torch.eye(idx.numel(), dtype=F64).expand(1, T, -1, -1)
    assert prior.newton_target(Ja, torch.zeros(1, T, idx.numel(), dtype=F64)) is None


@pytest.mark.parametrize("preset", ["dlag", "adm"])
def test_laplace_smoother_same_with_and_without_banded_steps(preset, monkeypatch):
    """The banded Newton steps and the Kalman ones reach the same mode, covariances and evidence."""
    T = 12
    params = lifted(preset, T)
    _, S = state_moments(params.A, params.Q, params.m0, params.P0, T)
    y = sample_counts(S, params.C, params.d, 2, T, "exp", seed=5)
    banded = laplace_smoother(params, y, tol=1e-12)
    monkeypatch.setattr(laplace_module.BandedPrior, "build", classmethod(lambda cls, *a: None))
    kalman = laplace_smoother(params, y, tol=1e-12)
    assert banded.converged and kalman.converged
    for f in ("mean", "cov", "cross_cov", "log_likelihood"):
        assert rel_err(getattr(banded, f), getattr(kalman, f)) < 1e-10, f
