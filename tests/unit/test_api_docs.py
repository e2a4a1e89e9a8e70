"""Every public class and function documents its parameters where a user looks (``help(...)``)."""

from __future__ import annotations

import inspect

import pytest

import mbrila
from mbrila import delays, dynamics, inference, kernels, metrics, models, observations, selection

MODULES = [mbrila, models, inference, dynamics, observations, delays, kernels, metrics, selection]
PUBLIC = sorted(
    {f"{m.__name__}.{name}": getattr(m, name) for m in MODULES for name in getattr(m, "__all__", [])}.items(),
    key=lambda item: item[0],
)
CALLABLES = [(name, obj) for name, obj in PUBLIC if inspect.isclass(obj) or inspect.isfunction(obj)]


def _parameters(obj) -> list[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    kinds = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    return [p.name for p in sig.parameters.values() if p.name != "self" and p.kind not in kinds]


@pytest.mark.parametrize(("name", "obj"), CALLABLES, ids=[n for n, _ in CALLABLES])
def test_public_callable_documents_every_parameter(name, obj):
    if inspect.isclass(obj) and obj.__init__ is object.__init__:
        return  # nothing to document
    doc = inspect.getdoc(obj) or ""
    assert doc.strip(), f"{name} has no docstring"
    params = _parameters(obj)
    if inspect.isclass(obj) and any(c.__init__ is obj.__init__ for c in (obj.__mro__[1:])):
        params = []  # the constructor is inherited: documented by the class that defines it
    missing = [p for p in params if p not in doc]
    assert not missing, f"{name}: parameters {missing} are not described in its docstring"


@pytest.mark.parametrize("cls", [mbrila.GPFA, mbrila.DLAG, mbrila.ADM, mbrila.LDS, mbrila.MDLAG])
def test_preset_constructor_help_is_the_presets_own(cls):
    # help(cls.__init__) must not fall back to nn.Module's "Initialize internal Module state".
    assert "Module state" not in (inspect.getdoc(cls.__init__) or "")
