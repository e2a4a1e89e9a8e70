"""The positive and bounded parameter descriptors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mbrila.utils.constraints import Bounded, Positive, positive_parameter, softplus_inverse


class Holder(nn.Module):
    scale = Positive("raw_scale", lower_bound=0.1)
    shift = Bounded("raw_shift", "bound")

    def __init__(self) -> None:
        super().__init__()
        self.raw_scale = positive_parameter(2.0, "scale", lower_bound=0.1)
        self.raw_shift = nn.Parameter(torch.zeros(3))
        self.bound = 2.0


@pytest.mark.parametrize("x", [1e-8, 1e-3, 0.5, 3.0, 30.0, 1e4])
def test_softplus_inverse_round_trip(x):
    t = torch.tensor(x, dtype=torch.float64)
    torch.testing.assert_close(torch.nn.functional.softplus(softplus_inverse(t)), t, rtol=1e-10, atol=0)


def test_positive_round_trip_and_gradient():
    h = Holder().double()
    assert abs(float(h.scale.detach()) - 2.0) < 1e-6  # created in the default float32, then cast
    h.scale = 0.5
    assert abs(float(h.scale.detach()) - 0.5) < 1e-12 and h.raw_scale.dtype == torch.float64
    (g,) = torch.autograd.grad(h.scale, h.raw_scale)
    assert float(g) > 0
    with pytest.raises(ValueError, match="scale"):
        h.scale = 0.05  # below the lower bound


def test_bounded_stays_inside_and_round_trips():
    h = Holder().double()
    h.shift = torch.tensor([0.5, -1.9, 0.0])
    torch.testing.assert_close(h.shift, torch.tensor([0.5, -1.9, 0.0], dtype=torch.float64))
    with torch.no_grad():
        h.raw_shift.fill_(1e3)
    assert float(h.shift.detach().max()) <= 2.0
    with pytest.raises(ValueError, match="shift"):
        h.shift = torch.tensor([2.5, 0.0, 0.0])
