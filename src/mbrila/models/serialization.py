"""Model files made of plain data: what a preset was built with, and its tensors — never pickled objects.

A file is a :func:`torch.save` of one dictionary (the *envelope*)::

    {"format": "mbrila-model", "format_version": 2, "mbrila_version": "…",
     "preset": "mbrila.models.presets:DLAG",          # import path of the preset class
     "config": {...},                                  # its constructor arguments (plain data)
     "engine": {"class": "mbrila.inference.kalman_em:KalmanEMEngine", "settings": {...}},
     "kernels": {"across": [k, …], "within": [[k, …], …]},   # k = {"class": path, "config": {...}}
     "region_names": [...] or None, "dtype": "float64",
     "state": {name: tensor}}                          # model.state_dict()

and is read back with ``torch.load(weights_only=True)``, whose unpickler builds only tensors and plain containers,
so opening a file cannot run code. Classes are named by import path and are imported only when they are subclasses
of what the slot needs (a preset, an engine, a kernel); anything else is refused. A fit's checkpoint is the same
envelope with a ``"fit"`` entry (:mod:`mbrila.models.checkpoints`).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pickle
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import torch

from mbrila.core.latent_spec import LatentSpec
from mbrila.kernels.base import BaseKernel

FORMAT = "mbrila-model"
#: Version 1 was a pickle of the whole model (mbrila ≤ 0.1.0.dev0); version 2 is the plain-data envelope.
FORMAT_VERSION = 2
#: dtypes a file may name.
DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}

_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
_PLAIN = (bool, int, float, str, type(None))


def class_path(cls: type) -> str:
    """``"module:QualName"`` of a class (how files name classes)."""
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: Any, base: type, what: str, source: str) -> type:
    """The class named by ``path`` (``"module:QualName"``) if it is a subclass of ``base``, else a ValueError.

    ``source`` names the file in messages. The module is imported (as Python imports any installed module); the
    object found is used only if it is a class deriving from ``base``.
    """
    if not isinstance(path, str) or not _PATH.match(path):
        raise ValueError(f"{source}: the {what} class is named {path!r}, which is not an import path 'module:Class'.")
    module_name, qualname = path.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(
            f"{source}: names the {what} class {path!r}, which cannot be imported ({err}). If it is your own class, "
            "make its module importable (installed, or on sys.path) before loading."
        ) from err
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise ValueError(f"{source}: {path!r} is not a {base.__name__} subclass; refusing to use it as the {what}.")
    return obj


def plain(value: Any, name: str) -> Any:
    """``value`` as plain data (bool/int/float/str/None, lists, dicts with str or int keys), else a TypeError
    naming ``name`` (the setting that cannot be saved)."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, (str, int)) for k in value):
        return {k: plain(v, f"{name}[{k!r}]") for k, v in value.items()}
    raise TypeError(
        f"{name} = {value!r} ({type(value).__name__}) cannot be written to a model file: settings must be plain "
        "numbers, strings, lists or dicts."
    )


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


# ------------------------------------------------------------------------------------------------- parts
def spec_config(spec: LatentSpec, y_dims: Sequence[int], T: int) -> dict[str, Any]:
    """The structural constructor arguments every preset shares, as plain data."""
    within = spec.n_within if isinstance(spec.n_within, tuple) else (spec.n_within,) * len(y_dims)
    return {
        "latent_spec": {"n_across": int(spec.n_across), "n_within": [int(w) for w in within]},
        "y_dims": [int(n) for n in y_dims],
        "T": int(T),
    }


def spec_from_config(config: dict[str, Any]) -> tuple[LatentSpec, tuple[int, ...], int, dict[str, Any]]:
    """Inverse of :func:`spec_config`: ``(latent_spec, y_dims, T, the other arguments)``."""
    kw = dict(config)
    try:
        spec = kw.pop("latent_spec")
        spec = LatentSpec(int(spec["n_across"]), tuple(int(w) for w in spec["n_within"]))
        y_dims = tuple(int(n) for n in kw.pop("y_dims"))
        T = int(kw.pop("T"))
    except (KeyError, TypeError) as err:
        raise ValueError(f"the config lacks or garbles latent_spec, y_dims or T ({err!r}).") from err
    return spec, y_dims, T, kw


def kernel_entry(kernel: BaseKernel) -> dict[str, Any]:
    return {"class": class_path(type(kernel)), "config": plain(kernel.get_config(), f"{type(kernel).__name__}.config")}


def build_kernel(entry: Any, source: str) -> BaseKernel:
    entry = _mapping(entry, "kernel", source)
    cls = import_class(entry.get("class"), BaseKernel, "kernel", source)
    config = _mapping(entry.get("config", {}), "kernel config", source)
    try:
        return cls(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{source}: kernel {entry['class']} cannot be rebuilt from its saved config {config} ({err}); a kernel "
            "whose constructor needs arguments must return them from get_config()."
        ) from err


def engine_entry(engine: Any) -> dict[str, Any]:
    if not dataclasses.is_dataclass(engine):
        raise TypeError(f"engine {type(engine).__name__} is not a dataclass; only dataclass engines can be saved.")
    settings = {f.name: plain(getattr(engine, f.name), f"engine.{f.name}") for f in dataclasses.fields(engine)}
    return {"class": class_path(type(engine)), "settings": settings}


def build_engine(entry: Any, source: str) -> Any:
    from mbrila.inference.em import EMEngine

    entry = _mapping(entry, "engine", source)
    cls = import_class(entry.get("class"), EMEngine, "engine", source)
    settings = dict(_mapping(entry.get("settings", {}), "engine settings", source))
    names = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(settings) - set(names))
    if unknown:
        raise ValueError(f"{source}: engine {entry['class']} has no settings {unknown}.")
    # Fields that are not constructor arguments (state an engine keeps, such as the frequency engine's gaps) are
    # set after construction.
    late = {k: settings.pop(k) for k in list(settings) if not names[k].init}
    engine = cls(**settings)
    for k, v in late.items():
        setattr(engine, k, type(getattr(engine, k))(v))
    return engine


class KernelSupply:
    """Zero-argument kernel factories that hand out the saved kernels in the order a preset asks for them."""

    def __init__(self, kernels: list[BaseKernel]) -> None:
        self._it: Iterator[BaseKernel] = iter(kernels)

    def __call__(self) -> BaseKernel:
        try:
            return next(self._it)
        except StopIteration:
            raise ValueError("the file lists fewer kernels than its preset's latents need.") from None


# ------------------------------------------------------------------------------------------------- envelope
def envelope(model: Any) -> dict[str, Any]:
    """The plain-data envelope of ``model`` (see the module docstring)."""
    from mbrila import __version__

    ref = model._reference()
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mbrila_version": __version__,
        "preset": class_path(type(model)),
        "config": plain(model.config(), "config"),
        "engine": engine_entry(model.engine),
        "kernels": {
            "across": [kernel_entry(b.kernel) for b in model.across if hasattr(b, "kernel")],
            "within": [[kernel_entry(b.kernel) for b in blks if hasattr(b, "kernel")] for blks in model.within],
        },
        "region_names": plain(getattr(model, "region_names", None), "region_names"),
        "dtype": dtype_name(ref.dtype),
        "state": {k: v.detach() for k, v in model.state_dict().items()},
    }


def rebuild(env: dict[str, Any], source: str, device: torch.device | str | None = None) -> Any:
    """The model an envelope describes, with its saved tensors (a ValueError naming ``source`` if it cannot)."""
    from mbrila.models.base import MultiRegionLatentModel

    cls = cast(type[MultiRegionLatentModel], import_class(env.get("preset"), MultiRegionLatentModel, "preset", source))
    config = _mapping(env.get("config"), "config", source)
    dtype = DTYPES.get(env.get("dtype"))  # type: ignore[arg-type]
    if dtype is None:
        raise ValueError(f"{source}: unknown dtype {env.get('dtype')!r}; expected one of {sorted(DTYPES)}.")
    kernels = _mapping(env.get("kernels", {}), "kernels", source)
    across = [build_kernel(k, source) for k in _sequence(kernels.get("across", []), "across kernels", source)]
    within = [
        build_kernel(k, source)
        for blks in _sequence(kernels.get("within", []), "within kernels", source)
        for k in _sequence(blks, "within kernels", source)
    ]
    state = _mapping(env.get("state"), "state", source)
    if not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{source}: the model state must hold tensors only.")
    if device is None and state:
        device = next(iter(state.values())).device
    engine = build_engine(env.get("engine"), source)
    try:
        model = cls.from_config(
            config, engine=engine, across=KernelSupply(across), within=KernelSupply(within), dtype=dtype, device=device
        )
    except (TypeError, ValueError) as err:
        raise ValueError(f"{source}: the saved {env['preset']} configuration cannot be built ({err}).") from err
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ValueError(f"{source}: the saved tensors do not fit the model its configuration builds ({err}).") from err
    names = env.get("region_names")
    if names is not None:
        names = tuple(str(n) for n in _sequence(names, "region_names", source))
        if len(names) != model.n_regions:
            raise ValueError(f"{source}: {len(names)} region names for a model of {model.n_regions} regions.")
    model.region_names = names
    return model


def write(payload: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temporary file beside ``path``, flushed to disk, then renamed over it: a reader (or a job
    killed mid-write) sees the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def read(path: str | Path, map_location: str | torch.device | None = None) -> dict[str, Any]:
    """The envelope stored at ``path``, checked for format and version; a ValueError saying what is wrong."""
    source = str(path)
    if not Path(path).is_file():
        raise ValueError(f"{source}: no such model file.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(
            f"{source}: refused — the file holds pickled Python objects, which mbrila does not load because they can "
            "run code. A model file from mbrila 0.1.0.dev0 or earlier (format version 1) that you trust can be "
            "converted once with mbrila.models.convert_legacy_file(path, new_path)."
        ) from err
    except Exception as err:  # an untrusted file can make torch's reader fail in many ways; all mean the same here
        raise ValueError(
            f"{source}: not a readable mbrila model file (it is truncated, corrupt or of another kind: {err})."
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{source}: not an mbrila model file (no 'format': '{FORMAT}' entry).")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        hint = (
            "convert it with mbrila.models.convert_legacy_file if you trust it"
            if version == 1
            else "read it with the mbrila that wrote it"
        )
        raise ValueError(
            f"{source}: model format version {version!r}; this mbrila reads version {FORMAT_VERSION} ({hint})."
        )
    return payload


def convert_legacy_file(src: str | Path, dst: str | Path) -> None:
    """Rewrite a format-1 model file (a pickle, mbrila ≤ 0.1.0.dev0) as a format-2 file.

    **This unpickles ``src``, which can run any code the file holds: run it only on a file you trust.**

    Parameters
    ----------
    src : the format-1 file.
    dst : where to write the format-2 file (atomically).
    """
    payload = torch.load(src, map_location="cpu", weights_only=False)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT or payload.get("format_version") != 1:
        raise ValueError(f"{src}: not a format-1 mbrila model file.")
    write(envelope(payload["model"]), dst)


def _mapping(value: Any, what: str, source: str) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{source}: the {what} entry must be a dict; got {type(value).__name__}.")
    return value


def _sequence(value: Any, what: str, source: str) -> list[Any]:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{source}: the {what} entry must be a list; got {type(value).__name__}.")
    return list(value)
