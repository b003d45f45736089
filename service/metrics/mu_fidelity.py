"""µ-Fidelity (Bhatt, Weller & Moura, "Evaluating and Aggregating Feature-based Model Explanations",
IJCAI 2020, definition 3), with the defaults of Xplique's ``MuFidelity``.

For random subsets S of the image, the relevance the map puts on S should match
what the model loses when S is replaced by the baseline:

    µF = corr_S( sum_{i in S} attribution_i, f(x) - f(x with S replaced) ).

As in Xplique, S is a set of cells of a ``grid_size`` x ``grid_size`` grid, each
cell removed independently with probability ``subset_fraction`` (so |S| varies;
Bhatt et al. draw a fixed number of single pixels, and Xplique recommends cells
for images of any size), and the correlation is Spearman's by default (Bhatt et
al. use Pearson's). When either side is constant the correlation is
undefined: the score is then 0, as in Xplique, and ``values["undefined"]`` is 1.
Higher is better.

The subsets are random, so the score has a spread: ``standard_error`` is the SD of the correlation over
``RESAMPLES`` random halves of the subsets drawn (pairs of relevance sum and score drop kept together, drawn
without replacement), arithmetic only (issue 12). A half of n/2 pairs without replacement varies around the
full correlation as much as the full one varies from draw to draw (for a mean: (s^2 / (n/2)) (1 - 1/2) = s^2 / n).
Half-sampling rather than the bootstrap, whose duplicated pairs would feed tied ranks to Spearman's correlation
(both agree within 6% here), and rather than Fisher's z, which assumes bivariate normal sums and drops.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import chain

import numpy as np
from scipy import stats

from service.errors import InvalidArgument
from service.declared import param
from service.explainers import footprint
from service.explainers.baselines import Fill
from service.metrics.base import (Metric, MetricResult, Score, attribution_map, batch_memory, check_int, check_number,
                                  map_memory, perturbed_scores)

CORRELATIONS = {"spearman": stats.spearmanr, "pearson": stats.pearsonr}
# Random numbers drawn at once for the subsets (2 MiB of float64): a float64 stream drawn in pieces is the
# stream drawn at once, so the subsets do not depend on it, and memory does not grow with num_samples.
DRAW_VALUES = 2**18
# Random halves of the subsets for the score's standard error: 200 give the SE to about 5%
# (1 / sqrt(2 (B - 1))), in a few x 200 x num_samples arithmetic, no passes.
RESAMPLES = 200


@dataclass(frozen=True)
class MuFidelityParams:
    grid_size: int = param(9, "Cells per side of the grid the subsets are made of (Xplique: 9).")
    subset_fraction: float = param(0.2, "Probability that each cell is in the removed subset (Xplique: 0.2).")
    num_samples: int = param(200, "Random subsets drawn (Xplique: 200).")
    correlation: str = param("spearman", "spearman (Xplique) or pearson (Bhatt et al.).")


def check(params: MuFidelityParams, image_shape: tuple[int, int, int]) -> None:
    check_int(params.grid_size, "mu_fidelity.grid_size", 1, min(image_shape[:2]))
    check_number(params.subset_fraction, "mu_fidelity.subset_fraction", 0.0, 1.0, open_low=True)
    # A correlation needs two points at least; the cap (500 times Xplique's 200) bounds one request's work.
    check_int(params.num_samples, "mu_fidelity.num_samples", 2, 100_000)
    if params.correlation not in CORRELATIONS:
        raise InvalidArgument(f"{params.correlation!r} is not one of {sorted(CORRELATIONS)}",
                              field="mu_fidelity.correlation")


def forward_passes(params: MuFidelityParams, image_shape: tuple[int, int, int]) -> int:
    return params.num_samples + 1


def memory(params: MuFidelityParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The map, each pixel's cell (int64), a chunk of subsets drawn (float64, then bool), their relevance sums
    and scores, and a batch of masks and images or, after them, a chunk of the half-samples (indices, resampled
    sums and drops, their ranks and centred copies)."""
    cells, samples = params.grid_size**2, params.num_samples
    draw = min(samples, max(1, DRAW_VALUES // cells)) * cells
    return (footprint.OVERHEAD + map_memory(image_shape) + footprint.I64 * footprint.pixels(image_shape)
            + (footprint.F64 + 1) * draw + 4 * footprint.F64 * (samples + 1)
            + max(batch_memory(min(batch_size, samples + 1), image_shape),
                  8 * footprint.F64 * max(DRAW_VALUES, samples)))  # a chunk of half-samples, ranked


def removed_subsets(rng: np.random.Generator, count: int, cells: int, fraction: float, relevance: np.ndarray,
                    sums: list[np.ndarray]):
    """``count`` random subsets of the cells (each cell in with probability ``fraction``) as bool rows, drawn
    ``DRAW_VALUES`` numbers at a time; each chunk's relevance sums go to ``sums`` as it is drawn."""
    step = max(1, DRAW_VALUES // cells)
    for start in range(0, count, step):
        removed = rng.random((min(step, count - start), cells)) < fraction
        sums.append(removed @ relevance)
        yield from removed


def grid_cells(height: int, width: int, grid_size: int) -> np.ndarray:
    """(H, W) map of each pixel's cell, raster order; sizes that do not divide split like ``np.array_split``."""
    def along(size: int) -> np.ndarray:
        return np.repeat(np.arange(grid_size), [len(part) for part in np.array_split(np.arange(size), grid_size)])

    return along(height)[:, None] * grid_size + along(width)[None, :]


def rowwise_correlation(x: np.ndarray, y: np.ndarray, correlation: str) -> np.ndarray:
    """The correlation of each row of x (B, n) with the same row of y; NaN where a row is constant."""
    if correlation == "spearman":
        x, y = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    x = x - x.mean(axis=1, keepdims=True)
    y = y - y.mean(axis=1, keepdims=True)
    norm = np.sqrt((x**2).sum(axis=1) * (y**2).sum(axis=1))
    return np.divide((x * y).sum(axis=1), norm, out=np.full(len(x), np.nan), where=norm > 0)


def half_sampling_error(sums: np.ndarray, drops: np.ndarray, correlation: str, rng: np.random.Generator) -> float:
    """SD of the correlation over ``RESAMPLES`` random halves of the (sum, drop) pairs, drawn in chunks of
    about ``DRAW_VALUES`` values; halves with a constant side (no correlation) are left out. NaN when fewer
    than two halves have a correlation."""
    n = len(sums)
    step = max(1, DRAW_VALUES // n)
    replicates = []
    for start in range(0, RESAMPLES, step):
        rows = rng.permuted(np.tile(np.arange(n), (min(step, RESAMPLES - start), 1)), axis=1)[:, :n // 2]
        replicates.append(rowwise_correlation(sums[rows], drops[rows], correlation))
    replicates = np.concatenate(replicates)
    replicates = replicates[np.isfinite(replicates)]
    return float(replicates.std(ddof=1)) if len(replicates) > 1 else float("nan")


def evaluate(score: Score, image: np.ndarray, attribution: np.ndarray, params: MuFidelityParams, *, baseline: Fill,
             mask: np.ndarray | None, batch_size: int, rng: np.random.Generator) -> MetricResult:
    del mask  # blind to the object
    # The half-sampling's own stream, spawned before any draw: the subsets are the same with or without it.
    resampling = rng.spawn(1)[0]
    cells = grid_cells(*image.shape[:2], params.grid_size)
    relevance = np.bincount(cells.ravel(), weights=attribution_map(attribution, image.shape).ravel())
    sums = []
    subsets = removed_subsets(rng, params.num_samples, params.grid_size ** 2, params.subset_fraction, relevance, sums)
    # The clean image goes first, in the same batches as the subsets.
    keeps = chain([np.ones(cells.shape, np.float32)], ((~subset[cells]).astype(np.float32) for subset in subsets))
    scores = perturbed_scores(score, image, baseline, keeps, batch_size)
    drops, sums = scores[0] - scores[1:], np.concatenate(sums)
    # Constant sides are caught up front: scipy would warn before returning NaN.
    constant = np.ptp(drops) == 0 or np.ptp(sums) == 0
    statistic = np.nan if constant else CORRELATIONS[params.correlation](sums, drops).statistic
    undefined = not np.isfinite(statistic)
    # An undefined correlation has no spread to report: its score 0 is a convention, not an estimate.
    error = None if undefined else half_sampling_error(sums, drops, params.correlation, resampling)
    return MetricResult(name="mu_fidelity", score=0.0 if undefined else float(statistic),
                        values={"undefined": float(undefined)},
                        standard_error=None if error is None or not np.isfinite(error) else error)


METRIC = Metric(
    name="mu_fidelity",
    summary="Correlation between the relevance of random subsets and the score drop when they are removed; "
            "higher is better.",
    reference="Bhatt, Weller & Moura, Evaluating and Aggregating Feature-based Model Explanations, IJCAI 2020",
    params=MuFidelityParams,
    evaluate=evaluate,
    forward_passes=forward_passes,
    check=check,
    memory=memory,
    cost_parameter="num_samples",
)
