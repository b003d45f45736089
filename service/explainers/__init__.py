"""Explanation methods: one module each, found by their ``METHOD`` attribute (see ``base``)."""

from __future__ import annotations

from service.declared import discover, lookup
from service.explainers.base import Method

METHODS: dict[str, Method] = discover(__name__, __path__, "METHOD", Method)


def get_method(name: str) -> Method:
    return lookup(METHODS, name, "method")
