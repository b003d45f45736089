"""Normalisations and aggregators of explanation ensembles against their definitions and known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

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


# A 2 x 2 map whose normalisations are worked out by hand: mean 1, deviations (0, 1, 2, -3), so variance 14/4;
# mean square (1 + 4 + 9 + 4) / 4 = 9/2; |a| sorted (1, 2, 2, 3), whose 99.5th percentile (linear, as numpy) is
# 2 + 0.985 * (3 - 2) = 2.985.
SMALL = np.array([[1.0, 2.0], [3.0, -2.0]])
BY_HAND = {
    "max_abs": [[1 / 3, 2 / 3], [1.0, -2 / 3]],
    "min_max": [[3 / 5, 4 / 5], [1.0, 0.0]],
    "z_score": [[0.0, 1 / math.sqrt(3.5)], [2 / math.sqrt(3.5), -3 / math.sqrt(3.5)]],
    "percentile": [[1 / 2.985, 2 / 2.985], [1.0, -2 / 2.985]],  # 3 / 2.985 > 1 is clipped to 1
    "sum_to_one": [[1 / 8, 2 / 8], [3 / 8, 2 / 8]],
    "rank": [[2 / 4, 3 / 4], [4 / 4, 1 / 4]],  # -2 < 1 < 2 < 3
    "second_moment": [[1 / math.sqrt(4.5), 2 / math.sqrt(4.5)], [3 / math.sqrt(4.5), -2 / math.sqrt(4.5)]],
}
# |a| = (1, 2, 3, 2): the two 2s share the average of ranks 2 and 3.
ABSOLUTE_RANK = [[1 / 4, 2.5 / 4], [4 / 4, 2.5 / 4]]


@pytest.mark.parametrize("how", list(NORMALISATIONS))
def test_each_normalisation_of_a_small_map_is_its_value_by_hand(how):
    assert set(BY_HAND) == set(NORMALISATIONS)
    np.testing.assert_allclose(normalise(SMALL[None], how)[0], BY_HAND[how], rtol=1e-12, atol=1e-15)


def test_absolute_ranks_share_ties():
    np.testing.assert_allclose(normalise(SMALL[None], "rank", absolute=True)[0], ABSOLUTE_RANK, rtol=1e-12)


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


# Two 2 x 2 members worked out by hand.
FIRST, SECOND = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[10.0, 10.0], [0.0, 5.0]])
PAIR = np.stack([FIRST, SECOND])


def test_small_members_aggregate_to_their_values_by_hand():
    np.testing.assert_allclose(aggregate(PAIR, "mean"), [[5.5, 6.0], [1.5, 4.5]])
    np.testing.assert_allclose(aggregate(PAIR, "median"), [[5.5, 6.0], [1.5, 4.5]])  # two members: the mean
    np.testing.assert_allclose(aggregate(PAIR, "max"), [[10.0, 10.0], [3.0, 5.0]])
    np.testing.assert_allclose(aggregate(PAIR, "min"), [[1.0, 2.0], [0.0, 4.0]])
    # Spreads (ddof 0) of two members: half their difference, (4.5, 4, 1.5, 0.5).
    np.testing.assert_allclose(aggregate(PAIR, "ucb", kappa=2.0), [[14.5, 14.0], [4.5, 5.5]])
    np.testing.assert_allclose(aggregate(PAIR, "lcb", kappa=1.0), [[1.0, 2.0], [0.0, 4.0]])
    # Percentile ranks: FIRST (1/4, 2/4, 3/4, 1); SECOND's 0 < 5 < 10 = 10, the tied pair sharing (3 + 4) / 2.
    np.testing.assert_allclose(aggregate(PAIR, "rank_mean"),
                               [[(0.25 + 3.5 / 4) / 2, (0.5 + 3.5 / 4) / 2], [(0.75 + 0.25) / 2, (1.0 + 0.5) / 2]])


def _phi(z: float) -> float:
    return math.exp(-z * z / 2) / math.sqrt(2 * math.pi)


def _big_phi(z: float) -> float:
    return (1 + math.erf(z / math.sqrt(2))) / 2


def test_acquisition_forms_of_small_members_by_hand():
    # mu = (0, 1, 2, 3) and sigma = 1 everywhere; the 2/3 quantile of mu (linear) is tau = 2, so z = (-2, -1, 0, 1).
    members = np.stack([np.array([[-1.0, 0.0], [1.0, 2.0]]), np.array([[1.0, 2.0], [3.0, 4.0]])])
    z = np.array([[-2.0, -1.0], [0.0, 1.0]])
    pi = [[_big_phi(-2), _big_phi(-1)], [0.5, _big_phi(1)]]
    np.testing.assert_allclose(aggregate(members, "pi", reference_quantile=2 / 3), pi, rtol=1e-12)
    # EI = (mu - tau) Phi(z) + sigma phi(z), with mu - tau = z here.
    ei = [[gap * _big_phi(gap) + _phi(gap) for gap in row] for row in z]
    np.testing.assert_allclose(aggregate(members, "ei", reference_quantile=2 / 3), ei, rtol=1e-12)
    assert ei[1][0] == pytest.approx(0.3989422804014327)  # phi(0) = 1 / sqrt(2 pi)
    assert (aggregate(MAPS, "ei") >= np.maximum(MAPS.mean(axis=0) - np.quantile(MAPS.mean(axis=0), 0.9), 0)
            - 1e-12).all()  # Jensen: E[max(X - tau, 0)] >= max(E[X] - tau, 0)


def test_acquisition_forms_without_spread_take_their_limits():
    same = np.stack([FIRST, FIRST, FIRST])  # sigma = 0; the 2/3 quantile of (1, 2, 3, 4) is tau = 3
    np.testing.assert_allclose(aggregate(same, "pi", reference_quantile=2 / 3), [[0.0, 0.0], [0.5, 1.0]])
    np.testing.assert_allclose(aggregate(same, "ei", reference_quantile=2 / 3), [[0.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(aggregate(np.zeros((2, 4, 4)), "pi"), 0.5)  # mu = tau everywhere: Phi(0)


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
