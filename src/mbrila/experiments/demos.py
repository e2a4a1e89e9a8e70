"""Every demo by name: what its command-line script and its notebook both run, so the two share one set of defaults.

A synthetic demo samples a headline scenario (DESIGN.md §5) and fits a preset at its defaults; a V1/V2 demo runs
the co-smoothing protocol on the shipped recordings. The scripts in ``examples/`` and the notebooks in
``notebooks/`` only name an entry of :data:`SYNTHETIC_DEMOS` or :data:`V1V2_DEMOS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mbrila.core import LatentSpec
from mbrila.kernels import BaseKernel, Matern52Kernel, RationalQuadraticKernel


def _matern52() -> dict[str, Any]:
    return {"kernel_factory_across": Matern52Kernel, "kernel_factory_within": Matern52Kernel}


def _rational_quadratic() -> dict[str, Any]:
    return {"kernel_factory_across": RationalQuadraticKernel, "kernel_factory_within": RationalQuadraticKernel}


def _matern52_truth() -> list[BaseKernel]:
    # Two across latents (4.47 and 1.41 bins), then one within latent per region (4.47 bins) for 5 regions.
    timescales = [4.47, 1.41] + [4.47] * 5
    return [Matern52Kernel(ts) for ts in timescales]


@dataclass(frozen=True)
class SyntheticDemo:
    """A synthetic recovery demo (see :func:`mbrila.experiments.cli.synthetic_demo` for the fields' meaning).

    ``prior`` describes the latent-prior family for the notebooks' banner.
    """

    model: str
    title: str
    prior: str
    scenario: str = "dlag"
    label: str | None = None
    latent_spec: LatentSpec | None = None
    model_kwargs: Callable[[], dict[str, Any]] | None = None
    scenario_kernels: Callable[[], list[BaseKernel]] | None = None
    compare_with: str | None = None

    def cli_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~mbrila.experiments.cli.synthetic_demo` (after the model name)."""
        return {
            "scenario": self.scenario,
            "label": self.label,
            "latent_spec": self.latent_spec,
            "model_kwargs": self.model_kwargs,
            "scenario_kernels": self.scenario_kernels,
            "compare_with": self.compare_with,
        }


@dataclass(frozen=True)
class V1V2Demo:
    """A V1/V2 co-smoothing demo (see :func:`mbrila.experiments.cli.v1v2_demo`)."""

    model: str
    title: str
    prior: str
    label: str | None = None
    latent_counts: tuple[int, int] = (2, 2)
    model_kwargs: Callable[[], dict[str, Any]] | None = None

    def cli_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~mbrila.experiments.cli.v1v2_demo` (after the model name)."""
        return {"label": self.label, "latent_counts": self.latent_counts, "model_kwargs": self.model_kwargs}


_GP_LIFT = "GP latents lifted to a state space (AR(4) lift; exact SDE for Matérn within latents), Kalman EM"
_GPFA_SSM = "GP latents as state-space models (the RBF's order-8 SDE approximation), Kalman EM"
_DENSE = "GP latents with their dense covariance, exact Gaussian conditioning"

#: The synthetic demos, by the name of their script (``examples/synthetic/demo_<name>.py``) and notebook.
SYNTHETIC_DEMOS: dict[str, SyntheticDemo] = {
    "adm": SyntheticDemo(
        "adm",
        "ADM: time-varying (Gaussian-bump) delays between 5 regions, with DLAG-SSM on the same data",
        "GP latents seen through smooth delays δ(t): a time-varying AR(4) lift, Kalman EM (MAP delays)",
        scenario="adm",
        compare_with="dlag_ssm",
    ),
    "dlag": SyntheticDemo("dlag", "DLAG (exact): constant delays between 2 regions", _DENSE, scenario="dlag_exact"),
    "dlag_ssm": SyntheticDemo("dlag_ssm", "DLAG-SSM: constant delays between 5 regions", _GP_LIFT),
    "mdlag_time": SyntheticDemo(
        "mdlag_time",
        "mDLAG, time-domain engine: ARD keeps the 2 true latents of 4 (3 regions)",
        _DENSE + ", variational ARD read-out",
        scenario="mdlag",
        latent_spec=LatentSpec(n_across=4),
    ),
    "mdlag_freq": SyntheticDemo(
        "mdlag_freq",
        "mDLAG, frequency-domain engine (fast-mDLAG): ARD keeps the 2 true latents of 4 (3 regions)",
        "GP latents with a circulant prior in the frequency domain (plus an exact gap correction), variational ARD",
        scenario="mdlag",
        latent_spec=LatentSpec(n_across=4),
    ),
    "mdlag_ssm": SyntheticDemo(
        "mdlag_ssm",
        "mDLAG, state-space engine: ARD keeps the 2 true latents of 4 (3 regions)",
        _GP_LIFT + ", variational ARD read-out",
        scenario="mdlag",
        latent_spec=LatentSpec(n_across=4),
    ),
    "gpfa_ssm": SyntheticDemo(
        "gpfa", "GPFA-SSM: the same GP latents without delays (baseline)", _GPFA_SSM, label="gpfa_ssm"
    ),
    "lds": SyntheticDemo(
        "lds", "Free linear dynamical system (baseline)", "free LDS latents (learned A, Q), Kalman EM"
    ),
    "matern": SyntheticDemo(
        "dlag_ssm",
        "DLAG-SSM with Matérn-5/2 kernels on Matérn-5/2 data",
        _GP_LIFT + " (Matérn-5/2 kernels)",
        label="dlag_ssm_matern52",
        model_kwargs=_matern52,
        scenario_kernels=_matern52_truth,
    ),
    "custom_kernel": SyntheticDemo(
        "dlag_ssm",
        "DLAG-SSM with a user-written rational-quadratic kernel",
        _GP_LIFT + " (rational-quadratic kernels)",
        label="dlag_ssm_rational_quadratic",
        model_kwargs=_rational_quadratic,
    ),
}

#: The V1/V2 co-smoothing demos, by the name of their script (``examples/v1v2/demo_<name>.py``) and notebook.
V1V2_DEMOS: dict[str, V1V2Demo] = {
    "adm": V1V2Demo("adm", "ADM on V1/V2", "GP latents seen through smooth delays δ(t), time-varying AR(4) lift"),
    "dlag": V1V2Demo("dlag", "DLAG (exact) on V1/V2", _DENSE),
    "dlag_ssm": V1V2Demo("dlag_ssm", "DLAG-SSM on V1/V2", _GP_LIFT),
    "mdlag_time": V1V2Demo("mdlag_time", "mDLAG (time-domain engine) on V1/V2", _DENSE + ", ARD", latent_counts=(3, 0)),
    "mdlag_freq": V1V2Demo(
        "mdlag_freq", "mDLAG (frequency-domain engine) on V1/V2", "circulant GP prior, ARD", latent_counts=(3, 0)
    ),
    "mdlag_ssm": V1V2Demo("mdlag_ssm", "mDLAG (state-space engine) on V1/V2", _GP_LIFT + ", ARD", latent_counts=(3, 0)),
    "custom_kernel": V1V2Demo(
        "dlag_ssm",
        "DLAG-SSM with a user-written rational-quadratic kernel on V1/V2",
        _GP_LIFT + " (rational-quadratic kernels)",
        label="dlag_ssm_rational_quadratic",
        model_kwargs=_rational_quadratic,
    ),
}
