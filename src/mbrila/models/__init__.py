"""Model presets (GPFA, DLAG, ADM, LDS, MDLAG) assembled from latent blocks, delays, observations and engines."""

from mbrila.models.base import MultiRegionLatentModel
from mbrila.models.mdlag import MDLAG
from mbrila.models.presets import ADM, DLAG, GPFA, LDS
from mbrila.models.registry import PRESETS, build_model, load, save

__all__ = ["ADM", "DLAG", "GPFA", "LDS", "MDLAG", "PRESETS", "MultiRegionLatentModel", "build_model", "load", "save"]
