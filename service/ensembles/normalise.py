"""Normalisations that put maps from different methods on one scale before they are combined.

Each takes one map (H, W) and returns a float64 map of the same shape; ``absolute`` first takes |a| (methods
disagree on signs). A constant map stays constant (0) rather than dividing by zero. The list follows the
reference note metrics_and_measures.md §C; ``second_moment`` is Binder et al.'s, as in Quantus.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy.stats import rankdata

from service.errors import InvalidArgument

PERCENTILE = 99.5
_TINY = 1e-12


def _scaled(values: np.ndarray, scale: float) -> np.ndarray:
    return values / scale if scale > _TINY else np.zeros_like(values)


def max_abs(a: np.ndarray) -> np.ndarray:
    return _scaled(a, np.abs(a).max())


def min_max(a: np.ndarray) -> np.ndarray:
    return _scaled(a - a.min(), a.max() - a.min())


def z_score(a: np.ndarray) -> np.ndarray:
    return _scaled(a - a.mean(), a.std())


def percentile(a: np.ndarray) -> np.ndarray:
    """a / q_99.5(|a|), clipped to [-1, 1]: robust to a few extreme pixels."""
    return np.clip(_scaled(a, np.percentile(np.abs(a), PERCENTILE)), -1.0, 1.0)


def sum_to_one(a: np.ndarray) -> np.ndarray:
    return _scaled(np.abs(a), np.abs(a).sum())


def rank(a: np.ndarray) -> np.ndarray:
    """The percentile rank of each pixel in (0, 1]; ties share their average rank."""
    return (rankdata(a, method="average") / a.size).reshape(a.shape)


def second_moment(a: np.ndarray) -> np.ndarray:
    return _scaled(a, np.sqrt(np.mean(a**2)))


NORMALISATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "max_abs": max_abs, "min_max": min_max, "z_score": z_score, "percentile": percentile,
    "sum_to_one": sum_to_one, "rank": rank, "second_moment": second_moment,
}


def normalise(maps: np.ndarray, how: str, *, absolute: bool = False) -> np.ndarray:
    """Every map of ``maps`` (K, H, W) normalised on its own."""
    if how not in NORMALISATIONS:
        raise InvalidArgument(f"normalisation {how!r} is not one of {list(NORMALISATIONS)}", field="normalisation")
    values = np.abs(maps) if absolute else np.asarray(maps, dtype=np.float64)
    return np.stack([NORMALISATIONS[how](m.astype(np.float64)) for m in values])
