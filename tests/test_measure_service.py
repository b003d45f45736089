"""Measure through the API: every measure on the shapes model, stability against its independent runs and
against an identical twin (exactly 1), and refusals."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import references
from conftest import load_samples
from test_server import assert_status, still_serving

OCCLUSION = {"window": 8, "stride": 4}
RUNS = [f"shapes_run{i}" for i in range(1, 5)]


def test_all_five_measures_of_occlusion_on_the_shapes_model(client):
    samples = load_samples("shapes")[:2]
    events = []
    result = client.measure("shapes", [s["path"] for s in samples], "occlusion", OCCLUSION, stability_models=RUNS,
                            seed=0, on_progress=events.append)
    assert result.class_indices == [s["label"] for s in samples] and events
    entropy = {series.name: series for series in result.entropy}
    assert all(0 < v <= 1 for v in entropy["histogram"].values) and all(0 < v < 1 for v in entropy["spatial"].values)
    clean = client.predict("shapes", samples[0]["path"])[0].scores[samples[0]["label"]]
    curve = result.noise_curves[0]
    assert curve.scores[0] == pytest.approx(clean, rel=1e-5)  # amount 0 is the clean image
    assert curve.scores[-1] != pytest.approx(clean, rel=1e-2)  # all noise: the shape is gone
    assert list(result.noise_levels) == pytest.approx([0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0])
    assert len(result.transforms) == 12
    _maps_follow_flips_and_quarter_turns(client, samples, {t.name: list(t.values) for t in result.transforms})
    assert list(result.stability_models) == ["shapes", *RUNS]
    pairs = result.stability[0]
    assert len(pairs.values) == 2 * 10 and pairs.summary.count == 20 and pairs.summary.max < 1
    degradation = {series.name: series for series in result.degradation}
    assert set(degradation) == {"background_score_drop", "background_ssim", "object_score_drop", "object_ssim"}


FLIPS_AND_TURNS = {"flip_horizontal": lambda a: a[:, ::-1], "flip_vertical": lambda a: a[::-1],
                   "rotate_clockwise": lambda a: np.rot90(a, -1), "rotate_counterclockwise": lambda a: np.rot90(a, 1)}


def _maps_follow_flips_and_quarter_turns(client, samples, reported):
    """For a flip or a quarter turn T the measure is SSIM(S(T x), T S(x)): recomputed here from maps explained one
    by one (occlusion is deterministic, and its 8/4 grid on 64 px is symmetric under T). The truth: the map
    follows the image, so S(T x) is closer to T S(x) than to the unmoved S(x). Measured on all 8 samples:
    0.38-0.80 against 0.00-0.51, the smallest margin 0.05."""
    for i, sample in enumerate(samples):
        explain = lambda pixels: client.explain("shapes", np.ascontiguousarray(pixels), "occlusion", OCCLUSION,
                                                classes=[sample["label"]]).map
        clean = explain(sample["pixels"])
        for name, transform in FLIPS_AND_TURNS.items():
            moved = explain(transform(sample["pixels"]))
            follows = references.ssim_of_scaled_maps(moved, transform(clean))
            assert reported[name][i] == pytest.approx(follows, abs=1e-5), (name, i)
            assert follows > references.ssim_of_scaled_maps(moved, clean), (name, i)


def test_blurring_the_object_costs_more_than_blurring_the_background(client):
    """Salience-guided degradation (reference note B(e): blurring the object should hurt much more than blurring
    the background), on every sample. Measured with 16/8 occlusion over the 8 samples: the logit drops by 0.60 to
    9.79 (mean 4.88) with the object blurred, by -2.93 to 0.77 (mean -0.30) with the background blurred; the
    smallest gap per image is 1.03. (With the finer 8/4 grid one sample in eight inverts: its diffuse map, once
    smoothed, leaves the object almost sharp, and only the mean keeps the order; tests/test_measures.py checks it.)"""
    samples = load_samples("shapes")
    result = client.measure("shapes", [s["path"] for s in samples], "occlusion", {"window": 16, "stride": 8},
                            measures=["degradation"], seed=0)
    drops = {series.name: np.array(series.values) for series in result.degradation}
    assert len(drops["object_score_drop"]) == len(samples)
    assert (drops["object_score_drop"] > drops["background_score_drop"] + 0.5).all(), drops
    assert drops["object_score_drop"].mean() > drops["background_score_drop"].mean() + 2.0, drops


def test_identical_models_are_perfectly_stable(client):
    client.load_model("shapes", name="shapes_twin", replace=True)
    try:
        sample = load_samples("shapes")[3]
        result = client.measure("shapes", sample["path"], "occlusion", OCCLUSION, measures=["stability"],
                                stability_models=["shapes_twin"], seed=0)
        assert list(result.stability[0].values) == pytest.approx([1.0])
        assert not result.entropy and not result.transforms  # only what was asked
    finally:
        client.unload_model("shapes_twin")


def test_measure_refusals_name_the_field(client):
    sample = load_samples("shapes")[0]
    assert_status(lambda: client.measure("shapes", sample["path"], measures=["stability"]),
                  grpc.StatusCode.INVALID_ARGUMENT, "stability_models")
    assert_status(lambda: client.measure("shapes", sample["path"], stability_models=["nowhere"]),
                  grpc.StatusCode.NOT_FOUND, "stability_models[0]")
    assert_status(lambda: client.measure("shapes", sample["path"], stability_models=["digits"]),
                  grpc.StatusCode.INVALID_ARGUMENT, "stability_models")
    for levels in ([2.0], [0.0, 0.5, 0.1], [0.1, 0.1]):
        assert_status(lambda: client.measure("shapes", sample["path"], noise_levels=levels, measures=["out_of_set"]),
                      grpc.StatusCode.INVALID_ARGUMENT, "noise_levels")
    still_serving(client)
