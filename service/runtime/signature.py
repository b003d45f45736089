"""What an ONNX graph takes and gives: the image input, its layout and batch, the output explained.

Read from the graph alone, before any session exists, so a model that is not
an image classifier is refused with a message that says why.

The output explained is the one the configuration names (``output``), else the graph output that is
[batch, classes] once trailing axes of size 1 are dropped (Caffe2-era exports give [N, C, 1, 1]); of several
such outputs, the one a Softmax, LogSoftmax or Sigmoid ends, and with none or several of those the model is
refused until ``output`` names one (an embedding beside the logits must not be explained by mistake). When
it ends in Softmax, LogSoftmax or Sigmoid (possibly followed by reshapes), the input of that node is the
model's logits: ``pre_activation`` names it, so the session can return it alongside the output.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import onnx

from service.errors import InvalidArgument

IMAGE_CHANNELS = (1, 3)


class Layout(StrEnum):
    NCHW = "NCHW"
    NHWC = "NHWC"


class OutputKind(StrEnum):
    LOGITS = "logits"
    PROBABILITIES = "probabilities"
    LOG_PROBABILITIES = "log_probabilities"
    # Independent per-class probabilities: a binary head [N, 1] or a multi-label head [N, K].
    SIGMOID = "sigmoid"


# The terminal activation that makes each kind out of logits.
ACTIVATION_KINDS = {"Softmax": OutputKind.PROBABILITIES, "LogSoftmax": OutputKind.LOG_PROBABILITIES,
                    "Sigmoid": OutputKind.SIGMOID}
# Ops that only reshape, walked through from the output back to its activation (Softmax -> Reshape [N, C]).
_SHAPE_ONLY = ("Reshape", "Flatten", "Squeeze", "Identity")
# Element types an explained output may have.
_FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


# A dimension: an int when the graph fixes it, None when it is symbolic or unknown.
Dim = int | None


@dataclass(frozen=True)
class GraphSignature:
    input_name: str
    input_elem_type: int
    input_dims: tuple[Dim, ...]
    output_name: str
    # [batch, classes]: the graph's dims with trailing axes of size 1 dropped (the host reshapes so).
    output_dims: tuple[Dim, ...]
    # The op type of the node producing the output ("Softmax", "Gemm", ...), reshapes walked through.
    output_op: str
    # The output's dims as the graph declares them ([N, C, 1, 1] for Caffe2-era exports).
    output_graph_dims: tuple[Dim, ...] = ()
    # Every graph output, in graph order.
    graph_outputs: tuple[str, ...] = ()
    # The input of the terminal Softmax / LogSoftmax / Sigmoid: the logits, when the output ends in one.
    pre_activation: str | None = None

    @property
    def fixed_batch(self) -> int | None:
        return self.input_dims[0]

    def layout_guess(self) -> Layout:
        """The axis of size 1 or 3 next to the batch axis is the channel axis (NCHW wins ties)."""
        second, last = self.input_dims[1], self.input_dims[3]
        if second in IMAGE_CHANNELS:
            return Layout.NCHW
        if last in IMAGE_CHANNELS:
            return Layout.NHWC
        raise InvalidArgument(
            f"input {self.input_name!r} has shape {format_dims(self.input_dims)}: no axis of size 1 or 3 "
            "next to the batch axis; set overrides.layout if the channel axis is dynamic",
            field="overrides.layout",
        )

    def spatial_dims(self, layout: Layout) -> tuple[Dim, Dim, Dim]:
        """(height, width, channels) under ``layout``."""
        _, a, b, c = self.input_dims
        return (b, c, a) if layout is Layout.NCHW else (a, b, c)

    def output_kind_from_graph(self) -> OutputKind | None:
        return ACTIVATION_KINDS.get(self.output_op)


def format_dims(dims: tuple[Dim, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _dims(value_info: onnx.ValueInfoProto) -> tuple[Dim, ...]:
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim)


def read_signature(model: onnx.ModelProto, field: str = "onnx_model", output: str | None = None,
                   output_field: str = "overrides.output") -> GraphSignature:
    """Find the single image input and the class-score output of ``model``; errors name ``field``
    (the LoadModel field the model came from), or ``output_field`` for a configured ``output`` name."""
    graph = model.graph
    initializers = {init.name for init in graph.initializer}
    # Older exporters list initializers among the inputs; they are weights, not inputs.
    inputs = [i for i in graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise InvalidArgument(
            f"the model has {len(inputs)} inputs ({names}); onnxplain explains classifiers with one image input",
            field=field,
        )
    image = inputs[0]
    if not image.type.HasField("tensor_type"):
        raise InvalidArgument(f"input {image.name!r} is not a tensor", field=field)
    dims = _dims(image)
    if len(dims) != 4:
        raise InvalidArgument(
            f"input {image.name!r} has shape {format_dims(dims)}; an image input is 4-D, NCHW or NHWC",
            field=field,
        )
    if not graph.output:
        raise InvalidArgument("the model has no output", field=field)
    chosen = _choose_output(graph, output, field, output_field)
    op, pre_activation = terminal_activation(graph, chosen.name)
    return GraphSignature(
        input_name=image.name,
        input_elem_type=image.type.tensor_type.elem_type,
        input_dims=dims,
        output_name=chosen.name,
        output_dims=squeezed(_dims(chosen)),
        output_op=op,
        output_graph_dims=_dims(chosen),
        graph_outputs=tuple(o.name for o in graph.output),
        pre_activation=pre_activation,
    )


def squeezed(dims: tuple[Dim, ...]) -> tuple[Dim, ...]:
    """[N, C, 1, 1] -> [N, C]: trailing axes of size 1 dropped, never the batch or class axis."""
    kept = len(dims)
    while kept > 2 and dims[kept - 1] == 1:
        kept -= 1
    return dims[:kept]


def as_rows(values, name: str):
    """A session's output as (N, classes), by naming the two axes kept: a bare squeeze would also drop the
    batch axis of a batch of one. Raises ValueError when an axis past the second is not of size 1."""
    if values.ndim < 2 or any(size != 1 for size in values.shape[2:]):
        raise ValueError(f"output {name!r} has shape {list(values.shape)}; a classifier gives [batch, classes] "
                         "(trailing axes of size 1 allowed)")
    return values.reshape(values.shape[0], values.shape[1])


def _is_class_scores(output: onnx.ValueInfoProto) -> bool:
    tensor = output.type.tensor_type if output.type.HasField("tensor_type") else None
    return (tensor is not None and tensor.elem_type in _FLOAT_TYPES and tensor.HasField("shape")
            and len(squeezed(_dims(output))) == 2)


def _describe(output: onnx.ValueInfoProto) -> str:
    if not output.type.HasField("tensor_type"):
        return f"{output.name!r} (not a tensor)"
    shape = format_dims(_dims(output)) if output.type.tensor_type.HasField("shape") else "unknown shape"
    return f"{output.name!r} {shape}"


def _choose_output(graph: onnx.GraphProto, name: str | None, field: str, output_field: str) -> onnx.ValueInfoProto:
    """The configured output, else the first one that holds [batch, classes] float scores."""
    listed = ", ".join(_describe(o) for o in graph.output)
    if name is not None:
        chosen = next((o for o in graph.output if o.name == name), None)
        if chosen is None:
            raise InvalidArgument(f"the model has no output {name!r}; its outputs: {listed}", field=output_field)
        if not _is_class_scores(chosen):
            raise InvalidArgument(f"output {_describe(chosen)} is not float class scores [batch, classes] (trailing "
                                  f"axes of size 1 allowed); the model's outputs: {listed}", field=output_field)
        return chosen
    candidates = [o for o in graph.output if _is_class_scores(o)]
    if len(candidates) > 1:
        # Several outputs could be class scores (logits beside an embedding, an auxiliary head): the one a
        # Softmax, LogSoftmax or Sigmoid ends is the classifier's; otherwise which one is meant is the user's call.
        activated = [o for o in candidates if terminal_activation(graph, o.name)[0] in ACTIVATION_KINDS]
        if len(activated) != 1:
            raise InvalidArgument(f"{len(candidates)} outputs could be class scores ("
                                  f"{', '.join(_describe(o) for o in candidates)}); name the one to explain (config "
                                  "key 'output')", field=output_field)
        candidates = activated
    chosen = candidates[0] if candidates else None
    if chosen is None:
        output = graph.output[0]
        if len(graph.output) == 1 and output.type.HasField("tensor_type"):
            raise InvalidArgument(f"output {output.name!r} has shape {format_dims(_dims(output))}; a classifier's "
                                  "output is [batch, classes]", field=field)
        raise InvalidArgument(f"no output holds float class scores [batch, classes] (trailing axes of size 1 "
                              f"allowed): {listed}; name the output to explain (config key 'output')",
                              field=output_field)
    return chosen


def terminal_activation(graph: onnx.GraphProto, output: str) -> tuple[str, str | None]:
    """The op producing ``output``, reshapes walked through, and for Softmax / LogSoftmax / Sigmoid the tensor it
    activates (the logits); ("", None) for a graph input or an initializer."""
    producers = {name: node for node in graph.node for name in node.output}
    graph_inputs = {i.name for i in graph.input}
    node = producers.get(output)
    while node is not None and node.op_type in _SHAPE_ONLY and node.input and node.input[0] not in graph_inputs:
        node = producers.get(node.input[0])
    if node is None:
        return "", None
    if node.op_type in ACTIVATION_KINDS and node.input and node.input[0] not in graph_inputs:
        return node.op_type, node.input[0]
    return node.op_type, None


def with_output(model: onnx.ModelProto, name: str, like: str | None = None) -> onnx.ModelProto:
    """``model`` with the tensor ``name`` also a graph output (edited in place), so one session call returns it with
    the rest. Its element type is that of the output ``like`` (an activation keeps the type), else left to
    onnxruntime, as its shape is."""
    if any(o.name == name for o in model.graph.output):
        return model
    if like is None:
        model.graph.output.append(onnx.ValueInfoProto(name=name))
        return model
    elem_type = next(o.type.tensor_type.elem_type for o in model.graph.output if o.name == like)
    model.graph.output.append(onnx.helper.make_tensor_value_info(name, elem_type, None))
    return model
