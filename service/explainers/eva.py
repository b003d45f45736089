"""EVA, Explanations with Verified perturbation Analysis (Fel, Ducoffe, Vigouroux, Cadène, Capelle, Nicodème
& Serre, "Don't Lie to Me! Robust and Efficient Explainability with Verified Perturbation Analysis",
CVPR 2023, arXiv 2202.07728).

For the explained class c, the adversarial overlap of a perturbation set B is
AO(B) = max over j != c of max over x' in B of f_j(x') - f_c(x'): above 0, B may hold an input the
model does not call c. A verifier gives a sound upper bound of it. The importance of a feature group u is

    EVA(u) = AO(B) - AO(B_u)

where B is the L-infinity ball of radius ``epsilon`` around the image (in pixel units, clipped to [0, 1];
by default ``DEFAULT_RADIUS``, 1/255, for every image, or with ``calibrate_radius`` twice the radius the
verifier certifies for the image: studies/eva.md)
and B_u the same ball with u held at its clean value: how much fixing u shrinks what an adversary can
reach. The margins f_j - f_c are bounded directly (a specification matrix with rows e_j - e_c, upper
bounds only), which is tighter than differencing per-logit bounds (reference note eva.md §1.2 (B)).

This module is a plain function of numpy arrays and ``bound_margins``, which the job builds from the
model's PyTorch mirror (``service.verify``): it knows nothing of torch or auto_LiRPA, and a test can hand
it the exact bounds of a linear model. The m + 1 regions (B, then each B_u) go to ``bound_margins`` in
chunks of ``chunk_size``, so memory stays bounded and the job can stop between chunks.

Bounding the whole model is deterministic: no precision (``Output.precision`` is None). In hybrid mode the
head's boxes are sampled, so the map is random and carries its precision (``hybrid``): two independent halves
of points, drawn in rounds with the same draws in every region, give a split-half reliability of the group
ranking and a half-difference standard error per group, and sampling stops at ``target_reliability``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol, Sequence

import numpy as np

from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.base import Checkpoint, Method, Output, Predict, no_checkpoint, param
from service.explainers.baselines import Fill
from service.explainers.precision import (Precision, SamplingParams, Stopping, check_sampling, samples_for_target,
                                          split_half_reliability)
from service.explainers.superpixels import SEGMENTATION_BYTES_PER_PIXEL, segment

SEGMENTATIONS = ("grid", "slic")
BOUND_METHODS = ("ibp", "crown_ibp", "crown", "alpha_crown")
MAX_GROUPS = 4096
MAX_CHUNK = 1024
MAX_HYBRID_SAMPLES, MAX_ATTACK_STEPS = 4096, 1000
# Regions per bound computation when chunk_size is 0 (bench/eva.py: one region per call over 16 per call was
# 1.9x slower with CROWN-IBP, 65 per call 3.5x slower). CROWN stays at one region per call: its cost is the
# backward walks from the neurons each region must bound itself (those of its group's cone that the full ball
# leaves unstable, ``MarginBounds``), and auto_LiRPA bounds the union of them over a batch, so batching
# regions only adds work (and about 0.5 GB of peak memory per region on the 64-pixel shapes CNN).
DEFAULT_CHUNKS = {"ibp": 64, "crown_ibp": 16, "crown": 1, "alpha_crown": 1}
# The calibration's ladder: radii from 1e-5 (0.0026/255, below any pixel quantum) to 1 (the whole range).
LADDER, SMALLEST_RADIUS = 16, 1e-5
# EvaParams.epsilon 0: one radius for every image, so maps share a scale and the certified rate of an audit is a
# rate at a stated radius. 1/255, one 8-bit grey level: on the bundled digits model the verifier certifies it for
# every image (and no shapes scene: their certified radius is about 0.03/255), and no radius gave better maps
# (studies/eva.md).
DEFAULT_RADIUS = 1 / 255
# The calibrated ball (calibrate_radius): twice the certified radius, so that it can hold candidate adversaries
# (AO > 0 unless the whole range [0, 1] is certified, where the radius stays 1).
RADIUS_FACTOR = 2.0
# Hybrid mode samples in rounds: the cap hybrid_samples is spent in this many (each half draws
# hybrid_samples / (2 ROUNDS_AT_CAP) points per region per round, at least 1), so a target reached after
# precision.MIN_ROUNDS rounds saves up to 11/16 of the cap while every look at reliability (2 (groups + 1)
# tail bounds per class) stays a small share of the head's passes.
ROUNDS_AT_CAP = 16
# Regions whose points go through the head together in hybrid mode (at least chunk_size): CROWN's chunk of 1
# region would send the head batches of 2 points.
SAMPLE_REGIONS = 16


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
class EvaParams(SamplingParams):
    """target_reliability and max_seconds act in hybrid mode only, where the head's box is sampled; bounding the
    whole model samples nothing, is exact for its verifier and has no precision to reach."""

    epsilon: float = param(0.0, "Radius of the L-infinity ball in pixel units of [0, 1], carried through the "
                                "model's normalisation and clipped to the valid range. 0: the documented default "
                                "1/255, shared by every image, so the maps of one audit share a scale and "
                                "EvaDetails.ball_certified answers 'at radius 1/255, can any perturbation change "
                                "the class?' (studies/eva.md).")
    calibrate_radius: bool = param(False, "Per image and class: twice the largest radius the verifier certifies (the "
                                          "pre-issue-14 default; the ball then holds candidate adversaries, but maps "
                                          "of different images are on different scales). Not with epsilon; refused "
                                          "in audits.")
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
    hybrid_samples: int = param(64, "Hybrid mode: the cap on points drawn in each region's box (half uniform, half "
                                    "corners), in two independent halves over up to 16 rounds; sampling stops "
                                    "earlier once the group ranking reaches target_reliability.")
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
        raise InvalidArgument(f"epsilon {params.epsilon} must be in [0, 1] (pixel units; 0: the default "
                              f"{DEFAULT_RADIUS:.6g})", field="eva.epsilon")
    if params.calibrate_radius and params.epsilon:
        raise InvalidArgument("calibrate_radius chooses the radius per image; leave epsilon unset (0) with it",
                              field="eva.calibrate_radius")
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
    check_sampling(params, "eva")
    if not 0 <= params.chunk_size <= MAX_CHUNK:
        raise InvalidArgument(f"chunk_size {params.chunk_size} must be between 0 (per bound method) and {MAX_CHUNK}",
                              field="eva.chunk_size")


def regions_per_class(params: EvaParams, image_shape: tuple[int, int, int]) -> int:
    """Regions bounded per class: the full ball, one per group and the calibration's balls (SLIC's count is
    known only after segmenting: this is what was asked for)."""
    calibration = 2 * LADDER if params.calibrate_radius else 0
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
    bounds it; in hybrid mode that includes the head's output boxes, 3 per region and class (each half and
    their union), each twice the cut tensor's size."""
    pixels, channels = footprint.pixels(image_shape), image_shape[2]
    regions = max(chunk_size(params), SAMPLE_REGIONS, 2 * LADDER if params.calibrate_radius else 0)
    segmentation = SEGMENTATION_BYTES_PER_PIXEL * pixels if params.segmentation == "slic" else 0
    boxes = regions * pixels * (footprint.F32 + 1 + 6 * footprint.F32 * channels)
    return (footprint.OVERHEAD + segmentation + 4 * footprint.I64 * pixels + boxes
            + targets * (footprint.F32 + 4) * pixels)


def calibrated_epsilon(bound_margins: BoundMargins, image: np.ndarray, target: int, competitors: list[int],
                       params: EvaParams) -> tuple[float, float | None, str]:
    """(epsilon, certified radius, source): the radius asked for ("requested"), twice the certified one with
    calibrate_radius ("calibrated"; the certified radius is None otherwise), else DEFAULT_RADIUS ("default")."""
    if params.calibrate_radius:
        radius = certified_radius(bound_margins, image, target, competitors, chunk_size(params))
        return min(RADIUS_FACTOR * (radius or SMALLEST_RADIUS), 1.0), radius, "calibrated"
    if params.epsilon:
        return params.epsilon, None, "requested"
    return DEFAULT_RADIUS, None, "default"


def attribute(predict: Predict, image: np.ndarray, params: EvaParams, *, baseline: Fill, batch_size: int,
              rng: np.random.Generator, bound_margins: BoundMargins, all_scores: np.ndarray,
              targets: Sequence[int], checkpoint: Checkpoint = no_checkpoint) -> Output:
    """EVA maps (T, H, W), each pixel holding its group's EVA, and per class ``details``: "adversarial_overlap"
    (AO(B)), "group_overlaps" (AO(B_u) per group), "group_importance" (EVA per group), "competitors",
    "segments" (H, W), "certified", "ball_certified" (whole model only: the verifier proved no class change in the
    ball), "bound_method", "epsilon" (the radius used), "radius_source" ("default", "requested", "calibrated"),
    "certified_radius" (with calibrate_radius: the largest radius certified, else None), "split_layer" (the cut
    used, "" for the whole model), "verified" (what was verified), "head_runtime" (hybrid mode: where the head
    ran); in hybrid mode also "group_standard_error" and "hybrid_samples_used", and ``Output.precision``
    (``hybrid``)."""
    # Bound-based, no baseline; ``bound_margins`` checkpoints after every chunk. Whole-model bounds draw nothing.
    del predict, baseline, batch_size
    if getattr(bound_margins, "sample_boxes", None) is not None:
        return hybrid(image, params, rng, bound_margins, all_scores, targets, checkpoint)
    found = groups(image, params)
    maps, details = [], []
    for target in targets:
        competitors = competitors_of(all_scores, target, params.max_competitors)
        epsilon, radius, source = calibrated_epsilon(bound_margins, image, target, competitors, params)
        ao = overlaps(bound_margins, image, found, target, competitors, params, epsilon)
        importance = ao[0] - ao[1:]
        maps.append(importance[found.labels].astype(np.float32))
        details.append(target_details(bound_margins, params, found, competitors, epsilon, radius, ao, source))
    return Output(np.stack(maps), details)


def target_details(bound_margins: BoundMargins, params: EvaParams, found: Groups, competitors: list[int],
                   epsilon: float, radius: float | None, ao: np.ndarray, source: str) -> dict[str, Any]:
    # The verifier proved that no point of the ball changes the class: only when every bound is verified (the
    # whole model; hybrid mode's head is sampled, so its AO < 0 proves nothing).
    ball_certified = bool(bound_margins.certified and ao[0] < 0)
    return {"ball_certified": ball_certified, "radius_source": source,
            "adversarial_overlap": float(ao[0]), "group_overlaps": ao[1:].tolist(),
            "group_importance": (ao[0] - ao[1:]).tolist(), "competitors": competitors,
            "segments": found.labels.astype(np.int32), "certified": bound_margins.certified,
            "bound_method": params.bound_method, "epsilon": epsilon, "certified_radius": radius,
            "split_layer": getattr(bound_margins, "split_layer", ""),
            "verified": getattr(bound_margins, "verified", "whole model"),
            "head_runtime": getattr(bound_margins, "head_runtime", "")}


def unit_draws(generator: np.random.Generator, count: int, shape: tuple[int, ...], first: int) -> np.ndarray:
    """Points ``first`` .. ``first + count - 1`` of a half's sequence in the unit box [0, 1]^(H, W, C): even ones
    uniform, odd ones corners (each coordinate 0 or 1), so the box's inside and its corners are sampled alike
    however the rounds cut the sequence; always ``count`` uniform draws of the generator, whatever the image
    (common random numbers)."""
    draws = generator.random((count, *shape), dtype=np.float32)
    corners = (first + np.arange(count)) % 2 == 1
    draws[corners] = draws[corners] < 0.5
    return draws


def hybrid(image: np.ndarray, params: EvaParams, rng: np.random.Generator, bound_margins: Any,
           all_scores: np.ndarray, targets: Sequence[int], checkpoint: Checkpoint) -> Output:
    """Hybrid EVA with its precision.

    The head's box per region is the min and max of its outputs over sampled points (plus the centre and a PGD
    path), so the map is random. The points come from two independent halves, ``rng.spawn(2)``, in rounds;
    each round draws unit points shared by every region and class (common random numbers: regions differ only
    by the group they hold, as in the reference note's table) and each half widens its own boxes. The map is
    bounded on the union of both halves' boxes (every point drawn); each half's boxes give that half's group
    importances, and:

    - **reliability** = ``split_half_reliability`` of the two halves' importances over groups, per class;
    - **standard error** per group = |a - b| / sqrt(2), the spread of one half's importance from the
      half-difference. Extremes have no sqrt(N) standard error, and a bootstrap of a min or max is inconsistent
      (it never sees beyond the sample's own extremes); the half-difference needs no model of the tail: for two
      independent halves of spread sigma, (a - b)^2 / 2 estimates sigma^2 without bias, with 1 degree of freedom
      per group (noisy group by group, calibrated on average). It is a half's spread, not that of their mean
      (|a - b| / 2), because the union is no mean: its wider boxes widen the tail's bounds, and over seeds its
      importances spread 0.8 to 1.35 times as much as one half's (root mean square of this error over the
      spread of the map: 0.74 to 1.19 on ErfNet cut after its Erf, 2 to 128 points; 0.84 to 1.10 on the
      bundled shapes model cut after features.3, 4 to 64 points).

    What it cannot say: sampled extremes approach the true reachable range from inside (more points never shrink
    a box), so the map carries a one-sided bias towards smaller boxes that neither the standard error nor the
    reliability sees: they measure how much another seed would change the map, not how far it is from the
    exact (certified) one. A reliability near 1 says the group ranking is stable under resampling at this
    budget, i.e. the sampled boxes have settled; the Spearman-Brown prophecy assumes error variance in 1/N,
    while extremes of a bounded output settle faster, so ``samples_for_target`` tends to overstate what is
    needed.
    """
    found = groups(image, params)
    shape = image.shape
    halves = rng.spawn(2)
    half_cap = max(params.hybrid_samples // 2, 1)
    per_round = max(1, math.ceil(half_cap / ROUNDS_AT_CAP))
    rounds = math.ceil(half_cap / per_round)
    fixed_groups = np.arange(-1, found.count)
    sample_chunk = max(chunk_size(params), SAMPLE_REGIONS)
    chunks = [fixed_groups[start:start + sample_chunk] for start in range(0, len(fixed_groups), sample_chunk)]
    passes_before = bound_margins.head_passes

    classes = []  # per class: competitors, epsilon, radius, and per half the boxes of each chunk of regions
    for target in targets:
        competitors = competitors_of(all_scores, target, params.max_competitors)
        epsilon, radius, source = calibrated_epsilon(bound_margins, image, target, competitors, params)
        classes.append({"target": target, "competitors": competitors, "epsilon": epsilon, "radius": radius,
                        "source": source,
                        "boxes": [[None] * len(chunks), [None] * len(chunks)]})

    def overlaps_of(entry: dict, boxes: list) -> np.ndarray:
        return np.concatenate([np.max(bound_margins.bound_boxes(box, entry["target"], entry["competitors"],
                                                                chunk_size(params)), axis=1) for box in boxes])

    halves_at: dict[str, Any] = {"round": -1}

    def half_importances() -> tuple[np.ndarray, np.ndarray]:
        if halves_at["round"] != stopping.rounds:  # each look bounds each half's boxes once
            found_halves = []
            for half in range(2):
                ao = [overlaps_of(entry, entry["boxes"][half]) for entry in classes]
                found_halves.append(np.stack([a[0] - a[1:] for a in ao]))
            halves_at.update(round=stopping.rounds, values=found_halves)
        return halves_at["values"]

    stopping = Stopping(params)
    drawn, reason = 0, None
    for index in range(rounds):
        count = min(per_round, half_cap - drawn)
        draws = [(generator.random((1, *shape), dtype=np.float32) if index == 0 else None,  # the attack's start
                  unit_draws(generator, count, shape, drawn)) for generator in halves]
        for entry in classes:
            for position, chunk in enumerate(chunks):
                lower, upper = region_boxes(image, found.labels, chunk, entry["epsilon"])
                for half, (starts, units) in enumerate(draws):
                    seen = bound_margins.sample_boxes(lower, upper, units, starts, entry["target"],
                                                      entry["competitors"], centre=index == 0)
                    kept = entry["boxes"][half]
                    kept[position] = seen if kept[position] is None else kept[position].union(seen)
                checkpoint()
        drawn += count
        reason = stopping.after_round(index + 1, last=index + 1 == rounds,
                                      reliability=lambda: split_half_reliability(*half_importances()))
        if reason:
            break

    half_a, half_b = half_importances()
    reliability = split_half_reliability(half_a, half_b)
    maps, errors, details = [], [], []
    for position, entry in enumerate(classes):
        union = [a.union(b) for a, b in zip(*entry["boxes"])]
        ao = overlaps_of(entry, union)
        bound_margins.on_chunk(len(fixed_groups))
        group_error = np.abs(half_a[position] - half_b[position]) / math.sqrt(2)
        maps.append((ao[0] - ao[1:])[found.labels].astype(np.float32))
        errors.append(group_error[found.labels].astype(np.float32))
        details.append(target_details(bound_margins, params, found, entry["competitors"], entry["epsilon"],
                                      entry["radius"], ao, entry["source"])
                       | {"group_standard_error": group_error.tolist(), "hybrid_samples_used": 2 * drawn})
    precision = Precision(standard_error=np.stack(errors), reliability=reliability, samples=2 * drawn,
                          max_samples=2 * half_cap, forward_passes=bound_margins.head_passes - passes_before,
                          rounds=stopping.rounds, stop_reason=reason,
                          samples_for_target=samples_for_target(reliability, 2 * drawn, params.target_reliability))
    return Output(np.stack(maps), details, precision=precision)


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
    # Whole-model bounds draw nothing; hybrid mode samples the head and reports its precision (``hybrid``).
    randomized=False,
    verified=True,
)
