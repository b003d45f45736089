"""Region perturbation scored as AOPC (Samek, Binder, Montavon, Lapuschkin & Müller, "Evaluating the
visualization of what a deep neural network has learned", IEEE TNNLS 2017), shared by MoRF and LeRF.

The image is cut into non-overlapping square regions (partial at the right and
bottom borders), each scored by its summed attribution. At step k the first k
regions of the order are replaced by the baseline, k = 0..L, and

    AOPC = 1 / (L + 1) * sum_{k=0..L} (y_0 - y_k).

Samek et al. used 9 x 9 regions, L = 100 and uniform-noise replacement; the
defaults here are Quantus's ``RegionPerturbation`` (patch_size 8,
regions_evaluation 100) with the request's baseline.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from service.declared import param
from service.explainers import footprint
from service.explainers.baselines import Fill
from service.metrics import curves
from service.metrics.base import MetricResult, Score, attribution_map, batch_memory, check_int, map_memory


@dataclass(frozen=True)
class RegionParams:
    region_size: int = param(8, "Side in pixels of the square regions (Quantus: 8; Samek et al.: 9).")
    max_regions: int = param(100, "Most regions replaced, L; the curve has L + 1 points (Samek et al.: 100).")


def region_index(height: int, width: int, size: int) -> np.ndarray:
    """(H, W) map of each pixel's region, numbered in raster order."""
    columns = math.ceil(width / size)
    return (np.arange(height)[:, None] // size) * columns + np.arange(width)[None, :] // size


def steps(params: RegionParams, image_shape: tuple[int, int, int]) -> int:
    """L: the regions replaced at the last step."""
    height, width = image_shape[:2]
    return min(math.ceil(height / params.region_size) * math.ceil(width / params.region_size), params.max_regions)


def check(params: RegionParams, image_shape: tuple[int, int, int], metric: str) -> None:
    check_int(params.region_size, f"{metric}.region_size", 1, min(image_shape[:2]))
    # Any count past the number of regions means all of them (Quantus's regions_evaluation likewise).
    check_int(params.max_regions, f"{metric}.max_regions", 1, 2**31 - 1)


def forward_passes(params: RegionParams, image_shape: tuple[int, int, int]) -> int:
    return steps(params, image_shape) + 1


def memory(params: RegionParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The map, its ranking and each pixel's region and rank (int64), then a batch of masks and images."""
    return (footprint.OVERHEAD + map_memory(image_shape) + 2 * footprint.I64 * footprint.pixels(image_shape)
            + batch_memory(min(batch_size, forward_passes(params, image_shape)), image_shape))


def aopc(name: str, score: Score, image: np.ndarray, attribution: np.ndarray, params: RegionParams,
         baseline: Fill, *, most_relevant_first: bool, batch_size: int) -> MetricResult:
    """AOPC of the regions replaced in descending (MoRF) or ascending (LeRF) order of summed attribution.

    The curve holds y_k and the fractions the share of the pixels replaced after k regions.
    """
    regions = region_index(*image.shape[:2], params.region_size)
    relevance = np.bincount(regions.ravel(), weights=attribution_map(attribution, image.shape).ravel())
    # LeRF is MoRF on the negated map: tied regions keep raster order in both directions.
    ranks = curves.descending_ranks(relevance if most_relevant_first else -relevance)[regions]
    count = steps(params, image.shape)
    values = curves.curve(score, image, baseline, ranks, np.arange(count + 1), reveal=False, batch_size=batch_size)
    replaced = np.concatenate([[0], np.cumsum(np.bincount(ranks.ravel())[:count])])
    return MetricResult(name=name, score=float(np.mean(values[0] - values)), fractions=replaced / regions.size,
                        curve=values)
