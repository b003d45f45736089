"""(d) Stability across independently trained models: for each image, SSIM between the maps of every pair
of models (the reference: 10 runs, 45 pairs, per architecture and training type). Identical models give 1."""

from __future__ import annotations

from typing import Callable

import numpy as np

from service.metrics.agreement import pairwise, ssim


def stability(maps: np.ndarray, checkpoint: Callable[[], None] = lambda: None) -> np.ndarray:
    """``maps`` (models, images, H, W) -> (images, pairs) SSIM of every pair of models, pairs in
    (0, 1), (0, 2), ... order; ``checkpoint`` runs before each pair."""
    models = maps.shape[0]
    if models < 2:
        raise ValueError("stability needs the maps of at least two models")
    upper = np.triu_indices(models, k=1)
    return np.stack([pairwise(maps[:, i], ssim, checkpoint)[upper] for i in range(maps.shape[1])])
