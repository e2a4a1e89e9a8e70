"""Read-outs of the latents: linear-Gaussian with point estimates, and mDLAG's variational ARD read-out."""

from mbrila.observations.ard import ARDObservation
from mbrila.observations.linear import MultiRegionLinearObservation

__all__ = ["ARDObservation", "MultiRegionLinearObservation"]
