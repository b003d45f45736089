"""(a) Salience entropy. The histogram entropy of the map quantised to ``bits`` (skimage's
``shannon_entropy``: how many distinct levels the map uses, not where), normalised by the most a map of that
size can reach, log2(min(m n, 2^bits)) (the reference code hard-codes log2(49) for 7 x 7 Grad-CAMs and
applied it to upscaled maps, giving values above 1: reference note §B(a)); and the spatial entropy of
p = |a| / sum |a| (Quantus' Complexity), normalised by log2(m n): 0 when one pixel holds all the relevance,
1 when it is spread evenly."""

from __future__ import annotations

import numpy as np
from skimage.measure import shannon_entropy


def histogram_entropy(attribution: np.ndarray, bits: int = 8) -> float:
    levels = 2**bits - 1
    low, span = attribution.min(), np.ptp(attribution)
    quantised = np.zeros(attribution.shape, np.int64) if span == 0 else np.rint((attribution - low) / span * levels)
    most = np.log2(min(attribution.size, 2**bits))
    return float(shannon_entropy(quantised) / most) if most > 0 else 0.0


def spatial_entropy(attribution: np.ndarray) -> float:
    mass = np.abs(attribution).ravel().astype(np.float64)
    if mass.sum() == 0 or mass.size < 2:
        return 0.0
    p = mass[mass > 0] / mass.sum()
    return float(-(p * np.log2(p)).sum() / np.log2(mass.size))
