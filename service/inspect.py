"""What the server makes of a loaded model, beyond its description: timed forward passes, and warnings about what
explanations of it will be like (the InspectModel RPC, ``onnxplain inspect``).

The description itself (layout, batch axis, output kind, preprocessing and where each came from) is ModelInfo,
decided once at load (``service.runtime.loader``); this module only reads it and times the session.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np
import onnx

from service.runtime.batch_axis import BatchAxis
from service.runtime.model import LoadedModel, ModelInfo
from service.runtime.scores import LogitSource
from service.runtime.signature import OutputKind

DEFAULT_REPEATS = 5
MAX_REPEATS = 20
# The random images timed are drawn from this seed: the same pixels on every call.
TIMING_SEED = 0


@dataclass(frozen=True)
class ForwardTiming:
    batch_size: int
    median_ms: float
    repeats: int


@dataclass(frozen=True)
class Inspection:
    timings: tuple[ForwardTiming, ...]
    warnings: tuple[str, ...]


def inspect_model(model: LoadedModel, repeats: int = DEFAULT_REPEATS, checkpoint=lambda: None) -> Inspection:
    """``model``'s forward pass timed at batch 1 and at its batch, and the warnings its description calls for.
    ``checkpoint`` is called between passes (a job's cancel or deadline)."""
    return Inspection(forward_timings(model, repeats, checkpoint), tuple(warnings(model.info)))


def forward_timings(model: LoadedModel, repeats: int = DEFAULT_REPEATS,
                    checkpoint=lambda: None) -> tuple[ForwardTiming, ...]:
    """The median wall time of ``repeats`` forward passes (after one untimed warm-up) of random images, at batch 1
    and at the batch one session call takes (``LoadedModel.batch_limit`` at the model's size), through ``predict``
    as every job scores images: preprocessing, the session, the outputs read back."""
    info = model.info
    batch = model.batch_limit(info.height, info.width)
    rng = np.random.default_rng(TIMING_SEED)
    timings = []
    for size in sorted({1, batch}):
        pixels = rng.random((size, *info.image_shape), dtype=np.float32)
        model.predict(pixels, batch_size=size)  # warm-up: first-call allocations are not the model's speed
        elapsed = []
        for _ in range(repeats):
            checkpoint()
            started = time.perf_counter()
            model.predict(pixels, batch_size=size)
            elapsed.append((time.perf_counter() - started) * 1e3)
        timings.append(ForwardTiming(size, statistics.median(elapsed), repeats))
    return tuple(timings)


def warnings(info: ModelInfo) -> list[str]:
    """One line for each fact of the description that changes what an explanation of the model means or costs."""
    found = []
    saturating = _saturating_output(info)
    if saturating:
        found.append(saturating)
    if info.batch_axis is BatchAxis.FIXED and info.max_batch == 1:
        found.append(f"fixed batch of 1 served as exported ({info.batch_axis_reason}): one image a session call, so "
                     "methods that score many images (RISE, occlusion, metrics) run one forward pass at a time")
    if info.signature.input_elem_type == onnx.TensorProto.FLOAT16:
        found.append("float16 input: scores carry ~5e-4 relative rounding, so small differences in a map can be noise")
    elif info.precision == "fp16":
        found.append("served in float16 (precision fp16): scores carry ~5e-4 relative rounding, so small differences "
                     "in a map can be noise")
    if info.precision_reason:
        found.append(f"fp16 asked for, fp32 served: {info.precision_reason}")
    dynamic = [axis for axis, free in (("height", info.dynamic_height), ("width", info.dynamic_width)) if free]
    if dynamic:
        found.append(f"dynamic {' and '.join(dynamic)}: each image is used at its own size there (the load probed "
                     f"{info.height} x {info.width}); maps of images of different sizes are not the same grid")
    return found


def _saturating_output(info: ModelInfo) -> str | None:
    """A probabilities (or sigmoid) output saturates: p rounds to 1 in float32 once a logit leads by ~17, and its
    attributions vanish there. Maps use logits where the graph has them, else log-probabilities."""
    kind = info.output_kind
    if kind not in (OutputKind.PROBABILITIES, OutputKind.SIGMOID):
        return None
    what = ("probabilities output (softmax)" if kind is OutputKind.PROBABILITIES
            else "sigmoid output (per-class probabilities)")
    if info.logit_source is LogitSource.PRE_ACTIVATION:
        return (f"saturating {what}: maps are computed on the logits, the input of the terminal activation "
                f"({info.logits_output}); --probabilities explains p itself, flat wherever p is near 0 or 1")
    fallback = ("log-probabilities (log p: the logits up to a per-image constant)"
                if info.logit_source is LogitSource.LOG_PROBABILITY else "log(p / (1 - p)) of the outputs")
    return (f"saturating {what} and no pre-activation tensor: maps are computed on {fallback}; the logits are lost "
            "where p rounds to 1 (or 0) in float32, and maps of such images are flat")
