"""Every evaluation number, for every model: latent matching, delay recovery, reconstruction, co-smoothing and
Poisson bits per spike.

Examples, notebooks and benchmarks call these functions rather than keeping their own copies, so every
reported number is computed one way (DESIGN.md §5).
"""

from mbrila.metrics.delays import delay_rmse, delay_rmse_per_latent
from mbrila.metrics.heldout import leave_group_out_prediction
from mbrila.metrics.matching import Matching, apply_matching, correlation_matrix, match_latents
from mbrila.metrics.reconstruction import cosmoothing, cosmoothing_rmse, reconstruction_rmse
from mbrila.metrics.spikes import bits_per_spike, co_bps, poisson_nll

__all__ = [
    "Matching",
    "apply_matching",
    "bits_per_spike",
    "co_bps",
    "correlation_matrix",
    "cosmoothing",
    "cosmoothing_rmse",
    "delay_rmse",
    "delay_rmse_per_latent",
    "leave_group_out_prediction",
    "match_latents",
    "poisson_nll",
    "reconstruction_rmse",
]
