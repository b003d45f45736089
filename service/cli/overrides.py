"""``--set KEY=VALUE``: model overrides on the command line, and refusals as one line.

The keys are the sidecar's (``README.md``, "Models and their configuration"), dotted for the preprocessing and
dynamic batching objects: ``layout=NHWC``, ``height=224``, ``labels=cat,dog``,
``preprocessing.mean=0.485,0.456,0.406``, ``preprocessing.resize=letterbox``, ``preprocessing.pad_value=0.5``,
``dynamic_batching.max_queue_delay_ms=5``. A VALUE is JSON where it parses
(``224``, ``[0.5, 0.5]``, ``"0"``), else a comma-separated list of such values when it holds a comma, else
the text itself. ``labels`` is always text: ``labels=180,0`` is the two names "180" and "0", ``labels=@FILE``
reads one name a line. A later ``--set`` of the same key wins. Each value is checked here, before any model
is loaded, and a refusal names ``--set KEY``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import grpc
from onnxplain_client.errors import OnnxplainError

from service.errors import InvalidArgument, ServiceError
from service.runtime.model_config import did_you_mean
from service.runtime.preprocessing import Preprocessing

# The sidecar keys LoadModel's ModelOverrides carries (name, description, metrics and source are the file's).
OVERRIDE_KEYS = ("layout", "output_kind", "height", "width", "batch_size", "labels", "output", "threshold",
                 "free_batch", "precision")
PREPROCESSING_KEYS = tuple(field.name for field in dataclasses.fields(Preprocessing))
BATCHING_KEYS = ("enabled", "preferred_batch_size", "max_queue_delay_ms")
# What a server's refusal names for an override, and what the command line calls it.
_OVERRIDE_FIELD = re.compile(r"\boverrides\.([a-z_]+(?:\.[a-z_]+)?)")


def set_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override the configuration of the model file(s) this command loads, in the sidecar's "
                             "keys (repeatable): layout=NHWC, height=224, labels=cat,dog, "
                             "preprocessing.mean=0.485,0.456,0.406, "
                             "preprocessing.resize=letterbox, preprocessing.pad_value=0.5")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``--set`` items as the sidecar-shaped mapping the runtime merges, each checked."""
    from service.runtime.model_config import ModelConfig

    spec: dict[str, Any] = {}
    for item in items:
        key, equals, raw = item.partition("=")
        key = key.strip()
        if not equals or not key:
            raise InvalidArgument(f"{item!r}: write KEY=VALUE, e.g. --set height=224", field="--set")
        top, _, sub = key.partition(".")
        known = (top in OVERRIDE_KEYS and not sub or top == "preprocessing" and sub in PREPROCESSING_KEYS
                 or top == "dynamic_batching" and sub in BATCHING_KEYS)
        if not known:
            names = [*OVERRIDE_KEYS, *(f"preprocessing.{k}" for k in PREPROCESSING_KEYS),
                     *(f"dynamic_batching.{k}" for k in BATCHING_KEYS)]
            raise InvalidArgument(f"is not a model override{did_you_mean({key}, set(names))}; known: "
                                  f"{', '.join(names)}", field=f"--set {key}")
        value = _labels(raw, key) if key == "labels" else raw.strip() if key == "output" else _value(raw)
        update = {top: {sub: value}} if sub else {top: value}
        try:
            ModelConfig().merge(update, "overrides", "overrides")
        except InvalidArgument as error:
            raise InvalidArgument(f"{raw!r}: {error.message}", field=f"--set {key}") from None
        if sub:
            spec.setdefault(top, {})[sub] = value
        else:
            spec[top] = value
    return spec


def _value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        pass
    if "," in raw:
        return [_value(part.strip()) for part in raw.split(",")]
    return raw


def _labels(raw: str, key: str) -> list[str]:
    if raw.startswith("@"):
        try:
            return [line.strip() for line in Path(raw[1:]).read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidArgument(f"cannot read {raw[1:]!r} ({error.__class__.__name__}: {error})",
                                  field=f"--set {key}") from None
    if raw.lstrip().startswith("["):
        try:
            return json.loads(raw)
        except ValueError as error:
            raise InvalidArgument(f"{raw!r} is not a JSON list ({error})", field=f"--set {key}") from None
    return [part.strip() for part in raw.split(",")]


def to_model_overrides(spec: dict[str, Any]) -> dict[str, Any]:
    """The sidecar-shaped mapping as ModelOverrides' JSON form (what ``OnnxplainClient.load_model`` takes)."""
    from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

    from service.api.enums import CHANNEL_ORDERS, LAYOUTS, OUTPUT_KINDS, PIXEL_RANGES, RESIZE_POLICIES
    from service.runtime.preprocessing import ChannelOrder, PixelRange, ResizePolicy
    from service.runtime.signature import Layout, OutputKind

    message: dict[str, Any] = {}
    if "layout" in spec:
        message["layout"] = ms.Layout.Name(LAYOUTS[Layout(spec["layout"].strip())])
    if "output_kind" in spec:
        message["output_kind"] = ms.OutputKind.Name(OUTPUT_KINDS[OutputKind(spec["output_kind"].strip())])
    for key in ("height", "width", "batch_size", "output", "threshold", "free_batch", "precision"):
        if key in spec:
            message[key] = spec[key]
    if "labels" in spec:
        message["labels"] = spec["labels"]
    pre = spec.get("preprocessing", {})
    if pre:
        enums = {"pixel_range": (ms.PixelRange, PIXEL_RANGES, PixelRange),
                 "channel_order": (ms.ChannelOrder, CHANNEL_ORDERS, ChannelOrder),
                 "resize": (ms.ResizePolicy, RESIZE_POLICIES, ResizePolicy)}
        converted: dict[str, Any] = {}
        for key, value in pre.items():
            if key in enums:
                proto_enum, mapping, domain = enums[key]
                converted[key] = proto_enum.Name(mapping[domain(value)])
            else:  # mean, std, pad_value: one number or a list
                converted[key] = value if isinstance(value, list) else [value]
        message["preprocessing"] = converted
    if spec.get("dynamic_batching"):
        message["dynamic_batching"] = dict(spec["dynamic_batching"])
    return message


def refusal_line(error: BaseException) -> str | None:
    """``error: CODE: FIELD: message`` for an expected refusal (a gRPC status, or a ServiceError raised in
    this process), with the server's ``overrides.KEY`` named as the command line's ``--set KEY``;
    ``error: PATH: reason`` for a file that cannot be read; None for anything else (a bug, whose traceback is
    wanted)."""
    if isinstance(error, grpc.RpcError) and callable(getattr(error, "code", None)):
        # The server's refusal or the client's (a request it would not send); a raw grpc error read the same way.
        refusal = error if isinstance(error, OnnxplainError) else OnnxplainError.from_rpc_error(error)
        name, field, message = refusal.code_name, refusal.field, refusal.message
    elif isinstance(error, ServiceError):
        from service.api.status import CODES

        name, field, message = CODES[type(error)].name, error.field, error.message
    elif isinstance(error, OSError) and error.filename is not None:  # an image or model file the user named
        return f"error: {error.filename}: {error.strerror or error}"
    else:
        return None
    message = _OVERRIDE_FIELD.sub(r"--set \1", message.replace("the sidecar or overrides", "the sidecar or --set"))
    if field:
        field = _OVERRIDE_FIELD.sub(r"--set \1", field)
        return f"error: {name}: {field}: {message}"
    return f"error: {name}: {message}"
