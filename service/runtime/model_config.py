"""Per-model configuration: the sidecar file, ONNX ``metadata_props`` and request overrides.

Precedence, lowest first: defaults, ``metadata_props``, the sidecar, overrides.
The sidecar is ``config.json`` beside ``model.onnx`` in a model directory
(Triton's repository layout) or ``<stem>.json`` beside ``<stem>.onnx``::

    {"preprocessing": {"pixel_range": "0_1", "mean": [...], "std": [...],
                       "channel_order": "RGB", "resize": "stretch", "pad_value": 0.5},
     "labels": ["cat", "dog"], "output_kind": "logits", "layout": "NCHW",
     "height": 224, "width": 224, "batch_size": 64, "description": "...",
     "output": "prob", "threshold": 0.5, "precision": "fp16", "free_batch": true,
     "dynamic_batching": {"preferred_batch_size": 32, "max_queue_delay_ms": 2}}

``resize`` is reject, stretch, center_crop or letterbox (``pad_value``, in pixel units [0, 1], fills its
padding). ``height`` / ``width`` fix an axis the graph leaves dynamic; unset, such an axis takes each image's
own size (``loader._image_size``). The command line gives the same keys with ``--set`` (``service.cli.overrides``).
``output`` names the graph output to explain (default: the first that is [batch, classes]); ``threshold``
is what a sigmoid head's per-class probability must exceed for the class to be predicted (default 0.5).
``precision`` fp16 serves a float32 graph converted to float16 (inputs and outputs kept float32) when it passes
an accuracy check against the float32 graph at load (``service.runtime.half_precision``); default fp32.
``free_batch`` (default true): a graph exported with a fixed batch of 1 is served freed, several images a
session call, once proved equal per image (``service.runtime.batch_serving``); false serves it as exported, one
image a call (for a graph the probe batch cannot prove, e.g. one whose batch mixing shows only on real images).
``dynamic_batching`` (Triton's name; ``service.runtime.batcher``) merges concurrent jobs' session calls: an object
of ``enabled`` (true, or false to keep this model's calls apart), ``preferred_batch_size`` (images per merged
call, at most the model's batch; default the model's batch) and ``max_queue_delay_ms`` (how long a call that is
not full waits for more; default the server's), or just true / false. An object turns batching on unless its
``enabled`` is false; without the key, the server's settings decide (``ONNXPLAIN_DYNAMIC_BATCHING``,
``ONNXPLAIN_MAX_QUEUE_DELAY_MS``). A model with a fixed batch axis is never batched across jobs.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import onnx

from service.errors import InvalidArgument
from service.runtime.half_precision import Precision
from service.runtime.preprocessing import Preprocessing
from service.runtime.signature import Layout, OutputKind

# The longest a call may be held back for others to merge with (a second: beyond it, batching costs more latency
# than any merge can return).
MAX_QUEUE_DELAY_MS = 1000

# Our own metadata_props key: the whole sidecar object as JSON.
METADATA_KEY = "onnxplain"
# Where each source's keys are reported in errors.
METADATA_FIELD = f"metadata_props.{METADATA_KEY}"
SIDECAR_FIELD = "sidecar"
OVERRIDES_FIELD = "overrides"
# The ONNX image metadata (docs/MetadataProps.md) that says something about preprocessing.
_NOMINAL_RANGE = {"NominalRange_0_255": "0_255", "Normalized_0_1": "0_1", "Normalized_1_1": "-1_1"}
_PIXEL_FORMAT = {"Rgb8": "RGB", "Bgr8": "BGR", "Gray8": "GRAY"}

KNOWN_KEYS = {"name", "description", "preprocessing", "labels", "output_kind", "layout", "height", "width",
              "batch_size", "metrics", "source", "output", "threshold", "precision",
              "free_batch", "dynamic_batching"}
DYNAMIC_BATCHING_KEYS = {"enabled", "preferred_batch_size", "max_queue_delay_ms"}


@dataclass
class ModelConfig:
    """What is configured (not detected) about a model; None means 'detect it'."""

    # Checked values (enums, tuples of floats) by key, merged key by key across sources.
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
    # The graph output to explain; None: the first that is [batch, classes].
    output: str | None = None
    # A sigmoid head's decision threshold on each class's probability; None: the default (scores.DEFAULT_THRESHOLD).
    threshold: float | None = None
    # The floating-point precision to serve the graph in (service.runtime.half_precision).
    precision: Precision = Precision.FP32
    # Whether a graph fixed at batch 1 may be served freed; None: the default, yes (service.runtime.batch_serving).
    free_batch: bool | None = None
    # Dynamic batching keys given (enabled, preferred_batch_size, max_queue_delay_ms), merged key by key.
    dynamic_batching: dict[str, Any] = field(default_factory=dict)
    # The field that set each key ("overrides.batch_size", "sidecar.preprocessing.mean"): what an error
    # found later, against the graph or the server's budget, names.
    fields: dict[str, str] = field(default_factory=dict)

    def field_of(self, key: str) -> str | None:
        return self.fields.get(key)

    def merge(self, spec: Mapping[str, Any], source: str, prefix: str) -> "ModelConfig":
        """Apply the keys of one source, checking their types; a key given must hold a valid value.
        ``source`` is what ModelInfo reports ("sidecar"), ``prefix`` what errors name."""
        unknown = set(spec) - KNOWN_KEYS
        if unknown:
            raise InvalidArgument(f"unknown keys {sorted(unknown)}{did_you_mean(unknown, KNOWN_KEYS)}; known: "
                                  f"{sorted(KNOWN_KEYS)}", field=prefix)
        if "preprocessing" in spec:
            updates = Preprocessing.parse_updates(spec["preprocessing"], f"{prefix}.preprocessing")
            self.preprocessing.update(updates)
            self.fields.update({f"preprocessing.{key}": f"{prefix}.preprocessing.{key}" for key in updates})
            if updates:
                self.preprocessing_source = source
        if "labels" in spec:
            labels = spec["labels"]
            if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
                raise InvalidArgument("must be a list of strings", field=f"{prefix}.labels")
            for index, label in enumerate(labels):
                _require_text(label, f"{prefix}.labels[{index}]")
            if labels:
                self.labels = list(labels)
                self.fields["labels"] = f"{prefix}.labels"
        if "output_kind" in spec:
            self.output_kind = _enum(OutputKind, spec["output_kind"], f"{prefix}.output_kind")
            self.output_kind_source = source
        if "layout" in spec:
            self.layout = _enum(Layout, spec["layout"], f"{prefix}.layout")
            self.fields["layout"] = f"{prefix}.layout"
        for key in ("height", "width", "batch_size"):
            if key in spec:
                value = spec[key]
                # bool is an int subclass: true would read as 1.
                if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                    raise InvalidArgument(f"must be a positive integer, not {_short(value)}", field=f"{prefix}.{key}")
                setattr(self, key, value)
                self.fields[key] = f"{prefix}.{key}"
        if "description" in spec:
            self.description = _require_text(spec["description"], f"{prefix}.description")
        if "output" in spec:
            output = _require_text(spec["output"], f"{prefix}.output")
            if not output:
                raise InvalidArgument("must name one of the graph's outputs, not be empty", field=f"{prefix}.output")
            self.output = output
            self.fields["output"] = f"{prefix}.output"
        if "threshold" in spec:
            value = spec["threshold"]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
                raise InvalidArgument(f"must be a probability strictly between 0 and 1, not {_short(value)}",
                                      field=f"{prefix}.threshold")
            self.threshold = float(value)
            self.fields["threshold"] = f"{prefix}.threshold"
        if "precision" in spec:
            self.precision = _enum(Precision, spec["precision"], f"{prefix}.precision")
            self.fields["precision"] = f"{prefix}.precision"
        if "free_batch" in spec:
            if not isinstance(spec["free_batch"], bool):
                raise InvalidArgument(f"must be true or false, not {_short(spec['free_batch'])}",
                                      field=f"{prefix}.free_batch")
            self.free_batch = spec["free_batch"]
            self.fields["free_batch"] = f"{prefix}.free_batch"
        if "dynamic_batching" in spec:
            self._merge_batching(spec["dynamic_batching"], f"{prefix}.dynamic_batching")
        return self

    def _merge_batching(self, value: Any, prefix: str) -> None:
        if isinstance(value, bool):
            value = {"enabled": value}
        if not isinstance(value, dict):
            raise InvalidArgument(f"must be true, false or an object of {sorted(DYNAMIC_BATCHING_KEYS)}, not "
                                  f"{_short(value)}", field=prefix)
        unknown = set(value) - DYNAMIC_BATCHING_KEYS
        if unknown:
            raise InvalidArgument(f"unknown keys {sorted(unknown)}{did_you_mean(unknown, DYNAMIC_BATCHING_KEYS)}; "
                                  f"known: {sorted(DYNAMIC_BATCHING_KEYS)}", field=prefix)
        checked: dict[str, Any] = {}
        if "enabled" in value:
            if not isinstance(value["enabled"], bool):
                raise InvalidArgument(f"must be true or false, not {_short(value['enabled'])}",
                                      field=f"{prefix}.enabled")
            checked["enabled"] = value["enabled"]
        if "preferred_batch_size" in value:
            size = value["preferred_batch_size"]
            if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
                raise InvalidArgument(f"must be a positive integer, not {_short(size)}",
                                      field=f"{prefix}.preferred_batch_size")
            checked["preferred_batch_size"] = size
        if "max_queue_delay_ms" in value:
            delay = value["max_queue_delay_ms"]
            if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not 0 <= delay <= MAX_QUEUE_DELAY_MS:
                raise InvalidArgument(f"must be a number of milliseconds from 0 to {MAX_QUEUE_DELAY_MS}, not "
                                      f"{_short(delay)}", field=f"{prefix}.max_queue_delay_ms")
            checked["max_queue_delay_ms"] = float(delay)
        self.dynamic_batching.update(checked)
        self.fields.update({f"dynamic_batching.{key}": f"{prefix}.{key}" for key in checked})


def did_you_mean(unknown: set, known: set[str]) -> str:
    """" ('labls': did you mean 'labels'?)" for unknown keys that look like typos of known ones; "" when none does."""
    guesses = [f"{key!r}: did you mean {match[0]!r}?" for key in sorted(map(str, unknown))
               if (match := difflib.get_close_matches(key, known, n=1, cutoff=0.75))]
    return f" ({'; '.join(guesses)})" if guesses else ""


def _enum(kind, value: Any, field_name: str):
    choices = [e.value for e in kind]
    if not isinstance(value, str):
        raise InvalidArgument(f"must be one of {choices}, not {_short(value)}", field=field_name)
    try:
        return kind(value.strip())
    except ValueError:
        raise InvalidArgument(f"{_short(value)} is not one of {choices}", field=field_name) from None


def _require_text(value: Any, field_name: str) -> str:
    """A string protobuf can carry: JSON escapes can make lone surrogates, which are not UTF-8."""
    if not isinstance(value, str):
        raise InvalidArgument(f"must be a string, not {_short(value)}", field=field_name)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise InvalidArgument(f"is not UTF-8 text ({error.reason} at {error.start})", field=field_name) from None
    return value


def _short(value: Any) -> str:
    """The value as the JSON it came from, cut short."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# A configuration is a few levels deep. The depth is checked before parsing: json's C parser recurses once a
# level, and with auto_LiRPA imported (it raises the interpreter's recursion limit to 10**6) a deep enough
# document would overflow the thread's stack instead of raising RecursionError.
MAX_JSON_DEPTH = 32
MAX_JSON_BYTES = 1 << 20


def json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def parse_json_object(text: str | bytes, field_name: str, what: str) -> dict[str, Any]:
    """A JSON object from untrusted text, every failure an InvalidArgument naming ``field_name``."""
    if len(text) > MAX_JSON_BYTES:
        raise InvalidArgument(f"{what} holds {len(text)} bytes; a configuration takes at most {MAX_JSON_BYTES}",
                              field=field_name)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as error:
            raise InvalidArgument(f"{what} is not usable JSON (UnicodeDecodeError: {error})", field=field_name) \
                from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise InvalidArgument(f"{what} nests arrays or objects deeper than {MAX_JSON_DEPTH} levels",
                              field=field_name)
    try:
        spec = json.loads(text)
    except (ValueError, RecursionError) as error:
        # ValueError: bad JSON, bytes that are not UTF-8, an integer of over 4300 digits;
        # RecursionError: arrays or objects nested thousands deep.
        raise InvalidArgument(f"{what} is not usable JSON ({error.__class__.__name__}: {str(error)[:200]})",
                              field=field_name) from None
    if not isinstance(spec, dict):
        raise InvalidArgument(f"{what} must hold a JSON object, not {type(spec).__name__}", field=field_name)
    return spec


def sidecar_path(model_path: Path) -> Path:
    if model_path.name == "model.onnx":
        return model_path.with_name("config.json")
    return model_path.with_suffix(".json")


def read_sidecar(model_path: Path) -> dict[str, Any]:
    """The sidecar beside ``model_path``; like external data, it must be a file in the model's folder."""
    path = sidecar_path(model_path)
    if not path.is_file():
        return {}
    folder = model_path.parent.resolve()
    if not path.resolve().is_relative_to(folder):
        raise InvalidArgument(f"{path.name} links outside the model's folder; a model may reference only files "
                              "inside its own folder", field=SIDECAR_FIELD)
    try:
        text = path.read_bytes()
    except OSError as error:
        raise InvalidArgument(f"cannot read {path.name}: {error.strerror}", field=SIDECAR_FIELD) from error
    return parse_json_object(text, SIDECAR_FIELD, path.name)


def read_metadata_props(model: onnx.ModelProto) -> dict[str, Any]:
    """Configuration carried inside the ONNX file itself."""
    props = {p.key: p.value for p in model.metadata_props}
    spec: dict[str, Any] = {}
    if METADATA_KEY in props:
        spec = parse_json_object(props[METADATA_KEY], METADATA_FIELD, f"metadata_props[{METADATA_KEY!r}]")
    preprocessing = spec.get("preprocessing", {})
    if not isinstance(preprocessing, dict):
        raise InvalidArgument(f"must be a JSON object, not {_short(preprocessing)}",
                              field=f"{METADATA_FIELD}.preprocessing")
    preprocessing = dict(preprocessing)
    if props.get("Image.NominalPixelRange") in _NOMINAL_RANGE:
        preprocessing.setdefault("pixel_range", _NOMINAL_RANGE[props["Image.NominalPixelRange"]])
    if props.get("Image.BitmapPixelFormat") in _PIXEL_FORMAT:
        preprocessing.setdefault("channel_order", _PIXEL_FORMAT[props["Image.BitmapPixelFormat"]])
    if preprocessing:
        spec["preprocessing"] = preprocessing
    return spec


def resolve_config(model: onnx.ModelProto, model_path: Path | None, overrides: Mapping[str, Any]) -> ModelConfig:
    config = ModelConfig()
    config.merge(read_metadata_props(model), "metadata_props", METADATA_FIELD)
    if model_path is not None:
        config.merge(read_sidecar(model_path), "sidecar", SIDECAR_FIELD)
    config.merge(overrides, "overrides", OVERRIDES_FIELD)
    return config
