"""The frequency-domain ARD engine: exact for its periodic model (dense reference), close to the dense GP as trials grow.

The reference builds the periodic model's covariance on the circle of ``L = T + G`` bins directly from the kernel's
spectral density (an inverse DFT of each latent's cross-spectrum), keeps the ``T`` observed bins and conditions the
joint Gaussian densely: no FFT-domain algebra, no Woodbury identity.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import mbrila
from mbrila import LatentSpec
from mbrila.inference.vem_ard_freq import VEMARDFreqEngine
from mbrila.synthetic import MultiRegionScenario


def _data(T: int, seed: int = 0, n_trials: int = 4):
    sc = MultiRegionScenario(
        n_trials=n_trials,
        T=T,
        y_dims=(6, 5, 7),
        n_across=2,
        n_within=0,
        timescales_across=(3.0, 1.5),
        delay_amplitude=(2.0, 1.0),
        snr=5.0,
        seed=seed,
    )
    return sc.sample()


def _set_parameters(model, seed: int = 0) -> None:
    """Random but valid ARD read-out and GP parameters (no fitting)."""
    gen = torch.Generator().manual_seed(seed)
    obs = model.observation
    R, K = model.n_regions, model.latent_spec.n_across
    with torch.no_grad():
        obs.C_mean.copy_(torch.randn(obs.C_mean.shape, generator=gen, dtype=torch.float64) * obs.support)
        A = torch.randn(obs.C_cov.shape, generator=gen, dtype=torch.float64) * 0.05
        obs.C_cov.copy_(A @ A.mT + 1e-3 * torch.eye(K, dtype=torch.float64))
        obs.d_mean.copy_(torch.randn(obs.d_mean.shape, generator=gen, dtype=torch.float64))
        obs.d_var.fill_(1e-3)
        obs.phi_a.fill_(50.0)
        obs.phi_b.copy_(50.0 * (0.5 + torch.rand(obs.phi_b.shape, generator=gen, dtype=torch.float64)))
        obs.alpha_a.fill_(3.0)
        obs.alpha_b.fill_(3.0)
        model.delay.set_delays(torch.tensor([[0.0] * K, [1.3, -0.6], [2.1, 0.4]], dtype=torch.float64)[:R, :K])
    for k, blk in enumerate(model.across):
        blk.kernel.timescale = 2.5 + k


def _copy(src, dst) -> None:
    dst.load_state_dict(src.state_dict(), strict=False)


def _periodic_reference(model, data, G: int):
    """Posterior means, per-time covariances and log Z of the periodic model on ``L = T + G`` bins, densely."""
    y = data.y.double()
    B, T, _ = y.shape
    L = T + G
    R, K = model.n_regions, model.latent_spec.n_across
    obs = model.observation
    J, h, _ = obs.information(y, None)
    eps = float(model.across[0].eps)
    delays = model.delay.region_delays().detach()
    omega = 2 * math.pi * np.fft.fftfreq(L)
    # Cross-covariance of latent k's views r, s at lag τ on the circle: (1/L) Σ_ω (1−ε) S(ω) q_r q̄_s e^{iωτ} + ε δ.
    n_x = R * K
    Kfull = torch.zeros(T, n_x, T, n_x, dtype=torch.float64)
    taus = np.arange(T)[:, None] - np.arange(T)[None, :]
    for k, blk in enumerate(model.across):
        S = (1 - eps) * blk.kernel.spectral_density(torch.as_tensor(omega)).detach().numpy()
        for r in range(R):
            for s in range(R):
                dr, ds = float(delays[r, k]), float(delays[s, k])
                phase_r = np.exp(-1j * omega * dr)
                phase_s = np.exp(-1j * omega * ds)
                if L % 2 == 0:
                    phase_r[L // 2] = phase_r[L // 2].real
                    phase_s[L // 2] = phase_s[L // 2].real
                spec = S * phase_r * np.conj(phase_s)
                cov = (np.exp(1j * omega[None, None, :] * taus[:, :, None]) * spec).sum(-1).real / L
                if r == s:
                    cov = cov + eps * np.eye(T)
                Kfull[:, r * K + k, :, s * K + k] = torch.as_tensor(cov)
    Kx = Kfull.reshape(T * n_x, T * n_x)
    Jx = torch.block_diag(*([J] * T))
    P = torch.linalg.inv(Kx) + Jx
    cov = torch.linalg.inv(P)
    hz = h.reshape(B, T * n_x)
    mean = hz @ cov
    log_z = 0.5 * (hz * mean).sum(-1) - 0.5 * torch.linalg.slogdet(Kx)[1] - 0.5 * torch.linalg.slogdet(P)[1]
    per_t = torch.stack([cov[t * n_x : (t + 1) * n_x, t * n_x : (t + 1) * n_x] for t in range(T)])
    return mean.reshape(B, T, n_x), per_t, log_z


@pytest.mark.parametrize("T", [11, 12])
@pytest.mark.parametrize("gap", [0, 5])
def test_frequency_posterior_is_exact_for_the_periodic_model(T, gap):
    data, _ = _data(T)
    model = mbrila.MDLAG(LatentSpec(2), data.y_dims, T, engine=VEMARDFreqEngine(gap=gap))
    _set_parameters(model)
    y = data.y.double()
    _J, _h, c = model.observation.information(y, None)
    mean_ref, cov_ref, logz_ref = _periodic_reference(model, data, gap)
    post = model.infer(data)
    torch.testing.assert_close(post.mean, mean_ref, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(post.cov[0], cov_ref, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(post.log_likelihood - c, logz_ref, rtol=1e-10, atol=1e-8)


def test_frequency_means_approach_the_time_engine_as_trials_grow():
    # The periodic model differs from the dense GP only through wrap-around across the gap; with the default gap
    # (T / 8) that error shrinks as trials grow. Same parameters in both engines, posterior means compared.
    errors = []
    for T in (24, 48, 96, 192):
        data, _ = _data(T, n_trials=2)
        time = mbrila.MDLAG(LatentSpec(2), data.y_dims, T, engine="time")
        _set_parameters(time)
        freq = mbrila.MDLAG(LatentSpec(2), data.y_dims, T, engine="freq")
        _copy(time, freq)
        a, b = time.infer(data).mean, freq.infer(data).mean
        errors.append(float((a - b).pow(2).mean().sqrt() / a.pow(2).mean().sqrt()))
    assert all(later < earlier for earlier, later in itertools.pairwise(errors)), errors
    assert errors[-1] < 1e-3, errors


def test_frequency_engine_refuses_missing_entries_and_a_zero_nugget():
    data, _ = _data(12)
    mask = torch.ones(data.y.shape, dtype=torch.bool)
    mask[0, 3, 2] = False
    model = mbrila.MDLAG(LatentSpec(2), data.y_dims, 12, engine="freq")
    with pytest.raises(ValueError, match="complete trials"):
        model.fit(data.with_mask(mask), max_iter=1, progress=False)
    no_nugget = mbrila.MDLAG(LatentSpec(2), data.y_dims, 12, engine="freq", eps=0.0)
    with pytest.raises(ValueError, match="nugget"):
        no_nugget.fit(data, max_iter=1, progress=False)


def test_frequency_engine_fits_ragged_trials_by_length():
    data, _ = _data(16, n_trials=6)
    lengths = torch.tensor([16, 16, 12, 12, 16, 10])
    ragged = mbrila.MultiRegionData(data.y, data.y_dims, data.region_names, lengths=lengths)
    model = mbrila.MDLAG(LatentSpec(2), data.y_dims, 16, engine="freq")
    fit = model.fit(ragged, max_iter=10, tol=0.0, progress=False)
    trace = np.array(fit.score_trace)
    assert np.all(np.diff(trace) >= -1e-8 * np.abs(trace[:-1])), np.diff(trace).min()
    # Each trial is conditioned on its own length only: truncating a trial's padding changes nothing.
    post = model.infer(ragged)
    single = model.infer(mbrila.MultiRegionData(data.y[2:3, :12], data.y_dims, data.region_names))
    torch.testing.assert_close(post.mean[2:3, :12], single.mean, rtol=1e-9, atol=1e-10)
    assert bool((post.mean[2, 12:] == 0).all())


def test_lengths_without_padding_and_empty_trials_are_handled():
    # Found by the property-based suite: lengths equal to T everywhere took the ragged path and crashed in the ARD
    # update; a trial with nothing observed was reported as "trials of at least 2 bins".
    rng = np.random.default_rng(0)
    full = mbrila.MultiRegionData.from_regions([rng.normal(size=(2, 5, 2))], lengths=[5, 5])
    model = mbrila.build_model("mdlag_freq", latent_spec=mbrila.LatentSpec(1), y_dims=full.y_dims, T=5)
    assert model.fit(full, max_iter=2, progress=False).n_iter == 2
    y = rng.normal(size=(2, 5, 2))
    y[0] = np.nan
    empty = mbrila.MultiRegionData.from_regions([y], nan_as_missing=True)
    model = mbrila.build_model("mdlag_freq", latent_spec=mbrila.LatentSpec(1), y_dims=empty.y_dims, T=5)
    with pytest.raises(ValueError, match=r"trials \[0\] have no observed entries"):
        model.fit(empty, max_iter=2, progress=False)


# ------------------------------------------------------------------------------------------------ rescaling step
def test_prior_quadratic_is_the_part_of_the_expected_log_density_that_scales_with_x():
    from mbrila.frequency import expected_log_density, prior_quadratic

    g = torch.Generator().manual_seed(0)
    K, L, R = 2, 9, 3
    a = torch.rand(K, L, generator=g, dtype=torch.float64) + 0.1
    q = torch.polar(torch.ones(K, L, R, dtype=torch.float64), torch.rand(K, L, R, generator=g, dtype=torch.float64))
    Z = torch.randn(K, L, R, 5, generator=g, dtype=torch.complex128)
    W = Z @ Z.mH
    quad = prior_quadratic(a, q, 0.01, W)
    for k in range(K):
        full = expected_log_density(a[k], q[k], 0.01, W[k], 5)
        zero = expected_log_density(a[k], q[k], 0.01, torch.zeros_like(W[k]), 5)
        assert abs(float(full - zero) + 0.5 * float(quad[k])) < 1e-9 * abs(float(quad[k]))
        # and it is tr(Σ⁻¹ W) summed over frequencies, with Σ = a q qᴴ + ε I built densely
        dense = a[k, :, None, None] * (q[k, :, :, None] * q[k, :, None, :].conj()) + 0.01 * torch.eye(
            R, dtype=torch.float64
        )
        ref = torch.linalg.solve(dense, W[k]).diagonal(dim1=-2, dim2=-1).sum().real
        assert abs(float(quad[k]) - float(ref)) < 1e-9 * abs(float(ref))


def test_rescale_latents_takes_the_maximiser_of_the_elbo_along_the_scale():
    data, _ = _data(16, n_trials=6)
    model = mbrila.MDLAG(LatentSpec(3), data.y_dims, 16, engine="freq")
    model.fit(data, max_iter=3, progress=False)
    obs = model.observation
    with torch.no_grad():
        obs.pruned[2] = True
        obs._zero_pruned()
        N = obs.C_mean.shape[0]
        quad = torch.tensor([40.0, 75.0, 10.0], dtype=torch.float64)
        count = torch.tensor([300.0, 300.0, 300.0], dtype=torch.float64)
        alpha = obs.alpha_a[:, None] / obs.alpha_b
        W = (alpha[obs._neuron_region] * obs.c_second().diagonal(dim1=-2, dim2=-1)).sum(0)
        C0, V0 = obs.C_mean.clone(), obs.C_cov.clone()
        s = obs.rescale_latents(quad, count)

        def delta(k: int, v: float) -> float:
            return (
                -0.5 * (v * v - 1) * float(quad[k])
                + (float(count[k]) - N) * math.log(v)
                - 0.5 * float(W[k]) * (v**-2 - 1)
            )

        for k in (0, 1):
            sk = float(s[k])
            assert sk != 1.0
            assert delta(k, sk) > 0
            assert delta(k, sk) >= max(delta(k, sk * 1.001), delta(k, sk / 1.001))
        assert float(s[2]) == 1.0  # a pruned latent is left alone
        cols = s.repeat(len(data.y_dims))
        torch.testing.assert_close(obs.C_mean, C0 / cols, rtol=0, atol=0)
        torch.testing.assert_close(obs.C_cov, V0 / (s[:, None] * s[None, :]), rtol=1e-15, atol=0)


@pytest.mark.parametrize("rescale", [True, False])
def test_frequency_fit_never_lowers_the_elbo_with_or_without_the_rescaling_step(rescale):
    data, _ = _data(16, n_trials=6)
    model = mbrila.MDLAG(LatentSpec(3), data.y_dims, 16, engine="freq", engine_defaults={"rescale": rescale})
    trace = np.array(model.fit(data, max_iter=25, tol=0.0, progress=False).score_trace)
    assert np.all(np.diff(trace) >= -1e-8 * np.abs(trace[:-1])), np.diff(trace).min()
    assert trace[-1] > trace[0]
