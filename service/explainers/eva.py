"""EVA, Explanations with Verified perturbation Analysis (Fel, Ducoffe, Vigouroux, Cadène, Capelle, Nicodème
& Serre, "Don't Lie to Me! Robust and Efficient Explainability with Verified Perturbation Analysis",
CVPR 2023, arXiv 2202.07728).

For the explained class c, the adversarial overlap of a perturbation set B is
AO(B) = max over j != c of max over x' in B of f_j(x') - f_c(x'): above 0, B may hold an input the
model does not call c. A verifier gives a sound upper bound of it. The importance of a feature group u is

    EVA(u) = AO(B) - AO(B_u)

where B is the L-infinity ball of radius ``epsilon`` around the image (in pixel units, clipped to [0, 1])
and B_u the same ball with u held at its clean value: how much fixing u shrinks what an adversary can
reach. The margins f_j - f_c are bounded directly (a specification matrix with rows e_j - e_c, upper
bounds only), which is tighter than differencing per-logit bounds (reference note eva.md §1.2 (B)).

This module is a plain function of numpy arrays and ``bound_margins``, which the job builds from the
model's PyTorch mirror (``service.verify``): it knows nothing of torch or auto_LiRPA, and a test can hand
it the exact bounds of a linear model. The m + 1 regions (B, then each B_u) go to ``bound_margins`` in
chunks of ``chunk_size``, so memory stays bounded and the job can stop between chunks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Method, Output, Predict, no_checkpoint, param
from service.explainers.baselines import Fill
from service.explainers.superpixels import SEGMENTATION_BYTES_PER_PIXEL, segment

SEGMENTATIONS = ("grid", "slic")
BOUND_METHODS = ("ibp", "crown_ibp", "crown", "alpha_crown")
MAX_GROUPS = 4096
MAX_CHUNK = 1024
MAX_HYBRID_SAMPLES, MAX_ATTACK_STEPS = 4096, 1000
# Regions per bound computation when chunk_size is 0 (bench/eva.py: one region per call over 16 per call was
# 1.9x slower with CROWN-IBP, 65 per call 3.5x slower; CROWN scales linearly with the batch on CPU).
DEFAULT_CHUNKS = {"ibp": 64, "crown_ibp": 16, "crown": 1, "alpha_crown": 1}
# The calibration's ladder: radii from 1e-5 (0.0026/255, below any pixel quantum) to 1 (the whole range).
LADDER, SMALLEST_RADIUS = 16, 1e-5
# The calibrated ball: twice the certified radius, so that it can hold candidate adversaries (AO > 0 unless
# the whole range [0, 1] is certified, where the radius stays 1).
RADIUS_FACTOR = 2.0


class BoundMargins(Protocol):
    certified: bool  # False when part of the model was bounded empirically (hybrid mode)
    split_layer: str  # the cut used ("" for the whole model)
    verified: str  # what was verified: "whole model" or "tail after <layer>: N operators"
    head_runtime: str  # where the head ran in hybrid mode: "pytorch" or "onnxruntime" ("" for the whole model)

    def __call__(self, lower: np.ndarray, upper: np.ndarray, target: int,
                 competitors: Sequence[int]) -> np.ndarray:
        """Sound upper bounds (R, k) of f_j - f_c over each pixel box lower[r] <= x <= upper[r] (R, H, W, C),
        j in ``competitors``, c = ``target``."""


@dataclass(frozen=True)
class EvaParams:
    epsilon: float = param(0.0, "Radius of the L-infinity ball in pixel units of [0, 1], carried through the "
                                "model's normalisation and clipped to the valid range. 0: twice the largest radius "
                                "the verifier certifies for this image and class, so the ball holds candidate "
                                "adversaries and the bounds are not vacuous (eva.md 1.5: calibrate per model).")
    grid_size: int = param(8, "Cells per side when segmentation is 'grid' (Xplique's Sobol grid).")
    segmentation: str = param("grid", "Feature groups: 'grid' (grid_size x grid_size cells) or 'slic' "
                                      "(scikit-image SLIC superpixels, about n_segments of them).")
    n_segments: int = param(50, "Superpixels wanted when segmentation is 'slic'.")
    bound_method: str = param("crown_ibp", "Verifier: ibp (cheapest, loosest), crown_ibp, crown (tightest here, "
                                           "far slower on CPU), alpha_crown where the installed auto_LiRPA "
                                           "supports the model.")
    max_competitors: int = param(9, "Competing classes j bounded: every other class when the model has at most "
                                    "max_competitors + 1, else the max_competitors best-scoring (reported).")
    chunk_size: int = param(0, "Regions per bound computation; memory grows with it. 0: per bound method, what "
                               "was fastest on CPU within bounded memory (ibp 64, crown_ibp 16, crown and "
                               "alpha_crown 1: CROWN holds about 0.7 GB per region of a 64-px CNN and gains "
                               "nothing from batching on CPU).")
    segments: tuple[int, ...] = param((), "The caller's feature groups: one label per pixel at the model's "
                                          "input size, row-major (H * W values); overrides segmentation.")
    split_layer: str = param("", "Where to bound. '' or 'auto': the whole model when bound_method runs on it, else "
                                 "hybrid mode (Fel et al. 2023, Fig. 3) at the latest layer that separates the graph "
                                 "and whose tail bound_method bounds (typically the pooled features or the class "
                                 "token); 'whole': the whole model only; an ONNX node name: hybrid mode cut at its "
                                 "output. In hybrid mode the part before the cut is bounded empirically (sampled "
                                 "and attacked points) and the rest verified: not certified.")
    hybrid_samples: int = param(64, "Hybrid mode: points drawn in each region's box (half uniform, half corners).")
    attack_steps: int = param(10, "Hybrid mode: PGD steps from 2 random starts per region, added to the samples "
                                  "(a head that runs on onnxruntime, where onnx2torch cannot convert the model, "
                                  "has no gradient: samples only).")


@dataclass(frozen=True)
class Groups:
    labels: np.ndarray  # (H, W) int, 0 .. count - 1
    count: int


def groups(image: np.ndarray, params: EvaParams) -> Groups:
    """The feature groups: the caller's segmentation when given, else a grid or SLIC superpixels."""
    if params.segments:
        _, labels = np.unique(np.asarray(params.segments), return_inverse=True)
        labels = labels.reshape(image.shape[:2])
    elif params.segmentation == "grid":
        h, w = image.shape[:2]
        rows = np.arange(h) * params.grid_size // h
        cols = np.arange(w) * params.grid_size // w
        labels = rows[:, None] * params.grid_size + cols[None, :]
    else:
        labels = segment(image, "slic", params.n_segments)
        _, labels = np.unique(labels, return_inverse=True)
        labels = labels.reshape(image.shape[:2])
    return Groups(labels.astype(np.int64), int(labels.max()) + 1)


def competitors_of(scores: np.ndarray, target: int, limit: int) -> list[int]:
    """Every class but ``target`` when there are few, else the ``limit`` best-scoring ones."""
    others = [j for j in np.argsort(-scores, kind="stable") if j != target]
    return sorted(int(j) for j in others[:limit])


def region_boxes(image: np.ndarray, labels: np.ndarray, fixed: np.ndarray, epsilon: float) -> tuple[np.ndarray, ...]:
    """Pixel boxes (R, H, W, C) for regions whose fixed group is ``fixed[r]`` (-1: none fixed, the full ball)."""
    free = (labels[None] != fixed[:, None, None])[..., None]  # (R, H, W, 1)
    radius = np.float32(epsilon) * free
    return np.clip(image - radius, 0.0, 1.0), np.clip(image + radius, 0.0, 1.0)


def check(params: EvaParams, image_shape: tuple[int, int, int]) -> None:
    if not 0 <= params.epsilon <= 1:
        raise InvalidArgument(f"epsilon {params.epsilon} must be in [0, 1] (pixel units; 0 calibrates it)",
                              field="eva.epsilon")
    if params.segmentation not in SEGMENTATIONS:
        raise InvalidArgument(f"segmentation {params.segmentation!r} is not one of {list(SEGMENTATIONS)}",
                              field="eva.segmentation")
    if params.segmentation == "grid" and not 1 <= params.grid_size <= min(image_shape[:2]):
        raise InvalidArgument(f"grid_size {params.grid_size} must be between 1 and the image's smaller side "
                              f"{min(image_shape[:2])}", field="eva.grid_size")
    if params.segmentation == "slic" and not 2 <= params.n_segments <= MAX_GROUPS:
        raise InvalidArgument(f"n_segments {params.n_segments} must be between 2 and {MAX_GROUPS}",
                              field="eva.n_segments")
    if params.segments:
        pixels = image_shape[0] * image_shape[1]
        if len(params.segments) != pixels:
            raise InvalidArgument(f"has {len(params.segments)} labels; give one per pixel, row-major: "
                                  f"{image_shape[0]} x {image_shape[1]} = {pixels}", field="eva.segments")
        if len(set(params.segments)) > MAX_GROUPS:
            raise InvalidArgument(f"has over {MAX_GROUPS} groups", field="eva.segments")
    if params.grid_size**2 > MAX_GROUPS:
        raise InvalidArgument(f"grid_size {params.grid_size} gives over {MAX_GROUPS} groups", field="eva.grid_size")
    if params.bound_method not in BOUND_METHODS:
        raise InvalidArgument(f"bound_method {params.bound_method!r} is not one of {list(BOUND_METHODS)}",
                              field="eva.bound_method")
    if params.max_competitors < 1:
        raise InvalidArgument("max_competitors must be at least 1", field="eva.max_competitors")
    if not 2 <= params.hybrid_samples <= MAX_HYBRID_SAMPLES:
        raise InvalidArgument(f"hybrid_samples {params.hybrid_samples} must be between 2 and {MAX_HYBRID_SAMPLES}",
                              field="eva.hybrid_samples")
    if not 0 <= params.attack_steps <= MAX_ATTACK_STEPS:
        raise InvalidArgument(f"attack_steps {params.attack_steps} must be between 0 and {MAX_ATTACK_STEPS}",
                              field="eva.attack_steps")
    if not 0 <= params.chunk_size <= MAX_CHUNK:
        raise InvalidArgument(f"chunk_size {params.chunk_size} must be between 0 (per bound method) and {MAX_CHUNK}",
                              field="eva.chunk_size")


def regions_per_class(params: EvaParams, image_shape: tuple[int, int, int]) -> int:
    """Regions bounded per class: the full ball, one per group and the calibration's balls (SLIC's count is
    known only after segmenting: this is what was asked for)."""
    calibration = 0 if params.epsilon else 2 * LADDER
    if params.segments:
        return len(set(params.segments)) + 1 + calibration
    return (params.grid_size**2 if params.segmentation == "grid" else params.n_segments) + 1 + calibration


def certified_radius(bound_margins: BoundMargins, image: np.ndarray, target: int, competitors: list[int],
                     chunk_size: int, ladder: int = LADDER) -> float:
    """The largest radius on a geometric ladder whose whole ball the verifier certifies (AO < 0), refined once
    between the two rungs around the crossing: two bound computations of ``ladder`` balls each. 0 when even
    the smallest ball is not certified (the image sits on a decision boundary)."""
    no_group = np.zeros(image.shape[:2], dtype=np.int64)

    def overlap(radii: np.ndarray) -> np.ndarray:
        values = []
        for start in range(0, len(radii), chunk_size):
            boxes = [region_boxes(image, no_group, np.array([-1]), radius)
                     for radius in radii[start:start + chunk_size]]
            lower, upper = (np.concatenate(side) for side in zip(*boxes))
            values.append(np.max(bound_margins(lower, upper, target, competitors), axis=1))
        return np.concatenate(values)

    coarse = np.geomspace(SMALLEST_RADIUS, 1.0, ladder)
    certified = np.flatnonzero(overlap(coarse) < 0)
    if certified.size == 0:
        return 0.0
    last = certified[-1]
    if last == ladder - 1:
        return 1.0
    fine = np.geomspace(coarse[last], coarse[last + 1], ladder + 2)[1:-1]  # the rungs strictly between
    certified = np.flatnonzero(overlap(fine) < 0)
    return float(fine[certified[-1]] if certified.size else coarse[last])


def chunk_size(params: EvaParams) -> int:
    return params.chunk_size or DEFAULT_CHUNKS[params.bound_method]


def overlaps(bound_margins: BoundMargins, image: np.ndarray, found: Groups, target: int, competitors: list[int],
             params: EvaParams, epsilon: float) -> np.ndarray:
    """Upper bounds of AO for the full ball (index 0) and each B_u (1 .. m), in chunks of ``chunk_size``."""
    fixed_groups = np.arange(-1, found.count)
    values = np.empty(len(fixed_groups), dtype=np.float64)
    size = chunk_size(params)
    for start in range(0, len(fixed_groups), size):
        chunk = fixed_groups[start:start + size]
        lower, upper = region_boxes(image, found.labels, chunk, epsilon)
        values[start:start + len(chunk)] = np.max(bound_margins(lower, upper, target, competitors), axis=1)
    return values


def memory(params: EvaParams, image_shape: tuple[int, int, int], targets: int, batch_size: int) -> int:
    """The groups (labels, and SLIC's segmentation), a chunk of regions' pixel boxes (the free pixels, the
    radius, lower and upper bounds with their unclipped copies; the calibration's ladder of balls twice, as
    a list and concatenated) and per class the map and the segments kept in the details. The verifier's own
    memory (PyTorch, auto_LiRPA) is not host memory numpy allocates and is not counted here: ``chunk_size``
    bounds it."""
    pixels, channels = footprint.pixels(image_shape), image_shape[2]
    regions = max(chunk_size(params), 2 * LADDER if not params.epsilon else 0)
    segmentation = SEGMENTATION_BYTES_PER_PIXEL * pixels if params.segmentation == "slic" else 0
    boxes = regions * pixels * (footprint.F32 + 1 + 6 * footprint.F32 * channels)
    return (footprint.OVERHEAD + segmentation + 4 * footprint.I64 * pixels + boxes
            + targets * (footprint.F32 + 4) * pixels)


def attribute(predict: Predict, image: np.ndarray, params: EvaParams, *, baseline: Fill, batch_size: int,
              rng: np.random.Generator, bound_margins: BoundMargins, all_scores: np.ndarray,
              targets: Sequence[int], checkpoint: Checkpoint = no_checkpoint) -> Output:
    """EVA maps (T, H, W), each pixel holding its group's EVA, and per class ``details``: "adversarial_overlap"
    (AO(B)), "group_overlaps" (AO(B_u) per group), "group_importance" (EVA per group), "competitors",
    "segments" (H, W), "certified", "bound_method", "epsilon" (the radius used), "certified_radius" (when
    epsilon was calibrated: the largest radius certified, else None), "split_layer" (the cut used, "" for the
    whole model), "verified" (what was verified), "head_runtime" (hybrid mode: where the head ran)."""
    # Deterministic and bound-based: no sampling, no baseline; ``bound_margins`` checkpoints after every chunk.
    del predict, baseline, batch_size, rng, checkpoint
    found = groups(image, params)
    maps, details = [], []
    for target in targets:
        competitors = competitors_of(all_scores, target, params.max_competitors)
        radius = (certified_radius(bound_margins, image, target, competitors, chunk_size(params))
                  if not params.epsilon else None)
        epsilon = params.epsilon or min(RADIUS_FACTOR * (radius or SMALLEST_RADIUS), 1.0)
        ao = overlaps(bound_margins, image, found, target, competitors, params, epsilon)
        importance = ao[0] - ao[1:]
        maps.append(importance[found.labels].astype(np.float32))
        details.append({"adversarial_overlap": float(ao[0]), "group_overlaps": ao[1:].tolist(),
                        "group_importance": importance.tolist(), "competitors": competitors,
                        "segments": found.labels.astype(np.int32), "certified": bound_margins.certified,
                        "bound_method": params.bound_method, "epsilon": epsilon, "certified_radius": radius,
                        "split_layer": getattr(bound_margins, "split_layer", ""),
                        "verified": getattr(bound_margins, "verified", "whole model"),
                        "head_runtime": getattr(bound_margins, "head_runtime", "")})
    return Output(np.stack(maps), details)


METHOD = Method(
    name="eva",
    summary="Drop of the verified adversarial overlap when a feature group is held at its clean value: the "
            "groups an adversary in the epsilon-ball needs, with guaranteed bounds (auto_LiRPA).",
    reference="Fel, Ducoffe, Vigouroux, Cadene, Capelle, Nicodeme & Serre, Don't Lie to Me! Robust and "
              "Efficient Explainability with Verified Perturbation Analysis, CVPR 2023 (arXiv 2202.07728)",
    params=EvaParams,
    attribute=attribute,
    forward_passes=lambda params, shape: 0,
    check=check,
    cost="(groups + 1) bound computations per class, in chunks of chunk_size; no forward pass",
    memory=memory,
    cost_parameter="chunk_size",
    randomized=False,
    verified=True,
)
