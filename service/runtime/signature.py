"""What an ONNX graph takes and gives: the image input, its layout and batch, the output.

Read from the graph alone, before any session exists, so a model that is not
an image classifier is refused with a message that says why.
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


# A dimension: an int when the graph fixes it, None when it is symbolic or unknown.
Dim = int | None


@dataclass(frozen=True)
class GraphSignature:
    input_name: str
    input_elem_type: int
    input_dims: tuple[Dim, ...]
    output_name: str
    output_dims: tuple[Dim, ...]
    # The op type of the node producing the output ("Softmax", "Gemm", ...).
    output_op: str

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
        return {"Softmax": OutputKind.PROBABILITIES, "LogSoftmax": OutputKind.LOG_PROBABILITIES}.get(self.output_op)


def format_dims(dims: tuple[Dim, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"


def _dims(value_info: onnx.ValueInfoProto) -> tuple[Dim, ...]:
    shape = value_info.type.tensor_type.shape
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in shape.dim)


def read_signature(model: onnx.ModelProto, field: str = "onnx_model") -> GraphSignature:
    """Find the single image input and the class-score output of ``model``; errors name ``field``
    (the LoadModel field the model came from)."""
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
    output = graph.output[0]
    output_dims = _dims(output)
    if len(output_dims) != 2:
        raise InvalidArgument(
            f"output {output.name!r} has shape {format_dims(output_dims)}; a classifier's output is "
            "[batch, classes]",
            field=field,
        )
    producer = next((n.op_type for n in graph.node if output.name in n.output), "")
    return GraphSignature(
        input_name=image.name,
        input_elem_type=image.type.tensor_type.elem_type,
        input_dims=dims,
        output_name=output.name,
        output_dims=output_dims,
        output_op=producer,
    )
