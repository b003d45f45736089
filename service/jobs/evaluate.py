"""The Evaluate job: score a map (anyone's) with fidelity and localisation metrics."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from service.errors import InvalidArgument
from service.explainers.baselines import Baseline, Fill
from service.jobs import costs
from service.jobs.control import JobControl
from service.jobs.counting import CountingPredict
from service.jobs.streams import Streams
from service.metrics.base import Metric, MetricResult
from service.runtime import images
from service.runtime.images import Placement
from service.runtime.model import LoadedModel
from service.runtime.scores import METRIC_SPACE, ScoreSpace

SEED_BOUND = 2**31  # seeds below 2**31: every client language holds them exactly


def draw_seed(seed: int | None) -> int:
    return seed if seed is not None else secrets.randbelow(SEED_BOUND)


@dataclass(frozen=True)
class MetricRequest:
    metric: Metric
    params: Any

    def check(self, image_shape: tuple[int, int, int], mask: np.ndarray | None) -> None:
        self.metric.check(self.params, image_shape)
        if self.metric.needs_mask and mask is None:
            raise InvalidArgument(f"{self.metric.name} needs a ground-truth mask", field="mask")

    def forward_passes(self, image_shape: tuple[int, int, int]) -> int:
        return self.metric.forward_passes(self.params, image_shape)


def domain_key(request: MetricRequest) -> str:
    return f"{request.metric.domain}_map"


@dataclass(frozen=True)
class Scored:
    result: MetricResult
    forward_passes: int


def score_map(predict: CountingPredict, image: np.ndarray, attribution: np.ndarray, class_index: int,
              requests: Sequence[MetricRequest], *, fill: Fill, mask: np.ndarray | None, batch_size: int,
              streams: Streams, details: dict | None = None,
              space: ScoreSpace = METRIC_SPACE) -> list[Scored]:
    """Every requested metric on one map, with the passes each took, scoring in ``space``.

    Each metric draws from the seed's metric stream afresh (``streams``): what it draws does not depend on the
    other metrics asked, and every map, target and metric baseline scored under one seed is scored on the same
    draws. A metric of another domain scores the method's map of that domain from ``details`` (wavelet metrics
    take WCAM's ``wavelet_map``).
    """
    scored = []
    for request in requests:
        before = predict.passes
        domain_map = attribution if request.metric.domain == "pixel" else (details or {})[domain_key(request)]
        result = request.metric.evaluate(predict.score(class_index, space), image, domain_map, request.params,
                                         baseline=fill, mask=mask, batch_size=batch_size, rng=streams.metrics())
        scored.append(Scored(result, predict.passes - before))
    return scored


@dataclass(frozen=True)
class EvaluateJob:
    image: np.ndarray  # (H, W, C) pixels in [0, 1] at its model input size (LoadedModel.input_size)
    attribution: np.ndarray  # (H, W): at the image's model input size, or a letterboxed image's own size
    metrics: tuple[MetricRequest, ...]
    class_index: int | None = None
    mask: np.ndarray | None = None
    baseline: Baseline = Baseline()
    seed: int | None = None
    score_space: ScoreSpace = METRIC_SPACE  # the metrics' space (Evaluate explains nothing)
    batch_size: int | None = None
    domain: str = "pixel"  # what the attribution's cells are: "pixel" or "wavelet" (WCAM's layout)
    placement: Placement | None = None  # where a letterboxed image lies in ``image``


@dataclass
class EvaluateResult:
    class_index: int
    label: str
    scored: list[Scored]
    seed: int
    forward_passes: int
    model_ms: float
    total_ms: float
    attribution_frame: str = "model_input"  # or "image": the map was sent in the letterboxed image's frame
    score_space: ScoreSpace = METRIC_SPACE


def run_evaluate(model: LoadedModel, job: EvaluateJob, control: JobControl | None = None) -> EvaluateResult:
    started = time.perf_counter()
    control = control or JobControl()
    attribution, frame = _in_model_frame(job)
    if not np.all(np.isfinite(attribution)):
        raise InvalidArgument("holds NaN or infinite values", field="attribution")
    if not job.metrics:
        raise InvalidArgument("ask for at least one metric (see ListMethods)", field="metrics")
    if job.class_index is not None and not 0 <= job.class_index < model.info.num_classes:
        raise InvalidArgument(f"{job.class_index} is not one of the model's {model.info.num_classes} classes",
                              field="class_index")
    for i, request in enumerate(job.metrics):
        request.check(job.image.shape, job.mask)
        if request.metric.domain != job.domain:
            raise InvalidArgument(f"{request.metric.name} scores {request.metric.domain}-domain maps, and the map "
                                  f"sent is a {job.domain} map; set attribution_domain to match, or choose a "
                                  f"{job.domain}-domain metric", field=f"metrics[{i}]")
    batch_size = costs.batch_size(job.batch_size, model, control.budget, job.image.shape)
    costs.require(control.budget, [costs.metric_cost(r.metric, r.params, job.image.shape, batch_size, model,
                                                     control.budget, job.baseline) for r in job.metrics],
                  passes=1, what="scoring the map")
    seed = draw_seed(job.seed)
    # The streams of an explanation with this seed (service.jobs.streams): a map scored here with the seed of
    # the explanation that made it scores as it did inline, noise baselines and sampling metrics included.
    streams = Streams(seed)
    fill = job.baseline.resolve(job.image, model.info.preprocessing, streams.baseline())
    total = 1 + sum(r.forward_passes(job.image.shape) for r in job.metrics)
    predict = CountingPredict(model, control, total=total, score_space=job.score_space, batch_size=job.batch_size,
                              method="evaluate", stage="evaluate")
    clean = predict.all_classes(job.image[None])[0]
    class_index = job.class_index if job.class_index is not None else int(np.argmax(clean))
    scored = score_map(predict, job.image, attribution, class_index, job.metrics, fill=fill, mask=job.mask,
                       batch_size=batch_size, streams=streams, details={f"{job.domain}_map": attribution},
                       space=job.score_space)
    predict.finish()
    return EvaluateResult(class_index, model.info.label(class_index), scored, seed, predict.passes, predict.model_ms,
                          (time.perf_counter() - started) * 1000.0, frame,
                          job.score_space)


def _in_model_frame(job: EvaluateJob) -> tuple[np.ndarray, str]:
    """The map over the image's model input, and the frame it was sent in. A pixel map of a letterboxed image
    may come in the image's own frame (as Explain returns it): resized into the image's place, padding 0.
    Metrics always run at the model's input, where the image was explained."""
    height, width = job.image.shape[:2]
    if job.attribution.shape == (height, width):
        return job.attribution, "model_input"
    box = job.placement
    if job.domain == "pixel" and box is not None and job.attribution.shape == (box.image_height, box.image_width):
        return images.from_image_frame(job.attribution, box, height, width), "image"
    also = (f" or, as Explain returns maps of a letterboxed image, the image's own size "
            f"[{box.image_height}, {box.image_width}]" if box is not None and job.domain == "pixel" else "")
    raise InvalidArgument(f"has shape {list(job.attribution.shape)}; send the map at the image's model input size "
                          f"[{height}, {width}]{also}", field="attribution")
