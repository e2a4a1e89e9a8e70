"""Which engine can fit which model: named capabilities and the registry of engines.

A model states what it provides, an engine what it requires; a pairing that cannot work fails when the model is
built, naming what is missing and the engines that would work. Capabilities used by mbrila:

====================  ===========================================================================
``state_space``       the latent prior is a composition of state-space blocks (lifted GPs, SDEs, free LDS)
``dense_gp``          every latent is a GP with a dense ``(V·T, V·T)`` covariance (no free LDS)
``linear_observation``  linear-Gaussian read-out with point estimates of ``C, d, R``
``ard_observation``   variational read-out with ARD priors on the loading columns (mDLAG)
``spectral_density``  every kernel has ``spectral_density(ω)`` (the frequency-domain engine needs it)
``constant_delay``    delays do not change within a trial
====================  ===========================================================================

Engines register themselves with :func:`register_engine` (``mbrila.inference`` does so on import), so the
error for a bad pairing can list every engine that would have worked.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Engine classes by their short name (``"exact"``, ``"kalman"``, ``"time"``, ``"freq"``, ``"kalman_ard"``).
ENGINES: dict[str, type] = {}


def register_engine(name: str) -> Any:
    """Class decorator: record an engine class under ``name`` (its ``requires`` says what it needs)."""

    def deco(cls: type) -> type:
        ENGINES[name] = cls
        return cls

    return deco


def engines_for(provided: Iterable[str]) -> list[str]:
    """Names of the registered engine classes whose requirements ``provided`` meets, sorted."""
    have = set(provided)
    return sorted({cls.__name__ for cls in ENGINES.values() if set(getattr(cls, "requires", ())) <= have})


def check_pairing(model_name: str, provided: Iterable[str], engine: Any, offered: Iterable[str] | None = None) -> None:
    """Raise ``ValueError`` unless ``engine.requires`` is a subset of ``provided``.

    Parameters
    ----------
    model_name : the model's class name, for the message.
    provided : capabilities of the model as built.
    engine : the engine instance (its ``requires`` attribute is read).
    offered : capabilities the model could provide with another latent form (e.g. a GP preset offers both
        ``state_space`` and ``dense_gp``); the list of engines that would work is computed from it.
    """
    have = set(provided)
    missing = set(engine.requires) - have
    if not missing:
        return
    options = engines_for(offered if offered is not None else have)
    hint = f"engines that can fit {model_name}: {', '.join(options)}" if options else "no registered engine can"
    raise ValueError(
        f"{type(engine).__name__} needs a model with {sorted(missing)}; {model_name} does not provide it "
        f"(it provides {sorted(have)}). {hint[0].upper()}{hint[1:]}."
    )
