"""Deletion and insertion of wavelet coefficients, on models whose scale is known."""

from __future__ import annotations

import numpy as np
import pytest

from service.errors import InvalidArgument
from service.explainers import wavelets
from service.explainers.baselines import Baseline
from service.metrics import get_metric
from service.runtime.preprocessing import Preprocessing

SIZE = 32


def _score_mean(images):  # depends on the approximation band only: the image's mean brightness
    return images.mean(axis=(1, 2, 3))


def _evaluate(name, attribution, image, score=_score_mean, batch_size=64, **params):
    metric = get_metric(name)
    parsed = metric.make_params(params)
    metric.check(parsed, image.shape)
    fill = Baseline().resolve(image, Preprocessing(), np.random.default_rng(0))
    return metric.evaluate(score, image, attribution, parsed, baseline=fill, mask=None, batch_size=batch_size,
                           rng=np.random.default_rng(0))


def _band_map(name: str, level: int) -> np.ndarray:
    """A wavelet-layout map that ranks one sub-band's coefficients first (and the approximation last,
    unless it is the one ranked first)."""
    layout = wavelets.make_layout(SIZE, SIZE, 3, "haar")
    attribution = np.zeros((SIZE, SIZE))
    for band in wavelets.subbands(layout):
        if band.name == name and band.level == level:
            attribution[band.rows, band.cols] = 1.0
        elif band.name == "approximation":
            attribution[band.rows, band.cols] = -1.0
    return attribution


def test_removing_the_approximation_first_kills_a_brightness_model():
    image = np.random.default_rng(0).uniform(0.3, 0.9, (SIZE, SIZE, 3)).astype(np.float32)
    coarse_first = _evaluate("wavelet_deletion", _band_map("approximation", 3), image)
    fine_first = _evaluate("wavelet_deletion", _band_map("diagonal", 1), image)
    # The brightness lives in the approximation's 4 x 4 = 16 coefficients (1.6% of them): removing them first
    # leaves zero-mean details, about 0 once clipped (0.07 measured, from 0.60); removing the finest details
    # first leaves it until the end.
    assert coarse_first.curve[1] < 0.15 * coarse_first.curve[0]
    assert coarse_first.score < 0.1 < 0.9 * image.mean() < fine_first.score
    inserted = _evaluate("wavelet_insertion", _band_map("approximation", 3), image)
    assert inserted.curve[0] == pytest.approx(0.0, abs=1e-6)  # an empty transform is a black image
    assert inserted.curve[1] == pytest.approx(image.mean(), abs=1e-5)  # the mean comes back with a_J
    assert inserted.score > 0.9 * image.mean()


def test_passes_and_batch_size():
    image = np.random.default_rng(1).random((SIZE, SIZE, 3), dtype=np.float32)
    attribution = np.random.default_rng(2).normal(size=(SIZE, SIZE))
    for name in ("wavelet_deletion", "wavelet_insertion"):
        calls = []
        counted = lambda images: (calls.append(len(images)), _score_mean(images))[1]
        small = _evaluate(name, attribution, image, counted, batch_size=5, steps=16)
        assert sum(calls) == 17 and max(calls) <= 5
        large = _evaluate(name, attribution, image, batch_size=512, steps=16)
        np.testing.assert_array_equal(small.curve, large.curve)


@pytest.mark.parametrize("params, field", [({"levels": 6}, "wavelet_deletion.levels"),
                                           ({"wavelet": "nope"}, "wavelet_deletion.wavelet"),
                                           ({"steps": 0}, "wavelet_deletion.steps")])
def test_bad_parameters_name_their_field(params, field):
    metric = get_metric("wavelet_deletion")
    with pytest.raises(InvalidArgument) as caught:
        metric.check(metric.make_params(params), (SIZE, SIZE, 3))
    assert caught.value.field == field
