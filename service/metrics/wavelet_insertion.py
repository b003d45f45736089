"""Wavelet-domain insertion: see ``wavelet_curves``."""

from __future__ import annotations

import numpy as np

from service.explainers.baselines import Fill
from service.metrics import wavelet_curves
from service.metrics.base import Metric, MetricResult, Score
from service.metrics.wavelet_curves import WaveletCurveParams


def check(params: WaveletCurveParams, image_shape: tuple[int, int, int]) -> None:
    wavelet_curves.check(params, image_shape, "wavelet_insertion")


def evaluate(score: Score, image: np.ndarray, attribution: np.ndarray, params: WaveletCurveParams, *,
             baseline: Fill, mask: np.ndarray | None, batch_size: int, rng: np.random.Generator) -> MetricResult:
    del mask, rng  # deterministic, and blind to the object
    return wavelet_curves.evaluate("wavelet_insertion", score, image, attribution, params, baseline,
                                   reveal=True, batch_size=batch_size)


METRIC = Metric(
    name="wavelet_insertion",
    summary="Area under the score as the most relevant wavelet coefficients are added to an empty transform; "
            "higher is better.",
    reference="Kasmi et al., One Wave To Explain Them All: A Unifying Perspective On Feature Attribution, ICML 2025",
    params=WaveletCurveParams,
    evaluate=evaluate,
    forward_passes=lambda params, image_shape: params.steps + 1,
    check=check,
    memory=wavelet_curves.memory,
    cost_parameter="steps",
    higher_is_better=True,
    domain="wavelet",
)
