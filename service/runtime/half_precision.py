"""Serving a float32 graph in float16, when it stays accurate.

A model configured with ``precision: fp16`` (sidecar, metadata or overrides; ``service.runtime.model_config``)
is converted with onnxruntime's own float16 converter (``onnxruntime.transformers.float16``, shipped with
onnxruntime: no extra dependency), inputs and outputs kept float32 so that nothing else changes, and checked at
load against the float32 graph on a probe batch (``check``). A graph that fails the check, or that the converter
or onnxruntime cannot take, is served in float32 with the reason reported (``ModelInfo.precision_reason``) and
logged: fp16 is a speed setting, the float32 graph is the model itself, and refusing would take a preloaded model
off the server for a hint it cannot follow. A graph whose input is not float32 is refused (InvalidArgument naming
the key): that configuration can never apply. Every served batch is still checked for NaN and infinite scores
(``LoadedModel.outputs``), which catches an overflow the probe did not meet.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

import numpy as np
import onnx

from service.errors import InvalidArgument
from service.runtime.session import SessionRunner, open_session

if TYPE_CHECKING:
    from service.runtime.providers import ExecutionSettings, InputProfile

log = logging.getLogger(__name__)

# The largest error of fp16 scores allowed, as a fraction of the range of the fp32 scores over the probe
# batch. Measured on torchvision exports (weights=None, 64 x 64, 8 probe images, onnxruntime CPU): resnet18
# 2.2e-4, mobilenet_v3_small 5.1e-4, efficientnet_b0 4.3e-4; 1e-2 leaves a 20x margin over those, while an
# overflow (inf), an underflow that flattens the scores or a wrong cast fails by far more.
RELATIVE_TOLERANCE = 1e-2
# Probe images: half uniform noise (every pixel independent), half smooth (4 x 4 noise upsampled), seeded.
PROBE_IMAGES = 8
PROBE_SEED = 7


class Precision(StrEnum):
    FP32 = "fp32"
    FP16 = "fp16"


@dataclass(frozen=True)
class Check:
    """fp16 scores against fp32 scores of the same probe batch."""

    relative_error: float  # max |fp16 - fp32| / (max - min of the fp32 scores)
    top1_agreement: float  # fraction of images with the same top-1 class
    top1_disagreements: int  # images whose top-1 differs while the fp32 scores put it clearly ahead
    finite: bool

    @property
    def passed(self) -> bool:
        return self.finite and self.relative_error <= RELATIVE_TOLERANCE and self.top1_disagreements == 0

    def describe(self) -> str:
        if not self.finite:
            return "the fp16 graph gives NaN or infinite scores on the probe batch (a value beyond fp16's 65504)"
        return (f"fp16 scores differ from fp32 by up to {self.relative_error:.3g} of the scores' range (tolerance "
                f"{RELATIVE_TOLERANCE:g}), top-1 agreement {self.top1_agreement:.0%}")


def check(reference: np.ndarray, candidate: np.ndarray) -> Check:
    """Compare fp16 scores with fp32 scores (N, classes). A top-1 change counts only where fp32 puts its top-1
    ahead of fp16's choice by more than the tolerance: a near tie may flip within the allowed error."""
    reference = reference.reshape(len(reference), -1).astype(np.float64)
    candidate = candidate.reshape(len(candidate), -1).astype(np.float64)
    if not np.all(np.isfinite(candidate)):
        return Check(np.inf, 0.0, len(candidate), finite=False)
    scale = float(reference.max() - reference.min()) or float(np.abs(reference).max()) or 1.0
    error = float(np.abs(candidate - reference).max()) / scale
    rows = np.arange(len(reference))
    ours, theirs = reference.argmax(axis=1), candidate.argmax(axis=1)
    lead = (reference[rows, ours] - reference[rows, theirs]) / scale
    clear_changes = int(np.count_nonzero((ours != theirs) & (lead > RELATIVE_TOLERANCE)))
    return Check(error, float(np.mean(ours == theirs)), clear_changes, finite=True)


def probe_pixels(batch: int, height: int, width: int, channels: int) -> np.ndarray:
    """``batch`` images (N, H, W, C) in [0, 1]: noise and smooth fields (a ReLU network's activations differ
    between the two), the same at every load."""
    rng = np.random.default_rng(PROBE_SEED)
    noise = rng.random((batch, height, width, channels), dtype=np.float32)
    coarse = rng.random((batch, 4, 4, channels), dtype=np.float32)
    rows, cols = np.arange(height) * 4 // height, np.arange(width) * 4 // width
    smooth = coarse[:, rows][:, :, cols]
    return np.where(np.arange(batch)[:, None, None, None] % 2 == 0, noise, smooth)


def to_float16(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with float32 tensors and computations in float16, its inputs and outputs float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=True)


@dataclass(frozen=True)
class Served:
    """What ``serve`` decided: the runner to serve with, its precision, and why fp16 was not served."""

    runner: SessionRunner
    precision: Precision
    reason: str = ""
    check: Check | None = None


def serve(model: onnx.ModelProto, float32: SessionRunner, execution: ExecutionSettings, probe: np.ndarray,
          output: str, field: str | None, profile: InputProfile | None = None) -> Served:
    """The fp16 runner of ``model`` if its scores ``output`` on ``probe`` (the model's input for the probe
    images, float32) pass ``check`` against the fp32 runner's; else the fp32 runner and the reason."""
    elem_type = model.graph.input[0].type.tensor_type.elem_type
    if elem_type != onnx.TensorProto.FLOAT:  # a configuration that can never apply: refused, not fallen back
        raise InvalidArgument(f"fp16 converts a graph of float32 input; this one takes "
                              f"{onnx.TensorProto.DataType.Name(elem_type)}: remove the key", field=field)
    try:
        half = open_session(to_float16(model).SerializeToString(), execution, field or "precision", profile)
        feed = {model.graph.input[0].name: probe}
        expected = float32.run([output], feed)[0]
        result = check(expected, half.run([output], feed)[0])
    except Exception as error:  # the converter or onnxruntime refusing the converted graph
        return _fallback(float32, f"the fp16 graph cannot be served ({error.__class__.__name__}: "
                                  f"{str(error)[:200]})", field)
    if not result.passed:
        return _fallback(float32, result.describe(), field, result)
    log.info("serving fp16", extra={"relative_error": result.relative_error, "field": field})
    return Served(half, Precision.FP16, "", result)


def _fallback(float32: SessionRunner, reason: str, field: str | None, result: Check | None = None) -> Served:
    log.warning("fp16 not served, fp32 instead: %s", reason, extra={"field": field})
    return Served(float32, Precision.FP32, f"{field or 'precision'} fp16 not served: {reason}", result)
