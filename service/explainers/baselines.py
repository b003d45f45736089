"""Baselines: what a perturbation puts in place of the pixels it removes, built in pixel space.

A perturbation keeps a soft mask ``keep`` (1 = the image's pixel, 0 = the
baseline's) and is ``image * keep + fill * (1 - keep)``. Most baselines are a
fixed image; inpainting depends on the mask (it fills removed pixels from the
kept ones around them). The model's preprocessing is applied afterwards, so a
baseline means the same whatever the model's normalisation. Brunke et al.
(ECCV-W 2020) show that "neutral" baselines are not neutral: every explanation
reports how the model scores the pure baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import ndimage

from service.errors import InvalidArgument
from service.runtime.preprocessing import Preprocessing


class BaselineKind(StrEnum):
    CONSTANT = "constant"
    BLACK = "black"
    WHITE = "white"
    DATASET_MEAN = "dataset_mean"
    IMAGE_MEAN = "image_mean"
    BLUR = "blur"
    UNIFORM_NOISE = "uniform_noise"
    GAUSSIAN_NOISE = "gaussian_noise"
    INPAINT = "inpaint"
    IMAGE = "image"


@dataclass(frozen=True)
class Baseline:
    """Default: the dataset mean, the colour that a 0 in the model's normalised input stands for.

    That is what captum's and Xplique's default baseline of 0 amounts to on a normalised model, so
    maps agree with theirs; a black baseline is rarely neutral (Brunke et al. 2020).
    """

    kind: BaselineKind = BaselineKind.DATASET_MEAN
    # Pixel value in [0, 1], for CONSTANT.
    value: float = 0.0
    # Gaussian sigma in pixels: the blur (BLUR, INPAINT) or the noise level in pixel units (GAUSSIAN_NOISE).
    sigma: float = 0.0
    # The caller's baseline image (H, W, C) in [0, 1] at the model's size, for IMAGE.
    image: np.ndarray | None = None

    def resolve(self, image: np.ndarray, preprocessing: Preprocessing, rng: np.random.Generator) -> "Fill":
        """The fill for ``image`` (H, W, C): noise baselines draw from ``rng`` once, so every mask sees the same."""
        kind = self.kind
        if kind is BaselineKind.INPAINT:
            return InpaintFill(image, _sigma(self, 5.0, "baseline.sigma"))
        if kind is BaselineKind.CONSTANT:
            if not 0.0 <= self.value <= 1.0:
                raise InvalidArgument(f"value {self.value} must be a pixel value in [0, 1]", field="baseline.value")
            fill = np.full(image.shape, self.value, dtype=np.float32)
        elif kind is BaselineKind.BLACK:
            fill = np.zeros(image.shape, dtype=np.float32)
        elif kind is BaselineKind.WHITE:
            fill = np.ones(image.shape, dtype=np.float32)
        elif kind is BaselineKind.DATASET_MEAN:
            fill = np.broadcast_to(preprocessing.dataset_mean_pixel(), image.shape)
        elif kind is BaselineKind.IMAGE_MEAN:
            fill = np.broadcast_to(image.reshape(-1, image.shape[2]).mean(axis=0), image.shape)
        elif kind is BaselineKind.BLUR:
            fill = gaussian_blur(image, _sigma(self, 5.0, "baseline.sigma"))
        elif kind is BaselineKind.UNIFORM_NOISE:
            fill = rng.random(image.shape, dtype=np.float32)
        elif kind is BaselineKind.GAUSSIAN_NOISE:
            fill = np.clip(image + rng.normal(0.0, _sigma(self, 0.1, "baseline.sigma"), image.shape), 0.0, 1.0)
        else:
            if self.image is None or self.image.shape != image.shape:
                got = "none" if self.image is None else list(self.image.shape)
                raise InvalidArgument(f"KIND_IMAGE needs an image of shape {list(image.shape)}, got {got}",
                                      field="baseline.image")
            fill = self.image
        return StaticFill(np.ascontiguousarray(fill, dtype=np.float32))


def _sigma(baseline: Baseline, default: float, field: str) -> float:
    sigma = baseline.sigma or default
    if not 0.0 < sigma <= 100.0:
        raise InvalidArgument(f"sigma {sigma} must be in (0, 100]", field=field)
    return sigma


def gaussian_blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Blur (..., H, W, C) images spatially, channel by channel, with reflected borders."""
    spatial = [0] * (images.ndim - 3) + [sigma, sigma, 0]
    return ndimage.gaussian_filter(images.astype(np.float32), spatial, mode="reflect", truncate=3.0)


class Fill:
    """What removed pixels become, given the keep masks of a batch."""

    # The pure baseline: what the image becomes when nothing is kept (reported to the caller).
    image: np.ndarray

    def __call__(self, keep: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class StaticFill(Fill):
    def __init__(self, image: np.ndarray) -> None:
        self.image = image

    def __call__(self, keep: np.ndarray) -> np.ndarray:
        return self.image


class InpaintFill(Fill):
    """Normalised convolution (Knutsson & Westin 1993): removed pixels take the Gaussian-weighted mean of
    the kept pixels around them, so a perturbation removes information without pasting in a new colour.

    Batched over masks, unlike OpenCV's Telea inpainting, which runs one image at a time.
    """

    def __init__(self, image: np.ndarray, sigma: float) -> None:
        self.source = image.astype(np.float32)
        self.sigma = sigma
        # With nothing kept there is nothing to spread: the pure baseline is the image's mean colour.
        self.image = np.broadcast_to(self.source.reshape(-1, image.shape[2]).mean(axis=0), image.shape).copy()

    def __call__(self, keep: np.ndarray) -> np.ndarray:
        weights = keep[..., None].astype(np.float32)
        spread = gaussian_blur(self.source * weights, self.sigma)
        mass = gaussian_blur(weights, self.sigma)
        return np.where(mass > 1e-6, spread / np.maximum(mass, 1e-6), self.image)


def perturb(image: np.ndarray, keep: np.ndarray, fill: Fill) -> np.ndarray:
    """Images (B, H, W, C): ``image`` where ``keep`` (B, H, W) is 1, the baseline's fill where it is 0.

    Kept pixels stay exactly the image's (fill + keep * (image - fill) would round them). One channel at
    a time: numpy's inner loops then run along image rows instead of over 3 channels, 2.2x faster at 224 px.
    """
    keep = keep.astype(np.float32, copy=False)
    removed = 1.0 - keep
    filled = fill(keep)
    out = np.empty((*keep.shape, image.shape[2]), dtype=np.float32)
    for channel in range(image.shape[2]):
        np.multiply(keep, image[..., channel], out=out[..., channel])
        out[..., channel] += removed * filled[..., channel]
    return out
