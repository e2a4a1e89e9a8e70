"""Latent priors: GP latents as dense covariances or lifted state-space blocks, free LDS latents, composition."""

from mbrila.dynamics.block import BlockMoments, BlockTransition, expected_log_prior
from mbrila.dynamics.compose import ComposedPrior, compose
from mbrila.dynamics.exact_gp import ExactGPLatent, dense_expected_log_prior
from mbrila.dynamics.gp_latent import MarkovianGPLatent
from mbrila.dynamics.lds_latent import FreeLDSLatent
from mbrila.dynamics.lift import lift

__all__ = [
    "BlockMoments",
    "BlockTransition",
    "ComposedPrior",
    "ExactGPLatent",
    "FreeLDSLatent",
    "MarkovianGPLatent",
    "compose",
    "dense_expected_log_prior",
    "expected_log_prior",
    "lift",
]
