"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

N random binary grids of ``grid_size`` cells, kept with probability p, are
stretched bilinearly to (grid_size + 1) cells and cropped at a random shift
*per mask* (Xplique draws one shift per batch, which biases the map), giving
smooth keep-masks M. The saliency of a pixel is the score-weighted mean of the
masks, E[f(x_M) M] / p, estimated as sum_n f(x_Mn) Mn / (N p).

Defaults: N = 4000, grid 7, p = 0.5, the paper's ResNet-50 setting and
Xplique's defaults. The masks are those of N grids drawn at once, then N shifts,
but only the shifts are held (16 bytes per mask): the grids are drawn batch by
batch, ``DRAW_CELLS`` random numbers at a time, as masks are built and scored,
and the sum is accumulated. A float32 stream drawn in pieces is the stream
drawn at once, so the map does not depend on the batch size, and memory grows
with the batch, not with N (a million 32 x 32 grids drawn at once took 4 GB of
float32 before they became booleans).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Method, Predict, no_checkpoint, param
from service.explainers.baselines import Fill, perturb

# Random numbers drawn per call while making grids (4 MiB of float32), whatever the batch.
DRAW_CELLS = 2**20


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


def skip_float32(rng: np.random.Generator, count: int) -> np.random.Generator:
    """A new generator in the state ``rng`` will be in after drawing ``count`` float32 numbers, without drawing
    them: numpy makes each float32 of 32 random bits, two per 64-bit output of the bit generator, and keeps
    an unused half for the next draw, so PCG64 jumps ahead by whole outputs (``advance``) and keeps the
    half. Other bit generators draw and discard, ``DRAW_CELLS`` at a time."""
    bits = copy.deepcopy(rng.bit_generator)
    if not isinstance(bits, np.random.PCG64):
        ahead = np.random.Generator(bits)
        for start in range(0, count, DRAW_CELLS):
            ahead.random(min(DRAW_CELLS, count - start), dtype=np.float32)
        return ahead
    state = bits.state
    if state["has_uint32"] and count:
        count -= 1  # the kept half makes the first number
    bits.state = {**state, "has_uint32": 0, "uinteger": 0}
    bits.advance(count // 2)
    if count % 2:
        high_half = int(bits.random_raw()) >> 32
        bits.state = {**bits.state, "has_uint32": 1, "uinteger": high_half}
    return np.random.Generator(bits)


class MaskSampler:
    """RISE's masks, built in order, batch by batch, from the numbers a single draw of all N grids and then
    all shifts would give: the shifts are drawn up front from where that draw would leave ``rng``
    (``skip_float32``), the grids from ``rng`` as the batches need them. After the last mask, ``finish``
    leaves ``rng`` where drawing everything at once would have, so what the job draws next is unchanged."""

    def __init__(self, params: RiseParams, height: int, width: int, rng: np.random.Generator) -> None:
        cells = params.grid_size
        self.cells, self.keep_probability, self.rng = cells, params.keep_probability, rng
        self.cell_h, self.cell_w = math.ceil(height / cells), math.ceil(width / cells)
        self.rows = upsampler(cells, self.cell_h)
        self.cols = upsampler(cells, self.cell_w)
        self.height, self.width = height, width
        ahead = skip_float32(rng, params.num_masks * cells * cells)
        # The only state that grows with N: 16 bytes per mask.
        self.shift_y = ahead.integers(0, self.cell_h, params.num_masks)
        self.shift_x = ahead.integers(0, self.cell_w, params.num_masks)
        self.after = ahead.bit_generator.state
        self.built = 0

    def grids(self, count: int) -> np.ndarray:
        """The next ``count`` grids (count, cells, cells) bool, cell kept with probability p."""
        grids = np.empty((count, self.cells, self.cells), dtype=bool)
        step = max(1, DRAW_CELLS // self.cells**2)
        for start in range(0, count, step):
            stop = min(start + step, count)
            np.less(self.rng.random((stop - start, self.cells, self.cells), dtype=np.float32), self.keep_probability,
                    out=grids[start:stop])
        return grids

    def masks(self, start: int, stop: int) -> np.ndarray:
        """Masks start..stop-1 as (B, H, W) float32: rows(shift) @ grid @ cols(shift)^T; in order only."""
        if start != self.built:
            raise ValueError(f"masks are built in order: next is {self.built}, not {start}")
        self.built = stop
        grids = self.grids(stop - start).astype(np.float32)
        rows = self.rows[self.shift_y[start:stop, None] + np.arange(self.height)]  # (B, H, cells)
        cols = self.cols[self.shift_x[start:stop, None] + np.arange(self.width)]  # (B, W, cells)
        return rows @ grids @ cols.transpose(0, 2, 1)

    def finish(self) -> None:
        """Leave ``rng`` past the grids and the shifts, as one draw of both would."""
        self.rng.bit_generator.state = self.after


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


def memory(params: RiseParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The shifts, the sums (T, H, W) float64 and, per batch, the larger of building masks (grids, the
    interpolation rows and columns, their products) and perturbing them (masks, images); at the end the
    centring and scaling of the sums."""
    (height, width, _), cells = image_shape, params.grid_size
    batch, pixels = min(batch_size, params.num_masks), height * width
    rows = footprint.F32 * (height + width) * cells + footprint.I64 * (height + width)
    building = batch * (5 * cells**2 + 2 * rows + footprint.F32 * (height * cells + pixels)) \
        + min(DRAW_CELLS, batch * cells**2) * footprint.F32
    perturbing = footprint.keep_masks(batch, image_shape) + footprint.perturbation(batch, image_shape)
    sums = footprint.F64 * targets * pixels
    return (footprint.OVERHEAD + 16 * params.num_masks + 2 * footprint.F64 * pixels
            + max(sums + max(building, perturbing), footprint.keep_masks(batch, image_shape) + 3 * sums,
                  3 * sums + footprint.maps(targets, image_shape)))


def attribute(predict: Predict, image: np.ndarray, params: RiseParams, *, baseline: Fill, batch_size: int,
              rng: np.random.Generator, checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """sum_n f(x_Mn) Mn / (N p), one map per explained class."""
    del checkpoint  # every batch calls predict, which checkpoints
    height, width = image.shape[:2]
    sampler = MaskSampler(params, height, width, rng)
    weighted, score_sum, coverage = 0.0, 0.0, np.zeros((height, width))
    for start in range(0, params.num_masks, batch_size):
        masks = sampler.masks(start, min(start + batch_size, params.num_masks))
        scores = predict(perturb(image, masks, baseline)).astype(np.float64)  # (B, T)
        weighted = weighted + np.tensordot(scores.T, masks, axes=1)  # (T, H, W)
        score_sum = score_sum + scores.sum(axis=0)
        coverage += masks.sum(axis=0)
    sampler.finish()
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
    memory=memory,
    cost_parameter="num_masks",
    randomized=True,
)
