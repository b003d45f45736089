"""Normalisation of exported graphs before the mirror's rewrites and onnx2torch (no torch here).

Each pass edits the model in place and returns its rewrite lines (none where it changed nothing).

- ``upgrade_ir``: IR 3 (Caffe2 and the old model zoo) lists every initializer among the graph inputs, and
  the ONNX checker rejects an IR-3 initializer that is not one, such as a constant a later pass adds. From
  IR 4 initializers are constants by themselves: they leave ``graph.input`` and the IR version is raised.
- ``upgrade_opset``: onnx2torch has no converter for several operator versions below opset 10 (Gemm-7,
  Dropout-7, BatchNormalization-7, Slice-1, Upsample, Flatten-1); ``TARGET_OPSET`` 11 is the lowest opset
  at which all the operators of those exports resolve, and stays below 13, where Softmax changes from
  "flatten from ``axis``" to one axis (the converter would wrap every Softmax in Shape/Flatten/Reshape, so
  a terminal one could no longer be removed) and Squeeze/Unsqueeze take their axes as inputs. A graph the
  version converter cannot raise keeps its opset, with the converter's reason as its rewrite line.
- ``constants_to_initializers``: Paddle2ONNX stores every parameter as a ``Constant`` node; onnx2torch
  reads Conv and Gemm weights only from initializers (``KeyError: 'conv1_weights'``). Each Constant (tensor
  ``value``, ``value_float(s)``, ``value_int(s)``) becomes an initializer of the same name.
- ``identity_constants_to_initializers``: the TorchScript exporter shares equal parameters (the zero biases
  of a model with ``weights=None``) through ``Identity`` nodes, which onnx2torch cannot read weights from
  either (torchvision convnext_tiny: ``KeyError`` on a Conv bias). Each such Identity becomes an
  initializer of its output's name, a copy of the shared tensor: every layer keeps its own parameters, so
  BatchNorm folding can rescale one without touching the others.
- ``fold_constant_dequantize``: a QDQ-quantized export (onnxruntime's ``quantize_static``) stores each weight
  as int8 behind a ``DequantizeLinear``, which onnx2torch has no converter for. A DequantizeLinear of
  constants is a constant: (x - zero_point) * scale, per tensor or per axis, computed once as float32, the
  value onnxruntime's kernel gives. The activations' QuantizeLinear/DequantizeLinear pairs stay: they round,
  which no bound method relaxes, so they belong in a hybrid head.
- ``float16_to_float32``: a float16 export (float16 I/O and weights) is mirrored in float32, the precision
  torch and auto_LiRPA bound in: weights, inputs, outputs and Casts to float16 become float32. The mirror then
  certifies that float32 function, not the float16 one served (which rounds each operation); it says so.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

# The first IR version whose initializers need not be graph inputs.
MIN_IR_VERSION = 4
TARGET_OPSET = 11
DEFAULT_DOMAINS = ("", "ai.onnx")


def default_opset(model: onnx.ModelProto) -> int | None:
    return next((entry.version for entry in model.opset_import if entry.domain in DEFAULT_DOMAINS), None)


def _min_ir_version(model: onnx.ModelProto) -> int:
    return max(MIN_IR_VERSION, onnx.helper.find_min_ir_version_for(list(model.opset_import), ignore_unknown=True))


def upgrade_ir(model: onnx.ModelProto) -> list[str]:
    if model.ir_version >= MIN_IR_VERSION:
        return []
    constants = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in constants]
    listed = len(model.graph.input) - len(inputs)
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    old, model.ir_version = model.ir_version, _min_ir_version(model)
    return [f"IR version {old} -> {model.ir_version}: {listed} initializers no longer listed as graph inputs"]


def upgrade_opset(model: onnx.ModelProto) -> list[str]:
    opset = default_opset(model)
    if opset is None or opset >= TARGET_OPSET:
        return []
    try:
        converted = onnx.version_converter.convert_version(model, TARGET_OPSET)
    except (RuntimeError, ValueError, onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        # RuntimeError: a step it has no adapter for; the others: its checks of the graph it produced
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        return [f"opset {opset} kept: the ONNX version converter cannot raise it to {TARGET_OPSET} ({reason})"]
    model.CopyFrom(converted)
    model.ir_version = max(model.ir_version, _min_ir_version(model))
    return [(f"opset {opset} -> {TARGET_OPSET} (onnx version converter): onnx2torch converts every operator "
            "version of that opset")]


def constant_tensor(node: onnx.NodeProto) -> onnx.TensorProto | None:
    """The tensor a Constant node holds, or None for the kinds no weight is (strings, sparse tensors)."""
    attribute = node.attribute[0] if len(node.attribute) == 1 else None
    if attribute is None:
        return None
    if attribute.name == "value":
        tensor = onnx.TensorProto()
        tensor.CopyFrom(attribute.t)
        return tensor
    arrays = {"value_float": lambda: np.array(attribute.f, np.float32),
              "value_floats": lambda: np.array(list(attribute.floats), np.float32),
              "value_int": lambda: np.array(attribute.i, np.int64),
              "value_ints": lambda: np.array(list(attribute.ints), np.int64)}
    return numpy_helper.from_array(arrays[attribute.name]()) if attribute.name in arrays else None


def constants_to_initializers(model: onnx.ModelProto) -> list[str]:
    graph_outputs = {output.name for output in model.graph.output}
    moved = 0
    for node in list(model.graph.node):
        if node.op_type != "Constant" or node.domain not in DEFAULT_DOMAINS or node.output[0] in graph_outputs:
            continue
        tensor = constant_tensor(node)
        if tensor is None:
            continue
        tensor.name = node.output[0]
        model.graph.initializer.append(tensor)
        model.graph.node.remove(node)
        moved += 1
    return [(f"{moved} Constant nodes: now initializers of the same names (onnx2torch reads weights only from "
            "initializers)")] if moved else []


def identity_constants_to_initializers(model: onnx.ModelProto) -> list[str]:
    graph_outputs = {output.name for output in model.graph.output}
    tensors = {tensor.name: tensor for tensor in model.graph.initializer}
    copied = 0
    for node in list(model.graph.node):  # in graph order: an Identity of a copy is copied in turn
        if node.op_type != "Identity" or node.input[0] not in tensors or node.output[0] in graph_outputs:
            continue
        copy = onnx.TensorProto()
        copy.CopyFrom(tensors[node.input[0]])
        copy.name = node.output[0]
        model.graph.initializer.append(copy)
        tensors[copy.name] = copy
        model.graph.node.remove(node)
        copied += 1
    return [(f"{copied} Identity copies of initializers: now initializers of their own (onnx2torch reads weights "
            "only from initializers)")] if copied else []


def _dequantized(quantized: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int) -> np.ndarray:
    """(x - zero_point) * scale, the scale (and zero point) per tensor or along ``axis``."""
    if scale.size == 1:  # per tensor, whether the scale is a scalar or a 1-element vector
        scale = scale.reshape(())
        zero_point = None if zero_point is None else zero_point.reshape(())
    elif scale.ndim == 1:
        shape = [1] * quantized.ndim
        shape[axis] = scale.size
        scale = scale.reshape(shape)
        zero_point = None if zero_point is None else zero_point.reshape(shape)
    offset = quantized.astype(np.int64) - (0 if zero_point is None else zero_point.astype(np.int64))
    return (offset.astype(np.float32) * scale.astype(np.float32)).astype(np.float32)


def fold_constant_dequantize(model: onnx.ModelProto) -> list[str]:
    graph = model.graph
    tensors = {tensor.name: tensor for tensor in graph.initializer}
    graph_outputs = {output.name for output in graph.output}
    folded = 0
    for node in list(graph.node):
        inputs = [name for name in node.input if name]
        if (node.op_type != "DequantizeLinear" or node.domain not in DEFAULT_DOMAINS
                or not all(name in tensors for name in inputs) or node.output[0] in graph_outputs):
            continue
        attributes = {attribute.name: onnx.helper.get_attribute_value(attribute) for attribute in node.attribute}
        if attributes.get("block_size", 0) or tensors[inputs[1]].data_type != onnx.TensorProto.FLOAT:
            continue  # blocked quantisation (opset 21) or a float16 scale: left to the converter's verdict
        quantized = numpy_helper.to_array(tensors[inputs[0]])
        axis = attributes.get("axis", 1)
        axis = axis + quantized.ndim if axis < 0 else axis
        zero_point = numpy_helper.to_array(tensors[inputs[2]]) if len(inputs) > 2 else None
        value = _dequantized(quantized, numpy_helper.to_array(tensors[inputs[1]]), zero_point, axis)
        folded_tensor = numpy_helper.from_array(value, node.output[0])
        graph.initializer.append(folded_tensor)
        tensors[folded_tensor.name] = folded_tensor
        graph.node.remove(node)
        folded += 1
    if folded:
        used = {name for node in graph.node for name in node.input} | graph_outputs
        for tensor in [t for t in graph.initializer if t.name not in used]:
            graph.initializer.remove(tensor)
    return [(f"{folded} DequantizeLinear nodes of constant weights: folded into float32 initializers "
            "(onnx2torch has no DequantizeLinear converter)")] if folded else []


def float16_to_float32(model: onnx.ModelProto) -> list[str]:
    graph, half, single = model.graph, onnx.TensorProto.FLOAT16, onnx.TensorProto.FLOAT
    changed = 0
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_type == half:
            graph.initializer[index].CopyFrom(numpy_helper.from_array(
                numpy_helper.to_array(tensor).astype(np.float32), tensor.name))
            changed += 1
    for value in [*graph.input, *graph.output, *graph.value_info]:
        if value.type.tensor_type.elem_type == half:
            value.type.tensor_type.elem_type = single
            changed += 1
    for node in graph.node:
        for attribute in node.attribute:
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == half:
                attribute.i = single
                changed += 1
            elif attribute.type == onnx.AttributeProto.TENSOR and attribute.t.data_type == half:
                attribute.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attribute.t).astype(np.float32),
                                                             attribute.t.name))
                changed += 1
    return [(f"float16 -> float32 ({changed} weights, inputs, outputs and casts): the mirror computes in "
            "float32, not the float16 the model is served in")] if changed else []

