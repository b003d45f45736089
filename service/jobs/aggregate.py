"""The Aggregate job: several explanations of the same images combined into one, scored by one fidelity metric
against every member (Mahlau & Nolde 2022, arXiv 2207.01565).

Members are the caller's maps (one image) and/or methods run first, each by the Explain job. Every member map
and every aggregate of an image is scored by the same metric with the same seed and baseline (the same metric
stream and noise, ``service.jobs.streams``), so the comparison is paired: common random numbers where settings
are compared. The members' own draws are *not* shared: each member of each image explains with its own seed, so
two members of one method (two settings of RISE) carry independent sampling noise, which the aggregate averages
out instead of adding twice, and the images' errors are independent, so the mean over images averages the
sampler's noise rather than repeating one draw on every image. With
``search``, every normalisation x aggregator x kappa (kappa only where it counts: ucb, lcb) is scored, the
best on average over the images is chosen, and the whole table is returned.

That choice and its ``gain`` are in-sample: chosen and scored on the same images, so the gain includes the
luck of picking the best of many combinations. With a ``split`` (``service.ensembles.validation``), the
combination and the best single member are also chosen on selection images and scored on held-out ones, over
repeated random splits; the maps and every per-image score are computed once and only split afterwards.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.ensembles.aggregate import AGGREGATORS, REFERENCE_QUANTILE, aggregate
from service.ensembles.normalise import NORMALISATIONS, normalise
from service.ensembles.validation import SplitScore, SplitSpec, Spread, check_split, draw_splits, score_split, spread
from service.budget import Budget
from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Method
from service.explainers.baselines import Baseline
from service.explainers.precision import Precision
from service.jobs import costs
from service.jobs.control import JobControl
from service.jobs.evaluate import EvaluateJob, MetricRequest, draw_seed, run_evaluate
from service.jobs.explain import ExplainJob, Targets, run_explain
from service.runtime.model import LoadedModel
from service.runtime.scores import EXPLANATION_SPACE, METRIC_SPACE, ScoreSpace

KAPPAS = (0.5, 1.0, 2.0)  # the reference note's grid for the spread-aware bounds
WITH_KAPPA = ("ucb", "lcb")


@dataclass(frozen=True)
class Combination:
    normalisation: str
    aggregator: str
    kappa: float
    score: float = float("nan")  # the metric, averaged over the images


@dataclass(frozen=True)
class AggregateJob:
    images: tuple[np.ndarray, ...]  # (H, W, C) pixels in [0, 1], each at its model input size
    metric: MetricRequest
    maps: tuple[np.ndarray, ...] = ()  # the caller's (H, W) maps, with one image only
    methods: tuple[tuple[Method, Any], ...] = ()
    normalisation: str = "max_abs"
    absolute: bool = False
    aggregator: str = "mean"
    kappa: float = 1.0
    reference_quantile: float = REFERENCE_QUANTILE
    search: bool = False
    kappas: tuple[float, ...] = KAPPAS
    class_index: int | None = None
    baseline: Baseline = Baseline()
    seed: int | None = None
    score_space: ScoreSpace = EXPLANATION_SPACE  # the member methods'
    batch_size: int | None = None
    metric_score_space: ScoreSpace = METRIC_SPACE  # the metric's, on members and aggregates
    split: SplitSpec = SplitSpec()  # held-out validation; none by default (in-sample only, as before)


@dataclass
class AggregateResult:
    class_indices: list[int]  # per image
    member_labels: list[str]
    member_scores: np.ndarray  # (images, members)
    chosen: Combination
    table: list[Combination]  # every combination scored (one row without search)
    aggregates: np.ndarray  # (images, H, W), the chosen combination's
    aggregate_scores: np.ndarray  # (images,)
    gain: float  # chosen mean score over the best member's mean, signed so that > 0 is better
    metric: str
    higher_is_better: bool
    seed: int
    forward_passes: int
    model_ms: float
    total_ms: float
    member_maps: np.ndarray = field(default_factory=lambda: np.zeros(0))  # (images, members, H, W)
    score_space: ScoreSpace = EXPLANATION_SPACE
    metric_score_space: ScoreSpace = METRIC_SPACE
    # Per image and member, the member map's precision; None for a given map or a deterministic method.
    member_precision: list[list[Precision | None]] = field(default_factory=list)
    member_target_reliability: list[float] = field(default_factory=list)  # per member, resolved; 0 for a map
    # With a split: per split, the choice on the selection images scored on both sides; the gains over splits.
    splits: list[SplitScore] = field(default_factory=list)
    held_out_gain: Spread | None = None
    selection_gain: Spread | None = None
    split_seed: int | None = None


def target_reliability(params: Any) -> float:
    """The target a method's parameters ask for (0 for a deterministic method, which has none)."""
    return float(getattr(params, "target_reliability", 0.0))


def without_maps(precision: Precision | None) -> Precision | None:
    """A member's precision as the job keeps it: its numbers, not its standard error map (the response carries
    none, and the budget counts only the members' maps)."""
    if precision is None:
        return None
    return dataclasses.replace(precision, standard_error=np.zeros((0, 0, 0), np.float32))


def check(job: AggregateJob, classes: int) -> None:
    members = len(job.maps) + len(job.methods)
    if not job.images:
        raise InvalidArgument("send at least one image", field="images")
    image_shape = job.images[0].shape
    if len(costs.distinct_shapes(job.images)) > 1:  # only a dynamic-size model keeps images at their own sizes
        raise InvalidArgument("the images have different sizes, which this dynamic-size model keeps, and the "
                              "aggregation returns its images' maps as one tensor: send images of one size",
                              field="images")
    if members < 1:
        raise InvalidArgument("give the members: maps, methods to run, or both", field="methods")
    if job.maps and len(job.images) != 1:
        raise InvalidArgument("maps go with exactly one image; to aggregate over several images, name methods",
                              field="maps")
    for i, attribution in enumerate(job.maps):
        if attribution.shape != image_shape[:2] or not np.all(np.isfinite(attribution)):
            raise InvalidArgument(f"must be a finite map of the image's model input size {list(image_shape[:2])}",
                                  field=f"maps[{i}]")
    if job.normalisation not in NORMALISATIONS:
        raise InvalidArgument(f"{job.normalisation!r} is not one of {list(NORMALISATIONS)}", field="normalisation")
    if job.aggregator not in AGGREGATORS:
        raise InvalidArgument(f"{job.aggregator!r} is not one of {list(AGGREGATORS)}", field="aggregator")
    if not (np.isfinite(job.kappa) and job.kappa >= 0):
        raise InvalidArgument("kappa must be a finite number >= 0", field="kappa")
    if not job.kappas or not all(np.isfinite(k) and k >= 0 for k in job.kappas):
        raise InvalidArgument("every kappa must be a finite number >= 0", field="kappas")
    if not 0 <= job.reference_quantile <= 1:
        raise InvalidArgument("reference_quantile must be in [0, 1]", field="reference_quantile")
    if job.class_index is not None and not 0 <= job.class_index < classes:
        raise InvalidArgument(f"{job.class_index} is not one of the model's {classes} classes (0..{classes - 1})",
                              field="class_index")
    if job.metric.metric.domain != "pixel" or job.metric.metric.needs_mask:
        raise InvalidArgument(f"{job.metric.metric.name} cannot rank aggregates: use a pixel-domain fidelity metric "
                              "(deletion, insertion, mu_fidelity, morf, lerf)", field="metric")
    for method, params in job.methods:
        method.check(params, image_shape)
    job.metric.check(image_shape, None)
    check_split(job.split, len(job.images))


def check_budget(job: AggregateJob, model: LoadedModel, rows: int, budget: Budget) -> None:
    """Per image: every method run, every member and aggregate scored (a clean pass and the metric's), the
    aggregates of every combination and the members' maps kept (float64) until the end."""
    shape, images = job.images[0].shape, len(job.images)
    batch = costs.batch_size(job.batch_size, model, budget, shape)
    members = len(job.maps) + len(job.methods)
    runs = [costs.method_cost(method, params, shape, 1, batch, model, budget, job.baseline)
            for method, params in job.methods]
    scoring = costs.metric_cost(job.metric.metric, job.metric.params, shape, batch, model, budget, job.baseline,
                                times=images * (members + rows))
    if job.search and rows > 2 * members:  # the combinations are what a caller would cut
        scoring = dataclasses.replace(scoring, passes_field="kappas")
    pixels = footprint.pixels(shape)
    kept = (footprint.F64 * pixels * images * (2 * members + rows) + footprint.F32 * pixels * images * (members + 1)
            + 6 * footprint.F64 * pixels * members)
    costs.require(budget, [*runs * images, scoring], kept=kept,
                  passes=images * (1 + 2 * len(job.methods) + members + rows),
                  kept_field="kappas" if job.search and rows > 2 * members else "images", what="the aggregation")


def combinations(job: AggregateJob) -> list[Combination]:
    if not job.search:
        return [Combination(job.normalisation, job.aggregator, job.kappa if job.aggregator in WITH_KAPPA else 0.0)]
    return [Combination(normalisation, aggregator, kappa)
            for normalisation in NORMALISATIONS for aggregator in AGGREGATORS
            for kappa in (job.kappas if aggregator in WITH_KAPPA else (0.0,))]


def run_aggregate(model: LoadedModel, job: AggregateJob, control: JobControl | None = None) -> AggregateResult:
    started = time.perf_counter()
    control = control or JobControl()
    check(job, model.info.num_classes)
    rows = combinations(job)
    check_budget(job, model, len(rows), control.budget)
    seed = draw_seed(job.seed)
    # One seed stream per image: adding an image changes no other image's maps or scores.
    streams = np.random.SeedSequence(seed).spawn(len(job.images))
    passes, model_ms = 0, 0.0
    names = [method.name for method, _ in job.methods]
    labels = [f"map {i}" for i in range(len(job.maps))] + [
        name if names.count(name) == 1 else f"{name} #{names[:i + 1].count(name)}" for i, name in enumerate(names)]
    class_indices, member_maps, member_scores, row_scores, row_maps = [], [], [], [], []
    member_precision: list[list[Precision | None]] = []

    def score(image: np.ndarray, attribution: np.ndarray, class_index: int, metric_seed: int) -> float:
        nonlocal passes, model_ms
        result = run_evaluate(model, EvaluateJob(image, attribution, (job.metric,), class_index,
                                                 baseline=job.baseline, seed=metric_seed,
                                                 score_space=job.metric_score_space, batch_size=job.batch_size),
                              control)
        passes, model_ms = passes + result.forward_passes, model_ms + result.model_ms
        return result.scored[0].result.score

    for image, stream in zip(job.images, streams):
        # The metric's seed comes first, so adding a member changes no other member's score.
        metric_stream, *method_seeds = stream.spawn(len(job.methods) + 1)
        metric_seed = int(metric_stream.generate_state(1)[0])
        maps, class_index = list(job.maps), job.class_index
        precisions: list[Precision | None] = [None] * len(job.maps)
        for (method, params), method_seed in zip(job.methods, method_seeds):
            explained = run_explain(model, ExplainJob(
                method, params, image, Targets((class_index,) if class_index is not None else ()),
                baseline=job.baseline, seed=int(method_seed.generate_state(1)[0]), batch_size=job.batch_size,
                score_space=job.score_space), control)
            passes, model_ms = passes + explained.forward_passes, model_ms + explained.model_ms
            class_index = explained.targets[0].class_index  # the first method fixes the class for the rest
            maps.append(explained.maps[0])
            precisions.append(without_maps(explained.precision))
        if class_index is None:  # maps only: the predicted class
            control.checkpoint()
            class_index = int(np.argmax(model.predict(image[None], score_space=job.score_space)[0]))
            passes += 1
        stack = np.stack(maps).astype(np.float64)
        class_indices.append(class_index)
        member_precision.append(precisions)
        member_maps.append(stack)
        member_scores.append([score(image, m, class_index, metric_seed) for m in stack])
        aggregates = []
        for row in rows:
            control.checkpoint()
            aggregates.append(aggregate(normalise(stack, row.normalisation, absolute=job.absolute), row.aggregator,
                                        kappa=row.kappa, reference_quantile=job.reference_quantile))
        row_maps.append(aggregates)
        row_scores.append([score(image, a, class_index, metric_seed) for a in aggregates])

    member_scores, row_scores = np.array(member_scores), np.array(row_scores)  # (images, members), (images, rows)
    sign = 1.0 if job.metric.metric.higher_is_better else -1.0
    means = row_scores.mean(axis=0)
    best = int(np.argmax(sign * means))
    table = [Combination(row.normalisation, row.aggregator, row.kappa, float(mean)) for row, mean in zip(rows, means)]
    best_member = float(np.max(sign * member_scores.mean(axis=0)))
    split_seed = (job.split.seed if job.split.seed is not None else seed) if job.split.enabled else None
    splits = [score_split(member_scores, row_scores, job.metric.metric.higher_is_better, selection, held_out)
              for selection, held_out in draw_splits(job.split, len(job.images), split_seed)] \
        if job.split.enabled else []
    return AggregateResult(
        class_indices=class_indices, member_labels=labels, member_scores=member_scores, chosen=table[best],
        table=table, aggregates=np.stack([maps[best] for maps in row_maps]).astype(np.float32),
        aggregate_scores=row_scores[:, best], gain=float(sign * means[best] - best_member),
        metric=job.metric.metric.name, higher_is_better=job.metric.metric.higher_is_better, seed=seed,
        forward_passes=passes, model_ms=model_ms, total_ms=(time.perf_counter() - started) * 1000.0,
        member_maps=np.stack(member_maps).astype(np.float32), score_space=job.score_space,
        metric_score_space=job.metric_score_space, member_precision=member_precision,
        member_target_reliability=[0.0] * len(job.maps) + [target_reliability(p) for _, p in job.methods],
        splits=splits, split_seed=split_seed,
        held_out_gain=spread([s.held_out_gain for s in splits]) if splits else None,
        selection_gain=spread([s.selection_gain for s in splits]) if splits else None)
