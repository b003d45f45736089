"""The small common base of the explanation methods.

A method is one module in this package that defines a frozen dataclass of
parameters and a module-level ``METHOD = Method(...)``. Its ``attribute``
function is a plain function of numpy arrays and a batched ``predict``::

    attribute(predict, image, params, *, baseline, batch_size, rng) -> maps (T, H, W)

- ``predict(images (N, H, W, C) float32 in [0, 1]) -> scores (N, T)`` returns the
  scores of the T explained classes; the caller counts passes, reports progress
  and stops the work between calls (cancellation, deadlines).
- ``image`` (H, W, C) is in pixel space; the model's preprocessing is applied
  inside ``predict``. ``baseline`` is a ``baselines.Fill``: perturbations are
  ``baselines.perturb(image, keep_masks, baseline)``.
- ``rng`` is the only source of randomness: the same seed gives the same map.
- Methods call ``predict`` with at most ``batch_size`` images at a time and
  accumulate, so memory stays bounded whatever the number of perturbations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol

import numpy as np

from service.errors import InvalidArgument
from service.explainers.baselines import Fill

Predict = Callable[[np.ndarray], np.ndarray]


class Attribute(Protocol):
    def __call__(self, predict: Predict, image: np.ndarray, params: Any, *, baseline: Fill,
                 batch_size: int, rng: np.random.Generator) -> np.ndarray: ...


def param(default: Any, doc: str, *, kind: str = "") -> Any:
    """A documented parameter; ``kind="pair"`` accepts one value (both axes) or two (height, width)."""
    return field(default=default, metadata={"doc": doc, "kind": kind})


@dataclass(frozen=True)
class Method:
    name: str
    summary: str
    # The paper the method and its defaults come from.
    reference: str
    params: type
    attribute: Attribute
    # Forward passes for one image of shape (H, W, C) under the given parameters.
    forward_passes: Callable[[Any, tuple[int, int, int]], int]
    # Raises InvalidArgument when the parameters do not fit an image of shape (H, W, C).
    check: Callable[[Any, tuple[int, int, int]], None]
    # The cost formula, for people.
    cost: str
    randomized: bool = False

    def make_params(self, raw: Mapping[str, Any]) -> Any:
        """Parameters from plain values (proto fields, CLI options); absent ones take their defaults."""
        known = {f.name: f for f in dataclasses.fields(self.params)}
        unknown = set(raw) - set(known)
        if unknown:
            raise InvalidArgument(f"unknown parameters {sorted(unknown)}; known: {sorted(known)}", field=self.name)
        values = {}
        for name, value in raw.items():
            if known[name].metadata.get("kind") == "pair":
                value = as_pair(value, f"{self.name}.{name}")
            values[name] = value
        return self.params(**values)

    def describe_parameters(self) -> list[dict[str, str]]:
        return [
            {"name": f.name, "type": f.metadata.get("kind") or _type_name(f.type),
             "default_value": _format_default(f.default), "description": f.metadata.get("doc", "")}
            for f in dataclasses.fields(self.params)
        ]


def as_pair(value: Any, field_name: str) -> tuple[int, int]:
    values = [value] if isinstance(value, (int, np.integer)) else list(value)
    if len(values) == 1:
        values = values * 2
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) for v in values):
        raise InvalidArgument(f"give one integer or two (height, width), not {value!r}", field=field_name)
    return int(values[0]), int(values[1])


def _type_name(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))


def _format_default(default: Any) -> str:
    if default is dataclasses.MISSING or default is None:
        return "derived" if default is None else ""
    return str(list(default)) if isinstance(default, tuple) else str(default)


def batched(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]
