"""xai.v1 enum values by their short names: ``BoundMethod.BOUND_METHOD_CROWN_IBP`` is "crown_ibp", as
ListMethods writes defaults, the server reads typed parameters and the CLI offers choices."""

from __future__ import annotations

import re


def prefix(enum_name: str) -> str:
    """"BoundMethod" -> "BOUND_METHOD_": buf style prefixes every value with the enum's name."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", enum_name).upper() + "_"


def short_name(enum_name: str, value_name: str) -> str:
    return value_name.removeprefix(prefix(enum_name)).lower()


def full_name(enum_name: str, short: str) -> str:
    return prefix(enum_name) + short.upper().replace("-", "_")
