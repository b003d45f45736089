"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

N random binary grids of ``grid_size`` cells, kept with probability p, are
stretched bilinearly to (grid_size + 1) cells and cropped at a random shift
*per mask* (Xplique draws one shift per batch, which biases the map), giving
smooth keep-masks M. The saliency of a pixel is the score-weighted mean of the
masks, E[f(x_M) M] / p, estimated as sum_n f(x_Mn) Mn / (N p).

Defaults: N = 4000, grid 7, p = 0.5, the paper's ResNet-50 setting and
Xplique's defaults. All grids and shifts are drawn up front (N x grid^2 bits),
masks are built batch by batch, and the sum is accumulated: memory does not
grow with N, and the map does not depend on the batch size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidArgument
from service.explainers.base import Method, Predict, param
from service.explainers.baselines import Fill, perturb


@dataclass(frozen=True)
class RiseParams:
    num_masks: int = param(4000, "Number of random masks N (Petsiuk et al. 2018 use 4000 to 8000).")
    grid_size: int = param(7, "Cells per side of the random grid before upsampling (paper: 7).")
    keep_probability: float = param(0.5, "Probability that a cell is kept (paper: 0.5).")
    centered: bool = param(False, "Subtract the mean score: sum_n (f_n - mean f) M_n / (N p). The map shifts by "
                                  "about E[f], the paper's constant offset, so positive means above-average evidence.")


def upsampler(cells: int, cell_size: int) -> np.ndarray:
    """Bilinear stretch of ``cells`` values to (cells + 1) * cell_size pixels, as a matrix.

    Half-pixel centres and clamped edges (scikit-image's ``resize(order=1, mode="edge")``); the
    extra cell is the room the random shift needs.
    """
    length = (cells + 1) * cell_size
    source = (np.arange(length) + 0.5) * cells / length - 0.5
    low = np.floor(source).astype(int)
    frac = (source - low).astype(np.float32)
    matrix = np.zeros((length, cells), dtype=np.float32)
    rows = np.arange(length)
    np.add.at(matrix, (rows, np.clip(low, 0, cells - 1)), 1.0 - frac)
    np.add.at(matrix, (rows, np.clip(low + 1, 0, cells - 1)), frac)
    return matrix


class MaskSampler:
    """RISE's masks, drawn once from ``rng`` and built on demand in any slices."""

    def __init__(self, params: RiseParams, height: int, width: int, rng: np.random.Generator) -> None:
        cells = params.grid_size
        self.cell_h, self.cell_w = math.ceil(height / cells), math.ceil(width / cells)
        self.rows = upsampler(cells, self.cell_h)
        self.cols = upsampler(cells, self.cell_w)
        self.height, self.width = height, width
        # Kept as booleans (N x cells^2 bytes): the only state that grows with N.
        self.grids = rng.random((params.num_masks, cells, cells), dtype=np.float32) < params.keep_probability
        self.shift_y = rng.integers(0, self.cell_h, params.num_masks)
        self.shift_x = rng.integers(0, self.cell_w, params.num_masks)

    def masks(self, start: int, stop: int) -> np.ndarray:
        """Masks start..stop-1 as (B, H, W) float32: rows(shift) @ grid @ cols(shift)^T."""
        rows = self.rows[self.shift_y[start:stop, None] + np.arange(self.height)]  # (B, H, cells)
        cols = self.cols[self.shift_x[start:stop, None] + np.arange(self.width)]  # (B, W, cells)
        return rows @ self.grids[start:stop].astype(np.float32) @ cols.transpose(0, 2, 1)


def check(params: RiseParams, image_shape: tuple[int, int, int]) -> None:
    if not 1 <= params.num_masks <= 1_000_000:
        raise InvalidArgument(f"{params.num_masks} must be between 1 and 1000000", field="rise.num_masks")
    if not 2 <= params.grid_size <= min(image_shape[:2]):
        raise InvalidArgument(f"{params.grid_size} must be between 2 and the image's shorter side "
                              f"{min(image_shape[:2])}", field="rise.grid_size")
    if not 0.0 < params.keep_probability < 1.0:
        raise InvalidArgument(f"{params.keep_probability} must be strictly between 0 and 1",
                              field="rise.keep_probability")


def forward_passes(params: RiseParams, image_shape: tuple[int, int, int]) -> int:
    return params.num_masks


def attribute(predict: Predict, image: np.ndarray, params: RiseParams, *, baseline: Fill, batch_size: int,
              rng: np.random.Generator) -> np.ndarray:
    """sum_n f(x_Mn) Mn / (N p), one map per explained class."""
    height, width = image.shape[:2]
    sampler = MaskSampler(params, height, width, rng)
    weighted, score_sum, coverage = 0.0, 0.0, np.zeros((height, width))
    for start in range(0, params.num_masks, batch_size):
        masks = sampler.masks(start, min(start + batch_size, params.num_masks))
        scores = predict(perturb(image, masks, baseline)).astype(np.float64)  # (B, T)
        weighted = weighted + np.tensordot(scores.T, masks, axes=1)  # (T, H, W)
        score_sum = score_sum + scores.sum(axis=0)
        coverage += masks.sum(axis=0)
    if params.centered:
        # A control variate: the same expectation minus E[f] E[M] / p = E[f], with less noise.
        weighted = weighted - (score_sum / params.num_masks)[:, None, None] * coverage
    return (weighted / (params.num_masks * params.keep_probability)).astype(np.float32)


METHOD = Method(
    name="rise",
    summary="Score-weighted mean of random smooth masks: how much keeping a pixel raises the score.",
    reference="Petsiuk, Das & Saenko, RISE: Randomized Input Sampling for Explanation of Black-box Models, "
              "BMVC 2018",
    params=RiseParams,
    attribute=attribute,
    forward_passes=forward_passes,
    check=check,
    cost="num_masks",
    randomized=True,
)
