"""Latent priors as state-space blocks: lifted GP latents, free LDS latents, and their composition."""

from mbrila.dynamics.block import BlockMoments, BlockTransition, expected_log_prior
from mbrila.dynamics.compose import ComposedPrior, compose
from mbrila.dynamics.gp_latent import MarkovianGPLatent
from mbrila.dynamics.lds_latent import FreeLDSLatent
from mbrila.dynamics.lift import lift

__all__ = [
    "BlockMoments",
    "BlockTransition",
    "ComposedPrior",
    "FreeLDSLatent",
    "MarkovianGPLatent",
    "compose",
    "expected_log_prior",
    "lift",
]
