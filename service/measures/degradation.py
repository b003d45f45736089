"""(e) Salience-guided degradation: blur each pixel as much as the map says it does not matter (background
mode: the salient region stays sharp) or as much as it matters (object mode: the salient region is blurred),
then see how the score and the map move. Reference note §B(e): the map, scaled to [0, 255] at the image's
size, is smoothed (sigma 5 px) and rescaled to s in [0, sigma_max] (rounded to 0.1); the blur strength is
beta = sigma_max - s, bent to beta^4 / sigma_max^3, and each pixel takes its value from the image blurred
with that sigma (0: unchanged). Object mode uses 255 minus the map."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter

MODES = ("background", "object")
SIGMA_MAX, SMOOTHING = 10.0, 5.0


def blur_strength(attribution: np.ndarray, mode: str, sigma_max: float = SIGMA_MAX) -> np.ndarray:
    """Per-pixel Gaussian sigma (H, W) in [0, sigma_max]."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    span = np.ptp(attribution)
    scaled = np.zeros(attribution.shape) if span == 0 else (attribution - attribution.min()) / span * 255
    if mode == "object":
        scaled = 255 - scaled
    smooth = gaussian_filter(scaled, SMOOTHING)
    top = smooth.max()
    s = np.round(smooth / top * sigma_max, 1) if top > 0 else np.zeros_like(smooth)
    return bend(sigma_max - s, sigma_max)


def bend(beta: np.ndarray, sigma_max: float = SIGMA_MAX) -> np.ndarray:
    """beta^4 / sigma_max^3: full strength stays full (10 -> 10), half strength shrinks (5 -> 0.625)."""
    return beta**4 / sigma_max**3


def degrade(image: np.ndarray, attribution: np.ndarray, mode: str, sigma_max: float = SIGMA_MAX,
            checkpoint: Callable[[], None] = lambda: None) -> np.ndarray:
    """The image (H, W, C) in [0, 1] blurred pixel by pixel as ``attribution`` says (one blur per distinct
    strength, so up to a thousand of them: ``checkpoint`` runs before each)."""
    strength = np.round(blur_strength(attribution, mode, sigma_max), 2)
    out = image.astype(np.float32).copy()
    for sigma in np.unique(strength):
        if sigma == 0:
            continue
        checkpoint()
        where = strength == sigma
        blurred = gaussian_filter(image.astype(np.float32), sigma=(sigma, sigma, 0), mode="nearest")
        out[where] = blurred[where]
    return out
