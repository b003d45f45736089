"""Localisation against a ground-truth object mask (Arras, Osman & Samek 2022, "CLEVR-XAI").

Relevance mass accuracy: the share of the positive relevance that falls on the
object. A map that ignores the object scores about the object's area share;
a perfect one scores 1.
"""

from __future__ import annotations

import numpy as np


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
