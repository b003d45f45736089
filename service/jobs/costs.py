"""What a job will cost, checked against the server's ``Budget`` before anything is drawn or allocated.

Every job first validates its request (INVALID_ARGUMENT for what can never work), then adds up its parts
here and refuses with RESOURCE_EXHAUSTED what the budget does not allow: the batch size, the forward passes
of the whole request, and the peak host memory of its largest step plus what it keeps meanwhile. A refusal
names the request field a caller can lower to fit: ``batch_size`` or ``target`` when lowering that alone
would do, else the method's or metric's parameter its cost grows with (``Method.cost_parameter``).

Memory estimates are those of the methods and metrics (``memory``, tested against tracemalloc) plus the
model's side of a batch (``predict_memory``) and a mask-dependent baseline's (``fill_memory``).
onnxruntime's own activations are not host memory numpy allocates and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import onnx

from service.budget import Budget
from service.errors import ResourceExhausted
from service.explainers import footprint
from service.explainers.base import Method
from service.explainers.baselines import Baseline, BaselineKind
from service.metrics.base import Metric
from service.runtime.model import LoadedModel

# skimage's structural_similarity on two float64 maps: the two maps, five filtered moments and their products.
SSIM_VALUES_PER_PIXEL = 16


@dataclass(frozen=True)
class Cost:
    """One part of a job: its forward passes and peak memory (bytes), with the request fields that drive them."""

    what: str
    passes: int
    memory: int
    passes_field: str
    memory_field: str


def batch_size(requested: int | None, model: LoadedModel, budget: Budget,
               image_shape: tuple[int, ...] | None = None) -> int:
    """The images per call to the model a job will use: the request's, else the model's batch (for a dynamic
    model, the one that fits images of ``image_shape``: ``LoadedModel.batch_limit``)."""
    size = requested or (model.batch_limit(*image_shape[:2]) if image_shape is not None else model.info.max_batch)
    if size > budget.batch_size:
        whose = f"batch_size {size}" if requested else (f"the model's configured batch of {size} (its "
                                                         "overrides.batch_size or metadata)")
        raise ResourceExhausted(f"{whose} is over this server's limit of {budget.batch_size} images per call "
                                "(ONNXPLAIN_MAX_BATCH_SIZE); send a smaller batch_size", field="batch_size")
    return size


def distinct_shapes(images: Sequence[np.ndarray]) -> list[tuple[int, ...]]:
    """The image shapes of a job of several images: one on a static model, each its own on a dynamic one."""
    return sorted({image.shape for image in images})


def largest_shape(images: Sequence[np.ndarray]) -> tuple[int, ...]:
    """The shape a job of several images is budgeted at: every image counted as large as the largest."""
    return max(distinct_shapes(images), key=lambda shape: shape[0] * shape[1])


def predict_memory(model: LoadedModel, batch: int, image_shape: tuple[int, ...] | None = None) -> int:
    """What ``LoadedModel.predict`` allocates for one batch besides onnxruntime: the preprocessed input, a fixed
    batch's padding (repeated, then concatenated), the conversion to another input type (rounded and clipped
    for uint8), and the scores: the output and the logits before its activation (float32 out), their float64
    copies and a conversion's temporaries (a softmax's shifted values and exponentials), the scores in the space
    asked and a copy of the columns. ``image_shape``: the images' own (a dynamic model's), else the model's
    input size."""
    shape = model.info.image_shape if image_shape is None else image_shape
    limit = model.batch_limit(*shape[:2])
    chunk = model.info.max_batch if model.info.fixed_batch else min(batch, limit)
    images = footprint.F32 * chunk * footprint.pixels(shape) * model.info.channels
    element = model.info.signature.input_elem_type
    copies = 1 + (2 if model.info.fixed_batch else 0) + (0 if element == onnx.TensorProto.FLOAT else 1) \
        + (2 if element == onnx.TensorProto.UINT8 else 0)
    return copies * images + 6 * footprint.F64 * max(batch, chunk) * max(model.info.num_classes, 1)


def fill_memory(baseline: Baseline, batch: int, image_shape: tuple[int, int, int]) -> int:
    """The baseline: a static image (and its noise draw, float64), or inpainting's per-batch blurs of the kept
    pixels and of the masks (about six float32 images and four masks per perturbed image)."""
    static = 3 * footprint.F64 * footprint.pixels(image_shape) * image_shape[2]
    if baseline.kind is not BaselineKind.INPAINT:
        return static
    return static + 6 * footprint.F32 * batch * footprint.pixels(image_shape) * image_shape[2] \
        + 4 * footprint.keep_masks(batch, image_shape)


def _blame(estimate: Callable[[int, int], int], batch: int, targets: int, limit: int, field: str) -> str:
    """The field to name when ``estimate(batch, targets)`` is over ``limit``: the batch or the targets when
    lowering that alone fits, else ``field``."""
    if batch > 1 and estimate(1, targets) <= limit:
        return "batch_size"
    if targets > 1 and estimate(batch, 1) <= limit:
        return "target"
    return field


def method_cost(method: Method, params: Any, image_shape: tuple[int, int, int], targets: int, batch: int,
                model: LoadedModel, budget: Budget, baseline: Baseline = Baseline()) -> Cost:
    """One run of ``method`` explaining ``targets`` classes of one image."""
    def estimate(b: int, t: int) -> int:
        return (method.memory(params, image_shape, t, b) + predict_memory(model, b, image_shape)
                + fill_memory(baseline, b, image_shape))

    memory = estimate(batch, targets)
    field = f"{method.name}.{method.cost_parameter}" if method.cost_parameter else "method"
    return Cost(method.name, method.forward_passes(params, image_shape), memory, field,
                _blame(estimate, batch, targets, budget.job_memory_bytes, field))


def metric_cost(metric: Metric, params: Any, image_shape: tuple[int, int, int], batch: int, model: LoadedModel,
                budget: Budget, baseline: Baseline = Baseline(), times: int = 1) -> Cost:
    """``times`` runs of ``metric`` (one per map it scores; they run one after the other)."""
    def estimate(b: int, _t: int) -> int:
        return (metric.memory(params, image_shape, 1, b) + predict_memory(model, b, image_shape)
                + fill_memory(baseline, b, image_shape))

    field = f"{metric.name}.{metric.cost_parameter}" if metric.cost_parameter else "metrics"
    return Cost(metric.name, times * metric.forward_passes(params, image_shape), estimate(batch, 1), field,
                _blame(estimate, batch, 1, budget.job_memory_bytes, field))


def require(budget: Budget, costs: list[Cost], *, kept: int = 0, passes: int = 0,
            kept_field: str | None = None, what: str = "the request") -> None:
    """Refuse when the costs' passes (plus ``passes``) are over the budget, or the largest part's memory plus
    ``kept`` (what the job holds while its parts run one after the other) is. The fields named are those of
    the part with the most passes and of the part with the largest memory (``kept_field`` when what is kept
    outweighs it)."""
    total = passes + sum(cost.passes for cost in costs)
    if costs:
        budget.require_passes(total, field=max(costs, key=lambda c: c.passes).passes_field)
    largest = max(costs, key=lambda c: c.memory) if costs else None
    peak = kept + (largest.memory if largest else 0)
    if largest is None or (kept_field is not None and kept > largest.memory):
        field, part = kept_field or "request", what
    else:
        field, part = largest.memory_field, what if largest.what in what else f"{what} ({largest.what})"
    budget.require_memory(peak, field=field, what=part)


def ssim_memory(image_shape: tuple[int, ...]) -> int:
    return SSIM_VALUES_PER_PIXEL * footprint.F64 * footprint.pixels(image_shape)
