"""Cut an ONNX graph in two at a node's output, for hybrid verification of models onnx2torch cannot convert
whole: the head runs on onnxruntime (the prepared graph with the cut tensor as an extra output), the tail is
the subgraph from the cut tensor to the logits, small enough to convert and bound.

The cut must separate the graph: walking back from the logits and stopping at the cut tensor, the walk must
never reach the graph input (a skip connection across the cut, or a ``Shape`` of an earlier tensor feeding a
Reshape after it, would; ``onnx.utils.Extractor`` would then pull in nodes with undeclared inputs,
precision_and_real_models.md §2). The tail is built by that walk, not by the Extractor, so the same walk
decides both.
"""

from __future__ import annotations

import onnx
from onnx import helper

from service.errors import InvalidArgument
from service.runtime import signature
from service.verify.split import FIELD, normalised_name

# Operators whose constant weights make a tail worth verifying (a tail of activations alone verifies nothing
# that the head's box does not already say).
WEIGHTED = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {output: node for node in graph.node for output in node.output}


def tail_nodes(model: onnx.ModelProto, cut: str) -> list[onnx.NodeProto] | None:
    """The nodes that compute the logits from the tensor ``cut``, in graph order; None when the graph reaches
    its input by a path that avoids ``cut``."""
    graph = model.graph
    producers = _producers(graph)
    constants = {tensor.name for tensor in graph.initializer}
    inputs = {value.name for value in graph.input} - constants
    needed, seen, stack = set(), set(), [graph.output[0].name]
    while stack:
        tensor = stack.pop()
        if tensor in seen or tensor == cut or tensor in constants or not tensor:
            continue
        seen.add(tensor)
        if tensor in inputs:
            return None
        node = producers.get(tensor)
        if node is None:
            return None
        if id(node) not in needed:
            needed.add(id(node))
            stack.extend(node.input)
    return [node for node in graph.node if id(node) in needed]


def _name(node: onnx.NodeProto) -> str:
    return node.name or node.output[0]


def candidate_cuts(model: onnx.ModelProto) -> list[str]:
    """Node names whose (first) output separates the graph with a weighted layer after it, latest first."""
    constants = {tensor.name for tensor in model.graph.initializer}
    cuts = []
    for node in reversed(model.graph.node):
        if len(node.output) != 1 or node.op_type == "Constant" or node.output[0] == model.graph.output[0].name:
            continue
        if all(name in constants for name in node.input):
            continue
        tail = tail_nodes(model, node.output[0])
        if tail and any(n.op_type in WEIGHTED and any(i in constants for i in n.input) for n in tail):
            cuts.append(_name(node))
    return cuts


def node_named(model: onnx.ModelProto, layer: str) -> onnx.NodeProto:
    wanted = normalised_name(layer)
    for node in model.graph.node:
        if wanted in (normalised_name(node.name), normalised_name(node.output[0])):
            return node
    names = [_name(node) for node in model.graph.node]
    raise InvalidArgument(f"no layer {layer!r} in the model; layers are named as in the ONNX graph, e.g. "
                          f"{', '.join(names[:4])} ... {names[-1] if names else ''}", field=FIELD)


def with_output(model: onnx.ModelProto, tensor: str) -> onnx.ModelProto:
    """The model with ``tensor`` as an extra output (the head: one run gives the cut tensor)."""
    head = onnx.ModelProto()
    head.CopyFrom(model)
    return signature.with_output(head, tensor)


def tail_model(model: onnx.ModelProto, node: onnx.NodeProto, feature_shape: tuple[int, ...]) -> onnx.ModelProto:
    """The subgraph from ``node``'s output to the logits, as a model whose input is that tensor (float32, batch
    axis free, the other axes as observed)."""
    cut = node.output[0]
    nodes = tail_nodes(model, cut)
    if nodes is None:
        raise InvalidArgument(f"layer {_name(node)!r} does not cut the graph: a node after it also reads the "
                              "model's input by another path (a skip connection); cut after the block", field=FIELD)
    if not nodes:
        raise InvalidArgument(f"layer {_name(node)!r} is the last one: nothing is left to bound", field=FIELD)
    read = {name for n in nodes for name in n.input}
    initializers = [tensor for tensor in model.graph.initializer if tensor.name in read]
    dims = ["batch", *feature_shape[1:]]
    graph = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info(cut, onnx.TensorProto.FLOAT, dims)],
                              [model.graph.output[0]], initializer=initializers)
    tail = helper.make_model(graph, opset_imports=list(model.opset_import))
    tail.ir_version = model.ir_version
    return tail
