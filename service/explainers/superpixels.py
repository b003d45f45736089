"""Superpixels: the interpretable features of LIME and KernelSHAP on images.

Both methods explain the model with a vector z in {0, 1}^M, one entry per
superpixel: z_j = 1 keeps superpixel j of the image, z_j = 0 replaces it with
the baseline (Ribeiro et al., KDD 2016, section 3.1; Lundberg & Lee, NeurIPS
2017, section 2). This module segments the image, turns coalitions z into
keep masks, scores them with the model in bounded batches and paints the
per-superpixel values back onto pixels.
"""

from __future__ import annotations

import numpy as np
from skimage.segmentation import quickshift, slic

from service.errors import InvalidArgument
from service.explainers.base import Predict
from service.explainers.baselines import Fill, perturb

SEGMENTATIONS = ("quickshift", "slic")

# lime_image's SegmentationAlgorithm("quickshift", kernel_size=4, max_dist=200, ratio=0.2)
# (marcotcr/lime@fd7eb2e, lime/lime_image.py, LimeImageExplainer.explain_instance).
QUICKSHIFT = {"kernel_size": 4, "max_dist": 200, "ratio": 0.2}
# scikit-image's default SLIC compactness, scaled for Lab images (its default colour space for RGB).
SLIC_COMPACTNESS = 10.0
# Quickshift adds tiny random noise to break ties between equal densities; a fixed seed makes segments,
# and therefore maps, reproducible (lime draws this seed from its random_state instead).
QUICKSHIFT_SEED = 0
# Bounds on the sampling parameters: the regression holds a (num_samples, M) design matrix in memory.
MAX_SAMPLES = 100_000
MAX_SEGMENTS = 1000


def check_sampling(method: str, num_samples: int, segmentation: str, n_segments: int,
                   image_shape: tuple[int, int, int]) -> None:
    """The checks LIME and KernelSHAP share; errors name the field as ``<method>.<name>``."""
    if not 2 <= num_samples <= MAX_SAMPLES:
        raise InvalidArgument(f"num_samples {num_samples} must be between 2 and {MAX_SAMPLES}",
                              field=f"{method}.num_samples")
    if segmentation not in SEGMENTATIONS:
        raise InvalidArgument(f"unknown segmentation {segmentation!r}; known: {', '.join(SEGMENTATIONS)}",
                              field=f"{method}.segmentation")
    most = min(MAX_SEGMENTS, image_shape[0] * image_shape[1])
    if not 2 <= n_segments <= most:
        raise InvalidArgument(f"n_segments {n_segments} must be between 2 and {most}", field=f"{method}.n_segments")


def segment(image: np.ndarray, algorithm: str = "quickshift", n_segments: int = 50) -> np.ndarray:
    """Superpixel labels (H, W), int64 in 0..M-1, of an (H, W, C) image in [0, 1] with C = 1 or 3.

    Grey images are repeated to RGB first: quickshift needs three channels, and both algorithms then
    cluster in Lab space, where lime's max_dist=200 and SLIC's compactness=10 were tuned (on a [0, 1]
    grey image compactness 10 would outweigh the intensities and SLIC would return a plain grid).
    ``n_segments`` is SLIC's target count only; quickshift finds its own number of segments. lime's
    quickshift settings suit ImageNet-sized inputs: on 32-64 pixel images they give 1-5 segments.
    """
    rgb = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    rgb = rgb.astype(np.float64)
    if algorithm == "quickshift":
        labels = quickshift(rgb, **QUICKSHIFT, rng=QUICKSHIFT_SEED)
    elif algorithm == "slic":
        labels = slic(rgb, n_segments=n_segments, compactness=SLIC_COMPACTNESS, start_label=0)
    else:
        raise ValueError(f"unknown segmentation {algorithm!r}; known: {SEGMENTATIONS}")
    # Both can skip label values (SLIC after enforcing connectivity): relabel to consecutive 0..M-1.
    _, consecutive = np.unique(labels, return_inverse=True)
    return consecutive.reshape(labels.shape).astype(np.int64)


def paint(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Maps (T, H, W) float32: each pixel takes the value (T, M) of its superpixel."""
    return values[:, labels].astype(np.float32)


def keep_masks(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Keep masks (B, H, W) float32 of coalitions z (B, M) in {0, 1}: 1 on the kept superpixels."""
    return z[:, labels].astype(np.float32)


def coalition_scores(predict: Predict, image: np.ndarray, labels: np.ndarray, z: np.ndarray, baseline: Fill,
                     batch_size: int) -> np.ndarray:
    """Scores (N, T) float64 of the images of coalitions z (N, M), ``batch_size`` images per call.

    Masks are built batch by batch, so memory is O(batch_size * H * W) whatever N.
    """
    scores = [predict(perturb(image, keep_masks(z[start:start + batch_size], labels), baseline))
              for start in range(0, len(z), batch_size)]
    return np.concatenate(scores).astype(np.float64)
