"""EVA through the API: details, progress, the caller's segments, verifiability, refusals, deadlines."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
import references
from conftest import load_samples
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import strided_maxpool_classifier
from onnxplain_client import from_tensor
from test_server import _wait_idle, assert_status, still_serving

QUICK = {"grid_size": 4, "bound_method": "BOUND_METHOD_IBP", "epsilon": 1 / 255}


def test_explain_returns_the_map_of_group_importances_with_verified_details(client):
    sample = load_samples("shapes")[0]
    events = []
    explanation = client.explain("shapes", sample["path"], "eva", QUICK, on_progress=events.append,
                                 metrics={"deletion": {"steps": 8}})
    attribution = explanation.response.attributions[0]
    details = attribution.eva
    assert attribution.class_index == sample["label"] and details.certified
    assert details.bound_method == 1 and details.epsilon == pytest.approx(1 / 255)  # BOUND_METHOD_IBP
    # shapes' certified radius is under 0.01/255 with IBP (studies/eva.md): this ball is not proved
    assert details.radius_source == "requested" and details.adversarial_overlap > 0 and not details.ball_certified
    assert sorted(details.competitors) == [j for j in range(5) if j != sample["label"]]
    segments = from_tensor(details.segments)
    assert segments.shape == (64, 64) and segments.dtype == np.int32 and len(np.unique(segments)) == 16
    importance = np.array(details.group_importance)
    np.testing.assert_allclose(importance, details.adversarial_overlap - np.array(details.group_overlaps), rtol=1e-6)
    np.testing.assert_allclose(explanation.map, importance[segments], rtol=1e-5)
    assert importance.min() >= 0  # IBP
    # No sampling: the clean image and the baseline report are its only forward passes, besides the metric's.
    assert explanation.forward_passes == 2 + 9
    verify = [e for e in events if e.stage == "verify"]
    # Regions (16 groups + the full ball) count the progress; the stream keeps only the freshest event, so the
    # metric's events may overtake the last one.
    assert verify and {e.total for e in verify} == {17} and [e.done for e in verify] == sorted(e.done for e in verify)
    assert "deletion" in explanation.attributions[0].metrics


def test_the_callers_segments_are_the_groups(client):
    sample = load_samples("shapes")[1]
    halves = np.zeros((64, 64), np.uint32)
    halves[:, 32:] = 7  # any labels: two groups
    explanation = client.explain("shapes", sample["path"], "eva", {**QUICK, "segments": halves.ravel().tolist()})
    details = explanation.response.attributions[0].eva
    assert len(details.group_importance) == 2
    left, right = explanation.map[:, :32], explanation.map[:, 32:]
    assert np.ptp(left) == 0 and np.ptp(right) == 0
    assert left[0, 0] == pytest.approx(details.group_importance[0]) and right[0, 0] == pytest.approx(
        details.group_importance[1])


def erf_model() -> bytes:
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["scores"]),
             helper.make_node("Erf", ["scores"], ["logits"])]
    graph = helper.make_graph(nodes, "erf", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 2])],
                              initializer=[numpy_helper.from_array(np.ones((64, 2), np.float32), "weights")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_get_model_says_which_models_are_verifiable_and_eva_refuses_the_others(client):
    shapes = client.get_model("shapes").verification
    assert shapes.verifiable and shapes.device in ("cpu", "cuda") and shapes.max_error < 1e-4
    assert {"ibp", "crown_ibp", "crown"} <= set(shapes.bound_methods) and shapes.auto_lirpa_version
    checks = {check.name: check for check in shapes.method_checks}
    assert set(shapes.bound_methods) == {name for name, check in checks.items() if check.runs}
    # (CROWN's probe may time out on a loaded machine, and CROWN then runs hybrid: not asserted here.)
    assert all(checks[name].verified == "whole model" and not checks[name].split_layer
               for name in ("ibp", "crown_ibp"))
    assert not shapes.whole_model_reason
    digits = client.get_model("digits").verification
    assert digits.verifiable and any("Softmax" in line for line in digits.rewrites)
    for model in client.list_models():  # every bundled model can be verified end to end
        assert client.get_model(model.name).verification.verifiable, model.name
    client.load_model(onnx_model=erf_model(), name="erf-test", replace=True)
    try:
        erf = client.get_model("erf-test").verification
        assert not erf.verifiable and "Erf" in erf.reason and "Erf" in erf.whole_model_reason
        assert not erf.bound_methods and all(not check.runs and check.reason for check in erf.method_checks)
        assert_status(lambda: client.explain("erf-test", np.zeros((8, 8), np.uint8), "eva", QUICK),
                      grpc.StatusCode.FAILED_PRECONDITION, "model_name", "Erf")
    finally:
        client.unload_model("erf-test")
    still_serving(client)


@pytest.mark.parametrize("params, field", [
    ({"epsilon": -0.1}, "eva.epsilon"),
    ({"epsilon": 0.1, "calibrate_radius": True}, "eva.calibrate_radius"),
    ({"grid_size": 65}, "eva.grid_size"),
    ({"segments": [0, 1, 2]}, "eva.segments"),
])
def test_parameter_errors_name_the_field(client, params, field):
    sample = load_samples("shapes")[0]
    assert_status(lambda: client.explain("shapes", sample["path"], "eva", params),
                  grpc.StatusCode.INVALID_ARGUMENT, field)


def test_a_deadline_stops_the_bounds_between_chunks(server, client):
    sample = load_samples("shapes")[2]
    # 1025 regions one at a time, several seconds of work: the job must stop at the next chunk.
    slow = {"grid_size": 32, "bound_method": "BOUND_METHOD_IBP", "chunk_size": 1}
    assert_status(lambda: client.explain("shapes", sample["path"], "eva", slow, timeout=0.3),
                  grpc.StatusCode.DEADLINE_EXCEEDED)
    _wait_idle(server)
    still_serving(client)


def test_list_methods_describes_eva_with_its_paper(client):
    methods = {m.name: m for m in client.list_methods()}
    assert "Verified Perturbation Analysis" in methods["eva"].reference
    parameters = {p.name: p.default_value for p in methods["eva"].parameters}
    assert parameters["bound_method"] == "crown_ibp" and parameters["grid_size"] == "8"
    assert parameters["epsilon"] == "0.0" and parameters["calibrate_radius"] == "False"
    described = {p.name: p.description for p in methods["eva"].parameters}
    assert "1/255" in described["epsilon"] and "shared by every image" in described["epsilon"]


def test_calibrate_radius_is_twice_the_certified_one_and_hybrid_mode_says_it_is_not_certified(client):
    sample = load_samples("shapes")[4]
    calibrated = client.explain("shapes", sample["path"], "eva", {"grid_size": 2, "calibrate_radius": True}
                                ).response.attributions[0].eva
    assert calibrated.certified and calibrated.certified_radius > 0 and calibrated.radius_source == "calibrated"
    assert calibrated.epsilon == pytest.approx(2 * calibrated.certified_radius, rel=1e-6)
    assert not calibrated.ball_certified  # twice the certified radius: the verifier cannot prove this ball
    layer = "/features/features.3/features.3.0/Conv"
    hybrid = client.explain("shapes", sample["path"], "eva", {"grid_size": 2, "split_layer": layer},
                            seed=0).response.attributions[0].eva
    assert not hybrid.certified and hybrid.split_layer == layer and hybrid.head_runtime == "pytorch"
    assert not hybrid.ball_certified and hybrid.radius_source == "default"  # a sampled head proves nothing
    assert hybrid.verified.startswith(f"tail after {layer}: ")
    assert calibrated.verified == "whole model" and not calibrated.split_layer and not calibrated.head_runtime
    assert_status(lambda: client.explain("shapes", sample["path"], "eva", {"split_layer": "nowhere"}),
                  grpc.StatusCode.INVALID_ARGUMENT, "eva.split_layer", "no layer")


def test_consistency_compares_eva_across_bound_methods_and_wcam_too(client):
    """The hyperparameter study takes verified methods (and methods with details, WCAM): its agreement is the
    definition's on the maps it returns, and the same EVA setting twice gives the same map."""
    sample = load_samples("shapes")[3]
    settings = [{"method": "eva", "params": {**QUICK, "bound_method": method}, "label": method}
                for method in ("BOUND_METHOD_IBP", "BOUND_METHOD_CROWN_IBP", "BOUND_METHOD_IBP")]
    settings.append({"method": "wcam", "params": {"num_designs": 2}, "label": "wcam"})
    result = client.consistency("shapes", sample["path"], settings, seed=0, return_maps=True)
    maps = [from_tensor(m) for m in result.maps]
    np.testing.assert_array_equal(maps[0], maps[2])  # IBP bounds are deterministic
    assert all(np.ptp(m) > 0 for m in maps)  # no constant map: every Spearman is defined
    # EVA's maps are constant over its 16 groups: ties everywhere, which the reference ranks by their average.
    assert all(len(np.unique(m)) <= 16 for m in maps[:3])
    spearman = np.array(result.spearman.values).reshape(4, 4)
    np.testing.assert_allclose(spearman, [[references.spearman(a, b) for b in maps] for a in maps], atol=1e-9)
    assert spearman[0, 2] == 1.0


def test_a_method_that_does_not_run_on_the_model_is_refused_by_name_or_bounded_hybrid(client):
    client.load_model(onnx_model=strided_maxpool_classifier().SerializeToString(), name="maxpool-test", replace=True)
    try:
        verification = client.get_model("maxpool-test").verification
        checks = {check.name: check for check in verification.method_checks}
        assert checks["ibp"].runs and checks["ibp"].verified == "whole model"
        # CROWN does not run through the pooling, but on the tail after it: auto offers it hybrid.
        assert checks["crown"].runs and checks["crown"].split_layer == "flatten"
        assert checks["crown"].head_runtime == "pytorch"
        assert "stride" in checks["crown"].reason and not checks["ibp"].reason  # why not whole; ibp is whole
        image = (np.random.default_rng(0).random((8, 8)) * 255).astype(np.uint8)
        whole = {**QUICK, "bound_method": "BOUND_METHOD_CROWN", "split_layer": "whole"}
        assert_status(lambda: client.explain("maxpool-test", image, "eva", whole),
                      grpc.StatusCode.FAILED_PRECONDITION, "eva.bound_method", "stride")
        hybrid = client.explain("maxpool-test", image, "eva", {**QUICK, "bound_method": "BOUND_METHOD_CROWN"},
                                seed=0).response.attributions[0].eva
        assert not hybrid.certified and hybrid.split_layer == "flatten"
        assert hybrid.verified == "tail after flatten: 1 operator"
    finally:
        client.unload_model("maxpool-test")
    still_serving(client)
