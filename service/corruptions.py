"""Image corruptions and zoom, in pixel space: the shifts WCAM's scale profile is used to study.

Severities 1-5 follow ImageNet-C (Hendrycks & Dietterich, ICLR 2019) for the four corruptions
the WCAM paper discusses: Gaussian noise, Gaussian blur, JPEG compression and contrast.
"""

from __future__ import annotations

import io
from enum import StrEnum

import numpy as np
from PIL import Image

from service.errors import InvalidArgument
from service.explainers.baselines import gaussian_blur
from service.runtime import images
from service.runtime.preprocessing import ResizePolicy


class Corruption(StrEnum):
    GAUSSIAN_NOISE = "gaussian_noise"
    GAUSSIAN_BLUR = "gaussian_blur"
    JPEG = "jpeg"
    CONTRAST = "contrast"


# ImageNet-C's parameters per severity 1..5 (its reference implementation, corruptions.py).
SEVERITIES = {
    Corruption.GAUSSIAN_NOISE: (0.08, 0.12, 0.18, 0.26, 0.38),  # noise standard deviation
    Corruption.GAUSSIAN_BLUR: (1.0, 2.0, 3.0, 4.0, 6.0),  # blur sigma, pixels
    Corruption.JPEG: (25, 18, 15, 10, 7),  # JPEG quality
    Corruption.CONTRAST: (0.4, 0.3, 0.2, 0.1, 0.05),  # contrast factor around the mean
}


def corrupt(image: np.ndarray, corruption: Corruption, severity: int, rng: np.random.Generator) -> np.ndarray:
    """``image`` (H, W, C) in [0, 1] corrupted at ``severity`` (1-5)."""
    if not 1 <= severity <= 5:
        raise InvalidArgument(f"severity {severity} must be between 1 and 5", field="severities")
    level = SEVERITIES[corruption][severity - 1]
    if corruption is Corruption.GAUSSIAN_NOISE:
        corrupted = image + rng.normal(0.0, level, image.shape)
    elif corruption is Corruption.GAUSSIAN_BLUR:
        corrupted = gaussian_blur(image, level)
    elif corruption is Corruption.JPEG:
        corrupted = _jpeg(image, int(level))
    else:
        mean = image.mean(axis=(0, 1), keepdims=True)
        corrupted = (image - mean) * level + mean
    return np.clip(corrupted, 0.0, 1.0).astype(np.float32)


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    pixels = np.rint(image * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze(2) if pixels.shape[2] == 1 else pixels).save(buffer, "JPEG", quality=quality)
    decoded = images.decode(buffer.getvalue())
    return decoded.astype(np.float32) / 255.0


def zoom(image: np.ndarray, factor: float) -> np.ndarray:
    """The central 1/factor of ``image``, resized back to its size: what a closer camera would see."""
    if not 1.0 <= factor <= 16.0:
        raise InvalidArgument(f"zoom {factor} must be between 1 and 16", field="zooms")
    height, width = image.shape[:2]
    crop_h, crop_w = max(1, round(height / factor)), max(1, round(width / factor))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    return images.fit(image[top:top + crop_h, left:left + crop_w], height, width, ResizePolicy.STRETCH)
