"""Reference values the tests compare the service with: the textbook definitions in plain numpy and ``math``.

Written apart from ``service/`` (no call into it, and no ``scipy.stats``, which the service uses), so that
a bug there cannot hide in the expected value. Small and slow on purpose: clarity over speed.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

_TINY = 1e-12
_erf = np.vectorize(math.erf)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks in the shape of ``values``; a run of equal values shares the mean of its positions."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], flat.size]  # each run holds sorted positions start + 1 ... end
    ranks = np.empty(flat.size)
    ranks[order] = np.repeat((starts + 1 + ends) / 2, ends - starts)
    return ranks.reshape(np.shape(values))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho: Pearson's correlation of the average ranks; NaN when either map is constant."""
    x, y = average_ranks(a).ravel(), average_ranks(b).ravel()
    x, y = x - x.mean(), y - y.mean()
    if not x.any() or not y.any():
        return float("nan")
    return float(x @ y / math.sqrt((x @ x) * (y @ y)))


def kendall_tau_b(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b by counting pairs: (P - Q) / sqrt((P + Q + X)(P + Q + Y)), X and Y the pairs tied in x
    only and in y only (pairs tied in both count nowhere)."""
    concordant = discordant = tied_x = tied_y = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            dx, dy = np.sign(x[i] - x[j]), np.sign(y[i] - y[j])
            if dx == 0 and dy == 0:
                continue
            if dx == 0:
                tied_x += 1
            elif dy == 0:
                tied_y += 1
            elif dx == dy:
                concordant += 1
            else:
                discordant += 1
    return (concordant - discordant) / math.sqrt((concordant + discordant + tied_x) *
                                                 (concordant + discordant + tied_y))


def top_iou(a: np.ndarray, b: np.ndarray, fraction: float) -> float:
    """IoU of the top ``fraction`` of pixels of each map (at least one), ties taken in raster order."""
    count = max(1, round(fraction * np.size(a)))
    tops = [set(np.argsort(-np.ravel(m), kind="stable")[:count].tolist()) for m in (a, b)]
    return len(tops[0] & tops[1]) / len(tops[0] | tops[1])


def ssim_of_scaled_maps(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM (skimage, the reference implementation) of the two maps each min-max scaled to [0, 1], 7 x 7 window."""
    return float(structural_similarity(*(_unit(np.asarray(m, np.float64)) for m in (a, b)), data_range=1.0,
                                       win_size=7))


def _unit(values: np.ndarray) -> np.ndarray:
    span = values.max() - values.min()
    return (values - values.min()) / span if span > 0 else np.zeros_like(values)


def _scaled(values: np.ndarray, scale: float) -> np.ndarray:
    return values / scale if scale > _TINY else np.zeros_like(values)


def normalised(a: np.ndarray, how: str) -> np.ndarray:
    """One map normalised as the ensemble literature (Mahlau & Nolde 2022; Binder et al. for second_moment) says."""
    a = np.asarray(a, dtype=np.float64)
    if how == "max_abs":
        return _scaled(a, np.abs(a).max())
    if how == "min_max":
        return _scaled(a - a.min(), a.max() - a.min())
    if how == "z_score":
        return _scaled(a - a.mean(), a.std())
    if how == "percentile":
        return np.clip(_scaled(a, np.percentile(np.abs(a), 99.5)), -1.0, 1.0)
    if how == "sum_to_one":
        return _scaled(np.abs(a), np.abs(a).sum())
    if how == "rank":
        return average_ranks(a) / a.size
    if how == "second_moment":
        return _scaled(a, math.sqrt(np.mean(a**2)))
    raise KeyError(how)


def aggregated(maps: np.ndarray, how: str, kappa: float = 1.0, reference_quantile: float = 0.9) -> np.ndarray:
    """K normalised maps combined pixel by pixel; the spread sigma has ddof 0; PI and EI against the
    ``reference_quantile`` of the mean map, with their limits where sigma = 0 (PI 0, 1/2, 1; EI max(mu - tau, 0))."""
    maps = np.asarray(maps, dtype=np.float64)
    mu, sigma = maps.mean(axis=0), maps.std(axis=0)
    simple = {"mean": lambda: mu, "median": lambda: np.median(maps, axis=0), "max": lambda: maps.max(axis=0),
              "min": lambda: maps.min(axis=0), "ucb": lambda: mu + kappa * sigma, "lcb": lambda: mu - kappa * sigma,
              "rank_mean": lambda: np.mean([normalised(m, "rank") for m in maps], axis=0)}
    if how in simple:
        return simple[how]()
    gap = mu - np.quantile(mu, reference_quantile)
    spread = sigma > _TINY
    z = np.where(spread, gap / np.where(spread, sigma, 1.0), 0.0)
    big_phi = (1 + _erf(z / math.sqrt(2))) / 2
    if how == "pi":
        return np.where(spread, big_phi, np.where(gap > 0, 1.0, np.where(gap < 0, 0.0, 0.5)))
    if how == "ei":
        phi = np.exp(-z**2 / 2) / math.sqrt(2 * math.pi)
        return np.where(spread, gap * big_phi + sigma * phi, np.maximum(gap, 0.0))
    raise KeyError(how)
