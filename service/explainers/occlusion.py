"""Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", ECCV 2014).

Slides a window over the image, replaces it with the baseline, and credits each
pixel with the mean drop of the score over the windows that cover it. The
window grid follows captum's ``Occlusion``: windows start every ``stride``
pixels and the last one on each axis is clipped to the border, so every pixel
is covered (Xplique's grid leaves the last rows uncovered when the stride does
not divide the size). The default 8-pixel window with a 4-pixel stride suits
the small demo models; for 224-pixel ImageNet models captum's tutorials use a
15-pixel window with an 8-pixel stride.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Method, Predict, batched, no_checkpoint, param
from service.explainers.baselines import Fill, perturb


@dataclass(frozen=True)
class OcclusionParams:
    window: tuple[int, int] = param((8, 8), "Occluding window (height, width) in model-input pixels.", kind="pair")
    stride: tuple[int, int] | None = param(
        None, "Step between windows (height, width); default half the window, at least 1.", kind="pair")

    def __post_init__(self) -> None:
        # Resolved here, not when used, so that every echo of the parameters (responses, audits) says the stride
        # the windows moved by rather than "unset".
        if self.stride is None:
            object.__setattr__(self, "stride", (max(1, self.window[0] // 2), max(1, self.window[1] // 2)))

    def strides(self) -> tuple[int, int]:
        return self.stride


def window_starts(size: int, window: int, stride: int) -> range:
    """Start of every window along one axis: captum's ceil((size - window) / stride) + 1 windows."""
    return range(0, math.ceil((size - window) / stride) * stride + 1, stride)


def check(params: OcclusionParams, image_shape: tuple[int, int, int]) -> None:
    strides = params.strides()
    for i, axis in enumerate(("height", "width")):
        window, stride, size = params.window[i], strides[i], image_shape[i]
        if not 1 <= window <= size:
            raise InvalidArgument(f"window {axis} {window} must be between 1 and the image {axis} {size}",
                                  field="occlusion.window")
        if stride < 1:
            raise InvalidArgument(f"stride {axis} must be at least 1, not {stride}", field="occlusion.stride")
        if stride > window and window < size:
            raise InvalidArgument(f"stride {axis} {stride} exceeds the window {window}: pixels between windows "
                                  "would never be occluded", field="occlusion.stride")


def forward_passes(params: OcclusionParams, image_shape: tuple[int, int, int]) -> int:
    (wh, ww), (sh, sw) = params.window, params.strides()
    return len(window_starts(image_shape[0], wh, sh)) * len(window_starts(image_shape[1], ww, sw)) + 1


# Python's size of one window's corner (a tuple of two ints) in the list of corners.
CORNER_BYTES = 160


def memory(params: OcclusionParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The corners, the sums (T, H, W) float64 and coverage, a batch of keep masks and their images; at the end
    the mean and the float32 maps."""
    windows = forward_passes(params, image_shape) - 1
    batch, sums = min(batch_size, windows), footprint.F64 * targets * footprint.pixels(image_shape)
    return (footprint.OVERHEAD + CORNER_BYTES * windows + sums + footprint.F64 * footprint.pixels(image_shape)
            + max(footprint.keep_masks(batch, image_shape) + footprint.perturbation(batch, image_shape),
                  sums + footprint.maps(targets, image_shape)))


def attribute(predict: Predict, image: np.ndarray, params: OcclusionParams, *, baseline: Fill,
              batch_size: int, rng: np.random.Generator, checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """Mean score drop per pixel over the windows covering it, one map per explained class."""
    del rng, checkpoint  # deterministic; every batch calls predict, which checkpoints
    height, width = image.shape[:2]
    (wh, ww), (sh, sw) = params.window, params.strides()
    corners = [(y, x) for y in window_starts(height, wh, sh) for x in window_starts(width, ww, sw)]
    reference = predict(image[None])[0].astype(np.float64)
    total = np.zeros((reference.size, height, width))
    coverage = np.zeros((height, width))
    for chunk in batched(corners, batch_size):
        keep = np.ones((len(chunk), height, width), dtype=np.float32)
        for i, (y, x) in enumerate(chunk):
            keep[i, y:y + wh, x:x + ww] = 0.0
        drops = reference - predict(perturb(image, keep, baseline)).astype(np.float64)
        for drop, (y, x) in zip(drops, chunk):
            total[:, y:y + wh, x:x + ww] += drop[:, None, None]
            coverage[y:y + wh, x:x + ww] += 1
    return (total / coverage).astype(np.float32)


METHOD = Method(
    name="occlusion",
    summary="Score drop when a sliding window of the image is replaced by the baseline.",
    reference="Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014",
    params=OcclusionParams,
    attribute=attribute,
    forward_passes=forward_passes,
    check=check,
    cost="windows_y * windows_x + 1, windows = ceil((size - window) / stride) + 1",
    memory=memory,
    cost_parameter="stride",
)
