"""RISE: Randomized Input Sampling for Explanation (Petsiuk, Das & Saenko, BMVC 2018).

N random binary grids of ``grid_size`` cells, kept with probability p, are
stretched bilinearly to (grid_size + 1) cells and cropped at a random shift
*per mask* (Xplique draws one shift per batch, which biases the map), giving
smooth keep-masks M. The saliency of a pixel is the score-weighted mean of the
masks, E[f(x_M) M] / p, estimated as sum_n f(x_Mn) Mn / (N p).

Defaults: N = 8000 at most (the paper's upper setting: 4000 left one bundled image short of reliability 0.9),
grid 7, p = 0.5, the paper's ResNet-50 setting and Xplique's defaults. The masks come from two independent
halves of ``rng`` (``rng.spawn(2)``), each with its own ``MaskSampler`` over half the cap. A
sampler holds only the shifts (16 bytes per mask): the grids are drawn batch by
batch, ``DRAW_CELLS`` random numbers at a time, as masks are built and scored.
A float32 stream drawn in pieces is the stream drawn at once, so the map does
not depend on the batch size, and memory grows with the batch, not with N (a
million 32 x 32 grids drawn at once took 4 GB of float32 before they became
booleans).

Precision (``service.explainers.precision``): masks are drawn in rounds of
``ROUND_MASKS``, half from each half, and each half keeps float64 streaming sums
(of y M, y^2 M^2, M and, centred, y^2, y^2 M, y M^2 and M^2) from which come its map, the
map over both, and the per-pixel standard error of the estimator that made the
map, without keeping a mask. After each round the split-half reliability decides
whether to stop (``Stopping``); with ``target_reliability`` 0 all N are drawn.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Method, Output, Predict, no_checkpoint, param
from service.explainers.baselines import Fill, perturb
from service.explainers.precision import (Precision, SamplingParams, Stopping, check_sampling, samples_for_target,
                                          split_half_reliability)

# Random numbers drawn per call while making grids (4 MiB of float32), whatever the batch.
DRAW_CELLS = 2**20
# Masks per round, half from each half (the reference note's 256 to 512): a fixed count, not a multiple of the
# batch size, so that where sampling stops, and so the map, does not depend on the batch size. With the
# minimum of five rounds, the earliest stop is at 1280 masks, a third of the default cap.
ROUND_MASKS = 256
# Reliability is the split-half Spearman over pixels sampled every cell / 4 in each direction (all pixels when
# cells are under 8 pixels): the maps are sums of masks that are bilinear over cells, so pixels closer than a
# quarter cell carry the same ranking, and a 224^2 map is ranked over 28 x 28 = 784 pixels, not 50176
# (tests/test_rise.py checks that both give the same reliability).
SAMPLES_PER_CELL = 4


@dataclass(frozen=True)
class RiseParams(SamplingParams):
    num_masks: int = param(8000, "The most random masks N to draw (Petsiuk et al. 2018 use 4000 to 8000); sampling "
                                 "stops earlier once target_reliability is reached: 1280 to 8000 masks at the "
                                 "default 0.9 on the bundled models (bench/precision.py).")
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

    def __init__(self, params: RiseParams, height: int, width: int, rng: np.random.Generator,
                 count: int | None = None) -> None:
        count = params.num_masks if count is None else count  # a half's sampler builds count masks
        cells = params.grid_size
        self.cells, self.keep_probability, self.rng = cells, params.keep_probability, rng
        self.cell_h, self.cell_w = math.ceil(height / cells), math.ceil(width / cells)
        self.rows = upsampler(cells, self.cell_h)
        self.cols = upsampler(cells, self.cell_w)
        self.height, self.width = height, width
        ahead = skip_float32(rng, count * cells * cells)
        # The only state that grows with N: 16 bytes per mask.
        self.shift_y = ahead.integers(0, self.cell_h, count)
        self.shift_x = ahead.integers(0, self.cell_w, count)
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

    def masks(self, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Masks start..stop-1 as (B, H, W) float32: rows(shift) @ grid @ cols(shift)^T; in order only. ``out``
        (B, H, W) float32 receives them (a slice of a batch that also holds the other half's masks)."""
        if start != self.built:
            raise ValueError(f"masks are built in order: next is {self.built}, not {start}")
        self.built = stop
        grids = self.grids(stop - start).astype(np.float32)
        rows = self.rows[self.shift_y[start:stop, None] + np.arange(self.height)]  # (B, H, cells)
        cols = self.cols[self.shift_x[start:stop, None] + np.arange(self.width)]  # (B, W, cells)
        return np.matmul(rows @ grids, cols.transpose(0, 2, 1), out=out)

    def finish(self) -> None:
        """Leave ``rng`` past the grids and the shifts, as one draw of both would."""
        self.rng.bit_generator.state = self.after


def check(params: RiseParams, image_shape: tuple[int, int, int]) -> None:
    check_sampling(params, "rise")
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
    """The shifts, both halves' sums (``HalfSums``) and, per batch, the batch's masks and the largest of
    building a half's share of them (grids, the interpolation rows and columns, their products), perturbing
    them (images) and adding them to the sums (squared masks, their float64 copy, a product); at the end the
    sums over both halves, the totals and the standard error, the maps and their standard errors."""
    (height, width, _), cells = image_shape, params.grid_size
    batch, pixels = min(batch_size, params.num_masks), height * width
    rows = footprint.F32 * (height + width) * cells + footprint.I64 * (height + width)
    building = batch * (5 * cells**2 + 2 * rows + footprint.F32 * height * cells) \
        + min(DRAW_CELLS, batch * cells**2) * footprint.F32
    perturbing = footprint.perturbation(batch, image_shape)
    adding = footprint.F64 * batch * pixels + 2 * footprint.F64 * 2 * targets * pixels
    centered = int(params.centered)
    sums = footprint.F64 * ((2 + 2 * centered) * targets * pixels + (1 + centered) * pixels)  # one half's
    finishing = sums + 6 * footprint.F64 * targets * pixels + 2 * footprint.maps(targets, image_shape)
    return (footprint.OVERHEAD + 16 * params.num_masks + 2 * sums
            + max(footprint.keep_masks(batch, image_shape) + max(building, perturbing, adding), finishing))


class HalfSums:
    """One half's streaming float64 sums over its masks: what its map, the map over both halves and the standard
    error need, without keeping a mask. y is the score (per class), M the mask (per pixel); sums over pixels are
    kept flat, (T, H x W)."""

    NAMES = ("scores", "weighted", "weighted_sq", "coverage")
    CENTERED_NAMES = ("scores_sq", "square_weighted", "cross", "coverage_sq")

    def __init__(self, targets: int, height: int, width: int, centered: bool) -> None:
        self.count, self.centered, self.shape = 0, centered, (height, width)
        pixels = height * width
        self.scores = np.zeros(targets)  # sum y
        self.weighted = np.zeros((targets, pixels))  # sum y M
        self.weighted_sq = np.zeros((targets, pixels))  # sum y^2 M^2
        self.coverage = np.zeros(pixels)  # sum M
        if centered:  # the terms of the centred estimator's influence function, squared
            self.scores_sq = np.zeros(targets)  # sum y^2
            self.square_weighted = np.zeros((targets, pixels))  # sum y^2 M
            self.cross = np.zeros((targets, pixels))  # sum y M^2
            self.coverage_sq = np.zeros(pixels)  # sum M^2

    def add(self, scores: np.ndarray, masks: np.ndarray) -> None:
        """``scores`` (B, T) float64 of the perturbations kept by ``masks`` (B, H, W) float32.

        One float64 copy of the masks, squared in place: the products are two float64 BLAS calls (numpy's
        float64-by-float32 product does not use BLAS and took five times as long as all of this)."""
        flat = masks.reshape(len(masks), -1).astype(np.float64)
        scores_sq = scores * scores
        self.count += len(scores)
        self.scores += scores.sum(axis=0)
        self.coverage += flat.sum(axis=0)
        targets = scores.shape[1]
        if self.centered:
            both = np.concatenate([scores, scores_sq], axis=1)  # (B, 2T): y, y^2
            by_mask = both.T @ flat
            self.weighted += by_mask[:targets]
            self.square_weighted += by_mask[targets:]
            self.scores_sq += scores_sq.sum(axis=0)
        else:
            self.weighted += scores.T @ flat
        np.multiply(flat, flat, out=flat)
        if self.centered:
            by_square = both.T @ flat
            self.cross += by_square[:targets]
            self.weighted_sq += by_square[targets:]
            self.coverage_sq += flat.sum(axis=0)
        else:
            self.weighted_sq += scores_sq.T @ flat

    def merged(self, other: "HalfSums") -> "HalfSums":
        both = copy.copy(self)
        both.count = self.count + other.count
        for name in self.NAMES + (self.CENTERED_NAMES if self.centered else ()):
            setattr(both, name, getattr(self, name) + getattr(other, name))
        return both

    def map(self, keep_probability: float, where=(slice(None), slice(None))) -> np.ndarray:
        """sum y M / (N p), or sum (y - mean y) M / (N p) centred, (T, H, W) over the pixels ``where``."""
        total = self.weighted.reshape(-1, *self.shape)[(slice(None), *where)]
        if self.centered:
            coverage = self.coverage.reshape(self.shape)[where]
            total = total - (self.scores / max(self.count, 1))[:, None, None] * coverage
        return total / (max(self.count, 1) * keep_probability)

    def standard_error(self, keep_probability: float) -> np.ndarray:
        """sd(psi) / (p sqrt N) per pixel (T, H, W), psi the estimator's influence function: y M for the plain
        mean; y M - c y - b M for the centred mean(y M) - b c (b = mean y, c = mean M, the delta method), which
        counts that the mean score is estimated from the same draws. 0 for a single mask, whose spread is
        unknown."""
        count = self.count
        if not self.centered:
            total, total_sq = self.weighted, self.weighted_sq
        else:
            b, c = (self.scores / count)[:, None], self.coverage / count
            total = self.weighted - 2.0 * count * b * c
            total_sq = (self.weighted_sq + c**2 * self.scores_sq[:, None] + b**2 * self.coverage_sq
                        - 2.0 * c * self.square_weighted - 2.0 * b * self.cross + 2.0 * b * c * self.weighted)
        variance = np.maximum(total_sq - total**2 / count, 0.0) / max(count - 1, 1)
        return (np.sqrt(variance / count) / keep_probability).reshape(-1, *self.shape)


def feature_pixels(sampler: MaskSampler) -> tuple[slice, slice]:
    """The pixels reliability is computed over: every cell / ``SAMPLES_PER_CELL`` pixels, from the middle of the
    first step."""
    steps = (max(1, sampler.cell_h // SAMPLES_PER_CELL), max(1, sampler.cell_w // SAMPLES_PER_CELL))
    return tuple(slice(step // 2, None, step) for step in steps)


def reliability(halves: list[HalfSums], keep_probability: float, where: tuple[slice, slice]) -> np.ndarray:
    """Split-half reliability (T,) of the two halves' maps over the pixels ``where``."""
    maps = [half.map(keep_probability, where).reshape(len(half.scores), -1) for half in halves]
    return split_half_reliability(*maps)


def round_batches(round_index: int, counts: tuple[int, int], batch_size: int):
    """The batches of one round: lists of (half, start, stop), half 0's masks then half 1's, ``batch_size`` at
    most in all: the halves share batches, so a batch of 256 scores a whole round in one call."""
    per_half = ROUND_MASKS // 2
    pieces = [(half, round_index * per_half, min((round_index + 1) * per_half, counts[half])) for half in (0, 1)]
    batch, room = [], batch_size
    for half, start, stop in pieces:
        while start < stop:
            end = min(stop, start + room)
            batch.append((half, start, end))
            room -= end - start
            start = end
            if room == 0:
                yield batch
                batch, room = [], batch_size
    if batch:
        yield batch


def attribute(predict: Predict, image: np.ndarray, params: RiseParams, *, baseline: Fill, batch_size: int,
              rng: np.random.Generator, checkpoint: Checkpoint = no_checkpoint) -> Output:
    """sum_n f(x_Mn) Mn / (N p), one map per explained class, with its precision."""
    del checkpoint  # every batch calls predict, which checkpoints
    height, width = image.shape[:2]
    counts = ((params.num_masks + 1) // 2, params.num_masks // 2)
    samplers = [MaskSampler(params, height, width, half, count) for half, count in zip(rng.spawn(2), counts)]
    where = feature_pixels(samplers[0])
    halves: list[HalfSums] = []
    rounds = -(-counts[0] // (ROUND_MASKS // 2))
    stopping = Stopping(params)
    for round_index in range(rounds):
        for batch in round_batches(round_index, counts, batch_size):
            masks = np.empty((sum(stop - start for _, start, stop in batch), height, width), dtype=np.float32)
            offsets = np.cumsum([0] + [stop - start for _, start, stop in batch])
            for (half, start, stop), offset in zip(batch, offsets):
                samplers[half].masks(start, stop, out=masks[offset:offset + stop - start])
            scores = predict(perturb(image, masks, baseline)).astype(np.float64)  # (B, T)
            if not halves:
                halves = [HalfSums(scores.shape[1], height, width, params.centered) for _ in range(2)]
            for (half, start, stop), offset in zip(batch, offsets):
                halves[half].add(scores[offset:offset + stop - start], masks[offset:offset + stop - start])
        reason = stopping.after_round(round_index + 1, last=round_index + 1 == rounds,
                                      reliability=lambda: reliability(halves, params.keep_probability, where))
        if reason:
            break
    both = halves[0].merged(halves[1])
    achieved = reliability(halves, params.keep_probability, where)
    maps = both.map(params.keep_probability).astype(np.float32)
    precision = Precision(
        standard_error=both.standard_error(params.keep_probability).astype(np.float32), reliability=achieved,
        samples=both.count, max_samples=params.num_masks, forward_passes=both.count, rounds=stopping.rounds,
        stop_reason=reason, samples_for_target=samples_for_target(achieved, both.count, params.target_reliability))
    return Output(maps, [{} for _ in maps], precision=precision)


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
