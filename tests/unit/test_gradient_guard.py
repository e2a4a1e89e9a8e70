"""The guard of the gradient M-step: a block of steps that lowers the objective is undone, unless the fall is within
the objective's round-off (which, in float32, is larger than a good block's gain)."""

from __future__ import annotations

import pytest
import torch

from mbrila.inference.adam import Adam
from mbrila.inference.em import GUARD_SLACK, gradient_m_step


def _run(dtype: torch.dtype, fall: float) -> tuple[float, bool]:
    """One block whose objective is 2e5 at the start and ``2e5 − fall`` after it: ``(lr after, θ kept)``."""
    theta = torch.zeros((), dtype=dtype, requires_grad=True)
    opt = Adam([theta], lr=0.1)
    calls = {"n": 0}

    def objective() -> torch.Tensor:
        calls["n"] += 1
        if calls["n"] <= 2:  # the two steps: gradient 1, so each moves θ up
            return theta + torch.tensor(2e5, dtype=dtype)
        return torch.tensor(2e5 - fall, dtype=dtype)  # the check after them sees the fall

    gradient_m_step(objective, opt, scale=(1.0,), n_steps=2)
    return opt.param_groups[0]["lr"], float(theta.detach()) > 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_a_fall_beyond_round_off_is_undone_and_halves_the_learning_rate(dtype):
    fall = 10 * GUARD_SLACK * torch.finfo(dtype).eps * 2e5
    lr, kept = _run(dtype, fall)
    assert lr == pytest.approx(0.05) and not kept


def test_a_float32_fall_within_round_off_is_kept_but_the_same_fall_in_float64_is_not():
    fall = 2.0  # a few nats: below float32's round-off of a 2e5 objective (GUARD_SLACK · eps · |F| ≈ 6), far above float64's
    assert fall < GUARD_SLACK * torch.finfo(torch.float32).eps * 2e5
    lr32, kept32 = _run(torch.float32, fall)
    assert lr32 == pytest.approx(0.1) and kept32
    lr64, kept64 = _run(torch.float64, fall)
    assert lr64 == pytest.approx(0.05) and not kept64
