"""The terms of the memory estimates that methods and metrics share, in bytes.

Each is an upper bound of what a step allocates at once, counted as numpy allocates it (float32 = 4
bytes, float64 = 8), from the shapes alone: a method's ``memory`` adds its own terms to these and the
tests compare the sum with ``tracemalloc``'s peak (tests/test_budget.py). ``P`` is H x W pixels.
"""

from __future__ import annotations

F32, F64, I64 = 4, 8, 8
# Python's and numpy's fixed costs of a call (small arrays, objects): keeps tiny problems' estimates above zero.
OVERHEAD = 256 * 1024


def pixels(shape: tuple[int, ...]) -> int:
    return shape[0] * shape[1]


def perturbation(batch: int, shape: tuple[int, int, int]) -> int:
    """``baselines.perturb`` on a static fill, given the keep masks (B, H, W) float32: the removed
    share (B, H, W), the images (B, H, W, C) and one channel's product, all float32."""
    return F32 * batch * pixels(shape) * (shape[2] + 2)


def keep_masks(batch: int, shape: tuple[int, ...]) -> int:
    """A batch of keep masks (B, H, W) float32."""
    return F32 * batch * pixels(shape)


def scores(count: int, targets: int) -> int:
    """Scores (count, T) float64 gathered batch by batch, then concatenated: twice."""
    return 2 * F64 * count * targets


def maps(targets: int, shape: tuple[int, ...]) -> int:
    """The returned maps (T, H, W) float32."""
    return F32 * targets * pixels(shape)


def bicubic_maps(targets: int, shape: tuple[int, ...]) -> int:
    """``sensitivity.upsample_bicubic``: T float64 maps resized one by one, stacked, clipped, then the float32
    maps; the grids it starts from are small next to them."""
    return (3 * F64 + F32) * targets * pixels(shape)


def nearest_masks(batch: int, grid: int, shape: tuple[int, ...]) -> int:
    """``sensitivity.upsample_nearest`` of (B, g, g) float32 grids: the rows picked (B, H, g), then the masks."""
    return F32 * batch * (shape[0] * grid + pixels(shape))


def sobol_points(points: int, dimensions: int) -> int:
    """``qmc.Sobol(d, scramble=True).random_base2``: the float64 points and Owen scrambling's d lower
    triangular 30 x 30 int64 matrices (drawn, then their lower triangle: twice)."""
    return F64 * points * dimensions + 2 * I64 * dimensions * 30 * 30
