"""Explanation metrics against closed forms: numpy models as ``score``, no ONNX."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidArgument, NotFound
from service.explainers.baselines import Baseline, BaselineKind
from service.metrics import METRICS, agreement, get_metric
from service.metrics.localisation import relevance_rank
from service.metrics.mu_fidelity import grid_cells
from service.runtime.preprocessing import Preprocessing


def _black(image):
    return Baseline(BaselineKind.BLACK).resolve(image, Preprocessing(), np.random.default_rng(0))


def _evaluate(name, score, image, attribution, *, mask=None, batch_size=64, seed=0, **params):
    metric = get_metric(name)
    parsed = metric.make_params(params)
    metric.check(parsed, image.shape)
    return metric.evaluate(score, image, attribution, parsed, baseline=_black(image), mask=mask,
                           batch_size=batch_size, rng=np.random.default_rng(seed))


def mean_pixel(images):
    return images.mean(axis=(1, 2, 3), dtype=np.float64)


def linear(weights):
    return lambda images: (images.astype(np.float64) * weights).sum(axis=(1, 2, 3))


# --- deletion and insertion -------------------------------------------------------------------------------------

def test_deletion_of_a_constant_image_under_the_mean_falls_linearly():
    # 16 x 16 pixels in 32 steps: 8 pixels a step, so after step k the mean is exactly 1 - k / 32.
    image = np.ones((16, 16, 3), np.float32)
    attribution = np.random.default_rng(1).normal(size=(16, 16))
    result = _evaluate("deletion", mean_pixel, image, attribution)
    t = np.arange(33) / 32
    np.testing.assert_array_equal(result.fractions, t)
    np.testing.assert_allclose(result.curve, 1 - t, atol=1e-12)
    assert result.score == pytest.approx(0.5, abs=1e-12)


def test_insertion_from_a_blurred_constant_image_stays_constant():
    image = np.ones((16, 16, 3), np.float32)
    result = _evaluate("insertion", mean_pixel, image, np.random.default_rng(1).normal(size=(16, 16)))
    np.testing.assert_allclose(result.curve, 1.0, atol=1e-6)
    assert result.score == pytest.approx(1.0, abs=1e-6)


def test_insertion_without_blur_starts_from_the_baseline():
    image = np.ones((16, 16, 3), np.float32)
    result = _evaluate("insertion", mean_pixel, image, np.zeros((16, 16)), blur_sigma=0)
    np.testing.assert_allclose(result.curve, np.arange(33) / 32, atol=1e-12)
    assert result.score == pytest.approx(0.5, abs=1e-12)


def _fixed_set_model(image, size, rng):
    """f = the share of a fixed set S of ``size`` pixels still at their original value."""
    chosen = rng.choice(image.shape[0] * image.shape[1], size, replace=False)
    in_set = np.zeros(image.shape[:2], bool)
    in_set.flat[chosen] = True
    return in_set, lambda images: (images[:, in_set] == image[in_set]).all(axis=-1).mean(axis=1)


def test_deletion_and_insertion_of_a_fixed_pixel_set_have_closed_forms():
    # N = 256 pixels, 32 steps of 8, |S| = 64. Ranking S first, the deletion curve falls linearly from 1 to 0
    # over t in [0, |S| / N] and stays there: AUC = |S| / (2 N) = 0.125, exact under the trapezoid rule since
    # |S| / N = 8 / 32 lies on the grid. Insertion mirrors it: 1 - |S| / (2 N) = 0.875.
    rng = np.random.default_rng(2)
    image = rng.uniform(0.1, 1.0, (16, 16, 3)).astype(np.float32)
    in_set, score = _fixed_set_model(image, 64, rng)
    perfect = in_set.astype(np.float64)
    deletion = _evaluate("deletion", score, image, perfect)
    assert deletion.score == pytest.approx(64 / (2 * 256), abs=1e-12)
    np.testing.assert_allclose(deletion.curve[:9], 1 - np.arange(9) / 8)
    assert (deletion.curve[9:] == 0).all()
    assert _evaluate("insertion", score, image, perfect).score == pytest.approx(1 - 64 / (2 * 256), abs=1e-12)
    # A random ranking removes S at the average rate: its curve is near 1 - t, its area near 0.5.
    random_auc = _evaluate("deletion", score, image, rng.normal(size=(16, 16))).score
    assert deletion.score < random_auc
    assert random_auc == pytest.approx(0.5, abs=0.1)


def test_channel_maps_are_summed_over_channels():
    rng = np.random.default_rng(3)
    image = rng.random((12, 10, 3), dtype=np.float32)
    score = linear(rng.normal(size=image.shape))
    per_channel = rng.normal(size=image.shape)
    summed = _evaluate("deletion", score, image, per_channel.sum(axis=2), steps=10)
    np.testing.assert_array_equal(_evaluate("deletion", score, image, per_channel, steps=10).curve, summed.curve)
    with pytest.raises(InvalidArgument) as error:
        _evaluate("deletion", score, image, np.zeros((10, 12)))
    assert error.value.field == "attribution"


# --- mu-fidelity ------------------------------------------------------------------------------------------------

@pytest.fixture
def linear_case():
    """f = sum(w * x) with a black baseline: removing S drops the score by exactly the sum of w * x over S."""
    rng = np.random.default_rng(4)
    image = rng.random((36, 36, 3), dtype=np.float32)
    weights = rng.normal(size=image.shape)
    return image, linear(weights), (weights * image).sum(axis=2), rng.normal(size=image.shape[:2])


def test_mu_fidelity_of_the_exact_contributions_is_one(linear_case):
    image, score, perfect, _ = linear_case
    result = _evaluate("mu_fidelity", score, image, perfect, correlation="pearson")
    assert result.score == pytest.approx(1.0, abs=1e-9)
    assert result.values == {"undefined": 0.0}
    assert _evaluate("mu_fidelity", score, image, perfect).score == pytest.approx(1.0, abs=1e-9)  # spearman


def test_mu_fidelity_of_a_random_map_is_small(linear_case):
    image, score, _, random_map = linear_case
    for correlation in ("pearson", "spearman"):
        assert abs(_evaluate("mu_fidelity", score, image, random_map, correlation=correlation).score) < 0.3


def test_mu_fidelity_is_zero_and_flagged_when_the_score_never_moves():
    image = np.random.default_rng(5).random((18, 18, 3), dtype=np.float32)
    result = _evaluate("mu_fidelity", lambda images: np.ones(len(images)), image, np.ones((18, 18)))
    assert result.score == 0.0
    assert result.values == {"undefined": 1.0}


def test_grid_cells_split_like_array_split():
    cells = grid_cells(10, 7, 3)
    assert [np.sum(cells[:, 0] == c) for c in (0, 3, 6)] == [4, 3, 3]  # rows 10 -> 4, 3, 3
    assert [np.sum(cells[0] == c) for c in (0, 1, 2)] == [3, 2, 2]  # columns 7 -> 3, 2, 2
    assert np.unique(cells).tolist() == list(range(9))


# --- MoRF and LeRF ----------------------------------------------------------------------------------------------

def test_region_perturbation_orders_perfect_random_and_reversed_maps(linear_case):
    image, score, perfect, random_map = linear_case  # 36 x 36 in 8-pixel regions: 5 x 5, partial at the borders
    morf = [_evaluate("morf", score, image, m).score for m in (perfect, random_map, -perfect)]
    lerf = [_evaluate("lerf", score, image, m).score for m in (perfect, random_map, -perfect)]
    # Greedy on exact region contributions maximises (MoRF) or minimises (LeRF) every y_0 - y_k.
    assert morf[0] > morf[1] > morf[2]
    assert lerf[0] < lerf[1] < lerf[2]
    # MoRF of a map is LeRF of its negation; both replace every region by the end.
    assert morf[0] == pytest.approx(lerf[2], abs=1e-12)


def test_region_perturbation_curve_and_cap():
    image = np.ones((20, 20, 3), np.float32)
    attribution = np.zeros((20, 20))
    attribution[16:, 16:] = 1.0  # the 4 x 4 corner region is the most relevant
    result = _evaluate("morf", mean_pixel, image, attribution, region_size=8, max_regions=2)
    # Regions are 8 x 8, 8 x 4 at the right and bottom and 4 x 4 in the corner; ties keep raster order.
    np.testing.assert_allclose(result.fractions, [0, 16 / 400, 80 / 400])
    np.testing.assert_allclose(result.curve, 1 - result.fractions)
    assert result.score == pytest.approx(np.mean(result.fractions))
    assert get_metric("morf").forward_passes(get_metric("morf").make_params({}), image.shape) == 9 + 1


# --- localisation -----------------------------------------------------------------------------------------------

def test_localisation_on_a_hand_made_map():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    attribution = np.zeros((4, 4))
    attribution[0, 0], attribution[2, 2], attribution[0, 1], attribution[3, 3], attribution[1, 1] = 5, 4, 3, 2, -1
    # Positive mass 14, 8 of it on the object; the top 4 pixels are 5 (in), 4 (out), 3 (in), 2 (out).
    result = _evaluate("localisation", None, np.zeros((4, 4, 3), np.float32), attribution, mask=mask)
    assert result.values == pytest.approx({"relevance_mass": 8 / 14, "relevance_rank": 0.5, "pointing_game": 1.0})
    assert result.score == result.values["relevance_mass"]
    attribution[3, 0] = 6  # the top pixel is now off the object, and the top 4 are 6 (out), 5, 4 (out), 3
    values = _evaluate("localisation", None, np.zeros((4, 4, 3), np.float32), attribution, mask=mask).values
    assert values == pytest.approx({"relevance_mass": 8 / 20, "relevance_rank": 0.5, "pointing_game": 0.0})
    assert np.isnan(relevance_rank(attribution, np.zeros((4, 4), bool)))
    for bad in (None, np.zeros((4, 4), bool), np.ones((3, 4), bool)):
        with pytest.raises(InvalidArgument) as error:
            _evaluate("localisation", None, np.zeros((4, 4, 3), np.float32), attribution, mask=bad)
        assert error.value.field == "mask"


# --- agreement --------------------------------------------------------------------------------------------------

def test_agreement_statistics():
    rng = np.random.default_rng(6)
    a = rng.normal(size=(16, 16))
    assert agreement.spearman(a, a) == pytest.approx(1.0)
    assert agreement.ssim(a, a) == pytest.approx(1.0)
    assert agreement.top_iou(a, a) == 1.0
    assert agreement.spearman(a, -a) == pytest.approx(-1.0)
    assert agreement.top_iou(a, -a) == 0.0
    assert agreement.ssim(a, 3 * a + 2) == pytest.approx(1.0)  # min-max scaling: blind to units
    assert agreement.kendall_tau([0.1, 0.5, 0.3, 0.9], [1, 5, 3, 9]) == pytest.approx(1.0)
    assert agreement.kendall_tau([0.1, 0.5, 0.3, 0.9], [9, 5, 7, 1]) == pytest.approx(-1.0)
    maps = np.stack([a, -a, rng.normal(size=(16, 16))])
    matrix = agreement.pairwise(maps, agreement.spearman)
    np.testing.assert_array_equal(matrix, matrix.T)
    np.testing.assert_array_equal(np.diag(matrix), 1.0)
    assert matrix[0, 1] == pytest.approx(-1.0)
    assert matrix[0, 2] == agreement.spearman(a, maps[2])


# --- the contract: passes, batches, parameters ------------------------------------------------------------------

def _counting(model, batches):
    """``model``, noting the size of every batch it is given in ``batches``."""
    def score(images):
        batches.append(len(images))
        return model(images)
    return score


def test_every_metric_counts_its_passes_and_respects_the_batch_size():
    rng = np.random.default_rng(7)
    image = rng.random((20, 24, 3), dtype=np.float32)  # sizes that neither 8 nor 9 divide
    attribution, mask = rng.normal(size=(20, 24)), rng.random((20, 24)) < 0.3
    model = linear(rng.normal(size=image.shape))
    pixel_metrics = {name: m for name, m in METRICS.items() if m.domain == "pixel"}  # wavelet ones: test_wcam.py
    assert set(pixel_metrics) == {"deletion", "insertion", "mu_fidelity", "morf", "lerf", "localisation"}
    for name, metric in pixel_metrics.items():
        results = []
        for batch_size in (3, 512):
            batches = []
            results.append(_evaluate(name, _counting(model, batches), image, attribution, mask=mask,
                                     batch_size=batch_size, seed=8))
            assert sum(batches) == metric.forward_passes(metric.make_params({}), image.shape), name
            assert max(batches, default=0) <= batch_size, name
        small, large = results
        assert small.score == large.score and small.values == large.values, name
        for curve_small, curve_large in ((small.curve, large.curve), (small.fractions, large.fractions)):
            np.testing.assert_array_equal(curve_small, curve_large)


@pytest.mark.parametrize("name, params, field", [
    ("deletion", {"steps": 0}, "deletion.steps"),
    ("deletion", {"steps": 16 * 16 + 1}, "deletion.steps"),
    ("deletion", {"steps": 2.5}, "deletion.steps"),
    ("insertion", {"steps": True}, "insertion.steps"),
    ("insertion", {"blur_sigma": -1.0}, "insertion.blur_sigma"),
    ("mu_fidelity", {"grid_size": 0}, "mu_fidelity.grid_size"),
    ("mu_fidelity", {"grid_size": 17}, "mu_fidelity.grid_size"),
    ("mu_fidelity", {"subset_fraction": 0.0}, "mu_fidelity.subset_fraction"),
    ("mu_fidelity", {"num_samples": 1}, "mu_fidelity.num_samples"),
    ("mu_fidelity", {"correlation": "kendall"}, "mu_fidelity.correlation"),
    ("morf", {"region_size": 0}, "morf.region_size"),
    ("lerf", {"region_size": 17}, "lerf.region_size"),
    ("lerf", {"max_regions": 0}, "lerf.max_regions"),
    ("morf", {"size": 8}, "morf"),
])
def test_bad_parameters_name_their_field(name, params, field):
    metric = get_metric(name)
    with pytest.raises(InvalidArgument) as error:
        metric.check(metric.make_params(params), (16, 16, 3))
    assert error.value.field == field


def test_unknown_metric_is_not_found():
    with pytest.raises(NotFound) as error:
        get_metric("accuracy")
    assert error.value.field == "metric"
