"""The mirror's ONNX passes: each rewrite against onnxruntime on the original graph, each normalisation
against the ONNX checker, and the refusals named.

Oracle: onnxruntime on the graph as exported, on inputs that include the edge values of each operator
(exactly at its clip points, one ulp either side, zeros and magnitudes up to 1e30). The Relu forms of Clip
are exact in real arithmetic; in float32 they are off by at most a few ulps of the clip constants inside
[min, max] (b - relu(b - y)), hence an absolute tolerance of 8 ulps of max(|min|, |max|, 1) beside the
relative 1e-6.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from service.errors import FailedPrecondition
from service.verify import graph_passes
from service.verify.graph_normalise import TARGET_OPSET, constants_to_initializers
from service.verify.graph_passes import prepare

UNBOUNDABLE = {"Clip", "HardSigmoid", "HardSwish"}
FLOAT32_EPS = float(np.finfo(np.float32).eps)


def run(model: onnx.ModelProto, values: np.ndarray) -> np.ndarray:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: values})[0]


def edge_values(*points: float) -> np.ndarray:
    """A batch of 4-vectors holding each point, its float32 neighbours, zeros, large magnitudes and noise."""
    special = [0.0, -0.0, 1e-30, -1e-30, 1.0, -1.0, 1e8, -1e8, 1e30, -1e30]
    for point in points:
        p = np.float32(point)
        special += [p, np.nextafter(p, np.float32(np.inf)), np.nextafter(p, np.float32(-np.inf))]
    noise = np.random.default_rng(0).normal(0, 5, 64)
    values = np.concatenate([np.array(special, np.float32), noise.astype(np.float32)])
    values = np.concatenate([values, np.zeros(-len(values) % 4, np.float32)])
    return values.reshape(-1, 4)


def single_op_graph(nodes, *, opset: int, initializers=(), ir_version: int = 8) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "one_op", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])],
                              initializer=list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    onnx.checker.check_model(model, full_check=True)
    return model


def scalar(name: str, value: float) -> onnx.TensorProto:
    return numpy_helper.from_array(np.array(value, np.float32), name)


def assert_rewritten_equal(model: onnx.ModelProto, values: np.ndarray, scale: float = 1.0) -> list[str]:
    prepared, rewrites, _ = prepare(model, batch_one=False)
    assert not UNBOUNDABLE & {node.op_type for node in prepared.graph.node}
    np.testing.assert_allclose(run(prepared, values), run(model, values), rtol=1e-6,
                               atol=8 * FLOAT32_EPS * max(scale, 1.0))
    return rewrites


RELU_FORM, CONSTANT_FORM = "Relu, Add and Sub", "constant max (min > max)"
CLIPS = [(-1.5, 2.0, RELU_FORM), (0.0, 6.0, RELU_FORM), (-6.0, None, RELU_FORM), (None, 3.25, RELU_FORM),
         (0.0, None, RELU_FORM), (4.0, 4.0, RELU_FORM), (2.0, -1.0, CONSTANT_FORM), (None, None, RELU_FORM)]


@pytest.mark.parametrize("low, high, form", CLIPS)
def test_clip_with_input_bounds_becomes_relu_arithmetic_with_the_same_values(low, high, form):
    inputs = ["x", "" if low is None else "low", "" if high is None else "high"]
    while inputs[-1] == "":
        inputs.pop()
    constants = [scalar(name, value) for name, value in (("low", low), ("high", high)) if value is not None]
    model = single_op_graph([helper.make_node("Clip", inputs, ["y"], name="clip")], opset=13, initializers=constants)
    bounds = [v for v in (low, high) if v is not None]
    rewrites = assert_rewritten_equal(model, edge_values(*bounds), max(map(abs, bounds), default=1.0))
    described = ["none" if v is None else f"{v:g}" for v in (low, high)]
    assert rewrites == [f"Clip clip (min {described[0]}, max {described[1]}): now {form}"]


def test_clip_with_attribute_bounds_of_opset_6_is_upgraded_then_rewritten():
    model = single_op_graph([helper.make_node("Clip", ["x"], ["y"], name="relu6", min=0.0, max=6.0)], opset=6)
    rewrites = assert_rewritten_equal(model, edge_values(0.0, 6.0), 6.0)
    assert rewrites[0] == f"opset 6 -> {TARGET_OPSET} (onnx version converter): onnx2torch converts every operator " \
                          "version of that opset"
    assert rewrites[-1].startswith("Clip relu6 (min 0, max 6)")


@pytest.mark.parametrize("alpha, beta", [(None, None), (1 / 6, 0.5), (0.3, -0.2)])
def test_hard_sigmoid_keeps_its_attributes(alpha, beta):
    attributes = {} if alpha is None else {"alpha": alpha, "beta": beta}
    a, b = (0.2, 0.5) if alpha is None else (alpha, beta)
    model = single_op_graph([helper.make_node("HardSigmoid", ["x"], ["y"], name="gate", **attributes)], opset=13)
    rewrites = assert_rewritten_equal(model, edge_values(-b / a, (1 - b) / a))
    assert rewrites == [(f"HardSigmoid gate (alpha {np.float32(a):g}, beta {np.float32(b):g}): now Relu, Mul, Add "
                        "and Sub")]


def test_hard_swish_becomes_x_times_its_hard_sigmoid():
    model = single_op_graph([helper.make_node("HardSwish", ["x"], ["y"], name="hswish")], opset=14)
    assert assert_rewritten_equal(model, edge_values(-3.0, 3.0)) == \
        ["HardSwish hswish: now x * HardSigmoid(x) in Relu, Mul, Add and Sub"]


def test_paddle_hard_swish_decomposition_is_rewritten_through_its_clip():
    """Paddle2ONNX below opset 14: hard_swish(x) = x * Clip(x + 3, 0, 6) / 6, every constant a Constant node."""
    constants = [helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(v, np.float32)))
                 for name, v in (("three", 3.0), ("zero", 0.0), ("six", 6.0))]
    nodes = [*constants, helper.make_node("Add", ["x", "three"], ["shifted"]),
             helper.make_node("Clip", ["shifted", "zero", "six"], ["gate"], name="hard_swish_clip"),
             helper.make_node("Mul", ["x", "gate"], ["scaled"]), helper.make_node("Div", ["scaled", "six"], ["y"])]
    model = single_op_graph(nodes, opset=11)
    rewrites = assert_rewritten_equal(model, edge_values(-3.0, 3.0), 6.0)
    assert rewrites == [("3 Constant nodes: now initializers of the same names (onnx2torch reads weights only from "
                        "initializers)"), "Clip hard_swish_clip (min 0, max 6): now Relu, Add and Sub"]


def unit_axes_graph(node: onnx.NodeProto, batch, shape_constant=None) -> onnx.ModelProto:
    graph = helper.make_graph([node], "unit_axes", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                                  [batch, 5, 1, 1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 5])],
                              initializer=[] if shape_constant is None else
                              [numpy_helper.from_array(np.array(shape_constant, np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


@pytest.mark.parametrize("node, batch, shape", [
    (helper.make_node("Squeeze", ["x", "axes"], ["y"], name="squeeze"), "N", None),
    (helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape"), "N", [-1, 5]),
    (helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape"), "N", [0, -1]),
    (helper.make_node("Flatten", ["x"], ["y"], name="flatten", axis=0), 1, None),
])
def test_a_channel_vector_squeezed_to_batch_by_channels_becomes_flatten(node, batch, shape):
    model = unit_axes_graph(node, batch, shape)
    if node.op_type == "Squeeze":
        model.graph.initializer.append(numpy_helper.from_array(np.array([2, 3], np.int64), "axes"))
    onnx.checker.check_model(model, full_check=True)
    prepared, rewrites, _ = prepare(model, batch_one=batch == 1)
    assert [(n.op_type, helper.get_attribute_value(n.attribute[0])) for n in prepared.graph.node] == [("Flatten", 1)]
    assert rewrites == [f"{node.op_type} {node.name} of [N, 5, 1, 1]: now Flatten(axis=1) (batch kept)"]
    values = np.random.default_rng(1).normal(size=(1, 5, 1, 1)).astype(np.float32)
    np.testing.assert_array_equal(run(prepared, values), run(model, values))


def paddle_constants_graph() -> onnx.ModelProto:
    """Every kind of Constant a Paddle2ONNX export holds: tensors, value_float, value_floats, value_ints."""
    nodes = [helper.make_node("Constant", [], ["w"], value=numpy_helper.from_array(np.eye(4, dtype=np.float32) * 2)),
             helper.make_node("Constant", [], ["bias"], value_floats=[0.5, -0.5, 1.0, 0.0]),
             helper.make_node("Constant", [], ["scale"], value_float=3.0),
             helper.make_node("Constant", [], ["shape"], value_ints=[-1, 4]),
             helper.make_node("MatMul", ["x", "w"], ["projected"]),
             helper.make_node("Add", ["projected", "bias"], ["a"]),
             helper.make_node("Mul", ["a", "scale"], ["b"]), helper.make_node("Reshape", ["b", "shape"], ["y"])]
    return single_op_graph(nodes, opset=12)  # value_float(s) and value_int(s) exist from Constant-12


def test_every_kind_of_constant_node_becomes_an_initializer_of_its_name():
    model, moved = paddle_constants_graph(), paddle_constants_graph()
    assert constants_to_initializers(moved) == [("4 Constant nodes: now initializers of the same names (onnx2torch "
                                                "reads weights only from initializers)")]
    assert not [node for node in moved.graph.node if node.op_type == "Constant"]
    tensors = {tensor.name: numpy_helper.to_array(tensor) for tensor in moved.graph.initializer}
    np.testing.assert_array_equal(tensors["w"], np.eye(4, dtype=np.float32) * 2)
    assert tensors["bias"].dtype == np.float32 and tensors["bias"].tolist() == [0.5, -0.5, 1.0, 0.0]
    assert tensors["scale"].dtype == np.float32 and tensors["scale"].shape == () and tensors["scale"] == 3.0
    assert tensors["shape"].dtype == np.int64 and tensors["shape"].tolist() == [-1, 4]
    prepared, _, _ = prepare(model, batch_one=False)
    values = edge_values()
    np.testing.assert_array_equal(run(prepared, values), run(model, values))


def ir3_reshape_graph() -> onnx.ModelProto:
    """IR 3 / opset 9 with a fixed batch of 1 and a batch-1 Reshape: every initializer is a graph input."""
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["y"], name="reshape")]
    shape = numpy_helper.from_array(np.array([1, 4], np.int64), "shape")
    graph = helper.make_graph(nodes, "ir3", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2]),
                                             helper.make_tensor_value_info("shape", TensorProto.INT64, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], initializer=[shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    onnx.checker.check_model(model, full_check=True)
    return model


def test_on_ir_3_the_batch_reshape_rewrite_needs_the_ir_upgrade_first():
    """The bug: freeing the batch of a Reshape adds an initializer, which IR 3 wants among the graph inputs."""
    alone = ir3_reshape_graph()
    graph_passes.fix_batch_reshapes(alone)
    with pytest.raises(onnx.checker.ValidationError, match="not in graph input"):
        onnx.checker.check_model(alone)
    prepared, rewrites, _ = prepare(ir3_reshape_graph(), batch_one=True)
    onnx.checker.check_model(prepared, full_check=True)
    assert prepared.ir_version >= 4 and [i.name for i in prepared.graph.input] == ["x"]
    assert rewrites[:2] == ["IR version 3 -> 4: 1 initializers no longer listed as graph inputs",
                            (f"opset 9 -> {TARGET_OPSET} (onnx version converter): onnx2torch converts every operator "
                            "version of that opset")]
    values = np.arange(4, dtype=np.float32).reshape(1, 2, 2)
    np.testing.assert_array_equal(run(prepared, values), run(ir3_reshape_graph(), values))


def test_an_opset_the_converter_cannot_raise_is_kept_with_its_reason(monkeypatch):
    def refuse(model, target):
        raise RuntimeError("No Adapter For Upsample\nmore")

    monkeypatch.setattr(onnx.version_converter, "convert_version", refuse)
    model = single_op_graph([helper.make_node("Relu", ["x"], ["y"])], opset=9)
    _, rewrites, _ = prepare(model, batch_one=False)
    assert rewrites == [(f"opset 9 kept: the ONNX version converter cannot raise it to {TARGET_OPSET} "
                        "(No Adapter For Upsample)")]


def test_a_pass_that_leaves_an_invalid_graph_is_named(monkeypatch):
    def dangle(model):
        model.graph.node[0].input[0] = "nowhere"
        return ["pointed a node at nothing"]

    monkeypatch.setattr(graph_passes, "matmul_to_gemm", dangle)
    model = single_op_graph([helper.make_node("Relu", ["x"], ["y"])], opset=13)
    with pytest.raises(FailedPrecondition, match="the graph pass dangle leaves a graph the ONNX checker rejects "
                                                 r"\(Nodes in a graph must be topologically sorted, however input "
                                                 "'nowhere'") as caught:
        prepare(model, batch_one=False)
    assert caught.value.field == "model_name"


def test_an_integer_clip_is_left_alone():
    """Shape arithmetic clips integers, which Relu does not take below opset 14: not an activation to bound."""
    graph = helper.make_graph([helper.make_node("Clip", ["x", "low", "high"], ["y"])], "int_clip",
                              [helper.make_tensor_value_info("x", TensorProto.INT64, ["N"])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, ["N"])],
                              initializer=[numpy_helper.from_array(np.array(v, np.int64), n)
                                           for n, v in (("low", 0), ("high", 6))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    prepared, rewrites, _ = prepare(model, batch_one=False)
    assert rewrites == [] and [node.op_type for node in prepared.graph.node] == ["Clip"]


def test_a_rewritten_node_keeps_its_name_on_the_node_computing_its_output():
    """``split_layer`` names ONNX nodes: after a rewrite the name still ends at the same value."""
    model = single_op_graph([helper.make_node("HardSwish", ["x"], ["y"], name="hswish")], opset=14)
    prepared, _, _ = prepare(model, batch_one=False)
    assert [node.output[0] for node in prepared.graph.node if node.name == "hswish"] == ["y"]


def _quantized_cnn(path) -> onnx.ModelProto:
    """A small float CNN quantised by onnxruntime's quantize_static in QDQ form (int8 weights per channel,
    uint8 activations): the export an int8 deployment ships."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    rng = np.random.default_rng(3)
    weight = numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.normal(0, 0.1, 4).astype(np.float32), "b")
    dense = numpy_helper.from_array(rng.normal(0, 0.5, (4, 5)).astype(np.float32), "d")
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("GlobalAveragePool", ["r"], ["g"]),
             helper.make_node("Flatten", ["g"], ["f"]),
             helper.make_node("MatMul", ["f", "d"], ["y"])]
    graph = helper.make_graph(nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 5])],
                              initializer=[weight, bias, dense])
    source = path / "float.onnx"
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # onnxruntime reads IR versions up to 13; onnx 1.23 writes 14 by default
    onnx.save(model, source)

    class Calibration(CalibrationDataReader):
        def __init__(self):
            self.batches = iter([{"x": rng.random((1, 3, 8, 8), dtype=np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.batches, None)

    quantize_static(str(source), str(path / "qdq.onnx"), Calibration(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True)
    return onnx.load(path / "qdq.onnx")


def test_constant_dequantize_folds_into_the_float_weights_onnxruntime_computes(tmp_path):
    from service.verify.graph_normalise import fold_constant_dequantize

    original = _quantized_cnn(tmp_path)
    weights_behind_dequantize = sum(node.op_type == "DequantizeLinear" and node.input[0] in
                                    {t.name for t in original.graph.initializer} for node in original.graph.node)
    assert weights_behind_dequantize >= 2  # the conv weight (per channel), the bias, the dense matrix
    folded = onnx.ModelProto()
    folded.CopyFrom(original)
    lines = fold_constant_dequantize(folded)
    onnx.checker.check_model(folded, full_check=True)
    assert lines and lines[0].startswith(f"{weights_behind_dequantize} DequantizeLinear")
    initializers = {t.name for t in folded.graph.initializer}
    assert not any(node.op_type == "DequantizeLinear" and node.input[0] in initializers for node in folded.graph.node)
    # The oracle: onnxruntime on the quantised graph with its optimisations off, so that it dequantises in float
    # as the ONNX definition says (its optimiser would fuse QDQ into integer kernels, another function).
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    values = np.random.default_rng(4).random((3, 3, 8, 8), dtype=np.float32)
    expected = ort.InferenceSession(original.SerializeToString(), options,
                                    providers=["CPUExecutionProvider"]).run(None, {"x": values})[0]
    ours = ort.InferenceSession(folded.SerializeToString(), options,
                                providers=["CPUExecutionProvider"]).run(None, {"x": values})[0]
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-6)


def test_float16_export_is_mirrored_as_the_float32_graph_of_its_weights():
    from service.verify.graph_normalise import float16_to_float32

    rng = np.random.default_rng(5)
    # Weights that float16 holds exactly: the float32 graph of the same weights is the oracle.
    weight = rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float16).astype(np.float32)
    dense = rng.normal(0, 0.5, (4, 5)).astype(np.float16).astype(np.float32)

    def graph_of(dtype, elem_type):
        nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c"], ["r"]),
                 helper.make_node("GlobalAveragePool", ["r"], ["g"]),
                 helper.make_node("Flatten", ["g"], ["f"]),
                 helper.make_node("Cast", ["f"], ["h"], to=elem_type),
                 helper.make_node("MatMul", ["h", "d"], ["y"])]
        graph = helper.make_graph(
            nodes, "cnn", [helper.make_tensor_value_info("x", elem_type, ["N", 3, 8, 8])],
            [helper.make_tensor_value_info("y", elem_type, ["N", 5])],
            initializer=[numpy_helper.from_array(weight.astype(dtype), "w"),
                         numpy_helper.from_array(dense.astype(dtype), "d")])
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        return model

    half, single = graph_of(np.float16, TensorProto.FLOAT16), graph_of(np.float32, TensorProto.FLOAT)
    lines = float16_to_float32(half)
    onnx.checker.check_model(half, full_check=True)
    assert lines and "float32" in lines[0]
    assert half.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    values = rng.random((3, 3, 8, 8), dtype=np.float32)
    np.testing.assert_array_equal(run(half, values), run(single, values))
