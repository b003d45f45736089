"""MoRF: Most Relevant First region perturbation, scored as AOPC (Samek et al., IEEE TNNLS 2017).

Replacing the regions the map calls most relevant first should make the score
fall fast, so a faithful map has a high AOPC. See ``regions`` for the procedure.
"""

from __future__ import annotations

import numpy as np

from service.explainers.baselines import Fill
from service.metrics import regions
from service.metrics.base import Metric, MetricResult, Score
from service.metrics.regions import RegionParams


def check(params: RegionParams, image_shape: tuple[int, int, int]) -> None:
    regions.check(params, image_shape, "morf")


def evaluate(score: Score, image: np.ndarray, attribution: np.ndarray, params: RegionParams, *, baseline: Fill,
             mask: np.ndarray | None, batch_size: int, rng: np.random.Generator) -> MetricResult:
    del mask, rng  # deterministic, and blind to the object
    return regions.aopc("morf", score, image, attribution, params, baseline, most_relevant_first=True,
                        batch_size=batch_size)


METRIC = Metric(
    name="morf",
    summary="AOPC as the most relevant regions are replaced by the baseline first; higher is better.",
    reference="Samek et al., Evaluating the visualization of what a deep neural network has learned, "
              "IEEE TNNLS 2017",
    params=RegionParams,
    evaluate=evaluate,
    forward_passes=regions.forward_passes,
    check=check,
    memory=regions.memory,
    cost_parameter="max_regions",
)
