"""Explanation quality against the ground truth: the object masks kept for every shapes sample."""

from __future__ import annotations

import numpy as np
import pytest
from across_seeds import FIXED_COUNT, SEEDS, lower_bound
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


# Every randomized method on shapes samples 0-3 (objects: 13-21% of the pixels, 18% on average over the 8, so a
# map blind to the object scores about 0.18), at fixed sample counts about half the methods' defaults (the test
# runs 5 seeds x 4 samples: 76,000 passes, 1.25 x what its single-seed version spent on 8 samples). Per seed, the mean
# relevance mass of the positive relevance over the 4 samples; the test asserts mean - 2 SE over seeds 0-4 above
# `mean_at_least`, and per sample the same over seeds above `each_at_least`. Measured over seeds 0-7 on these
# settings: the 4-sample mean's mean and sd over the 8 seeds, and the worst sample's mean and sd over seeds.
# Each `mean_at_least` is at least 3 sd under the measured mean, each `each_at_least` at least 3 SE (sd / sqrt 5)
# under the worst sample's mean; both are claims about the method's distribution, not about one draw.
@pytest.mark.parametrize("method, params, baseline, probabilities, each_at_least, mean_at_least", [
    # LIME on SLIC superpixels (quickshift's defaults give 3-5 superpixels at 64 px), 500 samples: mean 0.707,
    # sd 0.011; worst sample 0.653, sd 0.034.
    ("lime", {"segmentation": "SEGMENTATION_SLIC", "num_samples": 500}, "KIND_IMAGE_MEAN", False, 0.55, 0.65),
    # KernelSHAP, 500 samples: mean 0.598, sd 0.040; worst sample (02) 0.385, sd 0.131:
    # at this count one sample's map is barely above chance on some seeds, hence its low floor.
    ("kernel_shap", {"num_samples": 500}, "KIND_IMAGE_MEAN", True, 0.20, 0.45),
    # Sobol, Xplique's grid 8, 16 designs: mean 0.573, sd 0.026; worst sample 0.454, sd 0.078.
    ("sobol", {"num_designs": 16}, "KIND_IMAGE_MEAN", True, 0.30, 0.48),
    # RISE's map carries a constant offset E[f] that swamps relevance mass (0.24, chance); centred, 1000 masks:
    # mean 0.464, sd 0.016; worst sample 0.372, sd 0.020 -- over twice chance, not most of the mass: smooth
    # 9-pixel cells spill onto the background.
    ("rise", {"num_masks": 1000, "centered": True}, "KIND_IMAGE_MEAN", False, 0.30, 0.40),
    # HSIC, 750 designs, is the weakest here: mean 0.416, sd 0.006; worst sample 0.350, sd 0.013.
    ("hsic", {"num_designs": 750}, "KIND_BLUR", True, 0.30, 0.38),
])
def test_every_method_finds_the_object_on_five_seeds(client, method, params, baseline, probabilities,
                                                      each_at_least, mean_at_least):
    samples = load_samples("shapes")[:4]
    masses = np.array([[relevance_mass(client.explain("shapes", sample["path"], method, {**params, **FIXED_COUNT},
                                                      baseline={"kind": baseline}, probabilities=probabilities,
                                                      seed=seed).map, sample["mask_array"])
                        for sample in samples] for seed in SEEDS])  # (seeds, samples)
    per_seed = masses.mean(axis=1)
    assert lower_bound(per_seed) >= mean_at_least, np.round(masses, 3)
    worst = min(lower_bound(masses[:, i]) for i in range(len(samples)))
    assert worst >= each_at_least, np.round(masses, 3)


def test_relevance_mass_and_pointing_game_on_known_maps():
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True
    attribution = np.zeros((4, 4))
    attribution[0, 0], attribution[3, 3], attribution[1, 1] = 3.0, 1.0, -5.0  # negatives do not count
    assert relevance_mass(attribution, mask) == pytest.approx(0.75)
    assert pointing_game(attribution, mask)
    assert np.isnan(relevance_mass(-np.ones((4, 4)), mask))
