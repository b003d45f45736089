"""The Measure job: the five salience measures of one method's maps over a set of images (Crum et al. 2023).

Each image's class is the model's prediction on the clean image, kept fixed through noise, transforms and
degradation, so every map explains the same decision. Every explanation runs through ``run_explain`` with a
seed derived from the job's, so the maps of one image and measure are reproducible, and every map of an image
(noisy, transformed, degraded, on another model) uses the clean map's seed, hence its draws (common random
numbers, ``service.jobs.streams``). The per-image measures are ``service.measures.image.measure_image``, which
audits use too.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.budget import Budget
from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Method
from service.explainers.baselines import Baseline
from service.explainers.precision import Precision
from service.jobs import costs
from service.jobs.aggregate import target_reliability, without_maps
from service.jobs.control import JobControl
from service.jobs.evaluate import draw_seed
from service.jobs.explain import ExplainJob, Targets, run_explain
from service.measures import summary
from service.measures.degradation import MODES
from service.measures.image import measure_image
from service.measures.out_of_set import LEVELS
from service.measures.stability import stability
from service.measures.transforms import transforms
from service.runtime.model import LoadedModel
from service.runtime.scores import EXPLANATION_SPACE, ScoreSpace

MEASURES = ("entropy", "out_of_set", "transforms", "stability", "degradation")


@dataclass(frozen=True)
class MeasureJob:
    images: tuple[np.ndarray, ...]  # (H, W, C) pixels in [0, 1] at the model's input size
    method: Method
    params: Any
    measures: tuple[str, ...] = MEASURES
    # Other models for stability, independently trained on the same task (same input and classes).
    others: tuple[LoadedModel, ...] = ()
    noise_levels: tuple[float, ...] = LEVELS
    baseline: Baseline = Baseline()
    seed: int | None = None
    score_space: ScoreSpace = EXPLANATION_SPACE  # the method's, and the out-of-set and degradation scores
    batch_size: int | None = None


@dataclass
class MeasureResult:
    class_indices: list[int]
    values: dict[str, Any]  # measure -> its per-image values and summaries
    seed: int
    forward_passes: int
    model_ms: float
    total_ms: float
    models: list[str] = field(default_factory=list)
    score_space: ScoreSpace = EXPLANATION_SPACE
    # Per image, the clean map's precision (without its standard error map); None for a deterministic method.
    clean_precision: list[Precision | None] = field(default_factory=list)
    # The reliability of every map the measures made, clean and changed; empty for a deterministic method.
    reliabilities: list[float] = field(default_factory=list)
    target_reliability: float = 0.0  # the method's, resolved (0 for a deterministic method)


def check(job: MeasureJob, model: LoadedModel) -> None:
    if not job.images:
        raise InvalidArgument("send at least one image", field="images")
    unknown = set(job.measures) - set(MEASURES)
    if unknown or not job.measures:
        raise InvalidArgument(f"name measures among {list(MEASURES)}", field="measures")
    if "stability" in job.measures and not job.others:
        raise InvalidArgument("stability compares models: name at least one other model trained on the same task",
                              field="stability_models")
    for other in job.others:
        takes = all(other.accepts(image.shape) for image in job.images)
        if not takes or other.info.num_classes != model.info.num_classes:
            raise InvalidArgument(f"{other.info.name} takes {other.info.image_shape} with {other.info.num_classes} "
                                  f"classes, {model.info.name} {model.info.image_shape} with "
                                  f"{model.info.num_classes}: stability needs models of the same task",
                                  field="stability_models")
    levels = np.asarray(job.noise_levels, dtype=np.float64)
    if not len(levels) or not ((0 <= levels) & (levels <= 1)).all() or (np.diff(levels) <= 0).any():
        raise InvalidArgument("give noise amounts in [0, 1] in ascending order, each once", field="noise_levels")
    for shape in costs.distinct_shapes(job.images):  # a dynamic-size model takes each image at its own size
        job.method.check(job.params, shape)


def check_budget(job: MeasureJob, model: LoadedModel, budget: Budget) -> None:
    """Per image, the explanations each measure asks for (the clean one, one per noise amount above 0, one per
    transform, one per other model, one per degradation mode), each a method run and two passes, and the
    scored images; the largest run's memory plus the noisy images, a degradation's blurs and an SSIM."""
    shape = costs.largest_shape(job.images)
    batch = costs.batch_size(job.batch_size, model, budget, shape)
    run = costs.method_cost(job.method, job.params, shape, 1, batch, model, budget, job.baseline)
    run = dataclasses.replace(run, passes=run.passes + 2)
    counts = {"clean": 1,
              "out_of_set": sum(1 for level in job.noise_levels if level != 0) if "out_of_set" in job.measures else 0,
              "transforms": len(transforms(*shape[:2])) if "transforms" in job.measures else 0,
              "stability": len(job.others) if "stability" in job.measures else 0,
              "degradation": len(MODES) if "degradation" in job.measures else 0}
    fields = {"out_of_set": "noise_levels", "stability": "stability_models"}
    images = len(job.images)
    parts = [dataclasses.replace(run, passes=run.passes * count * images,
                                 passes_field=fields.get(name, run.passes_field))
             for name, count in counts.items() if count]
    scored = images * ((len(job.noise_levels) if "out_of_set" in job.measures else 0) + counts["degradation"])
    values = footprint.pixels(shape) * shape[2]
    kept = (footprint.F32 * values * (len(job.noise_levels) + 4) + 3 * footprint.F64 * values
            + costs.ssim_memory(shape))
    costs.require(budget, parts, kept=kept, passes=scored, kept_field="noise_levels", what="the measures")


def run_measure(model: LoadedModel, job: MeasureJob, control: JobControl | None = None) -> MeasureResult:
    started = time.perf_counter()
    control = control or JobControl()
    check(job, model)
    check_budget(job, model, control.budget)
    seed = draw_seed(job.seed)
    counts = {"passes": 0, "model_ms": 0.0}
    reliabilities: list[float] = []

    def explain(on: LoadedModel, image: np.ndarray, class_index: int | None, explain_seed: int):
        result = run_explain(on, ExplainJob(job.method, job.params, image,
                                            Targets((class_index,) if class_index is not None else ()),
                                            baseline=job.baseline, seed=explain_seed, batch_size=job.batch_size,
                                            score_space=job.score_space), control)
        counts["passes"] += result.forward_passes
        counts["model_ms"] += result.model_ms
        if result.precision is not None:
            reliabilities.append(float(result.precision.reliability[0]))
        return result

    def score(images: np.ndarray, class_index: int) -> np.ndarray:
        control.checkpoint()
        counts["passes"] += len(images)
        return model.predict(images, score_space=job.score_space, batch_size=job.batch_size)[:, class_index]

    rows: dict[str, list] = {name: [] for name in job.measures}
    class_indices, clean_precision = [], []
    for image, stream in zip(job.images, np.random.SeedSequence(seed).spawn(len(job.images))):
        explain_seed = int(stream.generate_state(1)[0])
        clean = explain(model, image, None, explain_seed)
        class_index, attribution = clean.targets[0].class_index, clean.maps[0]
        class_indices.append(class_index)
        clean_precision.append(without_maps(clean.precision))

        def explain_as_clean(x: np.ndarray, on: LoadedModel = model) -> np.ndarray:
            """The map of ``x`` for the clean image's class, with its seed: the same draws (common random
            numbers), so a change of map is the image's or the model's, not the sampler's."""
            return explain(on, x, class_index, explain_seed).maps[0]

        measured = measure_image(job.measures, image, attribution, clean.targets[0].score, explain_as_clean,
                                 lambda xs: score(xs, class_index), np.random.default_rng(stream), job.noise_levels,
                                 control.checkpoint)
        for name, value in measured.items():
            rows[name].append(value)
        if "stability" in rows:
            # The other models explain with the same draws too: stability is then how much the model moves the
            # map with the sampling held fixed, not a seed-to-seed reliability (which needs independent draws).
            maps = np.stack([attribution] + [explain_as_clean(image, other) for other in job.others])
            rows["stability"].append(stability(maps[:, None], control.checkpoint)[0])
    return MeasureResult(class_indices=class_indices, values=_summarised(rows, job), seed=seed,
                         forward_passes=counts["passes"], model_ms=counts["model_ms"],
                         total_ms=(time.perf_counter() - started) * 1000.0,
                         models=[model.info.name, *(other.info.name for other in job.others)],
                         score_space=job.score_space, clean_precision=clean_precision, reliabilities=reliabilities,
                         target_reliability=target_reliability(job.params))


def _summarised(rows: dict[str, list], job: MeasureJob) -> dict[str, Any]:
    """Per-image values and their summaries, per measure."""
    values: dict[str, Any] = {}
    if "entropy" in rows:
        histogram, spatial = (list(v) for v in zip(*rows["entropy"]))
        values["entropy"] = {"histogram": histogram, "spatial": spatial, "histogram_summary": summary(histogram),
                             "spatial_summary": summary(spatial)}
    if "out_of_set" in rows:
        curves = rows["out_of_set"]
        values["out_of_set"] = {"levels": list(job.noise_levels), "curves": curves,
                                "score_auc_summary": summary([c["score_auc"] for c in curves]),
                                "ssim_auc_summary": summary([c["ssim_auc"] for c in curves])}
    if "transforms" in rows:
        names = list(rows["transforms"][0])
        values["transforms"] = {name: {"ssim": [row[name] for row in rows["transforms"]],
                                       "summary": summary([row[name] for row in rows["transforms"]])}
                                for name in names}
    if "stability" in rows:
        pairs = np.array(rows["stability"])  # (images, pairs)
        values["stability"] = {"pairs": pairs.tolist(), "summary": summary(pairs.ravel())}
    if "degradation" in rows:
        values["degradation"] = {}
        for mode in MODES:
            drops = [row[mode][0] for row in rows["degradation"]]
            similarity = [row[mode][1] for row in rows["degradation"]]
            values["degradation"][mode] = {"score_drop": drops, "ssim": similarity,
                                           "score_drop_summary": summary(drops), "ssim_summary": summary(similarity)}
    return values
