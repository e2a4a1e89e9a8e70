"""Read-outs of the latents: linear-Gaussian with point estimates, mDLAG's variational ARD read-out, and Poisson
spike counts through a rate link."""

from mbrila.observations.ard import ARDObservation
from mbrila.observations.counts import are_counts, check_counts
from mbrila.observations.linear import MultiRegionLinearObservation
from mbrila.observations.poisson import PoissonObservation

__all__ = ["ARDObservation", "MultiRegionLinearObservation", "PoissonObservation", "are_counts", "check_counts"]
