"""Shared test configuration.

The whole suite can be re-run under another device or default float dtype by environment variable, as pyro does:

    MBRILA_TEST_DEVICE=cuda MBRILA_TEST_DTYPE=float32 uv run pytest

Parity tests that need float64 precision request it explicitly through the ``f64`` fixture.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, give each worker its share of the cores.

    Every worker running torch with one thread per core would oversubscribe the machine (OpenMP threads spin while
    they wait, so two such workers on two cores run slower than one). The thread count is also exported, so the
    kernels of the notebook tests and the demo subprocesses inherit it.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ["OMP_NUM_THREADS"] = str(threads)
        os.environ["MKL_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def _test_device() -> torch.device:
    return torch.device(os.environ.get("MBRILA_TEST_DEVICE", "cpu"))


def _test_dtype() -> torch.dtype:
    name = os.environ.get("MBRILA_TEST_DTYPE", "float64")
    if name not in _DTYPES:
        raise ValueError(f"MBRILA_TEST_DTYPE must be one of {sorted(_DTYPES)}, got {name!r}")
    return _DTYPES[name]


@pytest.fixture
def device() -> torch.device:
    """Device under test (``MBRILA_TEST_DEVICE``, default cpu)."""
    return _test_device()


@pytest.fixture
def dtype() -> torch.dtype:
    """Floating dtype under test (``MBRILA_TEST_DTYPE``, default float64)."""
    return _test_dtype()


@pytest.fixture
def f64() -> dict:
    """Tensor options for tests that need float64 precision on the device under test."""
    return {"dtype": torch.float64, "device": _test_device()}


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def full_size() -> bool:
    """Recovery tests run at reduced size unless ``MBRILA_FULL=1``."""
    return os.environ.get("MBRILA_FULL", "0") == "1"
