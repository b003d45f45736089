"""Precision through the service: a randomized method's Precision in the response, its standard error in the
map's frame, the Python client's view of it, the CLI's line and JSON; none for a deterministic method."""

from __future__ import annotations

import json

import numpy as np
from conftest import MODELS, load_samples
from onnx_builders import pooled_classifier
from onnxplain_client import from_tensor
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex

from service.api import responses
from service.cli import main
from service.explainers.precision import Precision, StopReason
from service.jobs.explain import ExplainResult
from service.jobs.predict import ClassScore
from service.runtime import images

RISE = {"num_masks": 1536, "grid_size": 7}  # six rounds: the stopping rule looks once before the cap


def test_rise_returns_its_precision_for_every_target(client):
    sample = load_samples("shapes")[0]
    explanation = client.explain("shapes", sample["path"], "rise", RISE, top_k=2, seed=3)
    total = 0
    for attribution, message in zip(explanation.attributions, explanation.response.attributions):
        precision = attribution.precision
        assert message.HasField("precision")
        assert precision.standard_error.shape == attribution.map.shape == (64, 64)
        assert precision.standard_error.dtype == np.float32
        assert np.all(np.isfinite(precision.standard_error)) and precision.standard_error.min() >= 0.0
        assert precision.standard_error.max() > 0.0
        assert -1.0 <= precision.reliability <= 1.0
        assert precision.stop_reason in ("reliability", "samples")
        assert message.precision.stop_reason != ex.STOP_REASON_UNSPECIFIED
        assert precision.max_samples == 1536 and 0 < precision.samples <= precision.max_samples
        assert precision.forward_passes == precision.samples and precision.target_reliability == np.float32(0.9)
        if precision.stop_reason == "reliability":
            assert precision.reliability >= 0.9 and precision.samples % 256 == 0
        total = precision.forward_passes  # one sampling for all targets
    # The method's passes, the clean image and the pure baseline.
    assert explanation.forward_passes == total + 2


def test_target_zero_spends_the_cap_and_reports_samples(client):
    sample = load_samples("shapes")[1]
    explanation = client.explain("shapes", sample["path"], "rise",
                                 {"num_masks": 600, "target_reliability": 0.0}, seed=1)
    precision = explanation.attributions[0].precision
    assert (precision.samples, precision.rounds, precision.stop_reason) == (600, 3, "samples")
    assert precision.target_reliability == 0.0 and precision.samples_for_target == 0
    assert explanation.forward_passes == 602


def test_a_deterministic_method_has_no_precision(client):
    sample = load_samples("shapes")[0]
    explanation = client.explain("shapes", sample["path"], "occlusion", {"window": [8], "stride": [4]})
    assert explanation.attributions[0].precision is None
    assert not explanation.response.attributions[0].HasField("precision")


def test_letterboxed_standard_errors_come_back_in_the_image_frame(client):
    """On a letterbox model the standard error is in the image's own frame, like the map; and the response maps
    it exactly as it maps the map (the padding cut off, bilinear: a weighted mean of standard errors bounds the
    standard error of the same weighted mean of pixels, so the mapped error stays conservative)."""
    weights = np.random.default_rng(0).normal(size=(3, 2))
    client.load_model(onnx_model=pooled_classifier(weights, (32, 32, 3)).SerializeToString(), name="precision-box",
                      replace=True, overrides={"preprocessing": {"resize": "RESIZE_POLICY_LETTERBOX"}})
    scene = np.zeros((20, 40, 3), np.uint8)
    scene[4:16, 8:32] = 255
    explanation = client.explain("precision-box", scene, "rise", {"num_masks": 512, "grid_size": 4}, classes=[0])
    assert explanation.map_frame == "image"
    assert explanation.attributions[0].precision.standard_error.shape == explanation.map.shape == (20, 40)

    placement = images.Placement(20, 40, 8, 0, 16, 32)
    standard_error = np.random.default_rng(1).random((1, 32, 32)).astype(np.float32)
    result = ExplainResult(
        method="rise", parameters={"target_reliability": 0.5}, targets=[ClassScore(0, "a", 1.0)],
        maps=np.zeros((1, 32, 32), np.float32), seed=0, forward_passes=258, model_ms=0.0, total_ms=0.0,
        baseline_scores=[0.0], baseline_predicted=ClassScore(0, "a", 0.0), image=np.zeros((32, 32, 3)),
        placement=placement,
        precision=Precision(standard_error, np.array([0.7]), 256, 4000, 256, 1, StopReason.TIME, 1000))
    message = responses.precision(result, 0)
    np.testing.assert_array_equal(from_tensor(message.standard_error),
                                  images.to_image_frame(standard_error[0], placement))
    assert (message.stop_reason, message.samples, message.max_samples, message.samples_for_target) == \
        (ex.STOP_REASON_TIME, 256, 4000, 1000)
    assert message.reliability == 0.7 and message.target_reliability == 0.5


def test_cli_prints_and_writes_precision(tmp_path, capsys):
    sample = load_samples("shapes")[0]
    code = main(["explain", str(MODELS / "shapes"), str(sample["path"]), "--method", "rise", "-p", "num_masks=512",
                 "--seed", "2", "--out", str(tmp_path), "--json"])
    assert code == 0
    out = capsys.readouterr().err  # with --json, stdout is the JSON document alone
    summary = json.loads((tmp_path / "sample_00.rise.json").read_text())
    (target,) = summary["targets"]
    precision = target["precision"]
    assert precision["samples"] == 512 == precision["max_samples"] and precision["stop_reason"] == "samples"
    assert -1.0 <= precision["reliability"] <= 1.0 and precision["standard_error_max"] > 0.0
    assert f"reliability {precision['reliability']:.2f} (target 0.90); 512/512 samples; stopped: cap spent" in out
