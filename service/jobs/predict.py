"""The Predict job: class scores and the top classes of a batch of images."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from service.errors import InvalidArgument
from service.jobs import costs
from service.jobs.control import JobControl
from service.jobs.counting import CountingPredict
from service.runtime.model import LoadedModel
from service.runtime.scores import ScoreSpace, positive_classes

DEFAULT_TOP_K = 5


@dataclass(frozen=True)
class ClassScore:
    class_index: int
    label: str
    score: float


@dataclass(frozen=True)
class PredictResult:
    scores: np.ndarray  # (N, classes)
    top: list[list[ClassScore]]
    model_ms: float
    score_space: ScoreSpace = ScoreSpace.RAW
    # Per image, a sigmoid head's predicted classes, highest score first (empty for softmax-family models).
    above_threshold: list[list[ClassScore]] | None = None


def top_classes(model: LoadedModel, scores: np.ndarray, k: int) -> list[ClassScore]:
    order = np.argsort(-scores, kind="stable")[:k]
    return [ClassScore(int(i), model.info.label(int(i)), float(scores[i])) for i in order]


def run_predict(model: LoadedModel, images: np.ndarray | Sequence[np.ndarray], *, top_k: int = 0,
                score_space: ScoreSpace = ScoreSpace.RAW, batch_size: int | None = None,
                control: JobControl | None = None) -> PredictResult:
    """Scores of ``images`` (an (N, H, W, C) array, or a list of images each of its model input size: a
    dynamic-size model takes each at its own), one batch per call to the model (the smaller of ``batch_size``
    and the model's at that size), consecutive images of one size batched together, with the control's
    checkpoint between calls and its budget's batch size."""
    if len(images) == 0:
        raise InvalidArgument("send at least one image", field="images")
    control = control or JobControl()
    k = top_k or DEFAULT_TOP_K
    # Through CountingPredict, as every other job, so that the server's telemetry counts these passes too; one
    # call per chunk, so that its checkpoint runs between them.
    predict = CountingPredict(model, control, total=len(images), score_space=score_space, batch_size=None,
                              method="predict", stage="predict")
    outputs = []
    for shape, group in itertools.groupby(images, key=lambda image: image.shape):
        group = list(group)
        limit = model.batch_limit(*shape[:2])
        requested = batch_size if batch_size and batch_size < limit else None
        chunk = costs.batch_size(requested, model, control.budget, shape)
        predict.batch_size = chunk
        outputs.extend(predict.outputs(np.stack(group[start:start + chunk])) for start in range(0, len(group), chunk))
    scores = np.concatenate([o.scores(score_space) for o in outputs])
    positives = [classes for o in outputs for classes in positive_classes(o, model.info.threshold)]
    above = [sorted((ClassScore(i, model.info.label(i), float(row[i])) for i in classes), key=lambda s: -s.score)
             for row, classes in zip(scores, positives)]
    return PredictResult(scores, [top_classes(model, row, k) for row in scores], predict.model_ms, score_space, above)
