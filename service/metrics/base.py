"""The small common base of the explanation metrics, mirroring ``service.explainers.base``.

A metric is one module in this package that defines a frozen dataclass of
parameters and a module-level ``METRIC = Metric(...)``. Its ``evaluate``
function is a plain function of numpy arrays and a batched ``score``::

    evaluate(score, image, attribution, params, *, baseline, mask, batch_size, rng) -> MetricResult

- ``score(images (N, H, W, C) float32 in [0, 1]) -> (N,)`` returns the explained
  class's score; the caller counts passes and applies the model's preprocessing.
- ``attribution`` is the (H, W) map under evaluation ((H, W, C) maps are summed
  over channels by ``attribution_map``); ``mask`` is the object's ground truth,
  given only to metrics with ``needs_mask``.
- Perturbations are ``baselines.perturb(image, keep, baseline)``; ``rng`` is the
  only source of randomness and ``score`` sees at most ``batch_size`` images at
  a time (``perturbed_scores`` does both), so memory stays bounded.
- ``memory(params, (H, W, C), targets, batch_size)`` is an upper bound of the bytes
  ``evaluate`` allocates at its peak (``targets`` is 1: a metric scores one class), checked by the
  job before it runs, as methods' are (``service.explainers.base``). Every loop that grows with a
  parameter calls ``score``, which checkpoints, so metrics need no ``checkpoint`` of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from typing import Any, Callable, Iterable, Protocol

import numpy as np

from service.declared import Declared
from service.errors import InvalidArgument
from service.explainers import footprint
from service.explainers.baselines import Fill, perturb

Score = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class MetricResult:
    name: str
    # The metric's headline number (its direction depends on the metric: see its summary).
    score: float
    # The x axis of ``curve``: the share of the pixels perturbed at each point, for curve metrics.
    fractions: np.ndarray | None = None
    # The explained class's score along the perturbation path, for curve metrics.
    curve: np.ndarray | None = None
    # Secondary numbers and flags, by name.
    values: dict[str, float] = field(default_factory=dict)
    # Metrics that sample (random subsets, masks): the standard error of ``score`` over those draws, estimated
    # from the same draws without extra passes (a bootstrap, a closed form); None for deterministic metrics.
    standard_error: float | None = None


class Evaluate(Protocol):
    def __call__(self, score: Score, image: np.ndarray, attribution: np.ndarray, params: Any, *, baseline: Fill,
                 mask: np.ndarray | None, batch_size: int, rng: np.random.Generator) -> MetricResult: ...


@dataclass(frozen=True)
class Metric(Declared):
    name: str
    summary: str
    # The paper the metric and its defaults come from.
    reference: str
    params: type
    evaluate: Evaluate
    # Forward passes for one image of shape (H, W, C) under the given parameters.
    forward_passes: Callable[[Any, tuple[int, int, int]], int]
    # Raises InvalidArgument when the parameters do not fit an image of shape (H, W, C).
    check: Callable[[Any, tuple[int, int, int]], None]
    # Peak host memory in bytes of ``evaluate`` for (params, image shape (H, W, C), targets = 1, batch size).
    memory: Callable[[Any, tuple[int, int, int], int, int], int]
    # The parameter the cost grows with, named when the budget refuses a request (e.g. "steps").
    cost_parameter: str = ""
    # Whether ``evaluate`` needs the object's ground-truth mask.
    needs_mask: bool = False
    # Whether a better map gets a higher score (not so for deletion and LeRF), to rank maps by a metric.
    higher_is_better: bool = True
    # "pixel": the map is (H, W) over pixels; "wavelet": over the packed wavelet layout (WCAM's wavelet_map).
    domain: str = "pixel"


def attribution_map(attribution: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The (H, W) float64 map of an (H, W) or (H, W, C) attribution (channels summed: relevance adds up)."""
    attribution = np.asarray(attribution, dtype=np.float64)
    if attribution.ndim == 3:
        attribution = attribution.sum(axis=2)
    if attribution.shape != tuple(image_shape[:2]):
        raise InvalidArgument(f"map of shape {list(attribution.shape)} does not match the image "
                              f"{list(image_shape[:2])}", field="attribution")
    if not np.isfinite(attribution).all():
        raise InvalidArgument("map has non-finite values", field="attribution")
    return attribution


def check_int(value: Any, field: str, low: int, high: int) -> None:
    """Refuse anything but an integer in [low, high] (bools are not counts)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise InvalidArgument(f"{value!r} must be an integer in [{low}, {high}]", field=field)


def check_number(value: Any, field: str, low: float, high: float, *, open_low: bool = False) -> None:
    """Refuse anything but a real number in [low, high] (or (low, high] with ``open_low``)."""
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if not (number and (low < value if open_low else low <= value) and value <= high):  # NaN fails too
        raise InvalidArgument(f"{value!r} must be a number in {'(' if open_low else '['}{low}, {high}]",
                              field=field)


def map_memory(image_shape: tuple[int, ...]) -> int:
    """``attribution_map`` (float64) and a ranking of its pixels: the negated values, their order and the ranks."""
    return 4 * footprint.F64 * footprint.pixels(image_shape)


def batch_memory(batch: int, image_shape: tuple[int, int, int]) -> int:
    """``perturbed_scores``' batch: the masks made one by one (a comparison, then float32), stacked, perturbed."""
    return (footprint.pixels(image_shape) + 2 * footprint.keep_masks(batch, image_shape)
            + footprint.perturbation(batch, image_shape))


def perturbed_scores(score: Score, image: np.ndarray, baseline: Fill, keeps: Iterable[np.ndarray],
                     batch_size: int, perturbation: Callable[[np.ndarray], np.ndarray] | None = None) -> np.ndarray:
    """Scores of ``perturb(image, keep, baseline)`` for every (H, W) keep mask, ``batch_size`` at a time.

    ``keeps`` may be a generator, so at most one batch of masks and images exists at once.
    ``perturbation`` replaces the pixel-space blend (wavelet metrics keep coefficients instead).
    """
    perturbation = perturbation or (lambda keep: perturb(image, keep, baseline))
    keeps, scores = iter(keeps), []
    while chunk := list(islice(keeps, batch_size)):
        scores.append(np.asarray(score(perturbation(np.stack(chunk))), dtype=np.float64))
    return np.concatenate(scores) if scores else np.zeros(0)
