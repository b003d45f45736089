"""Normalisations and aggregators of explanation ensembles against their definitions and known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from service.ensembles.aggregate import aggregate
from service.ensembles.normalise import NORMALISATIONS, normalise
from service.errors import InvalidArgument

RNG = np.random.default_rng(0)
MAPS = RNG.normal(size=(4, 6, 5))


def test_each_normalisation_does_what_its_name_says():
    one = MAPS[:1]
    assert np.abs(normalise(one, "max_abs")).max() == pytest.approx(1.0)
    scaled = normalise(one, "min_max")
    assert scaled.min() == pytest.approx(0.0) and scaled.max() == pytest.approx(1.0)
    z = normalise(one, "z_score")
    assert z.mean() == pytest.approx(0.0, abs=1e-12) and z.std() == pytest.approx(1.0)
    assert normalise(one, "sum_to_one").sum() == pytest.approx(1.0) and normalise(one, "sum_to_one").min() >= 0
    assert np.mean(normalise(one, "second_moment") ** 2) == pytest.approx(1.0)
    clipped = normalise(one, "percentile")
    assert np.abs(clipped).max() == pytest.approx(1.0) and (np.abs(clipped) == 1).sum() >= 1
    ranks = normalise(one, "rank")[0]
    np.testing.assert_allclose(np.sort(ranks.ravel()), np.arange(1, 31) / 30)
    assert np.argmax(ranks) == np.argmax(MAPS[0]) and np.argmin(ranks) == np.argmin(MAPS[0])


@pytest.mark.parametrize("how", list(NORMALISATIONS))
def test_a_constant_map_stays_finite_and_abs_ignores_signs(how):
    constant = normalise(np.full((1, 3, 3), 2.5), how)
    assert np.isfinite(constant).all() and np.ptp(constant) == 0
    np.testing.assert_allclose(normalise(-MAPS, how, absolute=True), normalise(MAPS, how, absolute=True))


def test_rank_is_blind_to_monotone_rescaling():
    np.testing.assert_allclose(normalise(np.exp(3 * MAPS), "rank"), normalise(MAPS, "rank"))


@pytest.mark.parametrize("how", ["mean", "median", "max", "min", "ucb", "lcb"])
def test_one_member_is_its_own_aggregate(how):
    np.testing.assert_allclose(aggregate(MAPS[:1], how, kappa=2.0), MAPS[0])


def test_the_bounds_with_kappa_zero_are_the_mean_and_straddle_it_otherwise():
    mean = aggregate(MAPS, "mean")
    np.testing.assert_allclose(mean, MAPS.mean(axis=0))
    np.testing.assert_allclose(aggregate(MAPS, "ucb", kappa=0.0), mean)
    np.testing.assert_allclose(aggregate(MAPS, "lcb", kappa=0.0), mean)
    spread = MAPS.std(axis=0)
    np.testing.assert_allclose(aggregate(MAPS, "ucb", kappa=2.0) - mean, 2 * spread)
    np.testing.assert_allclose(mean - aggregate(MAPS, "lcb", kappa=0.5), 0.5 * spread)
    np.testing.assert_allclose(aggregate(MAPS, "median"), np.median(MAPS, axis=0))
    np.testing.assert_allclose(aggregate(MAPS, "rank_mean"), normalise(MAPS, "rank").mean(axis=0))


def test_acquisition_forms_follow_their_formulas_and_limits():
    mu, sigma = MAPS.mean(axis=0), MAPS.std(axis=0)
    tau = np.quantile(mu, 0.75)
    z = (mu - tau) / sigma
    np.testing.assert_allclose(aggregate(MAPS, "pi", reference_quantile=0.75), norm.cdf(z))
    ei = aggregate(MAPS, "ei", reference_quantile=0.75)
    np.testing.assert_allclose(ei, (mu - tau) * norm.cdf(z) + sigma * norm.pdf(z))
    assert (ei >= np.maximum(mu - tau, 0) - 1e-12).all()  # Jensen: E[max(X - tau, 0)] >= max(E[X] - tau, 0)
    same = np.repeat(MAPS[:1], 3, axis=0)  # no spread: the limits
    tau_same = np.quantile(MAPS[0], 0.75)
    np.testing.assert_allclose(aggregate(same, "pi", reference_quantile=0.75), (MAPS[0] > tau_same).astype(float))
    ties = np.zeros((2, 4, 4))  # no spread and mu = tau everywhere: the limit Phi(0)
    np.testing.assert_allclose(aggregate(ties, "pi"), 0.5)
    np.testing.assert_allclose(aggregate(same, "ei", reference_quantile=0.75), np.maximum(MAPS[0] - tau_same, 0))


@pytest.mark.parametrize("call, field", [
    (lambda: aggregate(MAPS, "vote"), "aggregator"),
    (lambda: aggregate(MAPS, "ucb", kappa=-1), "kappa"),
    (lambda: aggregate(MAPS[0], "mean"), "maps"),
    (lambda: normalise(MAPS, "l2"), "normalisation"),
])
def test_bad_choices_name_their_field(call, field):
    with pytest.raises(InvalidArgument) as caught:
        call()
    assert caught.value.field == field
