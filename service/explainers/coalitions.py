"""Coalitions drawn in rounds from two independent halves, and the weighted least squares that LIME and
KernelSHAP fit to them, with the sandwich standard error of each coefficient (``precision``).

- **Rounds.** A round draws 2M coalitions for M superpixels, M in each half (reference note, section 1:
  "LIME/SHAP 2d paired coalitions"), the last round cut to the cap. Each half draws from its own stream, so
  the two half fits are independent and their Spearman correlation gives the split-half reliability.
- **Paired sampling.** Coalitions come in pairs (z, 1 - z) (Covert & Lee 2021): the pair's errors cancel for
  the additive part of the model. Both members of a pair have the same marginal law as an unpaired draw
  (LIME's z ~ Bernoulli(1/2)^M; KernelSHAP's kernel is symmetric in |z| <-> M - |z|), so the estimators are
  unchanged; the pair is one cluster in the sandwich.
- **Memory.** The normal equations of each half are grown round by round, ``CHUNK_VALUES`` values at a time
  (``superpixels.normal_equations``); the sandwich takes one more chunked pass over the rows once the fit is
  known, accumulating only the diagonal of A^-1 (sum_c g_c g_c^T) A^-1, never an N x M float design.

The sandwich (cluster-robust, HC3-scaled residuals) is Var(beta) = A^-1 (sum_c g_c g_c^T) A^-1 with
A = X'WX + penalty and g_c = sum_{i in pair c} w_i x_i r_i / (1 - h_i), h_i = w_i x_i' A^-1 x_i the leverage:
the residuals are the surrogate's misfit, not homoscedastic noise, and HC3's 1 / (1 - h) keeps the SE from
falling short when N is only a few times M. The ridge's bias is not in it (reference note, section 1).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from service.explainers.base import Checkpoint, Predict, no_checkpoint
from service.explainers.baselines import Fill
from service.explainers.precision import (Precision, SamplingParams, StopReason, Stopping, samples_for_target,
                                          split_half_reliability)
from service.explainers.superpixels import CHUNK_VALUES, coalition_scores, normal_equations, paint

# (z int8 (B, M), scores (B, T)) -> (x (B, P), y (B, T), w (B,)) float64: the regression's rows.
Design = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]

# Coalitions a half draws a round at least: with a handful of superpixels (lime's quickshift on a 64 x 64 image
# finds about 6) 2M a round would let the rule stop after 5 x 12 passes, on split-half Spearmans over 6 values
# that are too coarse to trust (measured: reliability 0.97 reported, 0.83 between seeds).
MIN_ROUND_HALF = 16


def solve(gram: np.ndarray, moment: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Coefficients (P, T) of (gram + diag(penalty)) beta = moment. ``lstsq`` rather than ``solve``: without a
    penalty and with few samples the system can be singular (minimum-norm solution then)."""
    return np.linalg.lstsq(gram + np.diag(penalty), moment, rcond=None)[0]


def round_counts(total: int, features: int) -> list[tuple[int, int]]:
    """Coalitions (half a, half b) per round: M each (rounded up to whole pairs), at least ``MIN_ROUND_HALF``, the
    last round cut so that the rounds add up to ``total``; half a takes the odd one out."""
    per_half, rounds = 2 * ((max(features, MIN_ROUND_HALF) + 1) // 2), []
    while total > 0:
        first = min(per_half, (total + 1) // 2)
        rounds.append((first, min(per_half, total - first)))
        total -= sum(rounds[-1])
    return rounds


def paired(draw: Callable[[int], np.ndarray], count: int) -> np.ndarray:
    """``count`` coalitions (count, M) int8 as pairs (z, 1 - z) on consecutive rows, z = ``draw(pairs)``."""
    base = draw((count + 1) // 2)
    pairs = np.empty((2 * len(base), base.shape[1]), np.int8)
    pairs[0::2], pairs[1::2] = base, 1 - base
    return pairs[:count]


@dataclass
class Half:
    """One half's coalitions and scores (preallocated to its cap) and its normal equations so far."""

    z: np.ndarray
    scores: np.ndarray | None = None
    count: int = 0
    gram: np.ndarray | None = None
    moment: np.ndarray | None = None


def pair_clusters(g: np.ndarray) -> np.ndarray:
    """Per-row score contributions (B, P) summed over consecutive pairs (B/2 rounded up, P)."""
    if len(g) % 2:
        g = np.concatenate([g, np.zeros((1, g.shape[1]))])
    return g[0::2] + g[1::2]


def sandwich_variance(design: Design, z: np.ndarray, scores: np.ndarray, coef: np.ndarray, inverse: np.ndarray,
                      *, pairs: bool, checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """sum over clusters of (A^-1 g_c)^2, (P, T): the diagonal of the sandwich's contribution of these rows."""
    parameters, targets = coef.shape
    variance = np.zeros((parameters, targets))
    step = max(2, 2 * (CHUNK_VALUES // (2 * parameters)))  # even: a chunk never splits a pair
    for start in range(0, len(z), step):
        checkpoint()
        x, y, w = design(z[start:start + step], scores[start:start + step])
        leverage = np.einsum("bp,bp->b", x @ inverse, x) * w
        scaled = w / np.maximum(1.0 - leverage, 1e-3)  # HC3; a leverage of 1 (a point fitted exactly) is capped
        residuals = y - x @ coef
        for target in range(targets):
            g = x * (scaled * residuals[:, target])[:, None]
            g = pair_clusters(g) if pairs else g
            variance[:, target] += ((g @ inverse) ** 2).sum(axis=0)
    return variance


@dataclass(frozen=True)
class Fit:
    coef: np.ndarray  # (P, T) over the whole sample
    standard_error: np.ndarray  # (P, T)
    precision: Precision  # its standard_error still empty: the method paints its own features


def sampled_fit(predict: Predict, image: np.ndarray, labels: np.ndarray, baseline: Fill, batch_size: int,
                rng: np.random.Generator, params: SamplingParams, *, cap: int, fixed_passes: int,
                draw: Callable[[np.random.Generator, int], np.ndarray], design: Design, penalty: np.ndarray,
                features: Callable[[np.ndarray], np.ndarray], prior: tuple[np.ndarray, np.ndarray, np.ndarray],
                checkpoint: Checkpoint = no_checkpoint) -> Fit:
    """Draw up to ``cap`` coalitions in rounds from two halves of ``rng``, fit, and say how precise the fit is.

    ``draw(generator, pairs)`` gives unpaired coalitions (pairs, M) int8; ``design`` turns coalitions and their
    scores into regression rows; ``prior`` = (x, y, w) rows fitted in every fit but drawn in none (LIME's
    anchor at the image itself; empty for KernelSHAP); ``penalty`` (P,) is added to the diagonal of the
    normal equations (LIME's ridge, not on the intercept; zeros for KernelSHAP); ``features``
    maps coefficients (P, T) to the method's per-superpixel values (M, T), whose split-half Spearman is the
    reliability. ``fixed_passes`` are the passes already made (counted in the samples and the cap).
    """
    n_features = int(labels.max()) + 1
    streams = rng.spawn(2)
    rounds = round_counts(cap - fixed_passes, n_features)
    halves = [Half(np.empty((sum(r[h] for r in rounds), n_features), np.int8)) for h in (0, 1)]
    prior_x, prior_y, prior_w = prior
    prior_gram = prior_x.T @ (prior_x * prior_w[:, None])
    prior_moment = (prior_x * prior_w[:, None]).T @ prior_y

    def grow(half: Half, stream: np.random.Generator, count: int) -> None:
        if count == 0:
            return
        z = paired(lambda pairs: draw(stream, pairs), count)
        scores = coalition_scores(predict, image, labels, z, baseline, batch_size)
        if half.scores is None:
            half.scores = np.empty((len(half.z), scores.shape[1]))
            half.gram, half.moment = prior_gram.copy(), prior_moment.copy()
        start, half.count = half.count, half.count + count
        half.z[start:half.count], half.scores[start:half.count] = z, scores
        gram, moment = normal_equations(lambda a, b: design(z[a:b], scores[a:b]), count, prior_x.shape[1],
                                        scores.shape[1], checkpoint)
        half.gram += gram
        half.moment += moment

    def half_values(half: Half) -> np.ndarray:
        return features(solve(half.gram, half.moment, penalty))

    stopping, reason = Stopping(params), StopReason.SAMPLES
    for index, counts in enumerate(rounds):
        for half, stream, count in zip(halves, streams, counts):
            grow(half, stream, count)
        reason = stopping.after_round(index + 1, last=index + 1 == len(rounds), reliability=lambda: (
            split_half_reliability(half_values(halves[0]).T, half_values(halves[1]).T)))
        if reason:
            break
    drawn = [half for half in halves if half.count]
    if not drawn:  # nothing to draw (KernelSHAP's two fixed coalitions fill the cap): the prior rows alone
        targets = prior_y.shape[1]
        coef = solve(prior_gram, prior_moment, penalty)
        precision = Precision(np.zeros(0, np.float32), np.zeros(targets), fixed_passes, cap, fixed_passes, 0,
                              StopReason.SAMPLES)
        return Fit(coef, np.zeros_like(coef), precision)
    gram = sum(half.gram for half in drawn) - (len(drawn) - 1) * prior_gram
    moment = sum(half.moment for half in drawn) - (len(drawn) - 1) * prior_moment
    coef = solve(gram, moment, penalty)
    # The pseudo-inverse equals the inverse when the system is regular, and is the right bread when it is not:
    # KernelSHAP's row-centred design is singular along the all-ones direction, where phi has no error.
    inverse = np.linalg.pinv(gram + np.diag(penalty), hermitian=True)
    variance = np.zeros_like(coef)
    if len(prior_x):  # the prior rows (LIME's anchor): each its own cluster, unscaled
        residuals = prior_y - prior_x @ coef
        for target in range(coef.shape[1]):
            variance[:, target] += (((prior_x * (prior_w * residuals[:, target])[:, None]) @ inverse) ** 2).sum(0)
    for half in drawn:
        variance += sandwich_variance(design, half.z[:half.count], half.scores[:half.count], coef, inverse,
                                      pairs=True, checkpoint=checkpoint)
    reliability = (split_half_reliability(half_values(halves[0]).T, half_values(halves[1]).T)
                   if halves[1].count else np.zeros(coef.shape[1]))
    samples = fixed_passes + sum(half.count for half in halves)
    precision = Precision(np.zeros(0, np.float32), reliability, samples, cap, samples, stopping.rounds, reason,
                          samples_for_target(reliability, samples, params.target_reliability))
    return Fit(coef, np.sqrt(variance), precision)


def with_maps(fit: Fit, values: np.ndarray, errors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, Precision]:
    """The painted maps (T, H, W) of per-superpixel ``values`` (M, T), and the precision with ``errors`` (M, T)
    painted likewise: a superpixel's SE is the SE of every pixel in it."""
    return paint(values.T, labels), replace(fit.precision, standard_error=paint(errors.T, labels))
