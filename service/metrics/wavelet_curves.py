"""Deletion and insertion in the wavelet domain, for maps in the packed wavelet layout (WCAM's).

Coefficients are removed (deletion) or added to an empty transform (insertion) in order of
decreasing relevance, every channel alike, and each step is reconstructed and scored: the
wavelet counterpart of RISE's causal metrics, as the WAM authors evaluate wavelet maps
(Kasmi et al., ICML 2025). Removing a coefficient sets it to 0, so the request's baseline
plays no part; reconstructions are clipped to the valid pixel range.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.declared import param
from service.explainers import footprint, wavelets
from service.explainers.baselines import Fill
from service.metrics import curves
from service.metrics.base import MetricResult, Score, map_memory


@dataclass(frozen=True)
class WaveletCurveParams:
    steps: int = param(32, "Equal increments of coefficients from none to all; the curve has steps + 1 points.")
    levels: int = param(3, "Levels of the transform the map is laid out in: the WCAM's (its default is 3).")
    wavelet: str = param("haar", "Wavelet of that transform (the WCAM's; its default is haar).")


def check(params: WaveletCurveParams, image_shape: tuple[int, int, int], name: str) -> None:
    wavelets.make_layout(image_shape[0], image_shape[1], params.levels, params.wavelet, prefix=f"{name}.")
    curves.check_steps(params.steps, image_shape, f"{name}.steps")


def memory(params: WaveletCurveParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The map and its ranking, the image's transform, then a batch of masks, the scaled coefficients, the
    inverse's temporaries and output (pywt's for wavelets other than Haar: counted twice), clipped and
    moved channels last."""
    batch, values = min(batch_size, params.steps + 1), footprint.pixels(image_shape) * image_shape[2]
    inverse = 2 if wavelets.Layout(*image_shape[:2], params.levels, params.wavelet).is_haar else 4
    return (footprint.OVERHEAD + map_memory(image_shape) + 3 * footprint.F32 * values + footprint.pixels(image_shape)
            + 2 * footprint.keep_masks(batch, image_shape) + footprint.F32 * batch * values * (3 + inverse))


def evaluate(name: str, score: Score, image: np.ndarray, attribution: np.ndarray, params: WaveletCurveParams,
             baseline: Fill, *, reveal: bool, batch_size: int) -> MetricResult:
    layout = wavelets.make_layout(image.shape[0], image.shape[1], params.levels, params.wavelet)
    coefficients = wavelets.forward(image.transpose(2, 0, 1).astype(np.float32), layout)  # (C, H, W)

    def reconstruct(keeps: np.ndarray) -> np.ndarray:
        images = wavelets.inverse(coefficients[None] * keeps[:, None], layout)
        return np.clip(images, 0.0, 1.0).transpose(0, 2, 3, 1).astype(np.float32)

    return curves.causal(name, score, image, attribution, params.steps, baseline, reveal=reveal,
                         batch_size=batch_size, perturbation=reconstruct)
