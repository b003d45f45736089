"""Small helpers the ONNX graph passes share (no torch here): lookups, shapes, and a builder of new nodes."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper


def initializers(model: onnx.ModelProto) -> dict[str, onnx.TensorProto]:
    return {tensor.name: tensor for tensor in model.graph.initializer}


def consumers(model: onnx.ModelProto, name: str) -> list[onnx.NodeProto]:
    return [node for node in model.graph.node if name in node.input]


def remove_unused(model: onnx.ModelProto) -> None:
    """Drop constant-producing nodes and initializers nothing reads any more (after folding)."""
    graph = model.graph
    while True:
        used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
        dead = [node for node in graph.node
                if node.op_type in ("Identity", "Constant") and not any(output in used for output in node.output)]
        if not dead:
            break
        for node in dead:
            graph.node.remove(node)
    used = {name for node in graph.node for name in node.input} | {output.name for output in graph.output}
    for tensor in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(tensor)


def inferred_values(model: onnx.ModelProto) -> dict[str, onnx.ValueInfoProto]:
    """Every typed value of the graph after shape inference, by name."""
    inferred = onnx.shape_inference.infer_shapes(model)
    return {value.name: value for value in [*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output]}


def dims(value: onnx.ValueInfoProto | None) -> list[int | None] | None:
    """The dimensions of a value (None for a symbolic or unknown one), or None where its rank is unknown."""
    if value is None or not value.type.tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]


def element_type(value: onnx.ValueInfoProto | None) -> int:
    """The value's element type; float32 where inference does not know it (the mirror takes float32 models)."""
    elem = value.type.tensor_type.elem_type if value is not None else 0
    return elem or onnx.TensorProto.FLOAT


class NodeBuilder:
    """New nodes and constants that replace one node, named after it (onnx2torch names its modules after
    the nodes, so a rewritten operator stays recognisable in the mirror's errors and layer names)."""

    def __init__(self, model: onnx.ModelProto, replaced: onnx.NodeProto, value: onnx.ValueInfoProto | None) -> None:
        """``value``: the replaced node's (first) input, whose element type and rank the constants take."""
        self.model, self.replaced = model, replaced
        # Constants of the input's rank ([1, 1, 1, 1] for a feature map): auto_LiRPA 0.3's CROWN multiplies
        # a convolution's patches only by a 4-D constant (an assertion in BoundMul otherwise).
        self.constant_shape = (1,) * len(dims(value) or [])
        elem_type = element_type(value)
        self.base = replaced.name or replaced.output[0]
        self.dtype = onnx.helper.tensor_dtype_to_np_dtype(elem_type)
        self.nodes: list[onnx.NodeProto] = []
        self._taken = ({t.name for t in model.graph.initializer} | {v.name for v in model.graph.input}
                       | {name for node in model.graph.node for name in [*node.output, node.name]})

    def name(self, kind: str) -> str:
        index = 0
        while f"{self.base}/{kind}_{index}" in self._taken:
            index += 1
        name = f"{self.base}/{kind}_{index}"
        self._taken.add(name)
        return name

    def constant(self, value: float) -> str:
        name = self.name("const")
        tensor = numpy_helper.from_array(np.full(self.constant_shape, value, dtype=self.dtype), name)
        self.model.graph.initializer.append(tensor)
        return name

    def op(self, op_type: str, inputs: list[str], output: str | None = None, **attributes) -> str:
        name = self.name(op_type.lower())
        output = output or name
        self.nodes.append(onnx.helper.make_node(op_type, inputs, [output], name=name, **attributes))
        return output

    def commit(self) -> None:
        """Put the new nodes where the replaced node was (the graph stays topologically sorted). The one that
        computes the replaced node's output takes its name: a layer named in a request (``split_layer``)
        still names the same value."""
        for node in self.nodes:
            if self.replaced.name and self.replaced.output[0] in node.output:
                node.name = self.replaced.name
        graph = self.model.graph
        index = list(graph.node).index(self.replaced)
        graph.node.remove(self.replaced)
        for offset, node in enumerate(self.nodes):
            graph.node.insert(index + offset, node)
