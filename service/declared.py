"""What explanation methods and metrics share: documented parameters and discovery by module.

A method (``service.explainers``) or a metric (``service.metrics``) is one module
holding a frozen dataclass of parameters, declared with ``param``, and a
module-level declaration object; the package finds them by that attribute, so
adding one is adding one file (and one proto message).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
from dataclasses import field
from typing import Any, Mapping

import numpy as np

from service.errors import InvalidArgument, NotFound


def param(default: Any, doc: str, *, kind: str = "") -> Any:
    """A documented parameter; ``kind="pair"`` accepts one value (both axes) or two (height, width)."""
    return field(default=default, metadata={"doc": doc, "kind": kind})


def as_pair(value: Any, field_name: str) -> tuple[int, int]:
    values = [value] if isinstance(value, (int, np.integer)) else list(value)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise InvalidArgument(f"give one integer or two (height, width), not {value!r}", field=field_name)
    return int(values[0]), int(values[1])


class Declared:
    """Mixin of a method's or metric's declaration: it has a ``name`` and a ``params`` dataclass."""

    name: str
    params: type

    def make_params(self, raw: Mapping[str, Any]) -> Any:
        """Parameters from plain values (proto fields, CLI options); absent ones take their defaults."""
        known = {f.name: f for f in dataclasses.fields(self.params)}
        unknown = set(raw) - set(known)
        if unknown:
            raise InvalidArgument(f"unknown parameters {sorted(unknown)}; known: {sorted(known)}", field=self.name)
        for name, value in raw.items():
            # No parameter means anything at NaN or infinity; each would surface deep in the arithmetic.
            if any(isinstance(v, float) and not math.isfinite(v) for v in _values(value)):
                raise InvalidArgument(f"{value!r} is not a finite number", field=f"{self.name}.{name}")
        return self.params(**{
            name: as_pair(value, f"{self.name}.{name}") if known[name].metadata.get("kind") == "pair" else value
            for name, value in raw.items()})

    def describe_parameters(self) -> list[dict[str, str]]:
        return [
            {"name": f.name, "type": f.metadata.get("kind") or _type_name(f.type),
             "default_value": _format_default(f.default), "description": f.metadata.get("doc", "")}
            for f in dataclasses.fields(self.params)
        ]


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def discover(package: str, path: list[str], attribute: str, kind: type) -> dict[str, Any]:
    """The ``attribute`` of every module of ``package`` that has one of type ``kind``, by name."""
    found = {}
    for info in pkgutil.iter_modules(path):
        declared = getattr(importlib.import_module(f"{package}.{info.name}"), attribute, None)
        if isinstance(declared, kind):
            found[declared.name] = declared
    return dict(sorted(found.items()))


def lookup(registry: dict[str, Any], name: str, what: str) -> Any:
    if name not in registry:
        raise NotFound(f"no {what} {name!r}; available: {', '.join(registry)}", field=what)
    return registry[name]


def _type_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def _format_default(default: Any) -> str:
    if default is dataclasses.MISSING:
        return ""
    if default is None:
        return "derived"
    return str(list(default)) if isinstance(default, tuple) else str(default)
