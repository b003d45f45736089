"""The Consistency job: Brunke et al.'s (ECCV-W 2020) baseline study, made measurable on the user's model.

Several settings (a method, its parameters, its baseline) explain the same image;
the job reports how much their maps agree (Spearman, SSIM, top-k% IoU), then
scores every map with one metric under several metric baselines and reports how
much the ranking of the settings changes with that baseline (Kendall tau).

Every setting is explained by the one explanation pipeline (``explain.explain_image``) with the job's seed,
so its map is exactly Explain's for that seed and setting, and the comparisons use common random numbers
(``service.jobs.streams``): settings of one method draw the same samples whatever their baseline (with
``target_reliability`` 0, or until the earlier one stops: a shared prefix), so a difference between two
settings that differ only in baseline is the baseline's, not Monte-Carlo noise; and every map is scored under
every metric baseline from the same metric stream and the same noise (noise baselines), so the scores differ
by the map and the metric baseline only. The agreements are therefore conditional on one draw: they measure
the settings' effect, not a method's seed-to-seed reliability (that is the maps' ``precision``).
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.budget import Budget
from service.errors import InvalidArgument, ResourceExhausted
from service.explainers import footprint
from service.explainers.base import Method
from service.explainers.baselines import Baseline, BaselineKind
from service.jobs import costs
from service.jobs.control import JobControl
from service.jobs.counting import CountingPredict
from service.jobs.evaluate import MetricRequest, domain_key, draw_seed, score_map
from service.jobs.explain import ExplainJob, ExplainResult, Targets, explain_image
from service.jobs.streams import Streams
from service.metrics import agreement
from service.runtime.model import LoadedModel
from service.runtime.scores import EXPLANATION_SPACE, METRIC_SPACE, ScoreSpace

DEFAULT_METRIC_BASELINES = (Baseline(BaselineKind.BLACK), Baseline(BaselineKind.DATASET_MEAN),
                            Baseline(BaselineKind.BLUR))
MAX_SETTINGS = 64
# Maps scored: settings x metric baselines (each scoring a metric run; their Kendall matrix grows as its square).
MAX_SCORINGS = 1024


@dataclass(frozen=True)
class Setting:
    label: str
    method: Method
    params: Any
    baseline: Baseline


@dataclass(frozen=True)
class ConsistencyJob:
    image: np.ndarray
    settings: tuple[Setting, ...]
    metric: MetricRequest
    metric_baselines: tuple[Baseline, ...] = DEFAULT_METRIC_BASELINES
    class_index: int | None = None
    top_fraction: float = 0.1
    seed: int | None = None
    score_space: ScoreSpace = EXPLANATION_SPACE  # the settings'
    batch_size: int | None = None
    metric_score_space: ScoreSpace = METRIC_SPACE  # the metric's


@dataclass
class ConsistencyResult:
    class_index: int
    labels: list[str]
    maps: np.ndarray  # (S, H, W)
    spearman: np.ndarray  # (S, S)
    ssim: np.ndarray
    top_iou: np.ndarray
    metric: str
    baseline_labels: list[str]
    scores: np.ndarray  # (B, S): the metric per metric baseline and setting
    ranks: np.ndarray  # (B, S), 0 = best
    kendall_tau: np.ndarray  # (B, B)
    seed: int
    forward_passes: int
    model_ms: float
    total_ms: float
    score_space: ScoreSpace = EXPLANATION_SPACE
    metric_score_space: ScoreSpace = METRIC_SPACE
    # Per setting, its whole explanation (the baseline's report, the method's details and precision), as
    # Explain returns it for the job's seed.
    explanations: list[ExplainResult] = field(default_factory=list)


def baseline_label(baseline: Baseline) -> str:
    extra = f"={baseline.value:g}" if baseline.kind is BaselineKind.CONSTANT else (
        f"(sigma={baseline.sigma:g})" if baseline.sigma else "")
    return f"{baseline.kind.value}{extra}"


def check_budget(job: ConsistencyJob, model: LoadedModel, budget: Budget) -> int:
    """The scorings, the batch, the passes of every setting and scoring, and the memory of the largest step
    while the maps are kept; returns the batch size."""
    settings, baselines = len(job.settings), len(job.metric_baselines)
    if settings * baselines > MAX_SCORINGS:
        raise ResourceExhausted(f"{settings} settings x {baselines} metric baselines are {settings * baselines} "
                                f"scorings, over this server's limit of {MAX_SCORINGS}; give fewer metric baselines",
                                field="metric_baselines")
    shape = job.image.shape
    batch_size = costs.batch_size(job.batch_size, model, budget, shape)
    inpaint = Baseline(BaselineKind.INPAINT)
    metric_fill = inpaint if any(b.kind is BaselineKind.INPAINT for b in job.metric_baselines) else Baseline()
    parts = [costs.method_cost(s.method, s.params, shape, 1, batch_size, model, budget, s.baseline)
             for s in job.settings]
    parts.append(costs.metric_cost(job.metric.metric, job.metric.params, shape, batch_size, model, budget,
                                   metric_fill, times=settings * baselines))
    # The maps (listed, then stacked) with their details (at most WCAM's: a wavelet map and a sufficient image),
    # then the statistics of every pair (one SSIM at a time) and the signs of every pair of settings per metric
    # baseline.
    kept = footprint.F32 * settings * footprint.pixels(shape) * (3 + shape[2]) + costs.ssim_memory(shape) \
        + footprint.F64 * baselines * (settings * settings + baselines)
    costs.require(budget, parts, kept=kept, passes=1 + settings, kept_field="settings", what="the consistency study")
    return batch_size


def run_consistency(model: LoadedModel, job: ConsistencyJob, control: JobControl | None = None) -> ConsistencyResult:
    started = time.perf_counter()
    control = control or JobControl()
    shape = job.image.shape
    if not 2 <= len(job.settings) <= MAX_SETTINGS:
        raise InvalidArgument(f"give between 2 and {MAX_SETTINGS} settings to compare, not {len(job.settings)}",
                              field="settings")
    if not job.metric_baselines:
        raise InvalidArgument("give at least one metric baseline", field="metric_baselines")
    if not 0.0 < job.top_fraction <= 1.0:
        raise InvalidArgument(f"{job.top_fraction} must be in (0, 1]", field="top_fraction")
    for setting in job.settings:
        setting.method.check(setting.params, shape)
        if job.metric.metric.domain != "pixel" and domain_key(job.metric) not in setting.method.detail_maps:
            raise InvalidArgument(f"{job.metric.metric.name} scores maps in the {job.metric.metric.domain} domain, "
                                  f"which setting {setting.label!r} ({setting.method.name}) does not make; compare "
                                  "methods that make it (wcam), or choose a pixel-domain metric", field="metric")
    job.metric.check(shape, None)
    if job.class_index is not None and not 0 <= job.class_index < model.info.num_classes:
        raise InvalidArgument(f"{job.class_index} is not one of the model's {model.info.num_classes} classes",
                              field="class_index")
    batch_size = check_budget(job, model, control.budget)

    seed = draw_seed(job.seed)
    streams = Streams(seed)
    # At most: the clean image, then per setting its pure baseline and the method's passes (its cap), then every
    # map under every metric baseline.
    total = 1 + sum(s.method.forward_passes(s.params, shape) + 1 for s in job.settings) \
        + len(job.metric_baselines) * len(job.settings) * job.metric.forward_passes(shape)
    predict = CountingPredict(model, control, total=total, score_space=job.score_space, batch_size=job.batch_size,
                              method="consistency", stage="consistency")
    clean = predict.all_classes(job.image[None], job.score_space)[0]
    class_index = job.class_index if job.class_index is not None else int(np.argmax(clean))

    explanations = [explain_image(model, ExplainJob(setting.method, setting.params, job.image,
                                                    Targets((class_index,)), baseline=setting.baseline, seed=seed,
                                                    batch_size=job.batch_size, score_space=job.score_space),
                                  predict, batch_size, control, clean=clean)
                    for setting in job.settings]
    maps = np.stack([explanation.maps[0] for explanation in explanations])

    rows = []
    for baseline in job.metric_baselines:  # one fill at a time: there may be hundreds of metric baselines
        fill = baseline.resolve(job.image, model.info.preprocessing, streams.baseline())
        rows.append([score_map(predict, job.image, explanation.maps[0], class_index, (job.metric,), fill=fill,
                               mask=None, batch_size=batch_size, streams=streams, details=explanation.details[0],
                               space=job.metric_score_space)[0].result.score
                     for explanation in explanations])
    scores = np.array(rows)
    better_first = -scores if job.metric.metric.higher_is_better else scores
    ranks = np.argsort(np.argsort(better_first, axis=1, kind="stable"), axis=1, kind="stable")
    kendall = agreement.kendall_matrix(scores)
    predict.finish()
    return ConsistencyResult(
        class_index=class_index,
        labels=[s.label for s in job.settings],
        maps=maps,
        spearman=agreement.pairwise(maps, agreement.spearman, control.checkpoint),
        ssim=agreement.pairwise(maps, agreement.ssim, control.checkpoint),
        top_iou=agreement.pairwise(maps, functools.partial(agreement.top_iou, fraction=job.top_fraction),
                                   control.checkpoint),
        metric=job.metric.metric.name,
        baseline_labels=[baseline_label(b) for b in job.metric_baselines],
        scores=scores,
        ranks=ranks,
        kendall_tau=kendall,
        seed=seed,
        forward_passes=predict.passes,
        model_ms=predict.model_ms,
        total_ms=(time.perf_counter() - started) * 1000.0,
        score_space=job.score_space,
        metric_score_space=job.metric_score_space,
        explanations=explanations,
    )
