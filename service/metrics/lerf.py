"""LeRF: Least Relevant First region perturbation, scored as AOPC (Samek et al., IEEE TNNLS 2017).

Replacing the regions the map calls least relevant first should leave the score
nearly flat, so a faithful map has a low AOPC. See ``regions`` for the procedure.
"""

from __future__ import annotations

import numpy as np

from service.explainers.baselines import Fill
from service.metrics import regions
from service.metrics.base import Metric, MetricResult, Score
from service.metrics.regions import RegionParams


def check(params: RegionParams, image_shape: tuple[int, int, int]) -> None:
    regions.check(params, image_shape, "lerf")


def evaluate(score: Score, image: np.ndarray, attribution: np.ndarray, params: RegionParams, *, baseline: Fill,
             mask: np.ndarray | None, batch_size: int, rng: np.random.Generator) -> MetricResult:
    del mask, rng  # deterministic, and blind to the object
    return regions.aopc("lerf", score, image, attribution, params, baseline, most_relevant_first=False,
                        batch_size=batch_size)


METRIC = Metric(
    name="lerf",
    summary="AOPC as the least relevant regions are replaced by the baseline first; lower is better.",
    reference="Samek et al., Evaluating the visualization of what a deep neural network has learned, "
              "IEEE TNNLS 2017",
    params=RegionParams,
    evaluate=evaluate,
    forward_passes=regions.forward_passes,
    check=check,
    memory=regions.memory,
    cost_parameter="max_regions",
    higher_is_better=False,
)
