"""Pixel-wise aggregators of K normalised maps (K, H, W) -> (H, W).

``mean``, ``median``, ``max``, ``min``; ``rank_mean`` (the mean of the members' percentile ranks); and the
forms that use the members' spread sigma (ddof 0) as Bayesian optimisation uses a posterior's:
``ucb`` mu + kappa sigma (relevance the members might agree on), ``lcb`` mu - kappa sigma (relevance they
agree on), ``pi`` Phi(z) and ``ei`` (mu - tau) Phi(z) + sigma phi(z) with z = (mu - tau) / sigma, the
probability and the expected amount by which a pixel exceeds the reference level tau (by default the
``reference_quantile`` of mu over the image). With kappa = 0 both bounds are the mean; where sigma = 0 the
acquisition forms take their limits (PI: 0 below tau, 1/2 at it, 1 above; EI: max(mu - tau, 0)).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import norm

from service.ensembles.normalise import rank
from service.errors import InvalidArgument

AGGREGATORS = ("mean", "median", "max", "min", "rank_mean", "ucb", "lcb", "pi", "ei")
REFERENCE_QUANTILE = 0.9


def aggregate(maps: np.ndarray, how: str, *, kappa: float = 1.0,
              reference_quantile: float = REFERENCE_QUANTILE) -> np.ndarray:
    maps = np.asarray(maps, dtype=np.float64)
    if maps.ndim != 3 or not len(maps):
        raise InvalidArgument(f"give maps as (members, height, width), not {maps.shape}", field="maps")
    if kappa < 0:
        raise InvalidArgument("kappa must be >= 0", field="kappa")
    if not 0 <= reference_quantile <= 1:
        raise InvalidArgument("reference_quantile must be in [0, 1]", field="reference_quantile")
    mu, sigma = maps.mean(axis=0), maps.std(axis=0)
    if how == "mean":
        return mu
    if how == "median":
        return np.median(maps, axis=0)
    if how == "max":
        return maps.max(axis=0)
    if how == "min":
        return maps.min(axis=0)
    if how == "rank_mean":
        return np.mean([rank(m) for m in maps], axis=0)
    if how == "ucb":
        return mu + kappa * sigma
    if how == "lcb":
        return mu - kappa * sigma
    if how in ("pi", "ei"):
        tau = np.quantile(mu, reference_quantile)
        gap = mu - tau
        spread = sigma > 1e-12
        z = np.divide(gap, sigma, out=np.zeros_like(gap), where=spread)
        if how == "pi":
            return np.where(spread, norm.cdf(z), np.sign(gap) / 2 + 0.5)  # the limits: 0, Phi(0) = 1/2, 1
        return np.where(spread, gap * norm.cdf(z) + sigma * norm.pdf(z), np.maximum(gap, 0.0))
    raise InvalidArgument(f"aggregator {how!r} is not one of {list(AGGREGATORS)}", field="aggregator")
