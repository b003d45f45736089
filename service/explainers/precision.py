"""What a randomized method knows of its own precision, and when it stops sampling.

Every randomized method (RISE, Sobol, HSIC, LIME, KernelSHAP, WCAM, EVA's hybrid head) follows one rule
(``../shared/reference/precision_and_real_models.md`` section 1):

- **Two independent halves.** The samples come from two independent streams, ``rng.spawn(2)`` (two
  scrambles for a Sobol' design: two halves of one net are not independent). The map is the estimate over
  both; each half also gives its own map over the method's *features* (pixels for RISE, grid cells for
  Sobol, WCAM and HSIC, superpixels for LIME and KernelSHAP, groups for EVA).
- **Reliability** of the full map is the Spearman correlation of the two half maps, corrected by
  Spearman-Brown to the full sample, 2 r / (1 + r): the correlation one would expect between two full
  runs with different seeds. A flat map (the model ignores the image) has low reliability at any sample
  count; that is the truth about it, not a failure to converge.
- **Standard error** per pixel comes from the estimator's own sums (RISE), its asymptotic form (Sobol's
  Jansen estimator, WCAM), the sandwich form of the regression (LIME, KernelSHAP) or half-sampling (HSIC),
  always from the estimator that made the map.
- **Rounds.** Samples are drawn in rounds; after ``MIN_ROUNDS`` rounds (early split-half correlations are
  noisy, and stopping on a lucky low one would under-cover) the method stops once every explained class
  reaches ``target_reliability``, or when its sample count (its cost parameter, now a cap) is spent, or
  when ``max_seconds`` have passed. Memory is that of the cap, as before: the budget checks the cap.

The stopping rule looks at reliability, never at whether something "looks significant" (repeated looks at a
test inflate false positives; a precision target does not).
"""

from __future__ import annotations

import enum
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import stats

from service.declared import param
from service.errors import InvalidArgument

# Rounds drawn before the first look at reliability (shapreg, Covert & Lee 2021, also wants 5 sub-estimates).
MIN_ROUNDS = 5
# The reliability a default call aims for; each method's default cap is chosen to reach it on the bundled
# models and the 224^2 benchmark model (bench/precision.py).
DEFAULT_TARGET = 0.9
MAX_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class SamplingParams:
    """The stopping rule's parameters, shared by every randomized method's parameters (a base dataclass)."""

    target_reliability: float = param(
        DEFAULT_TARGET, "Stop sampling once the map's split-half reliability (Spearman-Brown corrected) reaches this "
                        "for every explained class; 0 = always use the whole sample count, which is then a cap.")
    max_seconds: float = param(0.0, "Stop sampling after this many seconds and return the map so far, with its "
                                    "precision; looked at between rounds, so a round under way (256 RISE masks, "
                                    "a doubling of a Sobol' design) finishes first. 0 = no limit but the "
                                    "request's deadline.")


def check_sampling(params: SamplingParams, method: str) -> None:
    if not 0.0 <= params.target_reliability < 1.0:
        raise InvalidArgument(f"{params.target_reliability} must be in [0, 1): 1 is reached by no finite sample "
                              "(0 = use the whole sample count)", field=f"{method}.target_reliability")
    if not 0.0 <= params.max_seconds <= MAX_SECONDS:
        raise InvalidArgument(f"{params.max_seconds} must be between 0 (no limit) and {MAX_SECONDS:g}",
                              field=f"{method}.max_seconds")


class StopReason(str, enum.Enum):
    RELIABILITY = "reliability"  # every class reached target_reliability
    SAMPLES = "samples"  # the sample count (the cap) was spent
    TIME = "time"  # max_seconds passed
    EXACT = "exact"  # nothing was sampled: every case fitted under the cap (KernelSHAP's enumeration)


@dataclass(frozen=True)
class Precision:
    """How precise a randomized method's maps are; ``Output.precision``."""

    standard_error: np.ndarray  # (T, H, W) float32, per pixel, in the map's units
    reliability: np.ndarray  # (T,) float64: split-half Spearman, Spearman-Brown corrected
    samples: int  # samples used (masks, designs, coalitions, points), in the unit of the method's cost parameter
    max_samples: int  # the cap
    forward_passes: int  # the passes those samples took
    rounds: int
    stop_reason: StopReason
    # Samples that, by the Spearman-Brown prophecy, would reach target_reliability (0 when no target was set or
    # the reliability is not positive): how much more a caller should ask for.
    samples_for_target: int = 0


def spearman_brown(half: np.ndarray | float) -> np.ndarray:
    """The reliability of the full sample from the correlation r of two halves: 2 r / (1 + r)."""
    r = np.clip(np.asarray(half, dtype=np.float64), -1.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(r <= -1.0, -1.0, 2.0 * r / (1.0 + r))


def split_half_reliability(half_a: np.ndarray, half_b: np.ndarray) -> np.ndarray:
    """Spearman-Brown corrected Spearman correlation of two half estimates, per class.

    ``half_a`` and ``half_b`` are (T, K): T classes over K features. A half map that is constant carries no
    ranking, so its reliability is 0.
    """
    a, b = np.asarray(half_a, dtype=np.float64), np.asarray(half_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"half maps must be (classes, features) of one shape, not {a.shape} and {b.shape}")
    ranks_a, ranks_b = stats.rankdata(a, axis=1), stats.rankdata(b, axis=1)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_b -= ranks_b.mean(axis=1, keepdims=True)
    norm = np.sqrt((ranks_a**2).sum(axis=1) * (ranks_b**2).sum(axis=1))
    r = np.divide((ranks_a * ranks_b).sum(axis=1), norm, out=np.zeros(len(a)), where=norm > 0)
    return spearman_brown(r)


def samples_for_target(reliability: np.ndarray, samples: int, target: float) -> int:
    """Samples the Spearman-Brown prophecy says reach ``target`` for every class: N rho* (1 - rho) /
    (rho (1 - rho*)). It assumes error variance in 1/N, exact for means and close for the ratio, Jansen and
    ridge estimators."""
    rho = float(np.min(reliability)) if np.size(reliability) else 0.0
    if target <= 0.0 or rho <= 0.0:
        return 0
    if rho >= 1.0:
        return samples
    return int(math.ceil(samples * target * (1.0 - rho) / (rho * (1.0 - target))))


class Stopping:
    """The stopping rule of one ``attribute`` call; ``after_round`` once per round::

        stopping = Stopping(params)
        for index in range(rounds):
            ...draw and score round ``index`` in both halves...
            reason = stopping.after_round(index + 1, last=index + 1 == rounds, reliability=current_reliability)
            if reason:
                break

    ``reliability`` is only called when the rule needs it (from ``min_rounds`` on, with a target).
    """

    def __init__(self, params: SamplingParams, *, min_rounds: int = MIN_ROUNDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.target, self.max_seconds = params.target_reliability, params.max_seconds
        self.min_rounds, self.clock = min_rounds, clock
        self.started = clock()
        self.rounds = 0

    def after_round(self, rounds: int, *, last: bool, reliability: Callable[[], np.ndarray]) -> StopReason | None:
        self.rounds = rounds
        if self.target > 0.0 and rounds >= self.min_rounds and bool(np.all(reliability() >= self.target)):
            return StopReason.RELIABILITY
        if last:
            return StopReason.SAMPLES
        if self.max_seconds and self.clock() - self.started >= self.max_seconds:
            return StopReason.TIME
        return None
