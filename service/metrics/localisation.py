"""Localisation against a ground-truth object mask (Arras, Osman & Samek 2022, "CLEVR-XAI").

Relevance mass accuracy: the share of the positive relevance that falls on the
object. A map that ignores the object scores about the object's area share;
a perfect one scores 1. Relevance rank accuracy: the share of the K most
relevant pixels, K the object's size, that lie on it; the same chance level.
The pointing game (Zhang et al. 2018) asks only whether the top pixel is on it.
The ``localisation`` metric reports all three and needs no forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.baselines import Fill
from service.metrics.base import Metric, MetricResult, Score, attribution_map


def relevance_mass(attribution: np.ndarray, mask: np.ndarray) -> float:
    """Positive relevance inside ``mask`` over all positive relevance; NaN when there is none."""
    positive = np.clip(np.asarray(attribution, dtype=np.float64), 0.0, None)
    total = positive.sum()
    if total <= 0:
        return float("nan")
    return float(positive[np.asarray(mask, dtype=bool)].sum() / total)


def pointing_game(attribution: np.ndarray, mask: np.ndarray) -> bool:
    """Whether the most relevant pixel lies on the object (Zhang et al. 2018)."""
    index = np.unravel_index(np.argmax(attribution), attribution.shape)
    return bool(np.asarray(mask, dtype=bool)[index])


def relevance_rank(attribution: np.ndarray, mask: np.ndarray) -> float:
    """Share of the K most relevant pixels (K = the mask's size) that lie in ``mask``; NaN for an empty mask.

    Ties are broken in raster order (a stable sort), so a constant map scores the mask's share of the top rows.
    """
    mask = np.asarray(mask, dtype=bool)
    size = int(mask.sum())
    if size == 0:
        return float("nan")
    top = np.argsort(-np.asarray(attribution, dtype=np.float64).ravel(), kind="stable")[:size]
    return float(mask.ravel()[top].mean())


@dataclass(frozen=True)
class LocalisationParams:
    """No parameters: the three statistics are fixed by their definitions."""


def check(params: LocalisationParams, image_shape: tuple[int, int, int]) -> None:
    """Nothing to check: the mask is checked when it arrives."""


def evaluate(score: Score, image: np.ndarray, attribution: np.ndarray, params: LocalisationParams, *,
             baseline: Fill, mask: np.ndarray | None, batch_size: int, rng: np.random.Generator) -> MetricResult:
    """Relevance mass as the score (NaN for a map with no positive relevance), with relevance rank and the
    pointing game (1.0 or 0.0) in ``values``."""
    del score, baseline, batch_size, rng  # reads the map only
    attribution = attribution_map(attribution, image.shape)
    if mask is None:
        raise InvalidArgument("localisation needs the object's mask", field="mask")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != attribution.shape or not mask.any():
        raise InvalidArgument(f"need a non-empty mask of shape {list(attribution.shape)}, got "
                              f"{list(mask.shape)} with {int(mask.sum())} pixels set", field="mask")
    values = {"relevance_mass": relevance_mass(attribution, mask), "relevance_rank": relevance_rank(attribution, mask),
              "pointing_game": float(pointing_game(attribution, mask))}
    return MetricResult(name="localisation", score=values["relevance_mass"], values=values)


METRIC = Metric(
    name="localisation",
    summary="Relevance mass on the object's mask (also relevance rank and the pointing game); higher is better.",
    reference="Arras, Osman & Samek, CLEVR-XAI: A benchmark dataset for the ground truth evaluation of neural "
              "network explanations, Information Fusion 2022",
    params=LocalisationParams,
    evaluate=evaluate,
    forward_passes=lambda params, image_shape: 0,
    check=check,
    # The map, its positive part, the mask and a ranking of the pixels.
    memory=lambda params, image_shape, targets, batch_size: (
        footprint.OVERHEAD + 5 * footprint.F64 * footprint.pixels(image_shape)),
    needs_mask=True,
)
