"""Model presets (GPFA, DLAG, LDS) assembled from latent blocks, delays, observations and engines."""

from mbrila.models.presets import DLAG, GPFA, LDS
from mbrila.models.registry import PRESETS, build_model, load, save
from mbrila.models.state_space import LatentStateSpaceModel

__all__ = ["DLAG", "GPFA", "LDS", "PRESETS", "LatentStateSpaceModel", "build_model", "load", "save"]
