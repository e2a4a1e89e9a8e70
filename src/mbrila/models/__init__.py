"""Model presets (GPFA, DLAG, ADM, LDS, MDLAG) assembled from latent blocks, delays, observations and engines."""

from mbrila.models.base import MultiRegionLatentModel
from mbrila.models.mdlag import MDLAG
from mbrila.models.presets import ADM, DLAG, GPFA, LDS
from mbrila.models.registry import PRESETS, build_model, load, save
from mbrila.models.serialization import convert_legacy_file

__all__ = [
    "ADM",
    "DLAG",
    "GPFA",
    "LDS",
    "MDLAG",
    "PRESETS",
    "MultiRegionLatentModel",
    "build_model",
    "convert_legacy_file",
    "load",
    "save",
]
