"""The Explain job: resolve targets, run one method with progress and cancellation, report the baseline,
and score the maps with any metrics asked for inline.

``explain_image`` is the one explanation pipeline: Explain runs it once, and the jobs that compare
explanations (Consistency, AnalyzeScales) run it per setting or variant on their own counted ``predict``;
Aggregate, Measure and audits run the whole Explain job. So an explanation's seed layout, score space,
precision and metrics are the same wherever it is made. Its draws come from the seed's independent streams
(``service.jobs.streams``): the method's samples depend on the seed and the method only, not on the baseline,
the image or the metrics asked, so settings compared under one seed share them (common random numbers).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from service.budget import Budget
from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Method, as_output
from service.explainers.baselines import Baseline
from service.explainers.precision import Precision
from service.jobs import costs
from service.jobs.control import JobControl
from service.jobs.counting import CountingPredict
from service.jobs.evaluate import MetricRequest, Scored, domain_key, draw_seed, score_map
from service.jobs.predict import ClassScore, top_classes
from service.jobs.streams import Streams
from service.jobs.verified import verified_inputs
from service.runtime.images import Placement
from service.runtime.model import LoadedModel
from service.runtime.scores import EXPLANATION_SPACE, METRIC_SPACE, ScoreSpace


@dataclass(frozen=True)
class Targets:
    """Classes to explain: explicit indices, else the top k, else the predicted class."""

    class_indices: tuple[int, ...] = ()
    top_k: int = 0

    @property
    def count(self) -> int:
        return len(self.class_indices) or self.top_k or 1

    def check(self, classes: int) -> None:
        """INVALID_ARGUMENT for classes the model does not have, before any cost is counted: 5,000 targets of a
        5-class model are out of range, not too many."""
        if self.class_indices:
            for index in self.class_indices:
                if not 0 <= index < classes:
                    raise InvalidArgument(f"class {index} is out of range: the model has {classes} classes "
                                          f"(0..{classes - 1})", field="target.class_indices")
            if len(set(self.class_indices)) != len(self.class_indices):
                raise InvalidArgument("holds a class twice", field="target.class_indices")
        elif (self.top_k or 1) > classes:
            raise InvalidArgument(f"top_k {self.top_k} exceeds the model's {classes} classes", field="target.top_k")

    def resolve(self, scores: np.ndarray) -> list[int]:
        self.check(scores.size)
        if self.class_indices:
            return list(self.class_indices)
        return [int(i) for i in np.argsort(-scores, kind="stable")[:self.top_k or 1]]


@dataclass(frozen=True)
class ExplainJob:
    method: Method
    params: Any
    image: np.ndarray  # (H, W, C) float32 pixels in [0, 1] at its model input size (LoadedModel.input_size)
    targets: Targets = Targets()
    baseline: Baseline = Baseline()
    seed: int | None = None
    batch_size: int | None = None
    score_space: ScoreSpace = EXPLANATION_SPACE  # the method's
    metrics: tuple[MetricRequest, ...] = ()
    mask: np.ndarray | None = None  # (H, W) bool, for localisation metrics
    # Where a letterboxed image lies in ``image``: the maps are returned in the image's own frame.
    placement: Placement | None = None
    metric_score_space: ScoreSpace = METRIC_SPACE  # the metrics'


@dataclass
class ExplainResult:
    method: str
    parameters: dict[str, Any]
    targets: list[ClassScore]  # explained classes with their clean scores
    maps: np.ndarray  # (T, H, W) float32
    seed: int
    forward_passes: int
    model_ms: float
    total_ms: float
    baseline_scores: list[float]
    baseline_predicted: ClassScore
    image: np.ndarray
    score_space: ScoreSpace = EXPLANATION_SPACE
    metrics: list[list[Scored]] | None = None  # per target
    details: list[dict[str, Any]] | None = None  # per target, method-specific (see explainers.base.Output)
    placement: Placement | None = None  # the job's: ``maps`` are at the model input, the response maps them back
    metric_score_space: ScoreSpace = METRIC_SPACE
    # Randomized methods: the maps' standard errors (T, H, W) and reliability (T,), samples used (Output.precision).
    precision: Precision | None = None

    @property
    def parameters_json(self) -> str:
        return json.dumps(self.parameters, sort_keys=True)


def explain_costs(method: Method, params: Any, image_shape: tuple[int, int, int], targets: int,
                  metrics: tuple[MetricRequest, ...], batch: int, model: LoadedModel, budget: Budget,
                  baseline: Baseline = Baseline()) -> list[costs.Cost]:
    """The method on ``targets`` classes, then each metric on each map, holding the maps and their details."""
    kept = footprint.F32 * targets * footprint.pixels(image_shape) * (image_shape[2] + 2)
    scored = [costs.metric_cost(r.metric, r.params, image_shape, batch, model, budget, baseline, times=targets)
              for r in metrics]
    return [costs.method_cost(method, params, image_shape, targets, batch, model, budget, baseline),
            *(dataclasses.replace(cost, memory=cost.memory + kept) for cost in scored)]


def check_explain(model: LoadedModel, job: "ExplainJob", budget: Budget) -> int:
    """Every check of an explanation before it runs, invalid arguments first, then the budget; returns the
    batch size to use."""
    shape = job.image.shape
    job.method.check(job.params, shape)
    for request in job.metrics:
        request.check(shape, job.mask)
        if request.metric.domain != "pixel" and domain_key(request) not in job.method.detail_maps:
            raise InvalidArgument(f"{request.metric.name} scores maps in the {request.metric.domain} domain, which "
                                  f"{job.method.name} does not make; use it with a method that does (wcam), or "
                                  "Evaluate a map of that domain", field="metrics")
    job.targets.check(model.info.num_classes)
    batch_size = costs.batch_size(job.batch_size, model, budget, shape)
    parts = explain_costs(job.method, job.params, shape, job.targets.count, job.metrics, batch_size, model, budget,
                          job.baseline)
    costs.require(budget, parts, passes=2, what=f"explaining with {job.method.name}")
    return batch_size


def explain_passes(job: ExplainJob) -> int:
    """Forward passes of ``run_explain`` at most: the clean image and the pure baseline (its report), the
    method's (its cap: a randomized method may stop earlier) and every metric on every target."""
    shape = job.image.shape
    metric_passes = sum(r.forward_passes(shape) for r in job.metrics) * job.targets.count
    return job.method.forward_passes(job.params, shape) + 2 + metric_passes


def run_explain(model: LoadedModel, job: ExplainJob, control: JobControl | None = None) -> ExplainResult:
    control = control or JobControl()
    started = time.perf_counter()
    batch_size = check_explain(model, job, control.budget)
    job = dataclasses.replace(job, seed=draw_seed(job.seed))
    total = explain_passes(job)
    predict = CountingPredict(model, control, total=total, score_space=job.score_space, batch_size=job.batch_size,
                              method=job.method.name)
    control.report("explain", 0, total)
    result = explain_image(model, job, predict, batch_size, control)
    predict.finish()
    result.total_ms = (time.perf_counter() - started) * 1000.0
    return result


def explain_image(model: LoadedModel, job: ExplainJob, predict: CountingPredict, batch_size: int,
                  control: JobControl, clean: np.ndarray | None = None) -> ExplainResult:
    """The explanation of ``job`` (checked, its seed drawn) on the caller's counted ``predict``: the clean
    image and the pure baseline scored, the targets resolved, the method run, its maps scored with the job's
    metrics. ``clean`` (the image's scores of every class in ``job.score_space``) saves the clean pass where
    the caller already has it. Its passes and model time are those ``predict`` counted during the call."""
    started, passes, model_ms = time.perf_counter(), predict.passes, predict.model_ms
    streams = Streams(job.seed)
    fill = job.baseline.resolve(job.image, model.info.preprocessing, streams.baseline())
    if clean is None:
        clean, on_baseline = predict.all_classes(np.stack([job.image, fill.image]), job.score_space)
    else:
        on_baseline = predict.all_classes(fill.image[None], job.score_space)[0]
    targets = job.targets.resolve(clean)
    rng = streams.method(job.method.name)  # EVA's hybrid head draws from it as well: it is the method's sampling
    verified = verified_inputs(model, job.params, control, clean, targets, rng, job.image.shape) \
        if job.method.verified else {}
    output = as_output(job.method.attribute(predict.columns(targets, job.score_space), job.image, job.params,
                                            baseline=fill, batch_size=batch_size, rng=rng,
                                            checkpoint=control.checkpoint, **verified))
    maps, details = output.maps, output.details
    metrics = [score_map(predict, job.image, attribution, target, job.metrics, fill=fill, mask=job.mask,
                         batch_size=batch_size, streams=streams, details=target_details,
                         space=job.metric_score_space)
               for target, attribution, target_details in zip(targets, maps, details)] if job.metrics else None
    return ExplainResult(
        method=job.method.name,
        parameters=asdict(job.params),
        targets=[ClassScore(i, model.info.label(i), float(clean[i])) for i in targets],
        maps=maps,
        seed=job.seed,
        forward_passes=predict.passes - passes,
        model_ms=predict.model_ms - model_ms,
        total_ms=(time.perf_counter() - started) * 1000.0,
        baseline_scores=[float(on_baseline[i]) for i in targets],
        baseline_predicted=top_classes(model, on_baseline, 1)[0],
        image=job.image,
        score_space=job.score_space,
        metrics=metrics,
        details=details,
        placement=job.placement,
        metric_score_space=job.metric_score_space,
        precision=output.precision,
    )
