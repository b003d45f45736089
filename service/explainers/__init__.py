"""Explanation methods: one module each, found by their ``METHOD`` attribute."""

from __future__ import annotations

import importlib
import pkgutil

from service.errors import NotFound
from service.explainers.base import Method


def _discover() -> dict[str, Method]:
    methods = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        method = getattr(module, "METHOD", None)
        if isinstance(method, Method):
            methods[method.name] = method
    return dict(sorted(methods.items()))


METHODS: dict[str, Method] = _discover()


def get_method(name: str) -> Method:
    if name not in METHODS:
        raise NotFound(f"no method {name!r}; available: {', '.join(METHODS)}", field="method")
    return METHODS[name]
