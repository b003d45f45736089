"""WCAM, the Wavelet sCale Attribution Method (Kasmi, Dubus, Saint-Drenan & Blanc, "Assessment of the
Reliability of a Model's Decision by Generalizing Attribution to the Wavelet Domain", NeurIPS 2023
workshop XAI in Action, arXiv 2305.14979; reference code ``spectral_sobol.torch_explainer.WaveletSobol``).

Sobol attribution (``sobol``) moved to the wavelet domain: the image's J-level
DWT is packed as one H x W array per channel (``wavelets``), a g x g grid of
continuous masks is drawn over that array, so each cell covers coefficients of
one place at one scale, and the masked coefficients are transformed back into
an image and scored. The total-order Sobol index of each cell (Jansen
estimator on a scrambled Sobol' design of n (g^2 + 2) masks, ``sensitivity``)
says how much the score depends on that place at that scale. Per class it returns:

- the spatial WCAM (the maps): every sub-band block of the wavelet-layout map
  resized bicubically to the image and summed (reference §1.2 step 8);
- the map in the wavelet layout and its mass per level and per sub-band: where
  along scales the model looks (the paper's finding: mostly the approximation);
- the sufficient image: the reconstruction from the fewest top-ranked cells
  that still scores as high as the whole image (reference §1.3).

The perturbation lives in the wavelet domain, so the request's baseline is not
used: removing a coefficient sets it to 0, and a mask value m scales it by m.
Defaults are the paper's experiments (3 Haar levels) except the grid (see
``default_grid``), the rescaling (``rescale``) and the designs: at most 64, stopped at
reliability 0.9, never before 32 (the paper's 8 leave the conclusion to the seed).

Precision (issue 12). The design is sampled in rounds from two independent
scrambles until the split-half reliability over the cells reaches
``target_reliability`` (``sensitivity.sample_total_order``; ``num_designs`` is
the cap). The per-pixel standard error of the spatial WCAM is each cell's
asymptotic SE carried to pixels as the indices are (wavelet layout, then every
sub-band block resized and summed): a sum of SEs, so an upper bound of the SE of
the summed map whatever the correlation of the bands' errors. The shares get 95%
percentile intervals from a joint row bootstrap (``share_intervals``), and two
flags say whether the conclusions drawn from them hold at that confidence:

- ``dominant_level_resolved``: the level with the largest share is the largest
  in at least 95% of the bootstrap replicates;
- ``sufficient_depth_resolved``: in at least 95% of the replicates every cell of
  the sufficient set still ranks above every cell outside it, so the same cells
  would be kept (whether fewer cells in another order would also suffice would
  take forward passes to know, and is not claimed).

Below 32 pooled points (the default cap of 8 among them) no interval is given:
the intervals are [0, 1] and both flags false (``sensitivity.MIN_TRUSTED_POINTS``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Method, Output, Predict, no_checkpoint, param
from service.explainers.baselines import Fill
from service.explainers.precision import SamplingParams, check_sampling
from service.explainers.sensitivity import (CONFIDENCE, SOBOL_MAX_DIMENSION, bootstrap_memory,
                                            bootstrap_total_order, check_design_memory, check_grid, design_memory,
                                            design_size, jansen_memory, sample_total_order, uninformative,
                                            upsample_bicubic, upsample_nearest)
from service.explainers.wavelets import Layout, forward, inverse, make_layout, subbands

log = logging.getLogger(__name__)

MAX_DESIGNS = 4096
# The paper's cells: g = 28 on 224-px images (example.ipynb, scripts/reconstruction_depth.py) are 8 px.
MAX_CELL_PIXELS = 8
# The design has 2 g^2 dimensions (A and B side by side), within scipy's Sobol' direction numbers.
MAX_GRID = math.isqrt(SOBOL_MAX_DIMENSION // 2)
RESCALES = ("clip", "minmax")
# The sufficient-image details when there is none: not searched, or no positive cell to search.
NO_SUFFICIENT_IMAGE = {"sufficient_image": None, "sufficient_depth": -1, "sufficient_passes": 0}


@dataclass(frozen=True)
class WcamParams(SamplingParams):
    grid_size: int = param(
        0, "Cells per side of the mask grid over the wavelet layout (anisotropic on non-square images); 0 = the "
           "smallest multiple of 2^levels with cells of at most 8 px, so cells never straddle sub-bands (32 for "
           "224 px at 3 levels; the paper uses 28, whose 8-px cells straddle the 28-px approximation block).")
    num_designs: int = param(
        64, "The cap on Sobol' points n, a power of 2, pooled over two independent scrambles of n / 2 each; passes "
           "= n * (grid_size^2 + 2) at most, plus the sufficient image's (the paper's experiments: 8; the reference "
           "class default: 64). Sampling stops earlier at target_reliability, never before 32 points; below 32 "
           "the shares get no confidence interval, and 8 designs leave the level shares to the seed "
           "(bench/scale_periods.py). On the bundled models every default call stopped at 32 (bench/precision.py).")
    levels: int = param(3, "Wavelet decomposition levels J (the paper: 3); the image sides must divide by 2^J.")
    wavelet: str = param("haar", "A pywt discrete wavelet (the paper: 'haar'), in periodization mode.")
    keep_approximation: bool = param(
        True, "Keep the approximation band among the explained inputs: its coefficients are masked like every "
              "other band (the reference's default). False holds it intact in every sample, so only the details "
              "are explained; the reference's approximation=False zeroes it instead, leaving an image without "
              "its coarse content.")
    rescale: str = param("clip", "How reconstructions become pixels: 'clip' to [0, 1], or 'minmax' (the "
                                 "reference: each image stretched to [0, 1], which couples all coefficients).")
    sufficient_image: bool = param(True, "Also search the sufficient image: the fewest top-ranked cells whose "
                                         "reconstruction scores at least as high as the whole image "
                                         "(up to grid_size^2 more passes per class).")


def default_grid(height: int, width: int, levels: int) -> int:
    """The smallest grid aligned with the sub-bands whose cells are at most ``MAX_CELL_PIXELS`` on both axes.

    Every sub-band boundary is a multiple of the approximation block (H / 2^J, W / 2^J), so a grid of
    g = m 2^J cells puts m cells across that block and never straddles a boundary (reference §1.5
    item 2). Capped by the smaller side and by the sampler's dimensions; where no multiple of 2^J
    fits under those caps, the largest grid that does.
    """
    step = 2**levels
    wanted = step * math.ceil(max(height, width) / (MAX_CELL_PIXELS * step))
    largest = min(height, width, MAX_GRID)
    return min(wanted, step * (largest // step) or largest)


def resolved_grid(params: WcamParams, image_shape: tuple[int, ...]) -> int:
    return params.grid_size or default_grid(*image_shape[:2], params.levels)


def is_aligned(grid_size: int, levels: int) -> bool:
    """Cells start on every sub-band boundary (multiples of H / 2^J) exactly when 2^J divides g."""
    return grid_size % 2**levels == 0


def check(params: WcamParams, image_shape: tuple[int, int, int]) -> None:
    check_sampling(params, "wcam")
    make_layout(*image_shape[:2], params.levels, params.wavelet, prefix="wcam.")
    if params.grid_size:
        check_grid(params.grid_size, image_shape, "wcam.grid_size", max_cells=SOBOL_MAX_DIMENSION // 2)
    n = params.num_designs
    if not 2 <= n <= MAX_DESIGNS or n & (n - 1):
        raise InvalidArgument(f"num_designs {n} must be a power of 2 between 2 and {MAX_DESIGNS}: Sobol' points "
                              "are only balanced in powers of 2", field="wcam.num_designs")
    check_design_memory(n, 2 * resolved_grid(params, image_shape)**2, "wcam.num_designs")
    if params.rescale not in RESCALES:
        raise InvalidArgument(f"rescale {params.rescale!r} is not one of {list(RESCALES)}", field="wcam.rescale")


def forward_passes(params: WcamParams, image_shape: tuple[int, int, int]) -> int:
    """An upper bound for one explained class: the design's n (g^2 + 2) passes, plus at most g^2 for the
    sufficient image (its reference pass and a scan of at most g^2 - 1 depths); each further class
    scans on its own, up to g^2 more. ``attribute`` reports each class's exact count."""
    g = resolved_grid(params, image_shape)
    return design_size(g * g, params.num_designs) + (g * g if params.sufficient_image else 0)


def rescale(images: np.ndarray, how: str) -> np.ndarray:
    """Reconstructions (B, H, W, C), any memory order, as C-contiguous float32 pixels in [0, 1].

    'clip' keeps every untouched pixel as it was (reference §1.5 item 3). 'minmax' is the reference's
    per-image stretch over all channels, without its uint8 rounding; a constant image becomes 0.
    """
    if how == "minmax":
        low = images.min(axis=(1, 2, 3), keepdims=True)
        span = images.max(axis=(1, 2, 3), keepdims=True) - low
        images = (images - low) / np.maximum(span, 1e-12)
    # Clipping into a C-ordered buffer is the one pass that also moves channels last for the model.
    return np.clip(images, 0.0, 1.0, out=np.empty(images.shape, dtype=np.float32))


def reconstruction(image: np.ndarray, layout: Layout, params: WcamParams) -> Callable[[np.ndarray], np.ndarray]:
    """The perturbation: keep masks (B, H, W) over the wavelet layout to images (B, H, W, C) in [0, 1].

    The image's DWT is computed once; each mask scales the coefficients of every channel alike (a
    cell is a place and a scale, not a colour), and the batch is inverted in one vectorised call.
    Without ``keep_approximation`` the approximation block is held at 1, not zeroed as in the reference:
    the samples then differ in their details only, on top of the intact coarse image, so the indices
    say which details matter to the prediction the model makes on that image.
    """
    coefficients = forward(np.moveaxis(image, -1, 0).astype(np.float32), layout)  # (C, H, W)

    def images(keep: np.ndarray) -> np.ndarray:
        keep = keep.astype(np.float32)  # a copy: the approximation may be pinned below
        if not params.keep_approximation:
            keep[(slice(None), *layout.approximation)] = 1.0
        scaled = np.multiply(coefficients, keep[:, None],
                             out=np.empty((len(keep), *coefficients.shape), dtype=np.float32))
        pixels = inverse(scaled, layout)  # (B, C, H, W)
        return rescale(np.moveaxis(pixels, 1, -1), params.rescale)

    return images


def reconstruction_memory(params: WcamParams, batch: int, image_shape: tuple[int, int, int]) -> int:
    """What ``reconstruction``'s images allocate per batch of keep masks: the masks' copy, the scaled
    coefficients, the inverse's temporaries and output (pywt's for other wavelets than Haar: counted twice),
    and the rescaled images ('minmax' stretches them first)."""
    pixels, channels = footprint.pixels(image_shape), image_shape[2]
    inverse = 2 if Layout(*image_shape[:2], params.levels, params.wavelet).is_haar else 4
    stretched = 2 if params.rescale == "minmax" else 0
    return footprint.F32 * batch * pixels * (1 + channels * (2 + inverse + stretched))


def memory(params: WcamParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The image's transform, the design and its scores (``design_memory``), the larger of a batch's masks and
    reconstructions (the design's or the sufficient image's), Jansen's estimator and the maps (wavelet layout
    and spatial, resized band by band), and per class the sufficient image and wavelet map kept."""
    g, n = resolved_grid(params, image_shape), params.num_designs
    pixels, channels = footprint.pixels(image_shape), image_shape[2]
    batch = min(batch_size, design_size(g * g, n))
    # The spatial maps (kept) and the standard errors' (the wavelet-layout ones, then resized band by band).
    maps = footprint.F64 * targets * pixels + footprint.bicubic_maps(targets, image_shape) \
        + 4 * footprint.F32 * targets * pixels
    return (footprint.OVERHEAD + 3 * footprint.F32 * channels * pixels
            + design_memory(n, g, batch, image_shape, targets)
            + max(footprint.keep_masks(batch, image_shape) + reconstruction_memory(params, batch, image_shape),
                  jansen_memory(n, g * g, targets), bootstrap_memory(n, g * g), maps)
            + footprint.F32 * targets * pixels * (channels + 1))


def wavelet_maps(indices: np.ndarray, shape: tuple[int, int], aligned: bool,
                 checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """Indices (T, g, g) over the wavelet layout (T, H, W): nearest when the cells follow the sub-bands (each
    coefficient gets exactly its cell's index, as the masks did), else bicubic clipped at 0 as the reference."""
    if aligned:
        return upsample_nearest(indices, shape).astype(np.float32)
    return upsample_bicubic(indices, shape, checkpoint)


def spatial_maps(maps: np.ndarray, layout: Layout, checkpoint: Checkpoint = no_checkpoint) -> np.ndarray:
    """The spatial WCAM (T, H, W): every sub-band block of the wavelet-layout maps resized bicubically to
    the image and summed, so a place's attribution gathers all its scales (reference §1.2 step 8)."""
    shape = (layout.height, layout.width)
    return sum(upsample_bicubic(maps[:, band.rows, band.cols], shape, checkpoint) for band in subbands(layout))


def cell_band_pixels(grid: int, layout: Layout) -> np.ndarray:
    """(g^2, bands) float64: how many coefficients of each sub-band every cell's mask covers (nearest, as the
    masks are upsampled). A cell of an aligned grid lies in one band; a straddling cell is split by area."""
    rows = np.arange(layout.height) * grid // layout.height
    cols = np.arange(layout.width) * grid // layout.width
    cell = rows[:, None] * grid + cols[None, :]
    return np.stack([np.bincount(cell[band.rows, band.cols].ravel(), minlength=grid * grid)
                     for band in subbands(layout)], axis=1).astype(np.float64)


def band_shares(cells: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """Shares (..., bands) of the mass of cell indices (..., g^2) per sub-band (``cell_band_pixels``), on the
    raw indices as the reference note asks (before any resize); all 0 where every index is 0."""
    mass = cells @ coverage
    total = mass.sum(axis=-1, keepdims=True)
    return np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)


def level_shares(shares: np.ndarray) -> np.ndarray:
    """Band shares (..., bands) per level (..., J + 1): the approximation, then each level's three details.
    ``subbands()`` lists the approximation, then (horizontal, vertical, diagonal) per level from J to 1."""
    details = shares[..., 1:].reshape(*shares.shape[:-1], -1, 3).sum(axis=-1)
    return np.concatenate([shares[..., :1], details], axis=-1)


def importance(cells: np.ndarray, coverage: np.ndarray, layout: Layout) -> dict[str, Any]:
    """Shares of the indices' mass per sub-band and per level (index 0 the approximation, then levels J ... 1).

    A block's mass is the sum over its coefficients of their cell's index, so the masses add up to the
    whole map in the wavelet layout; the reference's ``compute_level_contribution`` averages per block
    instead, which weighs a coarse coefficient as much as a fine one. The shares come from the raw cell
    indices (the same as the wavelet map's on an aligned grid; a straddling grid's bicubic map would
    spread a cell across the boundary). All shares are 0 when every index is 0 (an uninformative output).
    """
    shares = band_shares(cells.ravel().astype(np.float64), coverage)
    return {
        "level_importance": [float(share) for share in level_shares(shares)],
        "subband_importance": [{"name": band.name, "level": band.level, "importance": float(share)}
                               for band, share in zip(subbands(layout), shares)],
        "approximation_share": float(shares[0]),
    }


def share_intervals(y_a: np.ndarray, y_c: np.ndarray, coverage: np.ndarray, cells: np.ndarray,
                    sufficient_depth: int, trusted: bool, rng: np.random.Generator) -> dict[str, Any]:
    """Percentile intervals at ``CONFIDENCE`` of one class's level and sub-band shares, and whether its
    dominant level and sufficient set are resolved, from a joint row bootstrap of its design scores
    (``bootstrap_total_order``: y_A (n,), y_C (d, n)). Percentile intervals, since shares lie in [0, 1].

    Untrusted (fewer than ``MIN_TRUSTED_POINTS`` pooled points): intervals [0, 1], nothing resolved.
    """
    levels = len(coverage[0]) // 3 + 1
    if not trusted:
        return {"level_importance_lower": [0.0] * levels, "level_importance_upper": [1.0] * levels,
                "subband_importance_lower": [0.0] * len(coverage[0]),
                "subband_importance_upper": [1.0] * len(coverage[0]),
                "confidence": CONFIDENCE, "dominant_level_resolved": False, "sufficient_depth_resolved": False}
    replicates = bootstrap_total_order(y_a, y_c, rng)  # (R, d)
    bands = band_shares(replicates, coverage)
    by_level = level_shares(bands)
    tail = (1.0 - CONFIDENCE) / 2
    band_bounds = np.quantile(bands, [tail, 1.0 - tail], axis=0)
    level_bounds = np.quantile(by_level, [tail, 1.0 - tail], axis=0)
    point = level_shares(band_shares(cells.ravel().astype(np.float64), coverage))
    dominant = bool(point.sum() > 0) and np.mean(by_level.argmax(axis=1) == point.argmax()) >= CONFIDENCE
    return {"level_importance_lower": level_bounds[0].tolist(), "level_importance_upper": level_bounds[1].tolist(),
            "subband_importance_lower": band_bounds[0].tolist(), "subband_importance_upper": band_bounds[1].tolist(),
            "confidence": CONFIDENCE, "dominant_level_resolved": bool(dominant),
            "sufficient_depth_resolved": sufficient_set_resolved(replicates, cells.ravel(), sufficient_depth)}


def sufficient_set_resolved(replicates: np.ndarray, cells: np.ndarray, depth: int) -> bool:
    """Whether, in at least ``CONFIDENCE`` of the bootstrap replicates (R, d), the ``depth`` top-ranked cells
    (the sufficient set, ranked as ``sufficient_search`` ranks) all outrank every other cell. No sufficient
    set: False; a set of every cell: True (no ranking can change it)."""
    if depth < 0:
        return False
    inside = np.zeros(cells.size, dtype=bool)
    inside[np.argsort(-cells, kind="stable")[:depth]] = True
    if inside.all():
        return True
    separated = replicates[:, inside].min(axis=1) > replicates[:, ~inside].max(axis=1)
    return bool(np.mean(separated) >= CONFIDENCE)


def sufficient_search(score: Callable[[np.ndarray], np.ndarray], images: Callable[[np.ndarray], np.ndarray],
                      indices: np.ndarray, shape: tuple[int, int], batch_size: int) -> dict[str, Any]:
    """The sufficient image of one class: its reconstruction from the fewest top-ranked cells (reference §1.3).

    Cells are ranked by decreasing index (the raw indices; the reference ranks a uint8 min-max copy,
    which ties close cells), and depth k keeps the top k cells whole and zeroes the rest, over the
    positive cells only (k = 1 ... P), as the reference. The reference stops at the first k whose
    arg-max class is the label; a method only sees its classes' scores, so here depth k suffices when
    the class's score reaches its score on the reconstruction with every cell kept (one pass):
    stricter than keeping the arg-max, and meaningful in any score space. The reference also tries
    that full set, which suffices by definition here: depth g^2 only when every cell is positive, and
    -1 when no set of positive cells suffices (or none is positive: no pass at all).
    """
    positive = int(np.count_nonzero(indices > 0))
    if not positive:
        return dict(NO_SUFFICIENT_IMAGE)
    rank = np.empty(indices.size, dtype=np.int64)
    rank[np.argsort(-indices.ravel(), kind="stable")] = np.arange(indices.size)

    def depth_images(depths: np.ndarray) -> np.ndarray:
        keep = (rank[None, :] < depths[:, None]).astype(np.float32).reshape(-1, *indices.shape)
        return images(upsample_nearest(keep, shape))

    whole = depth_images(np.array([indices.size]))
    reference = score(whole)[0]
    # Depth g^2 would be the whole reconstruction again: it needs no second pass.
    depth, image, passes = first_reaching(score, depth_images, min(positive, indices.size - 1), reference,
                                          batch_size)
    if depth < 0 and positive == indices.size:
        depth, image = indices.size, whole[0]
    return {"sufficient_image": image, "sufficient_depth": depth, "sufficient_passes": passes + 1}


def first_reaching(score: Callable[[np.ndarray], np.ndarray], depth_images: Callable[[np.ndarray], np.ndarray],
                   last: int, reference: float, batch_size: int) -> tuple[int, np.ndarray | None, int]:
    """The first depth in 1 ... ``last`` whose image scores at least ``reference``: (depth, image, passes),
    depth -1 and image None when there is none.

    The score need not grow with the depth, so a bisection could miss the first one; the depths are
    scanned in order instead, in batches doubling from 1 up to ``batch_size``, so the first depth k
    costs about 2k passes at most and memory stays within one batch.
    """
    start, size, passes = 1, 1, 0
    while start <= last:
        depths = np.arange(start, min(start + size, last + 1))
        candidates = depth_images(depths)
        passes += len(depths)
        hits = np.flatnonzero(score(candidates) >= reference)
        if hits.size:
            return int(depths[hits[0]]), candidates[hits[0]], passes
        start, size = start + len(depths), min(2 * size, batch_size)
    return -1, None, passes


def attribute(predict: Predict, image: np.ndarray, params: WcamParams, *, baseline: Fill,
              batch_size: int, rng: np.random.Generator, checkpoint: Checkpoint = no_checkpoint) -> Output:
    """Spatial WCAM maps (T, H, W), their precision and, per class, ``details``: "wavelet_map" (H, W),
    "level_importance", "subband_importance", "approximation_share" (``importance``), their intervals and
    resolved flags (``share_intervals``), "uninformative" (the score hardly varied), "sufficient_image",
    "sufficient_depth", "sufficient_passes" (``sufficient_search``), "levels", "wavelet" and "grid_size".

    The design's rows come from ``rng.spawn(2)`` (the halves); the bootstrap from the next child,
    ``rng.spawn(1)``, so it never shifts the samples."""
    del baseline  # the perturbation is in the wavelet domain: a removed coefficient is 0
    layout = make_layout(*image.shape[:2], params.levels, params.wavelet)
    g = resolved_grid(params, image.shape)
    aligned = is_aligned(g, params.levels)
    if not aligned:
        log.warning("WCAM grid cells straddle sub-band boundaries", extra={
            "grid_size": g, "levels": params.levels, "cells_per_approximation_block": g / 2**params.levels})
    images = reconstruction(image, layout, params)
    run = sample_total_order(predict, params, params.num_designs, (g, g), images, image.shape, batch_size, rng,
                             method="wcam")
    resampling = rng.spawn(1)[0]
    indices = run.indices.T.reshape(-1, g, g)
    maps = wavelet_maps(indices, image.shape[:2], aligned, checkpoint)
    coverage = cell_band_pixels(g, layout)
    flags = uninformative(run.y_a)
    details = []
    for target, (cells, wavelet_map) in enumerate(zip(indices, maps)):
        checkpoint()
        found = NO_SUFFICIENT_IMAGE
        if params.sufficient_image:
            found = sufficient_search(lambda pixels, t=target: predict(pixels)[:, t], images, cells,
                                      image.shape[:2], batch_size)
        intervals = share_intervals(run.y_a[:, target], run.y_c[:, :, target], coverage, cells,
                                    found["sufficient_depth"], run.trusted, resampling)
        details.append({"wavelet_map": wavelet_map, **importance(cells, coverage, layout), **intervals,
                        "uninformative": bool(flags[target]), **found,
                        "levels": params.levels, "wavelet": params.wavelet, "grid_size": g})
    error = spatial_maps(wavelet_maps(run.standard_error.T.reshape(-1, g, g), image.shape[:2], aligned, checkpoint),
                         layout, checkpoint)
    return Output(spatial_maps(maps, layout, checkpoint), details, run.precision(error, params.target_reliability))


METHOD = Method(
    name="wcam",
    summary="Total-order Sobol index of each cell of a mask grid over the image's wavelet transform: which "
            "places at which scales drive the score, with the sufficient image those cells rebuild.",
    reference="Kasmi, Dubus, Saint-Drenan & Blanc, Assessment of the Reliability of a Model's Decision by "
              "Generalizing Attribution to the Wavelet Domain, NeurIPS 2023 workshop XAI in Action "
              "(arXiv 2305.14979)",
    params=WcamParams,
    attribute=attribute,
    forward_passes=forward_passes,
    check=check,
    cost="num_designs * (grid_size^2 + 2) + sufficient-image passes (at most grid_size^2 per class)",
    memory=memory,
    cost_parameter="num_designs",
    randomized=True,
    # The wavelet-domain metrics (wavelet_deletion, wavelet_insertion) score the map in the wavelet layout.
    detail_maps=("wavelet_map",),
)
