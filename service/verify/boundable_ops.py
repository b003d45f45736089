"""Exact rewrites of operators auto_LiRPA 0.3 cannot bound into ones it can (no torch here).

auto_LiRPA 0.3 has no Clip, HardSigmoid or HardSwish, and onnx2torch turns them into torch ops that
re-trace to exactly those; its Squeeze asserts one non-batch axis, its Reshape refuses to move the batch,
and it bounds a Dropout as in training. So they are rewritten in ONNX, before conversion, into Relu, Mul,
Add, Sub, Identity and Flatten, each pass returning one line per rewritten node.

Clip(x, a, b) = b - relu(b - (a + relu(x - a))): max(x, a) = a + relu(x - a), then min(y, b) = b - relu(b - y).
Nested rather than the flat a + relu(x - a) - relu(x - b), for two reasons. In float32 the flat form
subtracts two numbers of the size of x (x = 1e8 gives 8 or 0 instead of 6 for a ReLU6), while the nested
one returns a or b exactly outside [a, b] and is off by an ulp of max(|a|, |b|, |x|) inside. And interval
propagation through a chain of monotone steps gives the exact image of an interval, where the flat form's
two independent ReLUs do not: on a small CNN with three ReLU6 (boxes of half-width 0.1 / 1.0) the mean
slack of the margin bounds is, nested against flat, 1.87 / 6.54 against 3.87 / 65.0 with IBP and 0.66 /
6.95 against 1.71 / 36.2 with CROWN-IBP. a = 0 skips the first step (relu(x) is exact); a > b gives b
everywhere, as ONNX specifies. ReLU6 exports (Clip 0, 6) are covered, and so is Paddle's hard_swish
decomposition (Add, Clip, Mul, Div).

HardSigmoid(alpha, beta) = Clip(alpha x + beta, 0, 1). HardSwish(x) = x HardSigmoid_{1/6, 1/2}(x), the
ONNX definition, bounded as a product of two perturbed inputs. The exact alternative in Relu and Pow 2,
[relu(x+3)^2 - 3 relu(x+3) - relu(x-3)^2 - 3 relu(x-3)] / 6, bounds far looser: on a small CNN with three
HardSwish (half-widths 0.01 / 0.1), product against Pow form, IBP 0.29 / 5.9 against 6.1 / 163, CROWN-IBP
0.028 / 3.2 against 1.0 / 76, CROWN (conv_mode "matrix") 0.0014 / 0.028 against 1.0 / 0.99; and it loses
float32 precision at large |x|, subtracting two squares.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from service.verify.onnx_edit import NodeBuilder, dims, element_type, inferred_values, initializers

# ONNX's default HardSigmoid attributes; HardSwish is defined with 1/6 and 1/2.
HARD_SIGMOID_DEFAULTS = (0.2, 0.5)
HARD_SWISH_SLOPE, HARD_SWISH_OFFSET = 1 / 6, 0.5
# A Clip-6 attribute at the float32 limit means "no bound" (its defaults).
NO_BOUND = float(np.finfo(np.float32).max)
# The element types Relu takes at the opsets the mirror converts (integers only from Relu-14).
FLOAT_TYPES = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16)


def _attribute(node: onnx.NodeProto, name: str, default: float | None) -> float | int | None:
    found = next((a for a in node.attribute if a.name == name), None)
    return default if found is None else onnx.helper.get_attribute_value(found)


def _clip_relu(builder: NodeBuilder, x: str, low: float | None, high: float | None, output: str) -> None:
    if low is not None and high is not None and low > high:
        builder.op("Expand", [builder.constant(high), builder.op("Shape", [x])], output)
        return
    if low is None and high is None:
        builder.op("Identity", [x], output)
        return
    last = high is None
    if low == 0:
        x = builder.op("Relu", [x], output if last else None)
    elif low is not None:
        a = builder.constant(low)
        x = builder.op("Add", [builder.op("Relu", [builder.op("Sub", [x, a])]), a], output if last else None)
    if high is not None:
        b = builder.constant(high)
        builder.op("Sub", [b, builder.op("Relu", [builder.op("Sub", [b, x])])], output)


def _clip_bounds(node: onnx.NodeProto, constants: dict[str, onnx.TensorProto]) -> tuple[bool, float | None,
                                                                                         float | None]:
    """(whether the bounds are known before any input, min or None, max or None)."""
    if len(node.input) == 1 and any(a.name in ("min", "max") for a in node.attribute):  # Clip-6
        low, high = _attribute(node, "min", -NO_BOUND), _attribute(node, "max", NO_BOUND)
        return True, (None if low <= -NO_BOUND else low), (None if high >= NO_BOUND else high)
    bounds = []
    for name in (list(node.input[1:3]) + ["", ""])[:2]:
        if not name:
            bounds.append(None)
        elif name in constants:
            bounds.append(float(numpy_helper.to_array(constants[name]).reshape(-1)[0]))
        else:
            return False, None, None
    return True, bounds[0], bounds[1]


def _describe(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def clip_to_relu(model: onnx.ModelProto) -> list[str]:
    constants, values = initializers(model), inferred_values(model)
    rewrites = []
    for node in [n for n in model.graph.node if n.op_type == "Clip"]:
        known, low, high = _clip_bounds(node, constants)
        if not known or element_type(values.get(node.input[0])) not in FLOAT_TYPES:
            continue  # bounds computed in the graph (left for auto_LiRPA to name), or integer shape arithmetic
        builder = NodeBuilder(model, node, values.get(node.input[0]))
        _clip_relu(builder, node.input[0], low, high, node.output[0])
        builder.commit()
        form = ("constant max (min > max)" if low is not None and high is not None and low > high
                else "Relu, Add and Sub")
        rewrites.append(f"Clip {builder.base} (min {_describe(low)}, max {_describe(high)}): now {form}")
    return rewrites


def _hard_sigmoid(builder: NodeBuilder, x: str, alpha: float, beta: float, output: str | None = None) -> str:
    output = output or builder.name("hard_sigmoid")
    scaled = builder.op("Add", [builder.op("Mul", [x, builder.constant(alpha)]), builder.constant(beta)])
    _clip_relu(builder, scaled, 0.0, 1.0, output)
    return output


def hard_activations_to_relu(model: onnx.ModelProto) -> list[str]:
    values = inferred_values(model)
    rewrites = []
    for node in [n for n in model.graph.node if n.op_type in ("HardSigmoid", "HardSwish")]:
        builder = NodeBuilder(model, node, values.get(node.input[0]))
        if node.op_type == "HardSigmoid":
            alpha = _attribute(node, "alpha", HARD_SIGMOID_DEFAULTS[0])
            beta = _attribute(node, "beta", HARD_SIGMOID_DEFAULTS[1])
            _hard_sigmoid(builder, node.input[0], alpha, beta, node.output[0])
            rewrites.append(f"HardSigmoid {builder.base} (alpha {alpha:g}, beta {beta:g}): now Relu, Mul, Add and Sub")
        else:
            gate = _hard_sigmoid(builder, node.input[0], HARD_SWISH_SLOPE, HARD_SWISH_OFFSET)
            builder.op("Mul", [node.input[0], gate], node.output[0])
            rewrites.append(f"HardSwish {builder.base}: now x * HardSigmoid(x) in Relu, Mul, Add and Sub")
        builder.commit()
    return rewrites


def dropout_to_identity(model: onnx.ModelProto) -> list[str]:
    """Dropout at inference (no training_mode, or a constant false one) passes its input through; auto_LiRPA
    0.3 bounds a traced Dropout as in training and refuses it before a forward pass has drawn its mask."""
    constants, used = initializers(model), {name for node in model.graph.node for name in node.input}
    used |= {output.name for output in model.graph.output}
    rewrites = []
    for node in [n for n in model.graph.node if n.op_type == "Dropout"]:
        training = node.input[2] if len(node.input) > 2 else ""
        if (training and (training not in constants or numpy_helper.to_array(constants[training]).any())
                or len(node.output) > 1 and node.output[1] in used):
            continue  # dropout in training mode, or a mask the graph reads
        builder = NodeBuilder(model, node, None)
        builder.op("Identity", [node.input[0]], node.output[0])
        builder.commit()
        rewrites.append(f"Dropout {builder.base}: now Identity (inference)")
    return rewrites


def _channel_vector(shape: list[int | None] | None) -> bool:
    """[N, C, 1, ..., 1]: a vector per sample with trailing unit axes (a 1x1 spatial map)."""
    return shape is not None and len(shape) >= 3 and shape[1] is not None and all(d == 1 for d in shape[2:])


def unit_axes_to_flatten(model: onnx.ModelProto) -> list[str]:
    """Squeeze/Reshape of [N, C, 1, 1] to [N, C], and Flatten(axis=0) of a batch of 1, become Flatten(axis=1)."""
    values = inferred_values(model)
    rewrites = []
    for node in [n for n in model.graph.node if n.op_type in ("Squeeze", "Reshape", "Flatten")]:
        source, result = dims(values.get(node.input[0])), dims(values.get(node.output[0]))
        if not _channel_vector(source) or result is None or len(result) != 2:
            continue
        if node.op_type == "Flatten":
            if _attribute(node, "axis", 1) != 0 or source[0] != 1:
                continue
        elif result[1] != source[1]:
            continue
        builder = NodeBuilder(model, node, values.get(node.input[0]))
        builder.op("Flatten", [node.input[0]], node.output[0], axis=1)
        builder.commit()
        rewrites.append(f"{node.op_type} {builder.base} of [N, {source[1]}, 1, 1]: now Flatten(axis=1) (batch kept)")
    return rewrites


def flatten_output(model: onnx.ModelProto) -> list[str]:
    """A graph output of [N, C, 1, 1] (old zoo classifiers) becomes [N, C], as the service reads it."""
    output = model.graph.output[0]
    shape = dims(inferred_values(model).get(output.name))
    if not _channel_vector(shape):
        return []
    producer = next((node for node in model.graph.node if output.name in node.output), None)
    if producer is None:
        return []  # an output that is an input or a constant: nothing a classifier computes
    spatial = f"{output.name}/spatial"
    producer.output[list(producer.output).index(output.name)] = spatial
    for node in model.graph.node:
        node.input[:] = [spatial if name == output.name else name for name in node.input]
    model.graph.node.append(onnx.helper.make_node("Flatten", [spatial], [output.name], name=f"{output.name}/flatten",
                                                  axis=1))
    del output.type.tensor_type.shape.dim[2:]
    return [f"output {output.name} of [N, {shape[1]}, 1, 1]: now Flatten(axis=1) to [N, {shape[1]}]"]
