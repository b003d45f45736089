"""What deletion, insertion and region perturbation share: rank, perturb step by step, score the path.

Petsiuk, Das & Saenko, "RISE: Randomized Input Sampling for Explanation of
Black-box Models", BMVC 2018 (the official ``CausalMetric``), and Samek et al.,
"Evaluating the visualization of what a deep neural network has learned",
IEEE TNNLS 2017. A path is described by a rank per pixel (the position of the
pixel, or of its region, in the order of removal) and an increasing list of
thresholds: at point k the pixels of rank below ``thresholds[k]`` are the
changed ones. One description serves pixel and region orders alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.declared import param
from service.explainers import footprint
from service.explainers.baselines import Fill
from service.metrics.base import (MetricResult, Score, attribution_map, batch_memory, check_int, map_memory,
                                  perturbed_scores)


@dataclass(frozen=True)
class CurveParams:
    # RISE's batch evaluation takes 28 steps (1792 pixels at 224 x 224), Xplique 10: 32 is of RISE's order,
    # 33 passes whatever the image size.
    steps: int = param(32, "Equal increments of pixels from none to all; the curve has steps + 1 points.")


def check_steps(steps: int, image_shape: tuple[int, int, int], field: str) -> None:
    # More steps than pixels would repeat points of the curve without adding information.
    check_int(steps, field, 1, image_shape[0] * image_shape[1])


def forward_passes(params: CurveParams, image_shape: tuple[int, int, int]) -> int:
    return params.steps + 1


def memory(params: CurveParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The map and its ranking, then a batch of masks and images (at most steps + 1 of them); insertion's
    blurred start image (a float32 copy and the blur) is the ``blurred`` part."""
    blurred = 2 * footprint.F32 * footprint.pixels(image_shape) * image_shape[2] \
        if getattr(params, "blur_sigma", 0) > 0 else 0
    return (footprint.OVERHEAD + blurred + map_memory(image_shape)
            + batch_memory(min(batch_size, params.steps + 1), image_shape))


def descending_ranks(values: np.ndarray) -> np.ndarray:
    """Each element's position (0 = first) in the order of descending value, in the shape of ``values``.

    The sort is stable, so ties keep raster order and the same map always gives the same path.
    """
    order = np.argsort(-values.ravel(), kind="stable")
    ranks = np.empty(order.size, dtype=np.int64)
    ranks[order] = np.arange(order.size)
    return ranks.reshape(values.shape)


def curve(score: Score, image: np.ndarray, fill: Fill, ranks: np.ndarray, thresholds: np.ndarray, *,
          reveal: bool, batch_size: int, perturbation=None) -> np.ndarray:
    """Scores along the path: at point k the pixels of rank below ``thresholds[k]`` are changed.

    Removing (``reveal=False``) replaces them with ``fill``; revealing starts from ``fill`` and puts
    the image's own pixels back. Masks are made lazily, one batch at a time.
    """
    keeps = ((ranks < t if reveal else ranks >= t).astype(np.float32) for t in thresholds)
    return perturbed_scores(score, image, fill, keeps, batch_size, perturbation)


def auc(values: np.ndarray) -> float:
    """Trapezoid area under the curve over equally spaced t in [0, 1] (RISE's ``auc``)."""
    return float((values.sum() - values[0] / 2 - values[-1] / 2) / (len(values) - 1))


def causal(name: str, score: Score, image: np.ndarray, attribution: np.ndarray, steps: int, fill: Fill, *,
           reveal: bool, batch_size: int, perturbation=None) -> MetricResult:
    """Deletion (``reveal=False``) or insertion (``reveal=True``) along the pixels in descending attribution.

    ``perturbation`` maps a batch of keep masks to images when the map is not over pixels (wavelets).
    """
    pixels = image.shape[0] * image.shape[1]
    # Xplique's floor(linspace(0, pixels, steps + 1)): every step changes pixels // steps pixels, give or take one.
    thresholds = np.arange(steps + 1) * pixels // steps
    values = curve(score, image, fill, descending_ranks(attribution_map(attribution, image.shape)), thresholds,
                   reveal=reveal, batch_size=batch_size, perturbation=perturbation)
    return MetricResult(name=name, score=auc(values), fractions=np.arange(steps + 1) / steps, curve=values)
