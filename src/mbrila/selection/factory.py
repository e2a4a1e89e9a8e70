"""Turning a model-selection candidate into an unfitted model.

A candidate is whatever the user's factory understands. With a preset name instead of a factory, a candidate is a
latent count: an ``(n_across, n_within)`` pair (``n_within`` an int for every region, or one count per region), or
a :class:`~mbrila.LatentSpec`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mbrila.core import LatentSpec
from mbrila.models.registry import PRESETS, build_model


def as_latent_spec(candidate: Any) -> LatentSpec:
    """``candidate`` (a LatentSpec or an ``(n_across, n_within)`` pair) as a LatentSpec, else a ``ValueError``."""
    if isinstance(candidate, LatentSpec):
        return candidate
    try:
        n_across, n_within = candidate
        within = tuple(int(w) for w in n_within) if isinstance(n_within, (tuple, list)) else int(n_within)
        return LatentSpec(int(n_across), within)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"a candidate for a preset name must be an (n_across, n_within) pair or a LatentSpec; got {candidate!r}."
        ) from err


@dataclass(frozen=True)
class PresetFactory:
    """``candidate ↦ build_model(name, latent_spec=candidate, y_dims=…, T=…, **kwargs)`` (picklable, so it can be
    sent to worker processes)."""

    name: str
    y_dims: tuple[int, ...]
    T: int
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        key = self.name.lower().replace("-", "_")
        if key not in PRESETS:
            raise ValueError(f"unknown model {self.name!r}; available presets: {sorted(PRESETS)}.")

    def __call__(self, candidate: Any) -> Any:
        return build_model(
            self.name, latent_spec=as_latent_spec(candidate), y_dims=self.y_dims, T=self.T, **self.kwargs
        )


def resolve_factory(
    model_factory: str | Callable[[Any], Any], y_dims: tuple[int, ...], T: int, model_kwargs: dict[str, Any] | None
) -> Callable[[Any], Any]:
    """A preset name becomes a :class:`PresetFactory`; a callable is used as it is (``model_kwargs`` then must be
    empty: the callable already decides every argument)."""
    if isinstance(model_factory, str):
        return PresetFactory(model_factory, tuple(y_dims), int(T), dict(model_kwargs or {}))
    if not callable(model_factory):
        raise ValueError(
            f"model_factory must be a preset name (e.g. 'dlag_ssm') or a callable candidate → unfitted model; got "
            f"{type(model_factory).__name__}."
        )
    if model_kwargs:
        raise ValueError("model_kwargs only applies with a preset name; put them inside your model_factory instead.")
    return model_factory


def n_latents(model: Any) -> int:
    """A model's size for the one-standard-error rule: ``n_across + Σ_r n_within_r``."""
    spec = model.latent_spec
    return int(spec.n_across + sum(spec.n_within_for(r) for r in range(model.n_regions)))


def check_candidate(model: Any, candidate: Any, y_dims: tuple[int, ...], region_names: tuple[str, ...]) -> None:
    """A ``ValueError`` when ``model`` (built from ``candidate``) does not fit the data: wrong neurons per region, or
    more latents in a region than it has neurons."""
    dims = tuple(getattr(model, "y_dims", ()))
    if dims != tuple(y_dims):
        raise ValueError(
            f"model_factory({candidate!r}) built a model for y_dims {dims}, but the data has y_dims {tuple(y_dims)}."
        )
    for r, (k, n) in enumerate(zip(model.latent_dims, y_dims, strict=True)):
        if k > n:
            raise ValueError(
                f"candidate {candidate!r} gives region {region_names[r]!r} {k} latents but it has only {n} neurons; "
                "a region cannot have more latents than neurons. Remove the candidate from the grid."
            )
