"""Every evaluation number, for every model: latent matching, delay recovery, reconstruction and co-smoothing.

Examples, notebooks and benchmarks call these functions rather than keeping their own copies, so every
reported number is computed one way (DESIGN.md §5).
"""

from mbrila.metrics.delays import delay_rmse, delay_rmse_per_latent
from mbrila.metrics.matching import Matching, apply_matching, correlation_matrix, match_latents
from mbrila.metrics.reconstruction import cosmoothing, cosmoothing_rmse, reconstruction_rmse

__all__ = [
    "Matching",
    "apply_matching",
    "correlation_matrix",
    "cosmoothing",
    "cosmoothing_rmse",
    "delay_rmse",
    "delay_rmse_per_latent",
    "match_latents",
    "reconstruction_rmse",
]
