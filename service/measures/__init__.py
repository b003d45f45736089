"""The five salience measures of Crum, Tinsley et al. (Explain To Me: Salience-Based Explainability for
Synthetic Face Detection Models, IEEE TAI 2023, arXiv 2303.11969), one module each, as plain functions of
maps, images and callables (``explain(image) -> map``, ``score(images) -> scores``): what a model's
explanations do at scale, beyond one image. ``summary`` reduces per-image values to mean and spread."""

from __future__ import annotations

import numpy as np


def summary(values) -> dict[str, float]:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if not finite.size:
        return {"mean": float("nan"), "std": float("nan"), "min": float("nan"), "max": float("nan"), "count": 0}
    return {"mean": float(finite.mean()), "std": float(finite.std()), "min": float(finite.min()),
            "max": float(finite.max()), "count": int(finite.size)}
