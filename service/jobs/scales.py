"""Scale analyses: WCAM on an image and on corrupted or zoomed versions of it.

What the WCAM paper uses the method for (Kasmi et al. 2023): when a corruption or a
change of zoom flips a prediction, the scale profile shows which scales the model
stopped, or started, relying on. Every variant explains the same class, the one
predicted on the clean image (or the caller's), so the profiles compare.

Every variant is explained by the one explanation pipeline (``explain.explain_image``) with the job's seed: its
map is Explain's for that picture and seed, and every variant is explained with the same Sobol design (the
method's stream does not depend on the image: common random numbers, ``service.jobs.streams``), so the profiles
differ by the picture, not by the design. The corruptions draw from the seed's job stream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.corruptions import Corruption, corrupt, zoom
from service.errors import InvalidArgument
from service.explainers import footprint, get_method
from service.jobs import costs
from service.jobs.control import JobControl
from service.jobs.counting import CountingPredict
from service.jobs.evaluate import draw_seed
from service.jobs.explain import ExplainJob, ExplainResult, Targets, explain_image
from service.jobs.predict import ClassScore, top_classes
from service.jobs.streams import Streams
from service.runtime.model import LoadedModel
from service.runtime.scores import EXPLANATION_SPACE, ScoreSpace

MAX_VARIANTS = 64


@dataclass(frozen=True)
class Variant:
    name: str
    corruption: Corruption | None = None
    severity: int = 0
    zoom: float = 1.0

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.corruption is not None:
            return corrupt(image, self.corruption, self.severity, rng)
        return zoom(image, self.zoom) if self.zoom != 1.0 else image


def variants(corruptions: list[Corruption], severities: list[int], zooms: list[float]) -> list[Variant]:
    """The clean image first, then every corruption at every severity, then every zoom above 1."""
    found = [Variant("clean")]
    found += [Variant(f"{c.value} {s}", c, s) for c in corruptions for s in (severities or [1, 3, 5])]
    found += [Variant(f"zoom {z:g}x", zoom=z) for z in zooms if z != 1.0]
    if len(found) == 1:
        raise InvalidArgument("ask for at least one corruption or one zoom above 1", field="corruptions")
    if len(found) > MAX_VARIANTS:
        corrupted = len(corruptions) * len(severities or [1, 3, 5])
        blamed = "zooms" if len(found) - 1 - corrupted > corrupted else "corruptions"
        raise InvalidArgument(f"{len(found)} variants (the clean image, {corrupted} corrupted, "
                              f"{len(found) - 1 - corrupted} zoomed) exceed {MAX_VARIANTS}; ask for fewer",
                              field=blamed)
    return found


@dataclass(frozen=True)
class ScaleJob:
    image: np.ndarray
    params: Any  # WcamParams
    variants: tuple[Variant, ...]
    class_index: int | None = None
    seed: int | None = None
    score_space: ScoreSpace = EXPLANATION_SPACE
    batch_size: int | None = None


@dataclass
class VariantResult:
    variant: Variant
    image: np.ndarray
    predicted: ClassScore
    target_score: float
    explanation: ExplainResult  # the picture's, as Explain returns it for the job's seed (precision included)

    @property
    def map(self) -> np.ndarray:
        return self.explanation.maps[0]

    @property
    def details(self) -> dict[str, Any]:
        return self.explanation.details[0]


@dataclass
class ScaleResult:
    class_index: int
    label: str
    rows: list[VariantResult]
    seed: int
    forward_passes: int
    model_ms: float
    total_ms: float
    score_space: ScoreSpace = EXPLANATION_SPACE


def run_scales(model: LoadedModel, job: ScaleJob, control: JobControl | None = None) -> ScaleResult:
    started = time.perf_counter()
    control = control or JobControl()
    wcam = get_method("wcam")
    wcam.check(job.params, job.image.shape)
    if job.class_index is not None and not 0 <= job.class_index < model.info.num_classes:
        raise InvalidArgument(f"{job.class_index} is not one of the model's {model.info.num_classes} classes",
                              field="class_index")
    batch_size = costs.batch_size(job.batch_size, model, control.budget, job.image.shape)
    shape, count = job.image.shape, len(job.variants)
    explain = costs.method_cost(wcam, job.params, shape, 1, batch_size, model, control.budget)
    # The pictures (made, then stacked, with a corruption's float64 work) and, per variant, the map, the
    # wavelet map and the sufficient image kept.
    kept = footprint.F32 * footprint.pixels(shape) * (count * (3 * shape[2] + 2) + 8 * shape[2])
    costs.require(control.budget, [explain] * count, kept=kept, passes=2 * count, kept_field="corruptions",
                  what="the scale analysis")
    seed = draw_seed(job.seed)
    corruption_rng = Streams(seed).job()
    pictures = [v.apply(job.image, corruption_rng) for v in job.variants]
    # At most: every picture scored, then per picture the pure baseline and WCAM's passes (its cap).
    total = len(pictures) * (wcam.forward_passes(job.params, job.image.shape) + 2)
    predict = CountingPredict(model, control, total=total, score_space=job.score_space, batch_size=job.batch_size,
                              method=wcam.name, stage="scales")
    scores = predict.all_classes(np.stack(pictures), job.score_space)
    class_index = job.class_index if job.class_index is not None else int(np.argmax(scores[0]))
    rows = []
    for variant, picture, row_scores in zip(job.variants, pictures, scores):
        # WCAM perturbs wavelet coefficients: the baseline is Explain's default, which WCAM does not use.
        explanation = explain_image(model, ExplainJob(wcam, job.params, picture, Targets((class_index,)), seed=seed,
                                                      batch_size=job.batch_size, score_space=job.score_space),
                                    predict, batch_size, control, clean=row_scores)
        rows.append(VariantResult(variant, picture, top_classes(model, row_scores, 1)[0],
                                  float(row_scores[class_index]), explanation))
    predict.finish()
    return ScaleResult(class_index, model.info.label(class_index), rows, seed, predict.passes, predict.model_ms,
                       (time.perf_counter() - started) * 1000.0, job.score_space)
