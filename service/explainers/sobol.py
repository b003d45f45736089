"""Sobol attribution (Fel, Cadène, Chalvidal, Cord, Vigouroux, Serre, "Look at the Variance! Efficient
Black-box Explanations with Sobol-based Sensitivity Analysis", NeurIPS 2021, arXiv 2111.04138).

Each cell of a g x g grid is a random input in [0, 1] that scales how much of
the image survives there (continuous masks, upsampled with nearest). A
scrambled Sobol' design of n (g^2 + 2) masks is scored, and a cell's
attribution is its total-order Sobol index (Jansen estimator): the share of
the score's variance that involves that cell, interactions included. The g x g
indices are resized bicubically to the image. Defaults are Xplique's
``SobolAttributionMethod`` (grid 8) but for the designs: Xplique fixes 32 (2112
passes) and calls more useless, yet 32 reach reliability 0.71 on the bundled
models; here at most 256, stopped at reliability 0.9 (64 to 256 designs).

The design comes from two independent scrambles grown by doubling, and
sampling stops once their split-half reliability reaches ``target_reliability``
(``sensitivity.sample_total_order``); ``num_designs`` is the cap. The
per-pixel standard error is each cell's asymptotic SE resized bicubically as
the indices are: at a cell's centre it is that cell's SE; between centres it is
the interpolation of its neighbours' SEs, which bounds the SE of the
interpolated index from above when the cells' errors are not negatively
correlated (bicubic's small negative lobes aside).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Method, Output, Predict, no_checkpoint, param
from service.explainers.baselines import Fill, StaticFill, gaussian_blur, perturb
from service.explainers.precision import SamplingParams, check_sampling
from service.explainers.sensitivity import (SOBOL_MAX_DIMENSION, check_design_memory, check_grid, design_memory,
                                            design_size, jansen_memory, sample_total_order, upsample_bicubic)

# sigma = 0 picks these: Xplique blurs with a 10-px box filter (cv2.blur), whose standard deviation is
# sqrt((10^2 - 1) / 12) = 2.9 px, hence a 3-px Gaussian; the amplitude scale 1 is Xplique's default.
DEFAULT_SIGMA = {"inpainting": 0.0, "blur": 3.0, "amplitude": 1.0}
MAX_DESIGNS = 4096


@dataclass(frozen=True)
class SobolParams(SamplingParams):
    grid_size: int = param(8, "Cells per side of the mask grid (Xplique's default 8; 7 to 11 recommended).")
    num_designs: int = param(
        256, "The cap on Sobol' points n, a power of 2, pooled over two independent scrambles of n / 2 each; "
             "passes = n * (grid_size^2 + 2) at most. Sampling stops earlier at target_reliability, never before 32 "
             "points. Xplique's fixed 32 reaches reliability 0.71 on the bundled models; 0.9 takes 64 to 256 "
             "(bench/precision.py).")
    perturbation: str = param(
        "inpainting", "How a mask value m in [0, 1] alters the image: 'inpainting' (image * m + baseline * (1 - m), "
        "the request's baseline), 'blur' (towards a Gaussian blur of the image) or 'amplitude' "
        "(image * (1 + sigma * (m - 0.5)), clipped).")
    sigma: float = param(0.0, "Blur sigma in pixels (default 3) or amplitude scale (default 1); 0 = the default. "
                              "Unused by 'inpainting', whose baseline has its own sigma.")


def check(params: SobolParams, image_shape: tuple[int, int, int]) -> None:
    check_sampling(params, "sobol")
    # The design has 2 g^2 dimensions: A and B side by side.
    check_grid(params.grid_size, image_shape, "sobol.grid_size", max_cells=SOBOL_MAX_DIMENSION // 2)
    n = params.num_designs
    if not 2 <= n <= MAX_DESIGNS or n & (n - 1):
        raise InvalidArgument(f"num_designs {n} must be a power of 2 between 2 and {MAX_DESIGNS}: Sobol' points "
                              "are only balanced in powers of 2", field="sobol.num_designs")
    check_design_memory(n, 2 * params.grid_size**2, "sobol.num_designs")
    if params.perturbation not in DEFAULT_SIGMA:
        raise InvalidArgument(f"perturbation {params.perturbation!r} is not one of {sorted(DEFAULT_SIGMA)}",
                              field="sobol.perturbation")
    if not 0.0 <= params.sigma <= 100.0:
        raise InvalidArgument(f"sigma {params.sigma} must be in [0, 100] (0 = the default)", field="sobol.sigma")


def forward_passes(params: SobolParams, image_shape: tuple[int, int, int]) -> int:
    return design_size(params.grid_size**2, params.num_designs)


def perturbation_memory(params: SobolParams, batch: int, image_shape: tuple[int, int, int]) -> int:
    """What ``perturbation`` allocates per batch of keep masks: 'amplitude' scales the image (three float32
    temporaries of the masks, three of the images), the others blend with a fill (a blurred copy for 'blur')."""
    if params.perturbation == "amplitude":
        return 3 * footprint.F32 * batch * footprint.pixels(image_shape) * (1 + image_shape[2])
    blurred = 2 * footprint.F32 * footprint.pixels(image_shape) * image_shape[2] if params.perturbation == "blur" else 0
    return blurred + footprint.perturbation(batch, image_shape)


def memory(params: SobolParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The design and its scores (``design_memory``), then the larger of a batch's perturbation, Jansen's
    estimator and the bicubic maps."""
    g, n = params.grid_size, params.num_designs
    batch = min(batch_size, design_size(g * g, n))
    return footprint.OVERHEAD + design_memory(n, g, batch, image_shape, targets) + max(
        perturbation_memory(params, batch, image_shape), jansen_memory(n, g * g, targets),
        # The maps, kept while their standard errors are resized the same way.
        footprint.maps(targets, image_shape) + footprint.bicubic_maps(targets, image_shape)
        + 2 * footprint.F64 * targets * g * g)


def perturbation(params: SobolParams, image: np.ndarray, baseline: Fill) -> Callable[[np.ndarray], np.ndarray]:
    """The operator turning keep masks (B, H, W) in [0, 1] into images (B, H, W, C) in [0, 1].

    Xplique's "inpainting" is a constant fill (0 in the normalised input); ours is the request's
    baseline, whatever it is. Its "amplitude" computes x * (M - 0.5) * sigma on the normalised
    tensor, which leaves the valid pixel range and flips the sign wherever M < 0.5; ours scales
    pixels by 1 + sigma * (M - 0.5) around the image (x0.5 to x1.5 at sigma 1) and clips to [0, 1].
    """
    sigma = params.sigma or DEFAULT_SIGMA[params.perturbation]
    if params.perturbation == "blur":
        blurred = StaticFill(gaussian_blur(image, sigma))
        return lambda keep: perturb(image, keep, blurred)
    if params.perturbation == "amplitude":
        return lambda keep: np.clip(image * (1.0 + sigma * (keep[..., None] - 0.5)), 0.0, 1.0).astype(np.float32)
    return lambda keep: perturb(image, keep, baseline)


def attribute(predict: Predict, image: np.ndarray, params: SobolParams, *, baseline: Fill,
              batch_size: int, rng: np.random.Generator, checkpoint: Checkpoint = no_checkpoint) -> Output:
    """Total-order Sobol index of each grid cell, resized bicubically to (T, H, W) and clipped at 0, with its
    precision (the cells' standard errors resized the same way)."""
    g = params.grid_size
    run = sample_total_order(predict, params, params.num_designs, (g, g), perturbation(params, image, baseline),
                             image.shape, batch_size, rng, method="sobol")
    maps = upsample_bicubic(run.indices.T.reshape(-1, g, g), image.shape[:2], checkpoint)
    error = upsample_bicubic(run.standard_error.T.reshape(-1, g, g), image.shape[:2], checkpoint)
    return Output(maps, [{} for _ in maps], run.precision(error, params.target_reliability))


METHOD = Method(
    name="sobol",
    summary="Total-order Sobol index of each cell of a mask grid: the share of the score's variance it drives.",
    reference="Fel et al., Look at the Variance! Efficient Black-box Explanations with Sobol-based Sensitivity "
              "Analysis, NeurIPS 2021",
    params=SobolParams,
    attribute=attribute,
    forward_passes=forward_passes,
    check=check,
    cost="num_designs * (grid_size^2 + 2)",
    memory=memory,
    cost_parameter="num_designs",
    randomized=True,
)
