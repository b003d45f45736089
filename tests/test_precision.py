"""The precision base every randomized method shares: split-half reliability and the stopping rule."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from service.errors import InvalidArgument
from service.explainers.precision import (SamplingParams, Stopping, StopReason, check_sampling, samples_for_target,
                                          spearman_brown, split_half_reliability)


def test_spearman_brown_closed_form():
    # 2r / (1 + r): 0.6 -> 0.75 (the reference note's example), 0 -> 0, 1 -> 1, -1 stays -1.
    np.testing.assert_allclose(spearman_brown([0.6, 0.0, 1.0, -1.0, 0.5]), [0.75, 0.0, 1.0, -1.0, 2 / 3])


def test_split_half_reliability_predicts_the_agreement_of_two_full_runs():
    """A true map plus independent noise per sample: the corrected half-correlation estimates the correlation of
    two full-sample maps (Spearman-Brown holds for means of i.i.d. samples), over many repetitions."""
    rng = np.random.default_rng(0)
    truth = rng.normal(size=400)
    predicted, observed = [], []
    for _ in range(200):
        samples = truth + rng.normal(scale=4.0, size=(2, 64, 400))  # 2 independent runs of 64 samples each
        half_a, half_b = samples[0, :32].mean(0), samples[0, 32:].mean(0)
        predicted.append(split_half_reliability(half_a[None], half_b[None])[0])
        full_a, full_b = samples[0].mean(0), samples[1].mean(0)
        observed.append(stats.spearmanr(full_a, full_b).statistic)  # scipy's Spearman: the reference
    # Mean prediction within 2 standard errors of the mean observed agreement (0.80 here).
    gap = np.mean(predicted) - np.mean(observed)
    spread = np.sqrt(np.var(predicted) / len(predicted) + np.var(observed) / len(observed))
    assert 0.7 < np.mean(observed) < 0.9
    assert abs(gap) < 3 * spread + 0.01


def test_split_half_reliability_of_constant_or_identical_halves():
    ramp = np.arange(10.0)[None]
    assert split_half_reliability(ramp, ramp)[0] == pytest.approx(1.0)
    assert split_half_reliability(ramp, -ramp)[0] == pytest.approx(-1.0)
    assert split_half_reliability(np.zeros((1, 10)), ramp)[0] == 0.0  # a flat half carries no ranking
    with pytest.raises(ValueError):
        split_half_reliability(ramp, ramp[:, :5])


def test_samples_for_target_is_the_spearman_brown_prophecy():
    # rho = 0.75 at 100 samples; 0.95 needs k = 0.95 * 0.25 / (0.75 * 0.05) = 6.33x.
    assert samples_for_target(np.array([0.75, 0.9]), 100, 0.95) == 634
    assert samples_for_target(np.array([0.9]), 100, 0.0) == 0  # no target
    assert samples_for_target(np.array([-0.2]), 100, 0.9) == 0  # no positive reliability: no prophecy


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_stopping_waits_for_the_minimum_rounds_then_stops_at_the_target():
    looks = []

    def reliability():
        looks.append(1)
        return np.array([0.95, 0.92])

    stopping = Stopping(SamplingParams(target_reliability=0.9), min_rounds=3)
    assert stopping.after_round(1, last=False, reliability=reliability) is None
    assert stopping.after_round(2, last=False, reliability=reliability) is None
    assert not looks  # no look before the minimum: early correlations are noisy
    assert stopping.after_round(3, last=False, reliability=reliability) is StopReason.RELIABILITY


def test_stopping_needs_every_class_and_honours_cap_and_time():
    clock = FakeClock()
    stopping = Stopping(SamplingParams(target_reliability=0.9, max_seconds=5.0), min_rounds=1, clock=clock)
    low = lambda: np.array([0.95, 0.5])  # noqa: E731 - one class short of the target
    assert stopping.after_round(1, last=False, reliability=low) is None
    clock.now = 5.0
    assert stopping.after_round(2, last=False, reliability=low) is StopReason.TIME
    assert stopping.after_round(3, last=True, reliability=low) is StopReason.SAMPLES
    no_target = Stopping(SamplingParams(target_reliability=0.0), min_rounds=1)
    assert no_target.after_round(9, last=False, reliability=lambda: np.array([1.0])) is None


@pytest.mark.parametrize("params, field", [(SamplingParams(target_reliability=1.0), "rise.target_reliability"),
                                           (SamplingParams(target_reliability=-0.1), "rise.target_reliability"),
                                           (SamplingParams(max_seconds=-1.0), "rise.max_seconds")])
def test_check_sampling_names_the_field(params, field):
    with pytest.raises(InvalidArgument) as raised:
        check_sampling(params, "rise")
    assert raised.value.field == field
