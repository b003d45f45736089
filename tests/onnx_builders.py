"""Small ONNX models built in the tests: from PyTorch modules, or by hand with onnx.helper."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def export_torch(module, path: Path, shape: tuple[int, ...], *, dynamic_batch: bool = True,
                 output_name: str = "logits", keep_batchnorm: bool = False) -> Path:
    """Export with the TorchScript exporter (deterministic and fast for plain CNNs). In eval mode the exporter
    folds BatchNorm into the Conv before it; ``keep_batchnorm`` keeps the BatchNormalization nodes."""
    import torch

    module.eval()
    axes = {"image": {0: "batch"}, output_name: {0: "batch"}} if dynamic_batch else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        options = {"training": torch.onnx.TrainingMode.PRESERVE, "do_constant_folding": False} if keep_batchnorm else {}
        torch.onnx.export(module, torch.zeros(shape), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=[output_name], dynamic_axes=axes, **options)
    return path


def image_classifier(weights: np.ndarray, image_shape: tuple[int, int, int], *, layout: str = "NCHW",
                     batch: int | str = "batch", softmax: bool = False, extra_inputs: int = 0) -> onnx.ModelProto:
    """A linear image classifier: scores = flatten(x) @ weights, x of shape (N, C, H, W) or (N, H, W, C).

    ``weights`` has shape (C*H*W, classes) in the flattening order of ``layout``.
    """
    height, width, channels = image_shape
    dims = [batch, channels, height, width] if layout == "NCHW" else [batch, height, width, channels]
    classes = weights.shape[1]
    nodes = [
        helper.make_node("Flatten", ["image"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "weights"], ["scores" if softmax else "logits"]),
    ]
    output = "logits"
    if softmax:
        nodes.append(helper.make_node("Softmax", ["scores"], ["probabilities"], axis=1))
        output = "probabilities"
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, dims)]
    inputs += [helper.make_tensor_value_info(f"extra{i}", TensorProto.FLOAT, [batch, 4]) for i in range(extra_inputs)]
    graph = helper.make_graph(
        nodes, "linear", inputs, [helper.make_tensor_value_info(output, TensorProto.FLOAT, [batch, classes])],
        initializer=[numpy_helper.from_array(weights.astype(np.float32), "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def pooled_classifier(weights: np.ndarray, image_shape: tuple[int, int, int]) -> onnx.ModelProto:
    """scores = mean over pixels of x (per channel) @ weights: tiny whatever the image size, NCHW."""
    height, width, channels = image_shape
    nodes = [helper.make_node("GlobalAveragePool", ["image"], ["pooled"]),
             helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["logits"])]
    graph = helper.make_graph(
        nodes, "pooled",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", channels, height, width])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", weights.shape[1]])],
        initializer=[numpy_helper.from_array(weights.astype(np.float32), "weights")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def strided_maxpool_classifier() -> onnx.ModelProto:
    """Conv, ReLU, MaxPool 3x3 stride 2 (ResNet's stem pooling), Flatten, Gemm on (N, 1, 8, 8): auto_LiRPA 0.3
    bounds it with IBP but not with CROWN (its MaxPool backward needs stride == kernel)."""
    rng = np.random.default_rng(7)
    initializers = {"w1": rng.normal(size=(4, 1, 3, 3)).astype(np.float32),
                    "w2": rng.normal(size=(4 * 4 * 4, 3)).astype(np.float32), "b2": np.zeros(3, np.float32)}
    nodes = [helper.make_node("Conv", ["image", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu"),
             helper.make_node("MaxPool", ["r1"], ["p1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
                              name="pool"),
             helper.make_node("Flatten", ["p1"], ["flat"], axis=1, name="flatten"),
             helper.make_node("Gemm", ["flat", "w2", "b2"], ["logits"], name="classifier")]
    graph = helper.make_graph(nodes, "maxpool", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                                ["n", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def thresholded_relu_graph() -> onnx.ModelProto:
    """conv -> ThresholdedRelu (no onnx2torch converter) -> flatten -> Gemm, input [n, 1, 8, 8], 3 logits."""
    rng = np.random.default_rng(5)
    initializers = {"w1": rng.normal(size=(4, 1, 3, 3)).astype(np.float32),
                    "w2": rng.normal(size=(4 * 8 * 8, 3)).astype(np.float32), "b2": np.zeros(3, np.float32)}
    nodes = [helper.make_node("Conv", ["image", "w1"], ["c1"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("ThresholdedRelu", ["c1"], ["t1"], alpha=0.1, name="thresholded"),
             helper.make_node("Flatten", ["t1"], ["flat"], axis=1, name="flatten"),
             helper.make_node("Gemm", ["flat", "w2", "b2"], ["logits"], name="classifier")]
    graph = helper.make_graph(nodes, "thresholded",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 1, 8, 8])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model
