"""KernelSHAP over superpixels (Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions",
NeurIPS 2017, Theorem 2).

The Shapley values phi of the game v(S) = f(image with the superpixels in S
kept, the others replaced by the baseline) are the solution of a weighted
least-squares regression of v(z) - v(empty) on the coalitions z, under the
Shapley kernel pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)) and the efficiency
constraint sum(phi) = v(full) - v(empty). The empty and full coalitions have
infinite weight, so they are evaluated once each and enter as constraints.

Coalitions:
- When all 2^M - 2 other coalitions fit in the budget, they are enumerated and
  weighted by the kernel: the result is then the exact Shapley values.
- Otherwise sizes k in 1..M-1 are drawn with p(k) proportional to
  (M - 1) / (k (M - k)) and a uniform subset of size k: each coalition is then
  drawn with probability proportional to pi(z), so the regression takes unit
  weights (as Xplique's KernelShap; the shap library samples the same
  distribution but enumerates whole sizes when its budget allows). Each draw
  is paired with its complement, as shap and Covert & Lee (2021) do, and the
  pairs come in rounds from two independent halves of the seed until the
  split-half reliability reaches ``target_reliability`` (``coalitions``).

``num_samples`` counts forward passes including the two fixed coalitions; with
exact enumeration only 2^M <= num_samples passes are made. Defaults: at most 8000
samples (Xplique's 800 and lime's 1000 reach reliability 0.7-0.9 only) on 50 SLIC superpixels: SLIC's
target count keeps the number of players, and so the samples a stable estimate
needs, predictable, where quickshift's count depends on the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import comb

from service.explainers import footprint
from service.explainers.base import Checkpoint, Method, Output, Predict, no_checkpoint, param
from service.explainers.baselines import Fill
from service.explainers.coalitions import sampled_fit, solve, with_maps
from service.explainers.precision import Precision, SamplingParams, StopReason
from service.explainers.precision import check_sampling as check_stopping
from service.explainers.superpixels import (CHUNK_VALUES, check_sampling, chunk_rows, coalition_scores, max_features,
                                            normal_equations, paint, sampling_memory, segment_checked)


@dataclass(frozen=True)
class KernelShapParams(SamplingParams):
    num_samples: int = param(8000, "Forward passes at most, the empty and full coalitions included; all coalitions "
                                   "are enumerated (exact Shapley values) when 2^M <= num_samples, otherwise "
                                   "sampling stops earlier once target_reliability is reached (1000 reach 0.7 to 0.9 "
                                   "on the bundled models, 0.9 takes 500 to 10000: bench/precision.py).")
    segmentation: str = param("slic", "Superpixels: slic or quickshift (lime_image's settings).")
    n_segments: int = param(50, "Target number of SLIC superpixels (ignored by quickshift).")


def check(params: KernelShapParams, image_shape: tuple[int, int, int]) -> None:
    # Fewer sampled coalitions than superpixels is allowed: the number of superpixels is only known after
    # segmenting, and the regression then returns its minimum-norm solution (see ``shapley_regression``).
    check_sampling("kernel_shap", params.num_samples, params.segmentation, params.n_segments, image_shape)
    check_stopping(params, "kernel_shap")


def forward_passes(params: KernelShapParams, image_shape: tuple[int, int, int]) -> int:
    """At most: exact enumeration of M superpixels stops at 2^M passes when that is fewer."""
    return params.num_samples


def shapley_kernel(z: np.ndarray) -> np.ndarray:
    """pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)) for coalitions z (N, M) other than empty and full."""
    n_features = z.shape[1]
    size = z.sum(axis=1)
    return (n_features - 1) / (comb(n_features, size) * size * (n_features - size))


def all_coalitions(n_features: int) -> np.ndarray:
    """Every coalition (2^M - 2, M) but the empty and the full one, as the bits of 1 .. 2^M - 2."""
    codes = np.arange(1, 2 ** n_features - 1)
    return ((codes[:, None] >> np.arange(n_features)) & 1).astype(np.int8)


def sample_coalitions(count: int, n_features: int, rng: np.random.Generator,
                      checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """``count`` coalitions (count, M) drawn with probability proportional to the Shapley kernel; sorting
    100,000 x 1,000 keys takes seconds, so ``checkpoint`` runs between chunks."""
    sizes = np.arange(1, n_features)
    p = 1.0 / (sizes * (n_features - sizes))  # the constant M - 1 cancels in the normalisation
    k = rng.choice(sizes, size=count, p=p / p.sum())
    # The ranks of i.i.d. uniform keys are a uniform random permutation: keeping ranks < k keeps a
    # uniform subset of size k, for a chunk of rows at once (the keys drawn in chunks are the keys drawn at once).
    z = np.empty((count, n_features), dtype=np.int8)
    step = max(1, CHUNK_VALUES // n_features)
    for start in range(0, count, step):
        checkpoint()
        stop = min(start + step, count)
        ranks = rng.random((stop - start, n_features)).argsort(axis=1).argsort(axis=1)
        z[start:stop] = ranks < k[start:stop, None]
    return z


def shapley_rows(z: np.ndarray, gains: np.ndarray, total: np.ndarray,
                 weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of the constrained regression (``shapley_regression``): row-centred coalitions z - |z| / M, the
    gains less |z| / M of the total, and the weights (unit for coalitions drawn from the kernel)."""
    share = z.sum(axis=1) / z.shape[1]  # |z| / M per coalition
    return (z - share[:, None], gains - np.outer(share, total),
            np.ones(len(z)) if weights is None else weights)


def efficient(u: np.ndarray, total: np.ndarray) -> np.ndarray:
    """phi = total / M + u, u's residual mean removed: sum(phi) = total to machine precision (u already sums to
    zero up to rounding: it lies in the row space of the centred design)."""
    return total / len(u) + (u - u.mean(axis=0))


def shapley_regression(z: np.ndarray, gains: np.ndarray, weights: np.ndarray, total: np.ndarray,
                       checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """phi (M, T) minimising sum_i w_i (gains_i - z_i phi)^2 subject to sum(phi) = total (T,), exactly.

    ``gains`` (N, T) are v(z) - v(empty). The constraint is eliminated as in the shap library, but along
    the all-ones direction rather than the last feature: phi = total / M + u with sum(u) = 0, i.e. a
    regression on the row-centred coalitions z - |z| / M. Both give the same phi whenever the system is
    determined; when it is not (fewer coalitions than superpixels), ``lstsq``'s minimum-norm u spreads
    the unexplained part evenly instead of loading it all on the eliminated superpixel. The weighted least
    squares are solved from their normal equations, gathered in chunks of coalitions (``normal_equations``):
    the minimum-norm solution of A'WA u = A'Wr is that of sqrt(W) A u = sqrt(W) r, without an N x M float
    copy of the design.
    """
    gram, moment = normal_equations(
        lambda start, stop: shapley_rows(z[start:stop], gains[start:stop], total, weights[start:stop]),
        len(z), z.shape[1], gains.shape[1], checkpoint)
    return efficient(solve(gram, moment, np.zeros(z.shape[1])), total)


def memory(params: KernelShapParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """See ``superpixels.sampling_memory``, with the sampling's chunk of keys and their two rankings, or the exact
    enumeration's bit matrices (2^M <= N coalitions of M <= log2 N superpixels)."""
    features = max_features(params.segmentation, params.n_segments, image_shape)
    samples = params.num_samples
    drawing = max(3 * footprint.F64 * chunk_rows(samples, features) * features,
                  3 * footprint.I64 * samples * min(features, samples.bit_length()))
    return sampling_memory(samples, features, image_shape, targets, batch_size, copies=2) + drawing


def attribute(predict: Predict, image: np.ndarray, params: KernelShapParams, *, baseline: Fill,
              batch_size: int, rng: np.random.Generator, checkpoint: Checkpoint = no_checkpoint) -> Output:
    """Each superpixel's Shapley value painted on its pixels, one map per explained class, with its SE.

    The empty and full coalitions are scored first (the constraint). When every other coalition fits in the
    cap they are enumerated: the values are exact, SE 0, reliability 1. Otherwise coalitions are drawn from
    the kernel in pairs (z, 1 - z), in rounds from two halves of ``rng`` (``coalitions.sampled_fit``), and each
    value's SE is the sandwich of the constrained regression.
    """
    labels, n_features = segment_checked("kernel_shap", image, params.segmentation, params.n_segments)
    fixed = np.stack([np.zeros(n_features, np.int8), np.ones(n_features, np.int8)])
    if 2 ** n_features - 2 <= params.num_samples - 2:
        z = all_coalitions(n_features)
        scores = coalition_scores(predict, image, labels, np.concatenate([fixed, z]), baseline, batch_size)
        phi = shapley_regression(z, scores[2:] - scores[0], shapley_kernel(z), scores[1] - scores[0], checkpoint)
        passes, targets = len(scores), scores.shape[1]
        precision = Precision(np.zeros((targets, *labels.shape), np.float32), np.ones(targets), passes,
                              params.num_samples, passes, 1, StopReason.EXACT)
        return Output(paint(phi.T, labels), [{} for _ in range(targets)], precision=precision)
    ends = coalition_scores(predict, image, labels, fixed, baseline, batch_size)
    empty, total = ends[0], ends[1] - ends[0]
    no_rows = (np.zeros((0, n_features)), np.zeros((0, len(total))), np.zeros(0))
    fit = sampled_fit(predict, image, labels, baseline, batch_size, rng, params, cap=params.num_samples,
                      fixed_passes=2, draw=lambda stream, count: sample_coalitions(count, n_features, stream,
                                                                                  checkpoint),
                      design=lambda z, scores: shapley_rows(z, scores - empty, total),
                      penalty=np.zeros(n_features), features=lambda u: efficient(u, total), prior=no_rows,
                      checkpoint=checkpoint)
    maps, precision = with_maps(fit, efficient(fit.coef, total), fit.standard_error, labels)
    return Output(maps, [{} for _ in maps], precision=precision)


METHOD = Method(
    name="kernel_shap",
    summary="Shapley values of the superpixels by the Shapley-kernel weighted regression; sum = f(x) - f(baseline).",
    reference="Lundberg & Lee, A Unified Approach to Interpreting Model Predictions, NeurIPS 2017",
    params=KernelShapParams,
    attribute=attribute,
    forward_passes=forward_passes,
    check=check,
    cost="num_samples (2^M when all coalitions of M superpixels fit: exact enumeration)",
    memory=memory,
    cost_parameter="num_samples",
    randomized=True,
)
