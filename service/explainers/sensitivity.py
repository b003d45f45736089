"""Variance-based sensitivity analysis over grid masks: the core shared by Sobol, HSIC and WCAM.

The random inputs are the cells of a g x g mask grid; each mask is upsampled
to the image with nearest interpolation, applied by a method-specific
perturbation, and the model's scores are the outputs whose sensitivity to each
cell is measured (Fel et al., "Look at the Variance! Efficient Black-box
Explanations with Sobol-based Sensitivity Analysis", NeurIPS 2021).

Total-order Sobol indices use the replicated quasi-Monte Carlo design of
Saltelli (2002): two independent n x d matrices A and B, and for every input i
the matrix C^(i), which is A with column i taken from B. The full design is
[A; B; C^(1); ...; C^(d)], n (d + 2) rows, generated here in row chunks so
that no more than one batch of masks is in memory at a time.

Precision (issue 12, ``precision``): the design comes from two independently scrambled Sobol'
sequences, the *halves*, each grown by doubling its own sequence (1, 2, 4, ... points: every prefix
of 2^m points of a scrambled sequence is a balanced net), so a round is one doubling of both halves.
The map is Jansen's estimator over the pooled rows of both halves; the split-half reliability
compares the two halves' own estimates over the grid cells; the standard error of each cell's index
is Jansen's asymptotic one (``jansen_total_order``), which treats the rows as independent draws and
so is conservative for a scrambled net (QMC converges at least as fast as MC).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage
from scipy.stats import qmc

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Predict, no_checkpoint
from service.explainers.precision import (Precision, SamplingParams, StopReason, Stopping, samples_for_target,
                                          split_half_reliability)

log = logging.getLogger(__name__)

# Xplique's guard on the output variance: below it the indices are meaningless (constant or saturated outputs).
VARIANCE_FLOOR = 1e-12
# scipy's Sobol' direction numbers (Joe & Kuo 2008) cover this many dimensions.
SOBOL_MAX_DIMENSION = qmc.Sobol.MAXDIM
# Designs are generated whole (scipy has no streaming sampler): at most this many values, 32 MiB in
# float64. Far above the references: Sobol 32 x 2 x 64, HSIC 1500 x 49, WCAM 8 x 2 x 784.
MAX_DESIGN_VALUES = 2**22
# Pooled Sobol' points below which neither the asymptotic standard error, nor the split-half reliability, nor
# a bootstrap interval is trusted (reference note section 1: a row bootstrap of a Sobol' net is meaningless at
# WCAM's N = 8; require N >= 32 for any CI). Halves grow 1, 2, 4, ... points, so the pooled count after round
# k is 2^k and the stopping rule first looks after round log2(32) = 5, which is also precision.MIN_ROUNDS.
MIN_TRUSTED_POINTS = 32
# Bootstrap replicates of the indices (``bootstrap_total_order``): percentile intervals at 95% need a few
# hundred; SALib uses 100, scipy 999. 200 costs arithmetic only (no forward pass), measured in bench/.
BOOTSTRAP_RESAMPLES = 200
CONFIDENCE = 0.95


class ScrambledSequence:
    """One Owen-scrambled Sobol' sequence in 2d dimensions, A and B side by side, drawn in order.

    Scrambling avoids the all-zero first point of the plain sequence (a fully masked image); its seed
    is drawn from ``rng`` once, so the same seed gives the same sequence. Drawing n more points after
    n continues the same sequence, so a design grown by doubling is the first 2^m points of one
    sequence, a balanced net at every size (scipy warns when a size is not a power of 2).
    """

    def __init__(self, d: int, rng: np.random.Generator) -> None:
        self.d = d
        self.sampler = qmc.Sobol(d=2 * d, scramble=True, rng=int(rng.integers(2**63)))

    def draw(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The next n points as A and B blocks (n, d) float32 in [0, 1]."""
        points = self.sampler.random(n).astype(np.float32)
        return points[:, :self.d], points[:, self.d:]


def sobol_design(d: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The two n x d base matrices A and B of the replicated design, float32 in [0, 1]: the first n points
    of one scrambled sequence (``ScrambledSequence``), as in the WCAM and Sobol reference code. ``n`` must be
    a power of 2: the balance properties of Sobol' points only hold then."""
    if n < 1 or n & (n - 1):
        raise ValueError(f"the number of Sobol' points must be a power of 2, not {n}")
    return ScrambledSequence(d, rng).draw(n)


def design_size(d: int, n: int) -> int:
    """Rows of the full design [A; B; C^(1); ...; C^(d)]."""
    return n * (d + 2)


def design_rows(a: np.ndarray, b: np.ndarray, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of the full design [A; B; C^(1); ...; C^(d)] without building the rest.

    Row r belongs to block r // n and is the (r % n)-th point of that block; block 0 is A,
    block 1 is B, block 2 + i is C^(i): A with column i replaced by B's.
    """
    n = a.shape[0]
    block, point = np.divmod(np.arange(start, stop), n)
    rows = np.where((block == 1)[:, None], b[point], a[point])
    swapped = np.flatnonzero(block >= 2)
    column = block[swapped] - 2
    rows[swapped, column] = b[point[swapped], column]
    return rows


def output_variance(y_a: np.ndarray) -> np.ndarray:
    """Unbiased variance (T,) of the outputs (n, T) on the A block, the denominator of the indices."""
    return np.var(y_a.astype(np.float64), axis=0, ddof=1)


def uninformative(y_a: np.ndarray) -> np.ndarray:
    """(T,) True where the output hardly varies (constant or saturated scores): the indices carry no signal."""
    return output_variance(y_a) <= VARIANCE_FLOOR


def jansen_total_order(y_a: np.ndarray, y_c: np.ndarray) -> np.ndarray:
    """Jansen's (1999) estimator of the total-order indices (d, T) from y_A (n, T) and y_C (d, n, T).

    ST_i = sum_n (y_A,n - y_C(i),n)^2 / (2 n V) with V the variance of y_A, floored at
    ``VARIANCE_FLOOR`` as Xplique does (see ``uninformative``). The outputs on B are not needed
    here: the method still evaluates them (the design and the pass count keep the standard
    n (d + 2) layout) because other estimators (Homma, Janon, Glen, Saltelli) use them.
    """
    return jansen_with_error(y_a, y_c, standard_error=False)[0]


def jansen_with_error(y_a: np.ndarray, y_c: np.ndarray, *,
                      standard_error: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """Jansen's indices (d, T) and their asymptotic standard errors (d, T), or None.

    With d_n = (y_A,n - y_C(i),n)^2 / 2 and c_n = (y_A,n - mean y_A)^2, ST = mean(d) / V is a ratio
    of means, and the delta method gives its standard error from psi_n = d_n - ST c_n:
    SE = sd(psi) / (sqrt(n) V) (reference note section 1; Janon et al. 2014 prove asymptotic
    normality). It treats the n rows as independent draws: for a scrambled Sobol' net, whose error
    shrinks at least as fast, it is conservative. Constant outputs give indices and errors of 0.
    """
    n = y_a.shape[0]
    y_a = y_a.astype(np.float64)
    variance = np.maximum(output_variance(y_a), VARIANCE_FLOOR)
    halved = 0.5 * (y_a[None] - y_c) ** 2  # d_n (d, n, T)
    indices = halved.mean(axis=1) / variance
    if not standard_error:
        return indices, None
    halved -= indices[:, None] * ((y_a - y_a.mean(axis=0)) ** 2)[None]  # psi_n, in place
    spread = halved.std(axis=1, ddof=1) if n > 1 else np.zeros_like(indices)
    return indices, spread / (math.sqrt(n) * variance)


def bootstrap_total_order(y_a: np.ndarray, y_c: np.ndarray, rng: np.random.Generator,
                          resamples: int = BOOTSTRAP_RESAMPLES) -> np.ndarray:
    """Jansen's indices (R, d) of one class on R row resamples: y_A (n,), y_C (d, n).

    Rows are resampled jointly, as SALib and scipy do: replicate r draws rows with replacement and
    every index of that replicate uses the same rows of A and of every C(i), so the replicates keep
    the indices' correlation (what shares of their sum need). Arithmetic only: a replicate is a
    weighted mean of d_n under multinomial counts, no forward pass.
    """
    n = y_a.shape[0]
    counts = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples).astype(np.float64)  # (R, n)
    centred = y_a.astype(np.float64) - y_a.mean()
    mean = counts @ centred / n
    variance = np.maximum((counts @ centred**2 / n - mean**2) * n / max(n - 1, 1), VARIANCE_FLOOR)
    halved = 0.5 * (y_a[None].astype(np.float64) - y_c) ** 2  # (d, n)
    return (counts @ halved.T) / (n * variance[:, None])


def check_grid(grid_size: int, image_shape: tuple[int, ...], field: str, max_cells: int | None = None) -> None:
    """A g x g grid needs at least 2 cells a side and at most one cell per pixel; ``max_cells`` bounds g^2."""
    smallest = min(image_shape[:2])
    if not 2 <= grid_size <= smallest:
        raise InvalidArgument(f"grid_size {grid_size} must be between 2 and the image's smaller side {smallest}",
                              field=field)
    if max_cells is not None and grid_size**2 > max_cells:
        raise InvalidArgument(f"grid_size {grid_size} gives {grid_size**2} cells; the Sobol' sampler allows at most "
                              f"{max_cells}, so grid_size <= {int(np.sqrt(max_cells))}", field=field)


def check_design_memory(points: int, columns: int, field: str) -> None:
    """The base design (points x columns) must fit in ``MAX_DESIGN_VALUES``."""
    if points * columns > MAX_DESIGN_VALUES:
        raise InvalidArgument(f"{points} designs of {columns} values exceed the {MAX_DESIGN_VALUES} values a design "
                              "may hold; lower num_designs or grid_size", field=field)


def upsample_nearest(grids: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Grid masks (B, gh, gw) to (B, H, W) by nearest neighbour, as cv2.INTER_NEAREST maps pixels.

    Pixel (y, x) takes cell (y * gh // H, x * gw // W): cells are H/gh by W/gw pixels, anisotropic
    on non-square images, and every cell covers at least one pixel when g <= H, W.
    """
    height, width = shape
    rows = np.arange(height) * grids.shape[1] // height
    cols = np.arange(width) * grids.shape[2] // width
    # Two steps of basic-and-fancy indexing keep the batch axis outermost in memory (one 2-D fancy index
    # puts it innermost, which makes every later product over the masks 3-4x slower).
    return np.ascontiguousarray(grids[:, rows][:, :, cols])


def upsample_bicubic(maps: np.ndarray, shape: tuple[int, int], checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """Index maps (T, gh, gw) to (T, H, W) float32 by cubic interpolation, clipped at 0.

    The references resize with cv2.INTER_CUBIC; this is scipy's cubic spline with the same
    pixel-centre alignment (grid_mode) and replicated borders. Both overshoot near sharp cells,
    and the indices are non-negative by definition, so the negative lobes are clipped to 0.
    ``checkpoint`` runs before each map: T large maps take a while.
    """
    factors = (shape[0] / maps.shape[1], shape[1] / maps.shape[2])
    resized = []
    for m in maps:
        checkpoint()
        resized.append(ndimage.zoom(m.astype(np.float64), factors, order=3, mode="nearest", grid_mode=True))
    return np.clip(np.stack(resized), 0.0, None).astype(np.float32)


def design_memory(points: int, grid: int, batch: int, image_shape: tuple[int, int, int], targets: int) -> int:
    """What the two ``ScrambledSequence`` halves and the replicated design's batches hold: the scrambled points
    (n x 2d float64 over both halves, then float32; the halves' scrambling matrices are temporaries of their
    construction, one after the other), per batch the design rows picked (three (B, d) float32) and their
    nearest masks, and the scores of all n (d + 2) rows. The perturbation of the masks is the method's own."""
    cells = grid * grid
    dimensions = 2 * cells
    return (footprint.sobol_points(points, dimensions) + footprint.F32 * points * dimensions
            + 3 * footprint.F32 * batch * cells + footprint.nearest_masks(batch, grid, image_shape)
            + footprint.scores(design_size(cells, points), targets))


def jansen_memory(points: int, cells: int, targets: int) -> int:
    """``jansen_with_error`` on the pooled rows: y_A in float64, the pooled copy of y_C, d_n, the product that
    makes psi_n and the deviations its standard deviation takes (each (d, n, T)), and the (d, T) results; the
    halves' estimates (``sample_total_order``) are smaller."""
    return footprint.F64 * targets * (points + 4 * cells * points + 3 * cells)


def bootstrap_memory(points: int, cells: int, resamples: int = BOOTSTRAP_RESAMPLES) -> int:
    """``bootstrap_total_order`` for one class: the counts (R, n), d_n (d, n), and the replicates (R, d) with
    their product's temporary."""
    return footprint.F64 * (resamples * points + cells * points + 2 * resamples * cells)


def grid_scores(predict: Predict, rows: Callable[[int, int], np.ndarray], count: int, grid: tuple[int, int],
                perturbation: Callable[[np.ndarray], np.ndarray], image_shape: tuple[int, ...],
                batch_size: int) -> np.ndarray:
    """Scores (count, T) float64 of the images perturbed by mask rows 0..count, one batch at a time.

    ``rows(start, stop)`` gives design rows (B, gh * gw) in [0, 1]; each is reshaped to the grid,
    upsampled with nearest and turned into images by ``perturbation(keep (B, H, W))``. Only one
    batch of masks and images exists at a time; the scores are small (count x T).
    """
    chunks = []
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        keep = upsample_nearest(rows(start, stop).reshape(-1, *grid), image_shape[:2])
        chunks.append(np.asarray(predict(perturbation(keep)), dtype=np.float64))
    return np.concatenate(chunks)


@dataclass(frozen=True)
class TotalOrder:
    """What ``sample_total_order`` measured: Jansen over the pooled rows of both halves, and its precision."""

    indices: np.ndarray  # (d, T)
    standard_error: np.ndarray  # (d, T), Jansen's asymptotic SE per cell
    reliability: np.ndarray  # (T,) split-half over the cells
    y_a: np.ndarray  # (N, T) pooled scores on A: half a's points, then half b's
    y_c: np.ndarray  # (d, N, T) pooled scores on C(i)
    max_points: int  # the cap
    forward_passes: int
    rounds: int
    stop_reason: StopReason

    @property
    def points(self) -> int:
        return self.y_a.shape[0]

    @property
    def trusted(self) -> bool:
        """Enough pooled points for the standard error, the reliability and any interval to mean something."""
        return self.points >= MIN_TRUSTED_POINTS

    def precision(self, standard_error: np.ndarray, target: float) -> Precision:
        """``Output.precision`` with the per-pixel ``standard_error`` (T, H, W) the method mapped from the cells'.
        ``samples_for_target`` is rounded up to a power of 2, the only design sizes there are."""
        wanted = samples_for_target(self.reliability, self.points, target)
        return Precision(standard_error=standard_error.astype(np.float32), reliability=self.reliability,
                         samples=self.points, max_samples=self.max_points, forward_passes=self.forward_passes,
                         rounds=self.rounds, stop_reason=self.stop_reason,
                         samples_for_target=1 << (wanted - 1).bit_length() if wanted else 0)


def rounds_for(points: int) -> int:
    """Doublings of both halves (1, 2, 4, ... points each) until they pool ``points``, a power of 2 >= 2."""
    return points.bit_length() - 1


def sample_total_order(predict: Predict, params: SamplingParams, cap: int, grid: tuple[int, int],
                       perturbation: Callable[[np.ndarray], np.ndarray], image_shape: tuple[int, ...],
                       batch_size: int, rng: np.random.Generator, *, method: str) -> TotalOrder:
    """Sample the replicated design in rounds until the split-half reliability reaches the target.

    Two halves, ``rng.spawn(2)``, each its own scrambled sequence; round k draws points 2^(k-2) ...
    2^(k-1) of both (round 1 draws one point each), scores their design rows [A; B; C(1..d)] and
    stops by ``precision.Stopping``. With the cap n (a power of 2) the rounds end at n / 2 points per
    half, n (d + 2) passes: the old design's count. The stopping rule first looks once the halves
    pool ``MIN_TRUSTED_POINTS``; a cap below that runs whole and says so (one log line).
    """
    d = grid[0] * grid[1]
    halves = [ScrambledSequence(d, stream) for stream in rng.spawn(2)]
    total_rounds = rounds_for(cap)
    stopping = Stopping(params, min_rounds=rounds_for(MIN_TRUSTED_POINTS))
    y_a = y_c = None  # (2, cap / 2, T) and (2, d, cap / 2, T), allocated at the first scores
    drawn = passes = 0

    def half_reliability() -> np.ndarray:
        if drawn < 2:  # one point per half has no variance to divide by
            return np.zeros(y_a.shape[-1])
        maps = [jansen_total_order(y_a[h, :drawn], y_c[h, :, :drawn]) for h in range(2)]
        return split_half_reliability(maps[0].T, maps[1].T)

    def settled() -> np.ndarray:
        # A class whose output does not vary (``uninformative``) has all-zero indices at any sample count: more
        # samples cannot change its map, so it does not hold the others back (its reported reliability stays 0).
        flat = uninformative(np.concatenate([y_a[0, :drawn], y_a[1, :drawn]]))
        return np.where(flat, 1.0, half_reliability())

    for index in range(total_rounds):
        size = max(drawn, 1)  # doubling: as many new points as there are
        for h, half in enumerate(halves):
            a, b = half.draw(size)
            scores = grid_scores(predict, lambda start, stop: design_rows(a, b, start, stop), design_size(d, size),
                                 grid, perturbation, image_shape, batch_size)
            if y_a is None:
                y_a = np.empty((2, cap // 2, scores.shape[1]))
                y_c = np.empty((2, d, cap // 2, scores.shape[1]))
            # Rows size:2 size are the B block: evaluated (standard design) but unused by Jansen.
            y_a[h, drawn:drawn + size] = scores[:size]
            y_c[h, :, drawn:drawn + size] = scores[2 * size:].reshape(d, size, -1)
            passes += len(scores)
        drawn += size
        reason = stopping.after_round(index + 1, last=index + 1 == total_rounds, reliability=settled)
        if reason:  # the last round always has one (SAMPLES)
            break
    pooled_a = np.concatenate([y_a[0, :drawn], y_a[1, :drawn]])
    pooled_c = np.concatenate([y_c[0, :, :drawn], y_c[1, :, :drawn]], axis=1)
    if 2 * drawn < MIN_TRUSTED_POINTS:
        log.info("Sobol' design below the points its precision needs", extra={
            "method": method, "points": 2 * drawn, "min_trusted_points": MIN_TRUSTED_POINTS})
    indices, error = jansen_with_error(pooled_a, pooled_c)
    return TotalOrder(indices, error, half_reliability(), pooled_a, pooled_c, cap, passes, stopping.rounds, reason)
