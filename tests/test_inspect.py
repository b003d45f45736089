"""``onnxplain inspect`` and the InspectModel RPC on models built for other tests (tests/conformance_models.py's
exporter variants, and a hand-built graph whose EVA cut is known): each fact must be what the export made.

Truths: the exporter's input shape (NHWC for the Keras-style export, batch 1 or 4 when exported without
dynamic_axes), the head it ends with (Softmax, Sigmoid, a Linear's logits), the sidecar written here (so each
preprocessing key's source is known), the float16 cast, and for EVA the only cut after an operator onnx2torch
cannot convert (ThresholdedRelu -> Flatten -> Gemm: the tail after "flatten", the head on onnxruntime).
"""

from __future__ import annotations

import json

import grpc
import numpy as np
import onnx
import pytest
from conformance_models import CAFFE_MEAN_BGR, CLASSES, IMAGENET, SIZE, ConformanceModels, conformance_server
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import image_classifier, thresholded_relu_graph

from service.cli import main

# The Caffe case's preprocessing, in the sidecar's words (its Case.overrides are LoadModel's enum names).
CAFFE_SIDECAR = {"preprocessing": {"channel_order": "BGR", "pixel_range": "0_255", "mean": CAFFE_MEAN_BGR,
                                   "std": [1.0, 1.0, 1.0]}}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    built = ConformanceModels(tmp_path_factory.mktemp("inspect"))
    for name in ("nhwc_keras", "caffe2_ir3_opset9", "sigmoid_multilabel", "float16_io", "dynamic_hw"):
        built.get(name)
    (built.directory / "caffe2_ir3_opset9.json").write_text(json.dumps(CAFFE_SIDECAR))
    (built.directory / "sigmoid_multilabel.json").write_text(json.dumps(
        {"preprocessing": {"mean": IMAGENET["mean"]}, "labels": ["a", "b", "c", "d", "e"]}))
    onnx.save(thresholded_relu_graph(), str(built.directory / "thresholded.onnx"))
    onnx.save(softmax_then_scale(), str(built.directory / "softmax_scaled.onnx"))
    return built


def softmax_then_scale() -> onnx.ModelProto:
    """A linear classifier whose Softmax is multiplied by 1: the graph's last node is no activation, so the load's
    probe (rows in [0, 1] summing to 1) decides "probabilities", and no tensor is read as the logits."""
    weights = np.random.default_rng(3).normal(size=(8 * 8 * 3, 4))
    model = image_classifier(weights, (8, 8, 3), softmax=True)
    graph = model.graph
    graph.initializer.append(numpy_helper.from_array(np.ones((), np.float32), "one"))
    graph.node.append(helper.make_node("Mul", ["probabilities", "one"], ["served"]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("served", TensorProto.FLOAT, ["batch", 4]))
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def served(models):
    """A server over the models, each loaded by path (so with its sidecar), and its address."""
    from onnxplain_client import OnnxplainClient

    with conformance_server(models.directory) as address:
        with OnnxplainClient(address) as client:
            for path in sorted(models.directory.glob("*.onnx")):
                client.load_model(path.name, name=path.stem)
            yield address


def inspect_json(capsys, *args: str) -> dict:
    assert main(["inspect", *args, "--json", "--repeats", "1"]) == 0
    return json.loads(capsys.readouterr().out)


def inspect_text(capsys, *args: str) -> dict[str, list[str]]:
    """The text output as {topic: [its line, continuation lines...]}."""
    assert main(["inspect", *args, "--repeats", "1"]) == 0
    topics: dict[str, list[str]] = {}
    current = ""
    for line in capsys.readouterr().out.splitlines():
        if not line.startswith(" "):
            current, _, line = line.partition("  ")
            topics[current] = []
        topics[current].append(line.strip())
    return topics


def test_an_nhwc_export_is_read_as_nhwc_from_its_last_axis_and_json_says_what_the_text_says(served, capsys):
    facts = inspect_json(capsys, "nhwc_keras", "--server", served, "--no-verify")
    assert facts["input"] == {"name": "image", "datatype": "tensor(float32)", "shape": [-1, SIZE, SIZE, 3]}
    assert facts["layout"] == "NHWC"
    assert facts["layout_source"] == f"graph: axis 3 of [?, {SIZE}, {SIZE}, 3] has 3 channels"
    assert (facts["batch_axis"], facts["output_kind"], facts["output_kind_source"]) == ("dynamic", "logits", "probe")
    assert facts["logit_source"] == "output" and facts["warnings"] == []
    assert facts["preprocessing"]["sources"] == dict.fromkeys(facts["preprocessing"]["sources"], "default")
    assert facts["labels"] == {"count": 0, "first": []} and facts["num_classes"] == CLASSES
    assert facts["provider"] == "CPUExecutionProvider" and facts["verification"] is None
    assert [t["batch_size"] for t in facts["forward_ms"]] == [1, facts["max_batch"]]
    assert all(t["median_ms"] > 0 and t["repeats"] == 1 for t in facts["forward_ms"])

    text = inspect_text(capsys, "nhwc_keras", "--server", served, "--no-verify")
    assert text["layout"] == [f"NHWC  (graph: axis 3 of [?, {SIZE}, {SIZE}, 3] has 3 channels)"]
    assert text["input"] == [f"image [?, {SIZE}, {SIZE}, 3] tensor(float32)"]
    assert text["output kind"] == ["logits (probe)"]
    assert facts["max_batch"] > 1 and text["batch axis"][0].startswith(f"dynamic, {facts['max_batch']} images a call")
    assert text["labels"] == [f"none ({CLASSES} classes, named by index)"]
    assert text["EVA"] == ["not checked (--no-verify)"] and text["warnings"] == ["none"]


def test_a_caffe_softmax_at_batch_1_is_freed_probabilities_from_the_graph_with_the_saturating_warning(served, capsys):
    facts = inspect_json(capsys, "caffe2_ir3_opset9", "--server", served, "--no-verify")
    assert facts["input"]["shape"] == [1, 3, SIZE, SIZE]
    assert facts["batch_axis"] == "freed" and facts["batch_axis_rewrites"]
    assert (facts["output_kind"], facts["output_kind_source"]) == ("probabilities", "graph")
    assert facts["output"] == {"name": "prob", "shape": [1, CLASSES, 1, 1]}
    assert facts["logit_source"] == "pre_activation" and facts["logits_tensor"]
    assert facts["preprocessing"]["channel_order"] == "BGR" and facts["preprocessing"]["pixel_range"] == "0_255"
    assert facts["preprocessing"]["mean"] == CAFFE_MEAN_BGR
    assert facts["preprocessing"]["sources"] == {"pixel_range": "sidecar", "mean": "sidecar", "std": "sidecar",
                                                 "channel_order": "sidecar", "resize": "default",
                                                 "pad_value": "default"}
    (warning,) = facts["warnings"]
    assert warning.startswith("saturating probabilities output (softmax): maps are computed on the logits")
    assert facts["logits_tensor"] in warning

    text = inspect_text(capsys, "caffe2_ir3_opset9", "--server", served, "--no-verify")
    assert text["output kind"] == ["probabilities (graph)"]
    assert text["batch axis"][0].startswith("freed, ")
    assert text["warnings"] == [warning]


def test_probabilities_found_by_the_probe_without_a_pre_activation_say_the_logits_are_lost(served, capsys):
    facts = inspect_json(capsys, "softmax_scaled", "--server", served, "--no-verify")
    assert (facts["output_kind"], facts["output_kind_source"]) == ("probabilities", "probe")
    assert (facts["logit_source"], facts["logits_tensor"]) == ("log_probability", "")
    (warning,) = facts["warnings"]
    assert warning.startswith("saturating probabilities output (softmax) and no pre-activation tensor: maps are "
                              "computed on log-probabilities")
    assert "the logits are lost where p rounds to 1" in warning


def test_the_json_document_has_the_same_keys_for_every_model(served, capsys):
    keys = {"name", "source", "sha256", "input", "layout", "layout_source", "height", "width", "channels",
            "dynamic_height", "dynamic_width", "batch_axis", "batch_axis_reason", "batch_axis_rewrites", "max_batch",
            "output", "graph_outputs", "output_kind", "output_kind_source", "logit_source", "logits_tensor",
            "threshold", "preprocessing", "num_classes", "labels", "provider", "precision", "precision_reason",
            "forward_ms", "verification", "warnings"}
    for name in ("nhwc_keras", "sigmoid_multilabel", "dynamic_hw"):
        assert set(inspect_json(capsys, name, "--server", served, "--no-verify")) == keys


def test_a_fixed_batch_of_1_kept_as_exported_warns_it_runs_one_image_a_call(models, capsys):
    """The local path (an in-process server loads the file, with --set), as ``onnxplain predict`` does."""
    facts = inspect_json(capsys, str(models.directory / "caffe2_ir3_opset9.onnx"), "--set", "free_batch=false",
                         "--no-verify")
    assert (facts["batch_axis"], facts["max_batch"]) == ("fixed", 1)
    assert [t["batch_size"] for t in facts["forward_ms"]] == [1]
    assert any(w.startswith("fixed batch of 1 served as exported") for w in facts["warnings"])
    assert facts["preprocessing"]["sources"]["mean"] == "sidecar"  # the sidecar beside the file was read


def test_a_sigmoid_head_float16_and_dynamic_size_are_named_in_the_warnings(served, capsys):
    sigmoid = inspect_json(capsys, "sigmoid_multilabel", "--server", served, "--no-verify")
    assert (sigmoid["output_kind"], sigmoid["output_kind_source"], sigmoid["threshold"]) == ("sigmoid", "graph", 0.5)
    assert sigmoid["logit_source"] == "pre_activation"
    assert sigmoid["labels"] == {"count": 5, "first": ["a", "b", "c", "d", "e"]}
    assert sigmoid["preprocessing"]["sources"]["mean"] == "sidecar"
    assert sigmoid["preprocessing"]["sources"]["std"] == "default"
    assert [w.split(":")[0] for w in sigmoid["warnings"]] == ["saturating sigmoid output (per-class probabilities)"]

    half = inspect_json(capsys, "float16_io", "--server", served, "--no-verify")
    assert half["input"]["datatype"] == "tensor(float16)"
    assert [w.split(":")[0] for w in half["warnings"]] == ["float16 input"]

    dynamic = inspect_json(capsys, "dynamic_hw", "--server", served, "--no-verify")
    assert dynamic["input"]["shape"] == [-1, 3, -1, -1]
    assert dynamic["dynamic_height"] and dynamic["dynamic_width"]
    assert [w.split(":")[0] for w in dynamic["warnings"]] == ["dynamic height and width"]


def test_eva_runs_hybrid_after_the_operator_no_converter_takes(served, capsys):
    facts = inspect_json(capsys, "thresholded", "--server", served)
    verification = facts["verification"]
    assert verification["verifiable"] and "ThresholdedRelu" in verification["whole_model_reason"]
    checks = {c["name"]: c for c in verification["bound_methods"]}
    for method in ("ibp", "crown_ibp", "crown"):
        # Why not the whole model rides along with the cut: the operator no converter takes.
        reason = checks[method].pop("reason")
        assert reason.startswith("operator ThresholdedRelu (node thresholded): onnx2torch has no converter"), reason
        assert checks[method] == {"name": method, "runs": True, "split_layer": "flatten",
                                  "verified": "tail after flatten: 1 operator", "head_runtime": "onnxruntime"}
    assert facts["layout_source"] == "graph: axis 1 of [?, 1, 8, 8] has 1 channel"
    text = inspect_text(capsys, "thresholded", "--server", served)
    assert text["EVA"][0] == "verifiable, hybrid only (the head is sampled: no map certified for the whole model)"
    assert any(line.startswith("ibp: hybrid at flatten: tail after flatten: 1 operator, head on onnxruntime (whole "
                               "model: operator ThresholdedRelu") for line in text["EVA"]), text["EVA"]


def test_a_sidecar_typo_is_refused_in_one_line_naming_the_key_meant(tmp_path, capsys):
    folder = tmp_path / "typo"
    folder.mkdir()
    onnx.save(thresholded_relu_graph(), str(folder / "model.onnx"))
    (folder / "config.json").write_text(json.dumps({"labls": ["a", "b", "c"]}))
    assert main(["inspect", str(folder), "--no-verify"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: INVALID_ARGUMENT: sidecar: unknown keys ['labls'] ('labls': did you mean "
                           "'labels'?)")


def test_a_missing_file_exits_2_in_one_line(tmp_path, capsys):
    missing = tmp_path / "absent.onnx"
    assert main(["inspect", str(missing)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: MODEL: {missing} is neither a local model file nor (without --server) a model name"]


def test_repeats_out_of_range_is_refused_by_the_command_line_and_by_the_server(served, capsys):
    for repeats in ("21", "-1"):
        assert main(["inspect", "nhwc_keras", "--server", served, "--no-verify", "--repeats", repeats]) == 2
        assert capsys.readouterr().err == (f"error: --repeats: {repeats}: time from 1 to 20 passes per batch size "
                                           "(0: 5)\n")
    from onnxplain_client import OnnxplainClient

    with OnnxplainClient(served) as client, pytest.raises(grpc.RpcError) as refused:
        client.inspect_model("nhwc_keras", verify=False, repeats=21)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.details() == "repeats: must be from 1 to 20, not 21"
