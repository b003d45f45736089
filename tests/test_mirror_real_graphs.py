"""The mirror's passes on exports not designed for them: torchvision classifiers (weights=None), a graph laid
out as Paddle2ONNX writes it, and one as Caffe2 and the old model zoo wrote them.

Oracle: onnxruntime on the graph as exported. For each, ``prepare`` gives a graph the ONNX checker accepts,
onnx2torch converts it, and the converted module equals onnxruntime on the original on a batch of 3 (one
image at a time where the export fixed the batch at 1); where auto_LiRPA 0.3 can wrap the module, its IBP
bounds contain the module's outputs at random points of a box.
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torchvision
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import export_torch

from service.errors import FailedPrecondition
from service.verify.graph_passes import prepare
from service.verify.lirpa_compat import bounded_module, compute_upper_bounds
from service.verify.mirror import _convert

BATCH, RTOL, ATOL = 3, 1e-4, 1e-5
BOX = 1e-3  # half-width of the box whose IBP bounds are checked
POINTS = 8  # random points per box
UNBOUNDABLE = {"Clip", "HardSigmoid", "HardSwish"}


def original_outputs(model: onnx.ModelProto, values: np.ndarray, batch_one: bool) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    batches = [values[i:i + 1] for i in range(len(values))] if batch_one else [values]
    return np.concatenate([session.run(None, {name: batch})[0] for batch in batches]).reshape(len(values), -1)


def mirrored(model: onnx.ModelProto, image_shape: tuple[int, ...], *, batch_one: bool = False):
    """(the converted module, a batch of 3 inputs, the original's outputs, the prepared graph)."""
    prepared, rewrites, stripped = prepare(model, batch_one=batch_one)
    onnx.checker.check_model(prepared, full_check=True)
    assert not UNBOUNDABLE & {node.op_type for node in prepared.graph.node}
    module = _convert(prepared)
    values = np.random.default_rng(0).normal(size=(BATCH, *image_shape)).astype(np.float32)
    with torch.no_grad():
        logits = module(torch.from_numpy(values))
    outputs = torch.softmax(logits, dim=1) if stripped == "Softmax" else logits
    np.testing.assert_allclose(outputs.numpy(), original_outputs(model, values, batch_one), rtol=RTOL, atol=ATOL)
    return module, torch.from_numpy(values), rewrites


def assert_ibp_bounds_contain_outputs(module, values: torch.Tensor) -> None:
    bounded = bounded_module(module, values[:1], "cpu")
    with torch.no_grad():
        classes = module(values).shape[1]
        spec = torch.cat([torch.eye(classes), -torch.eye(classes)])[None].repeat(len(values), 1, 1)
        upper = compute_upper_bounds(bounded, values, values - BOX, values + BOX, spec, "IBP")
        points = values + (torch.rand(POINTS, *values.shape) * 2 - 1) * BOX
        outputs = module(points.reshape(-1, *values.shape[1:])).reshape(POINTS, len(values), classes)
    assert (outputs <= upper[:, :classes] + ATOL).all() and (outputs >= -upper[:, classes:] - ATOL).all()


def test_mobilenet_v3_small_hard_swish_and_hard_sigmoid(tmp_path):
    path = export_torch(torchvision.models.mobilenet_v3_small(weights=None, num_classes=10), tmp_path / "m.onnx",
                        (1, 3, 32, 32))
    module, values, rewrites = mirrored(onnx.load(path), (3, 32, 32))
    assert sum(line.startswith("HardSwish") for line in rewrites) == 19
    assert sum(line.startswith("HardSigmoid") for line in rewrites) == 9
    assert_ibp_bounds_contain_outputs(module, values)


def test_convnext_shared_zero_biases_convert(tmp_path):
    """The exporter shares the zero biases of ConvNeXt (weights=None) through Identity nodes, which onnx2torch
    cannot read a Conv bias from (the KeyError of convnext_tiny)."""
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    net = ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)], num_classes=5)
    model = onnx.load(export_torch(net, tmp_path / "c.onnx", (1, 3, 32, 32)))
    shared = {node.output[0] for node in model.graph.node if node.op_type == "Identity"}
    assert any(node.op_type == "Conv" and shared & set(node.input[1:]) for node in model.graph.node)
    _, _, rewrites = mirrored(model, (3, 32, 32))
    assert any(line.endswith("Identity copies of initializers: now initializers of their own (onnx2torch reads "
                             "weights only from initializers)") for line in rewrites)


@pytest.mark.skipif(not os.environ.get("ONNXPLAIN_SLOW_EXPORTS"),
                    reason="about 30 s on a 2-core machine; set ONNXPLAIN_SLOW_EXPORTS=1 to run it")
def test_the_real_convnext_tiny_converts(tmp_path):
    """The full torchvision convnext_tiny (weights=None), whose conversion failed with a KeyError on a Conv bias."""
    path = export_torch(torchvision.models.convnext_tiny(weights=None), tmp_path / "convnext_tiny.onnx", (1, 3, 64, 64))
    mirrored(onnx.load(path), (3, 64, 64))


def test_squeezenet_1_1(tmp_path):
    path = export_torch(torchvision.models.squeezenet1_1(weights=None, num_classes=10), tmp_path / "s.onnx",
                        (1, 3, 48, 48))
    module, values, _ = mirrored(onnx.load(path), (3, 48, 48))
    assert_ibp_bounds_contain_outputs(module, values)


def constant(name: str, array: np.ndarray) -> onnx.NodeProto:
    return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(array.astype(np.float32), name))


def paddle_style_model() -> onnx.ModelProto:
    """As Paddle2ONNX writes a MobileNetV3 block (opset 11): every parameter a Constant node, relu6 a Clip(0, 6),
    the squeeze-excitation gate a HardSigmoid with Paddle's alpha 1/6, beta 0.5, hard_swish decomposed into
    Add, Clip, Mul and Div, a MatMul and Add head and a Softmax."""
    rng = np.random.default_rng(3)
    params = {"conv1_weights": rng.normal(0, 0.5, (8, 3, 3, 3)), "bn_scale": rng.uniform(0.5, 1.5, 8),
              "bn_offset": rng.normal(0, 0.1, 8), "bn_mean": rng.normal(0, 0.1, 8),
              "bn_variance": rng.uniform(0.5, 1, 8),
              "se_weights": rng.normal(0, 0.5, (8, 8, 1, 1)), "se_bias": rng.normal(0, 0.1, 8),
              "fc_weights": rng.normal(0, 0.5, (8, 5)), "fc_bias": rng.normal(0, 0.1, 5),
              "zero": np.array(0.0), "six": np.array(6.0), "three": np.array(3.0)}
    nodes = [constant(name, value) for name, value in params.items()]
    nodes += [
        helper.make_node("Conv", ["image", "conv1_weights"], ["conv1"], name="conv2d_0", pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["conv1", "bn_scale", "bn_offset", "bn_mean", "bn_variance"], ["bn1"],
                         name="batch_norm_0", epsilon=1e-5),
        helper.make_node("Clip", ["bn1", "zero", "six"], ["relu6"], name="relu6_0"),
        helper.make_node("GlobalAveragePool", ["relu6"], ["squeezed"]),
        helper.make_node("Conv", ["squeezed", "se_weights", "se_bias"], ["excited"], name="conv2d_1"),
        helper.make_node("HardSigmoid", ["excited"], ["gate"], name="hard_sigmoid_0", alpha=1 / 6, beta=0.5),
        helper.make_node("Mul", ["relu6", "gate"], ["scaled"]),
        helper.make_node("Add", ["scaled", "three"], ["shifted"]),
        helper.make_node("Clip", ["shifted", "zero", "six"], ["clipped"], name="hard_swish_clip"),
        helper.make_node("Mul", ["scaled", "clipped"], ["product"]),
        helper.make_node("Div", ["product", "six"], ["hard_swish"]),
        helper.make_node("GlobalAveragePool", ["hard_swish"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "fc_weights"], ["fc"]),
        helper.make_node("Add", ["fc", "fc_bias"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
    ]
    graph = helper.make_graph(nodes, "paddle", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                              ["N", 3, 16, 16])],
                              [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 5])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 6
    onnx.checker.check_model(model, full_check=True)
    return model


def test_paddle_style_constant_weights_clip_and_hard_sigmoid():
    module, values, rewrites = mirrored(paddle_style_model(), (3, 16, 16))
    assert rewrites[0].startswith("12 Constant nodes: now initializers")
    assert "HardSigmoid hard_sigmoid_0 (alpha 0.166667, beta 0.5): now Relu, Mul, Add and Sub" in rewrites
    assert_ibp_bounds_contain_outputs(module, values)


def test_a_weight_computed_in_the_graph_is_named_when_conversion_fails():
    """Without the passes, onnx2torch meets the Paddle Conv weight as a Constant node's output: the refusal
    names the operator, its node and why, not ``KeyError: 'conv1_weights'``."""
    with pytest.raises(FailedPrecondition, match=r"operator Conv \(node conv2d_0\): it reads 'conv1_weights' as a "
                                                 r"constant \(onnx2torch takes weights and shapes only from "
                                                 r"initializers\), but the graph computes it with a Constant node"):
        _convert(paddle_style_model())


def test_an_operator_without_converter_is_named():
    graph = helper.make_graph([helper.make_node("Det", ["x"], ["y"], name="determinant")], "det",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(FailedPrecondition, match=r"operator Det \(node determinant\): onnx2torch has no converter "
                                                 "for Det version 11") as caught:
        _convert(model)
    assert caught.value.field == "model_name"


def caffe2_style_model() -> onnx.ModelProto:
    """IR 3, opset 9, fixed batch 1, every initializer also a graph input; a Dropout-7 (no onnx2torch converter
    below opset 10), batch-1 Reshapes, and a Softmax output of [1, C, 1, 1]."""
    rng = np.random.default_rng(4)
    params = {"conv_w": rng.normal(0, 0.5, (4, 3, 3, 3)), "conv_b": rng.normal(0, 0.1, 4),
              "fc_w": rng.normal(0, 0.2, (6, 256)), "fc_b": rng.normal(0, 0.1, 6)}
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in params.items()]
    initializers += [numpy_helper.from_array(np.array(s, np.int64), n)
                     for n, s in (("flat_shape", [1, 256]), ("out_shape", [1, 6, 1, 1]))]
    nodes = [helper.make_node("Conv", ["data", "conv_w", "conv_b"], ["conv"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["conv"], ["relu"], name="relu1"),
             helper.make_node("Dropout", ["relu"], ["dropped"], name="drop1", ratio=0.5),
             helper.make_node("Reshape", ["dropped", "flat_shape"], ["flat"], name="flatten1"),
             helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["fc"], name="fc1", transB=1),
             helper.make_node("Reshape", ["fc", "out_shape"], ["fc_map"], name="to_map"),
             helper.make_node("Softmax", ["fc_map"], ["prob"], name="prob", axis=1)]
    inputs = [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 8, 8])]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)) for t in initializers]
    graph = helper.make_graph(nodes, "caffe2", inputs,
                              [helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, 6, 1, 1])],
                              initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    onnx.checker.check_model(model, full_check=True)
    return model


def test_caffe2_style_ir3_opset9_batch_one_graph():
    module, values, rewrites = mirrored(caffe2_style_model(), (3, 8, 8), batch_one=True)
    assert rewrites[:2] == ["IR version 3 -> 4: 6 initializers no longer listed as graph inputs",
                            ("opset 9 -> 11 (onnx version converter): onnx2torch converts every operator version of "
                            "that opset")]
    assert "output fc_map of [N, 6, 1, 1]: now Flatten(axis=1) to [N, 6]" in rewrites
    assert_ibp_bounds_contain_outputs(module, values)


def test_the_paddle_style_model_is_mirrored_end_to_end():
    """Through the service: loaded, prepared, checked against the served model (softmax included), converted
    and wrapped for auto_LiRPA."""
    from service.runtime.loader import load_model
    from service.verify.mirror import build_mirror

    mirror = build_mirror(load_model("paddle", paddle_style_model().SerializeToString(), source="test"))
    assert "Clip hard_swish_clip (min 0, max 6): now Relu, Add and Sub" in mirror.rewrites
    assert mirror.max_error <= ATOL
