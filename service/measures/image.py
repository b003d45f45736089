"""The per-image salience measures of one map, computed one way for the Measure job and for audits: entropy,
out-of-set noise, transforms and salience-guided degradation (stability compares models, so its callers
compute it from several maps).

``explain(image) -> map`` explains the image's fixed class with the clean map's seed, so every map here draws
the same samples as the clean one (common random numbers, ``service.jobs.streams``): a change of map is the
perturbation's, not the sampler's. ``score(images) -> scores`` scores that class in the explanation's score
space, the space of ``clean_score``, from which degradation's score drop is taken.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from service.measures.degradation import MODES, degrade
from service.measures.entropy import histogram_entropy, spatial_entropy
from service.measures.out_of_set import LEVELS, out_of_set
from service.measures.transforms import follows_transforms, transforms
from service.metrics.agreement import ssim

IMAGE_MEASURES = ("entropy", "out_of_set", "transforms", "degradation")


def measure_image(names: tuple[str, ...] | list[str], image: np.ndarray, attribution: np.ndarray,
                  clean_score: float, explain: Callable[[np.ndarray], np.ndarray],
                  score: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator,
                  levels: tuple[float, ...] = LEVELS, checkpoint: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """The measures among ``names`` (others are ignored) of ``attribution``, the map of ``image``:
    ``entropy`` (histogram, spatial); ``out_of_set`` the curves over the noise ``levels`` (salt and pepper
    drawn from ``rng``); ``transforms`` SSIM per transform; ``degradation`` per mode (score drop, SSIM of the
    degraded image's map against the clean map)."""
    values: dict[str, Any] = {}
    if "entropy" in names:
        values["entropy"] = (histogram_entropy(attribution), spatial_entropy(attribution))
    if "out_of_set" in names:
        values["out_of_set"] = out_of_set(image, explain, score, rng, levels, attribution, checkpoint)
    if "transforms" in names:
        values["transforms"] = follows_transforms(image, explain, attribution)
    if "degradation" in names:
        values["degradation"] = {}
        for mode in MODES:
            degraded = degrade(image, attribution, mode, checkpoint=checkpoint)
            drop = float(clean_score - score(degraded[None])[0])
            values["degradation"][mode] = (drop, ssim(explain(degraded), attribution))
    return values


def explains_per_image(names: tuple[str, ...] | list[str], image_shape: tuple[int, ...],
                       levels: tuple[float, ...] = LEVELS) -> tuple[int, int]:
    """What ``measure_image`` adds to an image's clean explanation: the explanations (a map per noise amount
    above 0, per transform, per degradation mode) and the images scored (every noise amount, every degraded
    image)."""
    explains = (sum(1 for level in levels if level) if "out_of_set" in names else 0) \
        + (len(transforms(*image_shape[:2])) if "transforms" in names else 0) \
        + (len(MODES) if "degradation" in names else 0)
    scored = (len(levels) if "out_of_set" in names else 0) + (len(MODES) if "degradation" in names else 0)
    return explains, scored
