"""Measure through the API: every measure on the shapes model, stability against its independent runs and
against an identical twin (exactly 1), and refusals."""

from __future__ import annotations

import grpc
import pytest
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
    assert len(result.transforms) == 12 and all(-1 <= v <= 1 for t in result.transforms for v in t.values)
    assert list(result.stability_models) == ["shapes", *RUNS]
    pairs = result.stability[0]
    assert len(pairs.values) == 2 * 10 and pairs.summary.count == 20 and pairs.summary.max < 1
    degradation = {series.name: series for series in result.degradation}
    assert set(degradation) == {"background_score_drop", "background_ssim", "object_score_drop", "object_ssim"}


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
