"""Presets by name, and saving / loading fitted models.

``build_model("dlag", latent_spec=..., y_dims=..., T=...)`` builds a preset from its name; ``"dlag_ssm"`` is DLAG with
``engine="kalman"``, ``"mdlag_freq"`` is MDLAG with ``engine="freq"``, and so on (an explicit ``engine=`` wins).
Saved files are a versioned envelope around the whole model (structure, kernels, parameters and engine
settings), so a reloaded model gives identical predictions.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import torch

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

FORMAT = "mbrila-model"
FORMAT_VERSION = 1


def build_model(name: str, **kwargs: Any) -> MultiRegionLatentModel:
    """Build a preset by (case-insensitive) name; keyword arguments go to the preset's constructor."""
    key = name.lower().replace("-", "_")
    if key not in PRESETS:
        raise ValueError(f"unknown model {name!r}; available presets: {sorted(PRESETS)}.")
    return PRESETS[key](**kwargs)


def save(model: MultiRegionLatentModel, path: str | Path) -> None:
    """Write ``model`` to ``path`` (a versioned torch file)."""
    from mbrila import __version__

    torch.save(
        {"format": FORMAT, "format_version": FORMAT_VERSION, "mbrila_version": __version__, "model": model}, path
    )


def load(path: str | Path, map_location: str | torch.device | None = None) -> MultiRegionLatentModel:
    """Read a model written by :func:`save` (or ``model.save``). Only load files you trust: they hold pickles.

    Parameters
    ----------
    path : the file.
    map_location : where to put the tensors (as :func:`torch.load`), e.g. ``"cpu"`` for a model saved on a GPU.
    """
    payload = torch.load(path, map_location=map_location, weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an mbrila model file.")
    if payload.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: model format version {payload.get('format_version')} is not supported by this mbrila "
            f"(it reads version {FORMAT_VERSION})."
        )
    return payload["model"]
