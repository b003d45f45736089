"""(b) Reaction to out-of-set samples: salt-and-pepper noise at graded amounts (the reference's levels; half
salt, half pepper, scikit-image's ``random_noise``), with the model's score and SSIM(map on the noisy image,
map on the clean image) at each, and the area under both curves over the amounts (trapezoid)."""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.integrate import trapezoid
from skimage.util import random_noise

from service.metrics.agreement import ssim

LEVELS = (0.0, 0.01, 0.05, 0.10, 0.25, 0.50, 0.75, 1.0)


def out_of_set(image: np.ndarray, explain: Callable[[np.ndarray], np.ndarray],
               score: Callable[[np.ndarray], np.ndarray], rng: np.random.Generator,
               levels: tuple[float, ...] = LEVELS, attribution: np.ndarray | None = None,
               checkpoint: Callable[[], None] = lambda: None) -> dict:
    """Curves over ``levels`` (ascending amounts in [0, 1]); at amount 0 the image is the clean one, so its map
    is ``attribution`` (explained here when not given) and its SSIM 1 by definition."""
    clean = explain(image) if attribution is None else attribution
    noisy = []
    for amount in levels:
        checkpoint()  # one noisy image per level: a long list of levels takes a while before the first score
        noisy.append(image if amount == 0 else
                     random_noise(image, mode="s&p", amount=amount, rng=int(rng.integers(2**31))).astype(np.float32))
    scores = score(np.stack(noisy)).astype(np.float64)
    similarity = np.array([1.0 if amount == 0 else ssim(explain(x), clean) for amount, x in zip(levels, noisy)])
    return {"levels": list(levels), "scores": scores.tolist(), "ssim": similarity.tolist(),
            "score_auc": float(trapezoid(scores, levels)), "ssim_auc": float(trapezoid(similarity, levels))}
