"""Per-model configuration: the sidecar file, ONNX ``metadata_props`` and request overrides.

Precedence, lowest first: defaults, ``metadata_props``, the sidecar, overrides.
The sidecar is ``config.json`` beside ``model.onnx`` in a model directory
(Triton's repository layout) or ``<stem>.json`` beside ``<stem>.onnx``::

    {"preprocessing": {"pixel_range": "0_1", "mean": [...], "std": [...],
                       "channel_order": "RGB", "resize": "stretch"},
     "labels": ["cat", "dog"], "output_kind": "logits", "layout": "NCHW",
     "height": 224, "width": 224, "batch_size": 64, "description": "..."}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import onnx

from service.errors import InvalidArgument
from service.runtime.signature import Layout, OutputKind

# Our own metadata_props key: the whole sidecar object as JSON.
METADATA_KEY = "onnxplain"
# The ONNX image metadata (docs/MetadataProps.md) that says something about preprocessing.
_NOMINAL_RANGE = {"NominalRange_0_255": "0_255", "Normalized_0_1": "0_1", "Normalized_1_1": "-1_1"}
_PIXEL_FORMAT = {"Rgb8": "RGB", "Bgr8": "BGR", "Gray8": "GRAY"}

KNOWN_KEYS = {"name", "description", "preprocessing", "labels", "output_kind", "layout", "height", "width",
              "batch_size", "metrics", "source"}


@dataclass
class ModelConfig:
    """What is configured (not detected) about a model; None means 'detect it'."""

    preprocessing: dict[str, Any] = field(default_factory=dict)
    preprocessing_source: str = "default"
    labels: list[str] | None = None
    output_kind: OutputKind | None = None
    output_kind_source: str = ""
    layout: Layout | None = None
    height: int | None = None
    width: int | None = None
    batch_size: int | None = None
    description: str = ""

    def merge(self, spec: Mapping[str, Any], source: str) -> "ModelConfig":
        """Apply the keys of one source, checking their types; returns self."""
        unknown = set(spec) - KNOWN_KEYS
        if unknown:
            raise InvalidArgument(f"unknown keys {sorted(unknown)}; known: {sorted(KNOWN_KEYS)}", field=source)
        if spec.get("preprocessing"):
            if not isinstance(spec["preprocessing"], Mapping):
                raise InvalidArgument("must be an object", field=f"{source}.preprocessing")
            self.preprocessing = {**self.preprocessing, **spec["preprocessing"]}
            self.preprocessing_source = source
        if spec.get("labels"):
            labels = spec["labels"]
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise InvalidArgument("must be a list of strings", field=f"{source}.labels")
            self.labels = list(labels)
        if spec.get("output_kind"):
            self.output_kind = _enum(OutputKind, spec["output_kind"], f"{source}.output_kind")
            self.output_kind_source = source
        if spec.get("layout"):
            self.layout = _enum(Layout, spec["layout"], f"{source}.layout")
        for key in ("height", "width", "batch_size"):
            if spec.get(key):
                value = spec[key]
                if not isinstance(value, int) or value <= 0:
                    raise InvalidArgument("must be a positive integer", field=f"{source}.{key}")
                setattr(self, key, value)
        if spec.get("description"):
            self.description = str(spec["description"])
        return self


def _enum(kind, value: Any, field_name: str):
    try:
        return kind(str(value).strip())
    except ValueError:
        raise InvalidArgument(f"{value!r} is not one of {[e.value for e in kind]}", field=field_name) from None


def sidecar_path(model_path: Path) -> Path:
    if model_path.name == "model.onnx":
        return model_path.with_name("config.json")
    return model_path.with_suffix(".json")


def read_sidecar(model_path: Path) -> dict[str, Any]:
    path = sidecar_path(model_path)
    if not path.is_file():
        return {}
    try:
        spec = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise InvalidArgument(f"cannot read {path.name}: {error}", field="sidecar") from error
    if not isinstance(spec, dict):
        raise InvalidArgument(f"{path.name} must hold a JSON object", field="sidecar")
    return spec


def read_metadata_props(model: onnx.ModelProto) -> dict[str, Any]:
    """Configuration carried inside the ONNX file itself."""
    props = {p.key: p.value for p in model.metadata_props}
    spec: dict[str, Any] = {}
    if METADATA_KEY in props:
        try:
            spec = json.loads(props[METADATA_KEY])
        except json.JSONDecodeError as error:
            raise InvalidArgument(f"metadata_props[{METADATA_KEY!r}] is not JSON: {error}", field="model") from error
    preprocessing = dict(spec.get("preprocessing", {}))
    if props.get("Image.NominalPixelRange") in _NOMINAL_RANGE:
        preprocessing.setdefault("pixel_range", _NOMINAL_RANGE[props["Image.NominalPixelRange"]])
    if props.get("Image.BitmapPixelFormat") in _PIXEL_FORMAT:
        preprocessing.setdefault("channel_order", _PIXEL_FORMAT[props["Image.BitmapPixelFormat"]])
    if preprocessing:
        spec["preprocessing"] = preprocessing
    return spec


def resolve_config(model: onnx.ModelProto, model_path: Path | None, overrides: Mapping[str, Any]) -> ModelConfig:
    config = ModelConfig()
    config.merge(read_metadata_props(model), "metadata_props")
    if model_path is not None:
        config.merge(read_sidecar(model_path), "sidecar")
    config.merge(overrides, "overrides")
    return config
