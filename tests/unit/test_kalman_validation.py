"""Bad input to the Kalman core raises a ValueError naming the argument."""

from __future__ import annotations

import pytest
import torch

from mbrila.inference.kalman import LGSSM, kalman_filter, kalman_smoother
from tests.unit.test_kalman_parity import random_model

F64 = torch.float64


def _setup():
    p = random_model(3, 4, 6, tv=False, seed=0)
    y = torch.randn(2, 6, 4, dtype=F64)
    return p, y


def _with(p: LGSSM, **kw) -> LGSSM:
    return LGSSM(**{**vars(p), **kw})


@pytest.mark.parametrize(
    "change,match",
    [
        ({"A": torch.eye(2, dtype=F64)}, "A"),
        ({"Q": torch.eye(4, dtype=F64)}, "Q"),
        ({"Q": torch.diag(torch.tensor([1.0, -0.5, 1.0], dtype=F64))}, "Q"),
        ({"Q": torch.tensor([[1.0, 0.5, 0], [0.0, 1, 0], [0, 0, 1]], dtype=F64)}, "Q"),
        ({"P0": -torch.eye(3, dtype=F64)}, "P0"),
        ({"m0": torch.zeros(2, dtype=F64)}, "P0|m0"),
        ({"C": torch.zeros(5, 3, dtype=F64)}, "C"),
        ({"d": torch.zeros(5, dtype=F64)}, "d"),
        ({"R": torch.zeros(4, dtype=F64)}, "R"),
        ({"R": torch.ones(3, dtype=F64)}, "R"),
        ({"A": torch.full((3, 3), float("nan"), dtype=F64)}, "A"),
        ({"A": torch.zeros(4, 3, 3, dtype=F64)}, "A"),
    ],
)
def test_bad_parameters(change, match):
    p, y = _setup()
    with pytest.raises(ValueError, match=match):
        kalman_smoother(_with(p, **change), y)


def test_bad_observations():
    p, y = _setup()
    with pytest.raises(ValueError, match="y"):
        kalman_smoother(p, y[0])
    y_nan = y.clone()
    y_nan[1, 2, 3] = float("nan")
    with pytest.raises(ValueError, match=r"y has 1 non-finite.*\(1, 2, 3\)"):
        kalman_smoother(p, y_nan)
    with pytest.raises(ValueError, match="mask"):
        kalman_smoother(p, y, torch.ones(2, 6, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):
        kalman_smoother(p, y, torch.ones(2, 6, 4))
    with pytest.raises(ValueError, match="method"):
        kalman_filter(p, y, method="magic")
    with pytest.raises(ValueError, match=r"dtype|float"):
        kalman_smoother(p, y.float())


def test_information_route_checks():
    p, _ = _setup()
    dyn = LGSSM(A=p.A, Q=p.Q, m0=p.m0, P0=p.P0)
    h = torch.zeros(2, 6, 3, dtype=F64)
    with pytest.raises(ValueError, match="J"):
        kalman_smoother(dyn, J=torch.eye(2, dtype=F64), h=h)
    with pytest.raises(ValueError, match="J"):
        kalman_smoother(dyn, J=-torch.eye(3, dtype=F64), h=h)
    with pytest.raises(ValueError, match="h"):
        kalman_smoother(dyn, J=torch.eye(3, dtype=F64), h=torch.zeros(2, 6, 2, dtype=F64))
    with pytest.raises(ValueError, match="either y"):
        kalman_smoother(p, torch.zeros(2, 6, 4, dtype=F64), J=torch.eye(3, dtype=F64), h=h)
