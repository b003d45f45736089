"""Explanation quality against the ground truth: the object masks kept for every shapes sample."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import load_samples

from service.metrics.localisation import pointing_game, relevance_mass


@pytest.mark.parametrize("baseline, each_at_least, mean_at_least", [
    # Measured on the 8 samples (objects cover 13-21% of the pixels, 18% on average):
    # image mean: 0.64-0.83, mean 0.75; dataset mean: 0.54-0.79, mean 0.63.
    ({"kind": "KIND_IMAGE_MEAN"}, 0.60, 0.70),
    (None, 0.50, 0.60),
])
def test_occlusion_puts_most_relevance_on_the_object(client, baseline, each_at_least, mean_at_least):
    masses, hits = [], []
    for sample in load_samples("shapes"):
        explanation = client.explain("shapes", sample["path"], "occlusion", {"window": [4], "stride": [2]},
                                     baseline=baseline)
        assert explanation.attributions[0].class_index == sample["label"]
        mask = sample["mask_array"]
        masses.append(relevance_mass(explanation.map, mask))
        hits.append(pointing_game(explanation.map, mask))
        assert masses[-1] >= each_at_least, (sample["image"], masses[-1])
        assert masses[-1] > 2.5 * mask.mean()  # far above what a map blind to the object would score
    assert np.mean(masses) >= mean_at_least, masses
    assert np.mean(hits) >= 0.75, hits


def test_relevance_mass_and_pointing_game_on_known_maps():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    attribution = np.zeros((4, 4))
    attribution[0, 0], attribution[3, 3], attribution[1, 1] = 3.0, 1.0, -5.0  # negatives do not count
    assert relevance_mass(attribution, mask) == pytest.approx(0.75)
    assert pointing_game(attribution, mask)
    assert np.isnan(relevance_mass(-np.ones((4, 4)), mask))
