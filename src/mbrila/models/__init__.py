"""Model presets (GPFA, DLAG, ADM, LDS) assembled from latent blocks, delays, observations and engines."""

from mbrila.models.presets import ADM, DLAG, GPFA, LDS
from mbrila.models.registry import PRESETS, build_model, load, save
from mbrila.models.state_space import LatentStateSpaceModel

__all__ = ["ADM", "DLAG", "GPFA", "LDS", "PRESETS", "LatentStateSpaceModel", "build_model", "load", "save"]
