"""studies/eva.py at a reduced size: the direction of each verdict on EVA, per image with its uncertainty (mean - 2
standard errors over images, ``tests/across_seeds.py``; the random map averaged over its seeds per image).

One study run serves every assertion: 3 bundled images per model, CROWN-IBP (the default verifier), an 8 x 8 grid,
radii 1/255 (the service's default) and 8/255, 3 random seeds. The docstrings give what the study measured at its
quick size (4 images, studies/eva.quick.json) and the thresholds are 0.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from across_seeds import lower_bound, upper_bound

ROOT = Path(__file__).resolve().parent.parent
IMAGES = 3


@pytest.fixture(scope="module")
def study():
    sys.path.insert(0, str(ROOT / "studies"))
    import eva as eva_study

    size = eva_study.Size(images=IMAGES, grids=(8,), methods=("crown_ibp",), radii=(1 / 255, 8 / 255),
                          random_seeds=3, crown_images=0, variants=False)
    return eva_study.run(size)


def per_image(study, model: str, setting: str, score: str, against: str) -> list[float]:
    """setting's score minus ``against``'s (occlusion, or random averaged over its seeds), per image."""
    import eva as eva_study

    rows = study["models"][model]
    if against == "random":
        return [row["maps"][setting][score] - eva_study.random_mean(row, score) for row in rows]
    return [row["maps"][setting][score] - row["maps"][against][score] for row in rows]


def test_certification_at_the_default_radius_separates_digits_from_shapes(study):
    """At 1/255 CROWN-IBP proves for every bundled digit that no perturbation changes its class and for no shapes
    scene (quick study: certified radius of the digits 1.18 to 1.86/255, of the shapes 0.019 to 0.032/255)."""
    certification = {model: study["summary"][model]["certification"] for model in ("digits", "shapes")}
    assert certification["digits"]["crown_ibp|1.0"] == {"certified": IMAGES, "items": IMAGES, "rate": 1.0}
    assert certification["shapes"]["crown_ibp|1.0"] == {"certified": 0, "items": IMAGES, "rate": 0.0}
    assert certification["digits"]["crown_ibp|8.0"]["certified"] == 0  # 8 grey levels: beyond every certificate


def test_eva_does_not_reach_occlusions_fidelity(study):
    """State-of-the-art fidelity is not reproduced: on both models occlusion's mu-fidelity is above EVA's at the
    default radius, image by image (quick study: digits 0.49 against 0.30, shapes 0.63 against 0.29)."""
    for model in ("digits", "shapes"):
        assert lower_bound(per_image(study, model, "occlusion", "mu_fidelity", "crown_ibp|1.0|8")) > 0, model


def test_eva_beats_a_random_map_on_insertion(study):
    """Only under conditions: EVA at 1/255 inserts better than a random map on the same grid on both models (quick
    study: digits +0.13 +- 0.04, shapes +1.76 +- 0.31, SE over 4 images); its other gains over random are small or
    within noise (studies/eva.md)."""
    for model in ("digits", "shapes"):
        assert lower_bound(per_image(study, model, "crown_ibp|1.0|8", "insertion", "random")) > 0, model


def test_eva_does_not_localise_the_shapes_object(study):
    """Localisation is not reproduced: on shapes occlusion puts more of its positive relevance on the object than
    EVA at 1/255, image by image, and EVA's relevance mass stays within 0.05 of a random map's (quick study: EVA
    0.218, random 0.198 +- 0.022 sd over seeds, occlusion 0.569)."""
    assert lower_bound(per_image(study, "shapes", "occlusion", "relevance_mass", "crown_ibp|1.0|8")) > 0
    assert upper_bound(per_image(study, "shapes", "crown_ibp|1.0|8", "relevance_mass", "random")) < 0.05
