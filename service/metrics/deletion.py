"""Deletion (Petsiuk, Das & Saenko, "RISE", BMVC 2018, section 4.1; the official ``CausalMetric``).

Removes the pixels in order of descending attribution, ``steps`` equal
increments from none to all, replacing them with the baseline, and scores the
trapezoid area under the explained class's score over the removed fraction t in
[0, 1]. A faithful map makes the score collapse early: lower is better. RISE
removes into zeros of the normalised input (the dataset mean colour, this
service's default baseline); Xplique removes into 0.0 and takes 10 steps.
"""

from __future__ import annotations

import numpy as np

from service.explainers.baselines import Fill
from service.metrics import curves
from service.metrics.base import Metric, MetricResult, Score
from service.metrics.curves import CurveParams


def check(params: CurveParams, image_shape: tuple[int, int, int]) -> None:
    curves.check_steps(params.steps, image_shape, "deletion.steps")


def evaluate(score: Score, image: np.ndarray, attribution: np.ndarray, params: CurveParams, *, baseline: Fill,
             mask: np.ndarray | None, batch_size: int, rng: np.random.Generator) -> MetricResult:
    del mask, rng  # deterministic, and blind to the object
    return curves.causal("deletion", score, image, attribution, params.steps, baseline, reveal=False,
                         batch_size=batch_size)


METRIC = Metric(
    name="deletion",
    summary="Area under the score as the most relevant pixels are replaced by the baseline; lower is better.",
    reference="Petsiuk, Das & Saenko, RISE: Randomized Input Sampling for Explanation of Black-box Models, BMVC 2018",
    params=CurveParams,
    evaluate=evaluate,
    forward_passes=curves.forward_passes,
    check=check,
    memory=curves.memory,
    cost_parameter="steps",
    higher_is_better=False,
)
