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
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage
from scipy.stats import qmc

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Predict, no_checkpoint

# Xplique's guard on the output variance: below it the indices are meaningless (constant or saturated outputs).
VARIANCE_FLOOR = 1e-12
# scipy's Sobol' direction numbers (Joe & Kuo 2008) cover this many dimensions.
SOBOL_MAX_DIMENSION = qmc.Sobol.MAXDIM
# Designs are generated whole (scipy has no streaming sampler): at most this many values, 32 MiB in
# float64. Far above the references: Sobol 32 x 2 x 64, HSIC 1500 x 49, WCAM 8 x 2 x 784.
MAX_DESIGN_VALUES = 2**22


def sobol_design(d: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The two n x d base matrices A and B of the replicated design, float32 in [0, 1].

    One scrambled Sobol' sequence in 2d dimensions split in halves, as in the WCAM and Sobol
    reference code. Scrambling (Owen) avoids the all-zero first point of the plain sequence, a
    fully masked image; the scrambling seed is drawn from ``rng`` so the same seed gives the same
    design. ``n`` must be a power of 2: the balance properties of Sobol' points only hold then.
    """
    if n < 1 or n & (n - 1):
        raise ValueError(f"the number of Sobol' points must be a power of 2, not {n}")
    sampler = qmc.Sobol(d=2 * d, scramble=True, rng=int(rng.integers(2**63)))
    points = sampler.random_base2(int(n).bit_length() - 1).astype(np.float32)
    return points[:, :d], points[:, d:]


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
    n = y_a.shape[0]
    variance = np.maximum(output_variance(y_a), VARIANCE_FLOOR)
    squared = (y_a[None].astype(np.float64) - y_c) ** 2
    return squared.sum(axis=1) / (2 * n * variance)


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
    """What ``sobol_design`` and the replicated design's batches hold: the scrambled points (n x 2d float64,
    then float32), per batch the design rows picked (three (B, d) float32) and their nearest masks, and the
    scores of all n (d + 2) rows. The perturbation of the masks is the method's own."""
    cells = grid * grid
    dimensions = 2 * cells
    return (footprint.sobol_points(points, dimensions) + footprint.F32 * points * dimensions
            + 3 * footprint.F32 * batch * cells + footprint.nearest_masks(batch, grid, image_shape)
            + footprint.scores(design_size(cells, points), targets))


def jansen_memory(points: int, cells: int, targets: int) -> int:
    """``jansen_total_order``: y_A in float64, the squared differences (d, n, T) and their sums (d, T), then the
    indices transposed to grids."""
    return footprint.F64 * targets * (points + 2 * cells * points + 2 * cells)


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
