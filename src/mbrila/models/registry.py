"""Presets by name, and saving / loading fitted models.

``build_model("dlag", latent_spec=..., y_dims=..., T=...)`` builds a preset from its name; ``"dlag_ssm"`` is DLAG with
``engine="kalman"``, ``"mdlag_freq"`` is MDLAG with ``engine="freq"``, and so on (an explicit ``engine=`` wins).
Saved files are a versioned envelope of plain data — the preset and its constructor arguments, the kernel and
engine classes with their settings, and the tensors — so a reloaded model gives identical predictions and opening a
file cannot run code (:mod:`mbrila.models.serialization`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

from mbrila.models import serialization
from mbrila.models.base import MultiRegionLatentModel
from mbrila.models.mdlag import MDLAG
from mbrila.models.presets import ADM, DLAG, GPFA, LDS

#: Preset constructors by name.
PRESETS: dict[str, Callable[..., MultiRegionLatentModel]] = {
    "gpfa": GPFA,
    "gpfa_ssm": partial(GPFA, engine="kalman"),
    "gpfa_exact": partial(GPFA, engine="exact"),
    "dlag": DLAG,
    "dlag_exact": partial(DLAG, engine="exact"),
    "dlag_ssm": partial(DLAG, engine="kalman"),
    "lds": LDS,
    "adm": ADM,
    "mdlag": MDLAG,
    "mdlag_time": partial(MDLAG, engine="time"),
    "mdlag_freq": partial(MDLAG, engine="freq"),
    "mdlag_ssm": partial(MDLAG, engine="kalman"),
}


def build_model(name: str, **kwargs: Any) -> MultiRegionLatentModel:
    """Build a preset by (case-insensitive) name; keyword arguments go to the preset's constructor."""
    key = name.lower().replace("-", "_")
    if key not in PRESETS:
        raise ValueError(f"unknown model {name!r}; available presets: {sorted(PRESETS)}.")
    return PRESETS[key](**kwargs)


def save(model: MultiRegionLatentModel, path: str | Path) -> None:
    """Write ``model`` to ``path`` as plain data (:mod:`mbrila.models.serialization`), atomically."""
    serialization.write(serialization.envelope(model), path)


def load(path: str | Path, map_location: str | torch.device | None = None) -> MultiRegionLatentModel:
    """Read a model written by :func:`save` (or ``model.save``), or the model inside a fit checkpoint.

    The file is read with ``torch.load(weights_only=True)``: it cannot run code. Kernel, engine and preset classes
    are imported by the path the file names and used only if they derive from the matching mbrila base class.

    Parameters
    ----------
    path : the file.
    map_location : where to put the tensors (as :func:`torch.load`), e.g. ``"cpu"`` for a model saved on a GPU.

    Raises ``ValueError`` naming the file for anything that is not a current model file (corrupt, truncated, of
    another format version, a pickle, or naming a class that is unknown or of the wrong kind).
    """
    return serialization.rebuild(serialization.read(path, map_location), str(path), map_location)
