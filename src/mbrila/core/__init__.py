"""Core data structures: the multi-region data container, latent counts, results and splits."""

from mbrila.core.data import MultiRegionData
from mbrila.core.latent_spec import LatentSpec
from mbrila.core.results import FitResult, Posterior
from mbrila.core.splits import holdout_neuron_folds, holdout_neuron_mask, split_trials

__all__ = [
    "FitResult",
    "LatentSpec",
    "MultiRegionData",
    "Posterior",
    "holdout_neuron_folds",
    "holdout_neuron_mask",
    "split_trials",
]
