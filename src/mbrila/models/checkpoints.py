"""Fit checkpoints: a model file plus the EM loop's state, written atomically so a killed job can resume exactly.

``model.fit(data, checkpoint="run.ckpt", checkpoint_every=N)`` writes, every ``N`` iterations and when the fit
ends, the model envelope of :mod:`mbrila.models.serialization` with two more entries: ``"fit"`` (the
:class:`~mbrila.inference.loop_state.LoopState`) and ``"data"`` (a fingerprint of the training data).
``model.fit(data, resume="run.ckpt")`` loads the parameters and the loop state and continues; the parameters and
score trace it ends with are those of the uninterrupted fit. ``mbrila.load("run.ckpt")`` reads the model alone.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from mbrila.distributed import all_sum, global_count, is_main
from mbrila.inference.loop_state import LoopState
from mbrila.models import serialization


def data_fingerprint(y: Tensor, mask: Tensor | None) -> dict[str, Any]:
    """Shape and the sums of the observed entries and of their squares (to refuse resuming on other data); in a
    data-parallel fit, of every process's trials together (:mod:`mbrila.distributed`)."""
    obs = y if mask is None else torch.where(mask, y, torch.zeros((), dtype=y.dtype, device=y.device))
    obs = torch.nan_to_num(obs.double(), nan=0.0)
    total, total_sq = all_sum(obs.sum(), (obs * obs).sum())
    shape = [global_count(y.shape[0]), *y.shape[1:]]
    return {"shape": shape, "sum": float(total), "sum_sq": float(total_sq)}


def write_checkpoint(path: str | Path, model: Any, loop: LoopState, fingerprint: dict[str, Any]) -> None:
    """Write the checkpoint (rank 0 alone in a data-parallel fit: every process holds the same state)."""
    if not is_main():
        return
    payload = serialization.envelope(model)
    payload["fit"] = loop.to_dict()
    payload["data"] = fingerprint
    serialization.write(payload, path)


def read_checkpoint(path: str | Path, model: Any, fingerprint: dict[str, Any]) -> LoopState:
    """Load the parameters saved in the checkpoint at ``path`` into ``model`` and return the loop state.

    Refused with a ValueError when the file is not a checkpoint, was written by a model of another preset or
    configuration, or while fitting other data (``fingerprint`` is that of the data being fitted now).
    """
    source = str(path)
    ref = model._reference()
    payload = serialization.read(path, map_location=ref.device)
    if "fit" not in payload:
        raise ValueError(f"{source}: a model file, not a fit checkpoint (write one with fit(..., checkpoint=path)).")
    mine = serialization.class_path(type(model))
    if payload.get("preset") != mine:
        raise ValueError(f"{source}: a checkpoint of a {payload.get('preset')} fit; this model is a {mine}.")
    config = serialization.plain(model.config(), "config")
    if payload.get("config") != config:
        diff = sorted(
            k for k in set(config) | set(payload.get("config", {})) if config.get(k) != payload["config"].get(k)
        )
        raise ValueError(f"{source}: the checkpoint's model was built with other arguments ({', '.join(diff)}).")
    saved = payload.get("data") or {}
    if saved.get("shape") != fingerprint["shape"] or not all(
        math.isclose(float(saved.get(k, math.nan)), fingerprint[k], rel_tol=1e-9, abs_tol=1e-9)
        for k in ("sum", "sum_sq")
    ):
        raise ValueError(
            f"{source}: the checkpoint was written while fitting other data (shape {saved.get('shape')} vs "
            f"{fingerprint['shape']}, or different values); resume with the data it was fitting."
        )
    state = payload.get("state")
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as err:
        raise ValueError(f"{source}: the saved tensors do not fit this model ({err}).") from err
    names = payload.get("region_names")
    model.region_names = None if names is None else tuple(str(n) for n in names)
    return LoopState.from_dict(payload["fit"], source)
