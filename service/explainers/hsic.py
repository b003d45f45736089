"""HSIC attribution (Novello, Fel, Vigouroux, "Making Sense of Dependence: Efficient Black-box Explanations
Using Dependence Measure", NeurIPS 2022, arXiv 2206.06219).

Each cell of a g x g grid is kept or removed (binary masks, upsampled with
nearest, removed pixels take the request's baseline). A cell's attribution is
the Hilbert-Schmidt Independence Criterion between its on/off state and the
score over p random masks: unlike Sobol indices it needs no replicated design,
so p passes suffice. The g x g map is resized bicubically to the image.
Defaults are Xplique's ``HsicAttributionMethod`` (grid 8, Sobol' sampler) but
for the designs: at most 4096, stopped at reliability 0.9 (Xplique's 500 reach 0.3-0.6); its docs recommend
grid 7 with 750 (budget) or 1500 (paper) designs, and the paper samples with a Latin hypercube.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import pdist
from scipy.stats import qmc

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Method, Output, Predict, no_checkpoint, param
from service.explainers.baselines import Fill, perturb
from service.explainers.precision import (MIN_ROUNDS, Precision, SamplingParams, StopReason, Stopping,
                                          check_sampling, samples_for_target, split_half_reliability)
from service.explainers.sensitivity import (SOBOL_MAX_DIMENSION, check_design_memory, check_grid, grid_scores,
                                            upsample_bicubic, upsample_nearest)

SAMPLERS = ("sobol", "latin_hypercube")
# The estimator holds p x p kernels (128 MiB at 4096), far above the paper's 1500 designs.
MAX_DESIGNS = 4096


# Half-samples of the designs whose spread is the SE of each cell's HSIC (arithmetic only, no passes): 16 give
# the SE to about 18% (the SD of a standard deviation over n draws is about 1 / sqrt(2 (n - 1))).
HALF_SAMPLES = 16


@dataclass(frozen=True)
class HsicParams(SamplingParams):
    grid_size: int = param(8, "Cells per side of the mask grid (Xplique's default 8; its docs recommend 7).")
    num_designs: int = param(4096, "Random masks p = forward passes, at most (Xplique: 500; the paper uses "
                                   "1500): sampling stops earlier once target_reliability is reached. 500 reach "
                                   "reliability 0.3 to 0.6 on the bundled models, 0.9 takes 1500 to 9000 "
                                   "(bench/precision.py); 4096 is the most a request may ask.")
    sampler: str = param("sobol", "Design of the masks, rounded to 0/1: 'sobol' (scrambled Sobol', Xplique's "
                                  "default) or 'latin_hypercube' (the paper's).")


def check(params: HsicParams, image_shape: tuple[int, int, int]) -> None:
    max_cells = SOBOL_MAX_DIMENSION if params.sampler == "sobol" else None
    check_grid(params.grid_size, image_shape, "hsic.grid_size", max_cells=max_cells)
    if not 2 <= params.num_designs <= MAX_DESIGNS:
        raise InvalidArgument(f"num_designs {params.num_designs} must be between 2 and {MAX_DESIGNS}",
                              field="hsic.num_designs")
    check_design_memory(params.num_designs, params.grid_size**2, "hsic.num_designs")
    if params.sampler not in SAMPLERS:
        raise InvalidArgument(f"sampler {params.sampler!r} is not one of {list(SAMPLERS)}", field="hsic.sampler")
    check_sampling(params, "hsic")


def forward_passes(params: HsicParams, image_shape: tuple[int, int, int]) -> int:
    return params.num_designs


def binary_design(sampler: str, d: int, p: int, rng: np.random.Generator) -> np.ndarray:
    """p binary masks (p, d) float32: a design in [0, 1]^d rounded to {0, 1}, as Xplique's ``binary=True``.

    The Sobol' sequence is scrambled and seeded from ``rng`` (Xplique's is plain, whose first point
    removes every cell); its first p points are taken from the next power of 2, which is what
    ``Sobol.random(p)`` returns, without its warning about unbalanced counts.
    """
    seed = int(rng.integers(2**63))
    if sampler == "sobol":
        points = qmc.Sobol(d, scramble=True, rng=seed).random_base2((p - 1).bit_length())[:p]
    else:
        points = qmc.LatinHypercube(d, rng=seed).random(p)
    return np.round(points).astype(np.float32)


def median_bandwidth(y: np.ndarray) -> float:
    """Gretton's median heuristic: the median distance |y_a - y_b| over pairs of samples.

    Xplique takes the median of y itself, which is no length scale: it is negative or near 0 for
    logits, and changes with a shift of the scores. When over half the scores tie the median is 0;
    the median of the non-zero distances takes over. Constant scores make every kernel entry 1
    whatever the width, so every HSIC is 0.
    """
    distances = pdist(y[:, None])
    positive = distances[distances > 0]
    if positive.size == 0:
        return 1.0
    median = float(np.median(distances))
    return median if median > 0 else float(np.median(positive))


def output_kernel(y: np.ndarray, width: float | None = None) -> np.ndarray:
    """Gaussian kernel L (p, p) on scalar scores y (p,): exp(-(y_a - y_b)^2 / (2 w^2)), w the median heuristic
    unless given."""
    width = median_bandwidth(y) if width is None else width
    return np.exp(-((y[:, None] - y[None, :]) ** 2) / (2.0 * width**2))


def hsic_from_kernel(masks: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """(2 / p^2) u_i^T L u_i (d,) for masks (p, d) and one output's kernel L (p, p) (see ``hsic_binary``)."""
    centred = masks.astype(np.float64) - masks.mean(axis=0, dtype=np.float64)
    return 2.0 / len(masks) ** 2 * np.einsum("ad,ad->d", centred, kernel @ centred)


def hsic_binary(masks: np.ndarray, scores: np.ndarray, checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """HSIC (d, T) between each binary input of ``masks`` (p, d) and each output of ``scores`` (p, T).

    Biased V-statistic of Gretton et al. (2005), HSIC_i = tr(H K_i H H L H) / p^2 with the centring
    H = I - 11^T / p (Xplique divides by p instead; a constant factor that leaves maps unchanged).
    For binary inputs Xplique's kernel K_i[a, b] = 1.5 if x_a = x_b else 0.5 equals 1 + s s^T / 2
    with s = 2x - 1, so H K_i H = 2 u_i u_i^T with u_i = x_i - mean(x_i), and
    HSIC_i = (2 / p^2) u_i^T (H L H) u_i = (2 / p^2) u_i^T L u_i since H u_i = u_i:
    one (p, p) x (p, d) product per output instead of d kernels. ``checkpoint`` runs before each output:
    a kernel of 4096 designs takes a fraction of a second, and there is one per explained class.
    """
    columns = []
    for y in scores.T.astype(np.float64):
        checkpoint()
        columns.append(hsic_from_kernel(masks, output_kernel(y)))
    return np.stack(columns, axis=1)


def half_sampling_error(masks: np.ndarray, scores: np.ndarray, rng: np.random.Generator,
                        checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """SE (d, T) of ``hsic_binary(masks, scores)`` by half-sampling (reference note, section 1).

    A bootstrap would duplicate designs, which inflates the kernel sums; instead ``HALF_SAMPLES`` random halves
    of the p designs are drawn without replacement, each with the full sample's bandwidth (the kernel is a
    sub-matrix of the full one: no new distances), and their HSICs' standard deviation is the SE of the full
    estimate. A half of p/2 draws without replacement varies around the full estimate as much as the full
    estimate varies around its mean (for a mean: (s^2 / (p/2)) (1 - 1/2) = s^2 / p), which is the note's
    SE_full = SE_half / sqrt(2) with SE_half the spread of independent halves. Arithmetic only: no passes.
    NaN (unknown) under 4 designs.
    """
    p = len(masks)
    if p < 4:  # a half-sample of one design has no HSIC: no spread to measure (``check`` allows 2 designs)
        return np.full((masks.shape[1], scores.shape[1]), np.nan)
    halves = np.stack([rng.permutation(p)[:p // 2] for _ in range(HALF_SAMPLES)])
    errors = []
    for y in scores.T.astype(np.float64):
        checkpoint()
        kernel = output_kernel(y)
        estimates = np.stack([hsic_from_kernel(masks[half], kernel[np.ix_(half, half)]) for half in halves])
        errors.append(estimates.std(axis=0, ddof=1))
    return np.stack(errors, axis=1)


def memory(params: HsicParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The two half designs of h = ceil(p / 2) (Sobol' points at the next power of 2, or the Latin hypercube's
    uniform draws and permutations, then rounded), the scores, and the larger of a batch's masks and images, the
    estimator on one half (the centred masks, the pairwise distances and one h x h kernel at a time, a
    half-sample's sub-kernel and the half-samples' estimates) and the bicubic maps."""
    g, p = params.grid_size, params.num_designs
    d, batch, h = g * g, min(batch_size, params.num_designs), (params.num_designs + 1) // 2
    if params.sampler == "sobol":
        drawn = footprint.sobol_points(1 << (h - 1).bit_length(), d)
    else:
        drawn = 5 * footprint.F64 * h * d
    design = drawn + (footprint.F64 + 2 * footprint.F32) * h * d
    batches = footprint.nearest_masks(batch, g, image_shape) + footprint.perturbation(batch, image_shape)
    estimator = (3 * footprint.F64 * h * d + 3 * footprint.F64 * h * h + footprint.F64 * (h // 2 + 1) ** 2
                 + footprint.F64 * (h + (HALF_SAMPLES + 4) * d) * targets)
    return footprint.OVERHEAD + design + footprint.scores(p, targets) + max(
        batches, estimator, footprint.bicubic_maps(targets, image_shape) + 3 * footprint.F64 * targets * d)


def attribute(predict: Predict, image: np.ndarray, params: HsicParams, *, baseline: Fill,
              batch_size: int, rng: np.random.Generator, checkpoint: Checkpoint = no_checkpoint) -> Output:
    """HSIC of each grid cell with the score, resized bicubically to (T, H, W) and clipped at 0, with its
    precision.

    Two independent designs (two scrambles seeded from two halves of ``rng``) grow by ``round_sizes`` each a
    round; after each round the split-half reliability compares the HSIC of the two designs, and sampling stops
    at ``target_reliability``. The map is the mean of the two designs' HSICs, so that the split-half
    reliability is that of the map itself: HSIC is a V-statistic, not a mean over designs, and with the Sobol'
    sampler one design rounded to {0, 1} is the same net up to flipped columns whatever the scramble (scipy's
    linear scrambling keeps the first digit but for a random shift), so the HSIC of the union of two designs
    varies from seed to seed in a way the two halves do not show. Each half's SE comes from half-sampling
    (``half_sampling_error``); the mean's is sqrt(SE_a^2 + SE_b^2) / 2, painted on the cell's pixels.
    """
    g, d = params.grid_size, params.grid_size**2
    streams = rng.spawn(3)  # the two halves, and the half-sampling's draws
    caps = ((params.num_designs + 1) // 2, params.num_designs // 2)
    designs = [binary_design(params.sampler, d, cap, stream) for cap, stream in zip(caps, streams)]
    scored: list[list[np.ndarray]] = [[], []]
    counts = [0, 0]
    sizes = round_sizes(caps[0], d)

    def grow(half: int, size: int) -> None:
        start, counts[half] = counts[half], min(size, caps[half])
        if counts[half] > start:
            rows = designs[half][start:counts[half]]
            scored[half].append(grid_scores(predict, lambda a, b: rows[a:b], len(rows), (g, g),
                                            lambda keep: perturb(image, keep, baseline), image.shape, batch_size))

    def half_map(half: int) -> np.ndarray:
        return hsic_binary(designs[half][:counts[half]], np.concatenate(scored[half]), checkpoint).T

    stopping, reason = Stopping(params), StopReason.SAMPLES
    for index, size in enumerate(sizes):
        grow(0, size)
        grow(1, size)
        reason = stopping.after_round(index + 1, last=index + 1 == len(sizes),
                                      reliability=lambda: split_half_reliability(half_map(0), half_map(1)))
        if reason:
            break
    drawn = [half for half in (0, 1) if counts[half]]
    halves = [half_map(half) for half in drawn]  # (T, d) each
    cells = np.mean(halves, axis=0)
    variances = [half_sampling_error(designs[half][:counts[half]], np.concatenate(scored[half]), stream,
                                     checkpoint).T ** 2 for half, stream in zip(drawn, streams[2].spawn(2))]
    errors = np.sqrt(np.sum(variances, axis=0)) / len(drawn)
    reliability = split_half_reliability(*halves) if len(drawn) == 2 else np.zeros(len(cells))
    samples = sum(counts)
    precision = Precision(upsample_nearest(errors.reshape(-1, g, g), image.shape[:2]).astype(np.float32),
                          reliability, samples, params.num_designs, samples, stopping.rounds, reason,
                          samples_for_target(reliability, samples, params.target_reliability))
    maps = upsample_bicubic(cells.reshape(-1, g, g), image.shape[:2], checkpoint)
    return Output(maps, [{} for _ in maps], precision=precision)


def round_sizes(cap: int, cells: int) -> list[int]:
    """Designs in a half after each round, up to ``cap``: ``MIN_ROUNDS`` rounds of half the cells each (at least 8;
    a round is then as many passes as cells, as LIME's and KernelSHAP's 2M coalitions are twice theirs), then
    growing by a quarter a round. Every look at the reliability recomputes both halves' HSIC, O(p^2) each:
    geometric rounds keep the sum of those looks within a few times the last one (linear rounds made it grow as
    p^3: 3.7 x the forward passes of a small model at 4096 designs)."""
    step, sizes = max(8, cells // 2), [0]
    while sizes[-1] < cap:
        grown = sizes[-1] + step if len(sizes) <= MIN_ROUNDS else max(sizes[-1] + step, sizes[-1] * 5 // 4)
        sizes.append(min(grown, cap))
    return sizes[1:]


METHOD = Method(
    name="hsic",
    summary="Dependence (HSIC) between keeping each cell of a mask grid and the score, over random binary masks.",
    reference="Novello, Fel & Vigouroux, Making Sense of Dependence: Efficient Black-box Explanations Using "
              "Dependence Measure, NeurIPS 2022",
    params=HsicParams,
    attribute=attribute,
    forward_passes=forward_passes,
    check=check,
    cost="num_designs",
    memory=memory,
    cost_parameter="num_designs",
    randomized=True,
)
