"""mbrila: multi-region neural latent variable models in PyTorch.

Shared ("across") and private ("within") latent processes of simultaneously recorded brain regions, with
constant or time-varying inter-region delays (DLAG, mDLAG, ADM), fitted by EM with exact dense-GP, frequency-domain
or batched parallel-scan Kalman inference.
"""

from mbrila import data, distributed, inference, kernels, metrics, selection, synthetic
from mbrila.core import FitResult, LatentSpec, MultiRegionData, Posterior, holdout_neuron_mask, split_trials
from mbrila.init.checks import DataWarning
from mbrila.kernels import (
    BaseKernel,
    Matern12Kernel,
    Matern32Kernel,
    Matern52Kernel,
    MOSEKernel,
    RBFKernel,
    check_kernel,
)
from mbrila.models import ADM, DLAG, GPFA, LDS, MDLAG, build_model, load

__version__ = "0.1.0.dev0"

__all__ = [
    "ADM",
    "DLAG",
    "GPFA",
    "LDS",
    "MDLAG",
    "BaseKernel",
    "DataWarning",
    "FitResult",
    "LatentSpec",
    "MOSEKernel",
    "Matern12Kernel",
    "Matern32Kernel",
    "Matern52Kernel",
    "MultiRegionData",
    "Posterior",
    "RBFKernel",
    "__version__",
    "build_model",
    "check_kernel",
    "data",
    "distributed",
    "holdout_neuron_mask",
    "inference",
    "kernels",
    "load",
    "metrics",
    "selection",
    "split_trials",
    "synthetic",
]
