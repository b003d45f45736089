"""Superpixels: the interpretable features of LIME and KernelSHAP on images.

Both methods explain the model with a vector z in {0, 1}^M, one entry per
superpixel: z_j = 1 keeps superpixel j of the image, z_j = 0 replaces it with
the baseline (Ribeiro et al., KDD 2016, section 3.1; Lundberg & Lee, NeurIPS
2017, section 2). This module segments the image, turns coalitions z into
keep masks, scores them with the model in bounded batches and paints the
per-superpixel values back onto pixels. The surrogates are fitted from their
normal equations, gathered in chunks of coalitions (``normal_equations``): memory
stays O(chunk x M) and the job can stop between chunks.
"""

from __future__ import annotations

import numpy as np
from skimage.segmentation import quickshift, slic

from typing import Callable

from service.errors import InvalidArgument, ResourceExhausted
from service.explainers import footprint
from service.explainers.base import Checkpoint, Predict, no_checkpoint
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
# Bounds on the sampling parameters: the coalitions are a (num_samples, M) matrix of bytes, and the regression
# sums num_samples products of M x M.
MAX_SAMPLES = 100_000
MAX_SEGMENTS = 1000
# SLIC returns up to 1.28 x n_segments superpixels (enforce_connectivity splits some; measured over sizes 16 to
# 100 and 2 to 1000 segments): the coalitions are sized for twice that, and never more than MAX_FEATURES, whose
# M x M least-squares solve, one uninterruptible LAPACK call, takes under a second (0.53 s at 1000, 1.7 s at
# 1500 on one core of 2 shared ones).
SLIC_SEGMENTS_FACTOR = 2
MAX_FEATURES = 1200
# Segmentation runs in one uninterruptible call: pixels beyond these take over a second (measured 12 us a pixel
# for quickshift with lime's settings, 0.75 us for SLIC, on 2 shared cores), so larger images are refused.
SEGMENTATION_PIXELS = {"quickshift": 320 * 320, "slic": 1024 * 1024}
# Bytes a segmentation allocates per pixel (scikit-image's Lab image, distances, labels; measured 138 to 150).
SEGMENTATION_BYTES_PER_PIXEL = 160
# Coalitions per chunk of the normal equations' sums (and of KernelSHAP's draws): about 2^18 values a chunk
# (2 MiB of float64), 2.6e8 multiplications with 1000 superpixels.
CHUNK_VALUES = 2**18


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
    pixels, limit = image_shape[0] * image_shape[1], SEGMENTATION_PIXELS[segmentation]
    if pixels > limit:
        raise ResourceExhausted(f"{segmentation} on {image_shape[0]} x {image_shape[1]} = {pixels} pixels runs "
                                f"longer than a deadline can interrupt; this server segments at most {limit} pixels "
                                f"with it{'; use slic' if segmentation == 'quickshift' else ''}",
                                field=f"{method}.segmentation")


def max_features(segmentation: str, n_segments: int, image_shape: tuple[int, ...]) -> int:
    """The most superpixels the coalitions are sized for: quickshift finds its own number, up to
    ``MAX_FEATURES``; SLIC up to ``SLIC_SEGMENTS_FACTOR`` times its target."""
    wanted = MAX_FEATURES if segmentation == "quickshift" else SLIC_SEGMENTS_FACTOR * n_segments
    return min(wanted, MAX_FEATURES, image_shape[0] * image_shape[1])


def segment_checked(method: str, image: np.ndarray, segmentation: str, n_segments: int) -> tuple[np.ndarray, int]:
    """``segment`` and its number of superpixels M, refused when over ``max_features`` (what the memory
    estimate assumed)."""
    labels = segment(image, segmentation, n_segments)
    features, most = int(labels.max()) + 1, max_features(segmentation, n_segments, image.shape)
    if features > most:
        raise ResourceExhausted(f"{segmentation} found {features} superpixels, over the {most} this request was "
                                f"sized for; use slic with a smaller n_segments", field=f"{method}.segmentation")
    return labels, features


def sampling_memory(num_samples: int, features: int, image_shape: tuple[int, int, int], targets: int,
                    batch_size: int, copies: int = 1) -> int:
    """What LIME and KernelSHAP share: the segmentation, ``copies`` of the coalitions (N, M) int8 (KernelSHAP:
    drawn, then with the fixed ones), a batch of masks (int8, then float32) and their images, the scores, one
    chunk of the normal equations (three float64 copies) and their (M + 1) x (M + 1) sums (each half's, the
    total's, and the pseudo-inverse's SVD for the sandwich: eight such matrices), and the painted maps (float64,
    then float32)."""
    batch, pixels = min(batch_size, num_samples), footprint.pixels(image_shape)
    chunk = chunk_rows(num_samples, features) * features
    return (footprint.OVERHEAD + SEGMENTATION_BYTES_PER_PIXEL * pixels + footprint.I64 * pixels
            + copies * num_samples * features + footprint.scores(num_samples, targets) + 4 * footprint.F64 * num_samples
            + max(batch * pixels + footprint.keep_masks(batch, image_shape)
                  + footprint.perturbation(batch, image_shape),
                  3 * footprint.F64 * chunk + 8 * footprint.F64 * (features + 1) * (features + targets),
                  (footprint.F64 + footprint.F32) * targets * pixels))


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


def chunk_rows(count: int, features: int) -> int:
    """Rows per chunk of ``CHUNK_VALUES`` values, at most ``count``."""
    return min(count, max(1, CHUNK_VALUES // features))


def normal_equations(rows: Callable[[int, int], tuple[np.ndarray, np.ndarray, np.ndarray]], count: int,
                     features: int, targets: int,
                     checkpoint: Checkpoint = no_checkpoint) -> tuple[np.ndarray, np.ndarray]:
    """sum_i w_i x_i x_i^T (M, M) and sum_i w_i x_i y_i^T (M, T) over rows 0..count, ``rows(start, stop)``
    giving (x (B, M), y (B, T), w (B,)) float64, gathered ``CHUNK_VALUES`` values at a time with a
    ``checkpoint`` before each chunk: 100,000 coalitions of 1000 superpixels are 10^11 multiplications."""
    step = max(1, CHUNK_VALUES // features)
    gram, moment = np.zeros((features, features)), np.zeros((features, targets))
    for start in range(0, count, step):
        checkpoint()
        x, y, w = rows(start, min(start + step, count))
        weighted = x * w[:, None]
        gram += x.T @ weighted
        moment += weighted.T @ y
    return gram, moment


def weighted_column_mean(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """sum_i w_i x_i / sum_i w_i (M,) float64 of rows x (N, M) of any type, converted a chunk at a time."""
    step = max(1, CHUNK_VALUES // x.shape[1])
    total = sum(weights[start:start + step] @ x[start:start + step].astype(np.float64)
                for start in range(0, len(x), step))
    return total / weights.sum()


def coalition_scores(predict: Predict, image: np.ndarray, labels: np.ndarray, z: np.ndarray, baseline: Fill,
                     batch_size: int) -> np.ndarray:
    """Scores (N, T) float64 of the images of coalitions z (N, M), ``batch_size`` images per call.

    Masks are built batch by batch, so memory is O(batch_size * H * W) whatever N.
    """
    scores = [predict(perturb(image, keep_masks(z[start:start + batch_size], labels), baseline))
              for start in range(0, len(z), batch_size)]
    return np.concatenate(scores).astype(np.float64)
