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
from service.explainers import wavelets
from service.explainers.baselines import Fill
from service.metrics import curves
from service.metrics.base import MetricResult, Score


@dataclass(frozen=True)
class WaveletCurveParams:
    steps: int = param(32, "Equal increments of coefficients from none to all; the curve has steps + 1 points.")
    levels: int = param(3, "Levels of the transform the map is laid out in: the WCAM's (its default is 3).")
    wavelet: str = param("haar", "Wavelet of that transform (the WCAM's; its default is haar).")


def check(params: WaveletCurveParams, image_shape: tuple[int, int, int], name: str) -> None:
    wavelets.make_layout(image_shape[0], image_shape[1], params.levels, params.wavelet, prefix=f"{name}.")
    curves.check_steps(params.steps, image_shape, f"{name}.steps")


def evaluate(name: str, score: Score, image: np.ndarray, attribution: np.ndarray, params: WaveletCurveParams,
             baseline: Fill, *, reveal: bool, batch_size: int) -> MetricResult:
    layout = wavelets.make_layout(image.shape[0], image.shape[1], params.levels, params.wavelet)
    coefficients = wavelets.forward(image.transpose(2, 0, 1).astype(np.float32), layout)  # (C, H, W)

    def reconstruct(keeps: np.ndarray) -> np.ndarray:
        images = wavelets.inverse(coefficients[None] * keeps[:, None], layout)
        return np.clip(images, 0.0, 1.0).transpose(0, 2, 3, 1).astype(np.float32)

    return curves.causal(name, score, image, attribution, params.steps, baseline, reveal=reveal,
                         batch_size=batch_size, perturbation=reconstruct)
