"""Insertion (Petsiuk, Das & Saenko, "RISE", BMVC 2018, section 4.1; the official ``CausalMetric``).

Starts from a blurred copy of the image and puts the image's own pixels back in
order of descending attribution, ``steps`` equal increments from none to all,
scoring the trapezoid area under the explained class's score over the revealed
fraction t in [0, 1]. A faithful map makes the score rise early: higher is
better. Blurring rather than blanking keeps the start image close to the
natural-image distribution, so the score measures the revealed evidence rather
than the model's reaction to an out-of-distribution canvas. RISE blurs with an
11-tap Gaussian of sigma 5, cut at one sigma; ``baselines.gaussian_blur`` cuts
at three, so the start here is a little blurrier. ``blur_sigma=0`` starts from
the request's baseline instead, as Xplique's ``Insertion`` does (from 0.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.declared import param
from service.explainers.baselines import Fill, StaticFill, gaussian_blur
from service.metrics import curves
from service.metrics.base import Metric, MetricResult, Score, check_number
from service.metrics.curves import CurveParams


@dataclass(frozen=True)
class InsertionParams(CurveParams):
    blur_sigma: float = param(5.0, "Gaussian sigma in pixels of the start image (RISE: 5); 0 starts from the "
                                   "baseline instead.")


def check(params: InsertionParams, image_shape: tuple[int, int, int]) -> None:
    curves.check_steps(params.steps, image_shape, "insertion.steps")
    check_number(params.blur_sigma, "insertion.blur_sigma", 0.0, 100.0)


def evaluate(score: Score, image: np.ndarray, attribution: np.ndarray, params: InsertionParams, *, baseline: Fill,
             mask: np.ndarray | None, batch_size: int, rng: np.random.Generator) -> MetricResult:
    del mask, rng  # deterministic, and blind to the object
    start = StaticFill(gaussian_blur(image, params.blur_sigma)) if params.blur_sigma > 0 else baseline
    return curves.causal("insertion", score, image, attribution, params.steps, start, reveal=True,
                         batch_size=batch_size)


METRIC = Metric(
    name="insertion",
    summary="Area under the score as the most relevant pixels are revealed on a blurred image; higher is better.",
    reference="Petsiuk, Das & Saenko, RISE: Randomized Input Sampling for Explanation of Black-box Models, BMVC 2018",
    params=InsertionParams,
    evaluate=evaluate,
    forward_passes=curves.forward_passes,
    check=check,
    memory=curves.memory,
    cost_parameter="steps",
)
