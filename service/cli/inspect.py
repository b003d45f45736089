"""``onnxplain inspect MODEL``: what the server makes of a model before it is served (the InspectModel RPC).

The facts are one dictionary (``facts``): ``--json`` prints it, the text is written from it, so both say the same.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from service.cli.common import client_options, connect, fail
from service.cli.overrides import set_option
from service.inspect import MAX_REPEATS

# Labels shown in the text (the JSON has the first LABELS_SHOWN too; the count says how many there are).
LABELS_SHOWN = 5


def register(commands) -> None:
    inspect = commands.add_parser(
        "inspect", help="what onnxplain reads from a model's graph and sidecar: layout, batch axis, output kind, "
                        "preprocessing, labels, provider, forward time, EVA verification, warnings")
    client_options(inspect)
    inspect.add_argument("model", help="model name on --server, else a local .onnx file or model directory")
    inspect.add_argument("--no-verify", action="store_true",
                         help="skip whether EVA verifies the model (building its PyTorch mirror needs torch)")
    inspect.add_argument("--repeats", type=int, default=0, help="forward passes timed per batch size (default 5)")
    inspect.add_argument("--json", action="store_true", help="print one JSON document instead of text")
    set_option(inspect)
    inspect.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    if not 0 <= args.repeats <= MAX_REPEATS:
        fail(f"{args.repeats}: time from 1 to {MAX_REPEATS} passes per batch size (0: 5)", "--repeats")
    with connect(args, args.model) as (client, name):
        response = client.inspect_model(name, verify=not args.no_verify, repeats=args.repeats)
    found = facts(response)
    print(json.dumps(found, indent=2) if args.json else text(found))


def _short(enum_type, value: int) -> str:
    from onnxplain_client.enums import short_name

    name = enum_type.DESCRIPTOR.name
    return short_name(name, enum_type.Name(value))


def facts(response) -> dict[str, Any]:
    """The response as a JSON-ready dictionary with stable keys (every key present whatever the model)."""
    from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

    model = response.model
    p = model.preprocessing
    sources = dict(model.preprocessing_sources)
    verification = model.verification if model.HasField("verification") else None
    return {
        "name": model.name,
        "source": model.source,
        "sha256": model.sha256,
        "input": {"name": model.input.name, "datatype": model.input.datatype, "shape": list(model.input.shape)},
        "layout": _short(ms.Layout, model.layout).upper(),
        "layout_source": model.layout_source,
        "height": model.height, "width": model.width, "channels": model.channels,
        "dynamic_height": model.dynamic_height, "dynamic_width": model.dynamic_width,
        "batch_axis": model.batch_axis,
        "batch_axis_reason": model.batch_axis_reason,
        "batch_axis_rewrites": list(model.batch_axis_rewrites),
        "max_batch": model.max_batch,
        "output": {"name": model.output.name, "shape": list(model.output.shape)},
        "graph_outputs": list(model.graph_outputs),
        "output_kind": _short(ms.OutputKind, model.output_kind),
        "output_kind_source": model.output_kind_source,
        "logit_source": model.logit_source,
        "logits_tensor": model.logits_tensor,
        "threshold": round(model.threshold, 6) if model.output_kind == ms.OUTPUT_KIND_SIGMOID else None,
        "preprocessing": {
            "pixel_range": _short(ms.PixelRange, p.pixel_range).replace("minus_", "-"),
            "mean": [round(v, 6) for v in p.mean], "std": [round(v, 6) for v in p.std],
            "channel_order": _short(ms.ChannelOrder, p.channel_order).upper(),
            "resize": _short(ms.ResizePolicy, p.resize), "pad_value": [round(v, 6) for v in p.pad_value],
            "sources": {key: sources.get(key, "default") for key in
                        ("pixel_range", "mean", "std", "channel_order", "resize", "pad_value")},
        },
        "num_classes": model.num_classes,
        "labels": {"count": len(model.labels), "first": list(model.labels[:LABELS_SHOWN])},
        "provider": model.provider,
        "precision": model.precision,
        "precision_reason": model.precision_reason,
        "forward_ms": [{"batch_size": t.batch_size, "median_ms": round(t.median_ms, 3), "repeats": t.repeats}
                       for t in response.forward_timings],
        "verification": None if verification is None else {
            "verifiable": verification.verifiable,
            "reason": verification.reason,
            "whole_model_reason": verification.whole_model_reason,
            "bound_methods": [{"name": c.name, "runs": c.runs, "split_layer": c.split_layer,
                               "verified": c.verified, "head_runtime": c.head_runtime, "reason": c.reason}
                              for c in verification.method_checks],
            "rewrites": list(verification.rewrites),
        },
        "warnings": list(response.warnings),
    }


def _shape(dims: list[int]) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in dims) + "]"


def text(f: dict[str, Any]) -> str:
    """The facts as aligned lines, one topic a line (continuations indented)."""
    lines: list[tuple[str, str]] = []

    def add(topic: str, value: str) -> None:
        lines.append((topic, value))

    add("model", f"{f['name']}  ({f['source']}, sha256 {f['sha256'][:12]})")
    add("input", f"{f['input']['name']} {_shape(f['input']['shape'])} {f['input']['datatype']}")
    add("layout", f"{f['layout']}  ({f['layout_source']})")
    size = [f"{'dynamic' if f['dynamic_height'] else f['height']} x {'dynamic' if f['dynamic_width'] else f['width']}",
            f"{f['channels']} channel{'s' * (f['channels'] != 1)}"]
    add("image size", ", ".join(size))
    add("batch axis", f"{f['batch_axis']}, {f['max_batch']} image{'s' if f['max_batch'] != 1 else ''} a call"
        + (f"  ({f['batch_axis_reason']})" if f["batch_axis_reason"] else ""))
    for rewrite in f["batch_axis_rewrites"]:
        add("", f"rewrite: {rewrite}")
    others = [o for o in f["graph_outputs"] if o != f["output"]["name"]]
    add("output", f"{f['output']['name']} {_shape(f['output']['shape'])}"
        + (f"  (other outputs: {', '.join(others)})" if others else ""))
    kind = f"{f['output_kind']} ({f['output_kind_source']})"
    if f["threshold"] is not None:
        kind += f", threshold {f['threshold']:g}"
    add("output kind", kind)
    add("logit source", f["logit_source"] + (f" ({f['logits_tensor']})" if f["logits_tensor"] else ""))
    p, sources = f["preprocessing"], f["preprocessing"]["sources"]

    def numbers(values: list[float]) -> str:
        return "[" + ", ".join(f"{v:g}" for v in values) + "]"

    add("preprocessing", f"pixel_range {p['pixel_range']} ({sources['pixel_range']}), "
                         f"channel_order {p['channel_order']} ({sources['channel_order']})")
    add("", f"mean {numbers(p['mean'])} ({sources['mean']}), std {numbers(p['std'])} ({sources['std']})")
    add("", f"resize {p['resize']} ({sources['resize']}), pad_value {numbers(p['pad_value'])} ({sources['pad_value']})")
    labels = f["labels"]
    if labels["count"]:
        shown = ", ".join(labels["first"]) + (", ..." if labels["count"] > len(labels["first"]) else "")
        add("labels", f"{labels['count']}: {shown}")
    else:
        add("labels", f"none ({f['num_classes']} classes, named by index)")
    add("provider", f["provider"])
    add("precision", f["precision"] + (f"  ({f['precision_reason']})" if f["precision_reason"] else ""))
    add("forward pass", ", ".join(f"batch {t['batch_size']}: {t['median_ms']:.2f} ms" for t in f["forward_ms"])
        + f"  (median of {f['forward_ms'][0]['repeats']})" if f["forward_ms"] else "not timed")
    verification = f["verification"]
    if verification is None:
        add("EVA", "not checked (--no-verify)")
    else:
        whole = any(check["runs"] and not check["split_layer"] for check in verification["bound_methods"])
        add("EVA", f"not verifiable: {verification['reason']}" if not verification["verifiable"] else "verifiable"
            if whole else "verifiable, hybrid only (the head is sampled: no map certified for the whole model)")
        if verification["whole_model_reason"]:
            add("", f"whole model: no ({verification['whole_model_reason']})")
        for check in verification["bound_methods"]:
            if check["runs"]:
                where = "whole model" if not check["split_layer"] else (
                    f"hybrid at {check['split_layer']}: {check['verified']}, head on {check['head_runtime']}"
                    + (f" (whole model: {check['reason']})" if check["reason"] else ""))
                add("", f"{check['name']}: {where}")
            else:
                add("", f"{check['name']}: no ({check['reason']})")
    for index, warning in enumerate(f["warnings"] or ["none"]):
        add("warnings" if index == 0 else "", warning)
    width = max(len(topic) for topic, _ in lines)
    return "\n".join(f"{topic:<{width}}  {value}".rstrip() for topic, value in lines)
