"""Metrics: latent matching, delay RMSE, reconstruction and co-smoothing errors against hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mbrila
from mbrila.metrics import (
    Matching,
    apply_matching,
    cosmoothing,
    cosmoothing_rmse,
    delay_rmse,
    delay_rmse_per_latent,
    match_latents,
    reconstruction_rmse,
)


def _latents(seed=0, shape=(10, 30, 3)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape)


# ----------------------------------------------------------------------------------------------- matching


def test_matching_recovers_a_known_permutation_and_signs():
    true = _latents()
    rng = np.random.default_rng(1)
    # Fitted latent j = sign_j · true[perm_inv[j]] + a little noise, plus two unrelated latents.
    order = [2, 0, 1]  # fitted 0 is true 2, fitted 1 is true 0, fitted 2 is true 1
    flips = np.array([-1.0, 1.0, -1.0])
    fitted = np.concatenate(
        [true[..., order] * flips + 0.1 * rng.standard_normal(true.shape), rng.standard_normal((10, 30, 2))], -1
    )
    m = match_latents(fitted, true)
    np.testing.assert_array_equal(m.perm, [1, 2, 0])
    np.testing.assert_array_equal(m.signs, [1.0, -1.0, -1.0])
    assert np.all(m.corr > 0.98) and m.corr_matrix is not None and m.corr_matrix.shape == (3, 5)
    aligned = apply_matching(fitted, m)
    assert aligned.shape == true.shape
    assert np.abs(aligned - true).max() < 0.6
    # Torch in, torch out (same dtype), and the same matching.
    ft = torch.as_tensor(fitted, dtype=torch.float32)
    m_t = match_latents(ft, torch.as_tensor(true))
    np.testing.assert_array_equal(m_t.perm, m.perm)
    out = apply_matching(ft, m_t)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), aligned, rtol=1e-5, atol=1e-5)


def test_matching_maximises_the_total_not_the_greedy_choice():
    # True 0 correlates best with fitted 0 (0.77 vs 0.64), but true 1 correlates only with fitted 0; the optimum pairs
    # true 0 → fitted 1 and true 1 → fitted 0.
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((2, 5000))
    true = np.stack([a + 1.2 * b, b], -1)
    fitted = np.stack([b, a], -1)
    m = match_latents(fitted, true)
    np.testing.assert_array_equal(m.perm, [1, 0])


def test_matching_errors():
    with pytest.raises(ValueError, match="cannot match 3 true latents with only 2"):
        match_latents(_latents(shape=(4, 5, 2)), _latents(shape=(4, 5, 3)))
    with pytest.raises(ValueError, match="leading"):
        match_latents(_latents(shape=(4, 5, 3)), _latents(shape=(4, 6, 3)))


def test_constant_fitted_latent_gets_zero_correlation_not_nan():
    true = _latents(shape=(4, 20, 1))
    fitted = np.concatenate([np.ones((4, 20, 1)), -true], -1)
    m = match_latents(fitted, true)
    assert m.perm.tolist() == [1] and m.signs.tolist() == [-1.0]
    assert m.corr_matrix is not None and m.corr_matrix[0, 0] == 0.0


# ----------------------------------------------------------------------------------------------- delays


def test_delay_rmse_identity_offset_and_sign_invariance():
    true = mbrila.synthetic.make_delays("gaussian", 40, 4, [3.0, 1.0])
    assert delay_rmse(true, true) == 0.0
    assert delay_rmse(torch.as_tensor(true), true) == 0.0
    # Offsetting latent 1 by 0.5 bins in every non-reference region: per latent (0, 0.5), overall
    # sqrt((0² + 0.5²) / 2).
    fitted = true.copy()
    fitted[:, 1:, 1] += 0.5
    assert delay_rmse(fitted, true) == pytest.approx(np.sqrt(0.125))
    np.testing.assert_allclose(delay_rmse_per_latent(fitted, true), [0.0, 0.5])
    # The reference column is not scored.
    fitted_ref = true.copy()
    fitted_ref[:, 0, :] = 7.0
    assert delay_rmse(fitted_ref, true) == 0.0
    # Sign flips of a matched latent do not change the delay error; the permutation does apply.
    swapped = true[:, :, ::-1].copy()
    m = Matching(perm=np.array([1, 0]), signs=np.array([-1.0, 1.0]), corr=np.ones(2))
    assert delay_rmse(swapped, true, m) == 0.0
    assert delay_rmse(swapped, true, [1, 0]) == 0.0
    assert delay_rmse(swapped, true) > 0.1


def test_delay_rmse_with_extra_fitted_latents_by_hand():
    true = np.zeros((3, 2, 1))
    true[:, 1, 0] = [1.0, 2.0, 3.0]
    fitted = np.zeros((3, 2, 3))
    fitted[:, 1, 2] = [1.0, 2.0, 5.0]  # the matched one, off by 2 at the last step
    fitted[:, 1, 0] = 100.0  # unmatched latents are ignored
    m = Matching(perm=np.array([2]), signs=np.array([-1.0]), corr=np.ones(1))
    assert delay_rmse(fitted, true, m) == pytest.approx(np.sqrt(4.0 / 3.0))
    with pytest.raises(ValueError, match="pass a matching"):
        delay_rmse(fitted, true)
    with pytest.raises(ValueError, match="differ in T"):
        delay_rmse(fitted[:2], true, m)
    with pytest.raises(ValueError, match="only 3 were fitted"):
        delay_rmse(fitted, true, [3])


# ----------------------------------------------------------------------------------------------- reconstruction


def test_reconstruction_rmse_per_region_and_overall():
    y = np.zeros((2, 3, 5))
    pred = np.zeros((2, 3, 5))
    pred[..., :2] = 1.0  # region 0: error 1 everywhere
    pred[..., 2:] = 2.0  # region 1: error 2 everywhere
    out = reconstruction_rmse(y, pred, (2, 3))
    assert out[0] == pytest.approx(1.0) and out[1] == pytest.approx(2.0)
    assert out["overall"] == pytest.approx(np.sqrt((2 * 1 + 3 * 4) / 5))
    named = reconstruction_rmse(torch.as_tensor(y), torch.as_tensor(pred), (2, 3), region_names=["V1", "V2"])
    assert set(named) == {"V1", "V2", "overall"}
    # A mask leaves out unobserved entries: hide region 1 except one entry, whose error is 2.
    mask = np.ones_like(y, dtype=bool)
    mask[..., 2:] = False
    mask[0, 0, 4] = True
    pred[0, 0, 3] = 50.0  # unobserved, must not count
    masked = reconstruction_rmse(y, pred, (2, 3), mask=mask)
    assert masked[1] == pytest.approx(2.0)
    assert masked["overall"] == pytest.approx(np.sqrt((12 * 1 + 4) / 13))
    with pytest.raises(ValueError, match="sum to 4"):
        reconstruction_rmse(y, pred, (2, 2))


def test_cosmoothing_by_hand():
    # 2 trials, 2 times, regions of 2 and 3 neurons; held out: neuron 1 (region A) and neurons 3, 4 (region B).
    y = np.array(
        [
            [[0.0, 1.0, 5.0, 2.0, 0.0], [0.0, 3.0, 5.0, 4.0, 1.0]],
            [[0.0, 3.0, 5.0, 0.0, 2.0], [0.0, 1.0, 5.0, 2.0, 3.0]],
        ]
    )
    pred = np.array(
        [
            [[9.0, 2.0, 9.0, 1.0, 1.0], [9.0, 2.0, 9.0, 3.0, 1.0]],
            [[9.0, 2.0, 9.0, 1.0, 1.0], [9.0, 2.0, 9.0, 3.0, 5.0]],
        ]
    )
    held = np.array([False, True, False, True, True])
    out = cosmoothing(y, pred, held, (2, 3), ["A", "B"])
    assert set(out) == {"holdout_psth_rmse_A", "holdout_trial_rmse_A", "holdout_psth_rmse_B", "holdout_trial_rmse_B"}
    # Region A, neuron 1: truth PSTH (2, 2), prediction PSTH (2, 2) → 0; trial errors (1, 1, 1, 1) → 1.
    assert out["holdout_psth_rmse_A"] == pytest.approx(0.0)
    assert out["holdout_trial_rmse_A"] == pytest.approx(1.0)
    # Region B: neuron 3 truth PSTH (1, 3) vs (1, 3); neuron 4 truth PSTH (1, 2) vs (1, 3) → one error of 1 in 4.
    assert out["holdout_psth_rmse_B"] == pytest.approx(np.sqrt(1 / 4))
    # Trial errors: neuron 3: (1, 1, 1, 1); neuron 4: (1, 0, 1, 2) → (4 + 6) / 8.
    assert out["holdout_trial_rmse_B"] == pytest.approx(np.sqrt(10 / 8))
    # Same numbers from torch inputs, a per-entry (trials, T, N) holdout, and the alias.
    held_full = torch.as_tensor(np.broadcast_to(held, y.shape).copy())
    again = cosmoothing_rmse(torch.as_tensor(y), torch.as_tensor(pred), held_full, (2, 3), ["A", "B"])
    assert again == pytest.approx(out)


def test_cosmoothing_skips_regions_without_held_out_neurons_and_honours_the_mask():
    y = np.zeros((2, 1, 3))
    pred = np.ones((2, 1, 3))
    pred[1, 0, 2] = 3.0
    held = np.array([False, True, True])
    out = cosmoothing(y, pred, held, (1, 2))
    assert set(out) == {"holdout_psth_rmse_R1", "holdout_trial_rmse_R1"}
    mask = np.ones((2, 1, 3), dtype=bool)
    mask[1, 0, 2] = False  # the 3.0 was never recorded
    masked = cosmoothing(y, pred, held, (1, 2), mask=mask)
    assert masked["holdout_trial_rmse_R1"] == pytest.approx(1.0)
    assert masked["holdout_psth_rmse_R1"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bool"):
        cosmoothing(y, pred, held.astype(int), (1, 2))
