"""ONNX-level rewrites that make an exported classifier fit for bound propagation (no torch here).

Each pass edits the model in place and returns one line per rewrite, which the mirror reports; the mirror
then checks the result against the served model, so a rewrite that changed the function is caught there.
``prepare`` runs, in this order: the normalisation of ``graph_normalise`` (IR and opset upgrades, Constant
nodes and Identity copies of weights made initializers), the passes below, and the exact rewrites of
``boundable_ops`` (Clip, HardSigmoid, HardSwish into Relu arithmetic; [N, C, 1, 1] squeezes into Flatten).

- ``fix_batch_reshapes`` (models exported at batch 1 only): a Reshape to a constant shape starting with 1,
  of an image-dependent tensor whose first axis is that batch of 1, breaks any other batch (onnx2torch #113;
  the alpha,beta-CROWN loader's ``fix_batch_size`` quirk). [1, -1] becomes a Flatten; otherwise the leading 1
  becomes -1 and any other -1 is resolved from the inferred shape, since bound propagation traces the graph
  and a shape left to infer beside the batch would freeze at the traced batch. It is the runtime's pass
  (``service.runtime.batch_axis.free_batch_reshapes``), shared: the mirror reads the graph as loaded, not the
  freed graph a session may serve.
- ``strip_terminal_softmax``: bounds of a Softmax are loose and EVA reasons on logits, so a graph that ends
  in Softmax or LogSoftmax ends before it.
- ``fold_batchnorm``: a BatchNormalization right after a Conv is folded into the Conv's weights and bias:
  one affine layer fewer for auto_LiRPA to relax, the same function up to rounding.
- ``matmul_to_gemm``: a MatMul of a 2-D activation by a constant matrix, with the constant bias Add that
  usually follows it, becomes one Gemm, which onnx2torch turns into ``nn.Linear``: auto_LiRPA merges the
  specification matrix into a final Linear layer (tighter IBP), and 0.3 fails on IBP with a specification
  over a final MatMul (the alpha,beta-CROWN loader's ``merge_gemm`` does the same).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from service.errors import FailedPrecondition
from service.runtime import batch_axis
from service.verify import boundable_ops, graph_normalise
from service.verify.onnx_edit import consumers as _consumers
from service.verify.onnx_edit import initializers as _initializers
from service.verify.onnx_edit import remove_unused

TERMINAL_SOFTMAX = ("Softmax", "LogSoftmax")


def _constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Values known before any input: initializers, Constant nodes, and Identity copies of those (exporters
    share equal tensors, e.g. the zero biases of several BatchNorms, through Identity nodes)."""
    values = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant" and graph_normalise.constant_tensor(node) is not None:
            values[node.output[0]] = numpy_helper.to_array(graph_normalise.constant_tensor(node))
        elif node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
    return values


# The Reshapes that keep the traced batch of 1, freed: the runtime's pass (service.runtime.batch_axis), which also
# frees such graphs for serving. Bound propagation needs the single -1 it leaves (the batch).
fix_batch_reshapes = batch_axis.free_batch_reshapes


def strip_terminal_softmax(model: onnx.ModelProto) -> list[str]:
    graph = model.graph
    output = graph.output[0]
    producer = next((node for node in graph.node if output.name in node.output), None)
    if producer is None or producer.op_type not in TERMINAL_SOFTMAX or len(_consumers(model, output.name)) > 0:
        return []
    logits = producer.input[0]
    graph.node.remove(producer)
    for info in [info for info in graph.value_info if info.name == logits]:
        graph.value_info.remove(info)  # the logits become a graph output, described there
    output.name = logits  # same element type and shape: a Softmax keeps both
    return [f"{producer.op_type} {producer.name or output.name}: removed, the mirror explains logits"]


def fold_batchnorm(model: onnx.ModelProto) -> list[str]:
    graph, initializers, constants = model.graph, _initializers(model), _constant_values(model)
    rewrites = []
    for conv in list(graph.node):
        if conv.op_type != "Conv" or not all(name in initializers for name in conv.input[1:]):
            continue
        if len(_consumers(model, conv.input[1])) != 1:
            continue  # a weight shared with another node cannot be rescaled for this one
        consumers = _consumers(model, conv.output[0])
        if len(consumers) != 1 or consumers[0].op_type != "BatchNormalization":
            continue
        norm = consumers[0]
        if len(norm.output) > 1 and any(norm.output[1:]) or not all(n in constants for n in norm.input[1:5]):
            continue  # training-mode outputs, or statistics computed in the graph
        if any(o.name == conv.output[0] for o in graph.output):
            continue
        epsilon = next((a.f for a in norm.attribute if a.name == "epsilon"), 1e-5)
        gamma, beta, mean, var = (constants[n].astype(np.float64) for n in norm.input[1:5])
        weight = numpy_helper.to_array(initializers[conv.input[1]])
        bias = (numpy_helper.to_array(initializers[conv.input[2]]).astype(np.float64) if len(conv.input) > 2
                else np.zeros(weight.shape[0]))
        scale = gamma / np.sqrt(var + epsilon)
        folded_weight = weight.astype(np.float64) * scale.reshape(-1, *([1] * (weight.ndim - 1)))
        initializers[conv.input[1]].CopyFrom(numpy_helper.from_array(folded_weight.astype(weight.dtype),
                                                                     conv.input[1]))
        # A fresh bias: the Conv's own may be shared with another node.
        folded_bias = numpy_helper.from_array(((bias - mean) * scale + beta).astype(weight.dtype),
                                              f"{norm.output[0]}_folded_bias")
        graph.initializer.append(folded_bias)
        del conv.input[2:]
        conv.input.append(folded_bias.name)
        conv.output[0] = norm.output[0]  # the Conv now computes what the BatchNormalization did
        graph.node.remove(norm)
        rewrites.append(f"BatchNormalization {norm.name or norm.output[0]}: folded into Conv {conv.name}")
    remove_unused(model)
    return rewrites


def matmul_to_gemm(model: onnx.ModelProto) -> list[str]:
    initializers, constants = _initializers(model), _constant_values(model)
    inferred = onnx.shape_inference.infer_shapes(model)
    ranks = {value.name: len(value.type.tensor_type.shape.dim)
             for value in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]
             if value.type.tensor_type.HasField("shape")}
    graph_outputs = {output.name for output in model.graph.output}
    rewrites = []
    for node in list(model.graph.node):
        if (node.op_type != "MatMul" or node.input[1] not in initializers or ranks.get(node.input[0]) != 2
                or len(initializers[node.input[1]].dims) != 2):
            continue
        weight = initializers[node.input[1]]
        outputs, bias_values = list(node.output), None
        consumers = _consumers(model, node.output[0])
        if len(consumers) == 1 and consumers[0].op_type == "Add" and node.output[0] not in graph_outputs:
            add = consumers[0]
            other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
            if other in constants and constants[other].size == weight.dims[1]:
                bias_values = constants[other].reshape(-1)
                outputs = list(add.output)
                model.graph.node.remove(add)
        # With a bias always: a bias-free Linear traces back to a MatMul in auto_LiRPA's own export.
        dtype = onnx.helper.tensor_dtype_to_np_dtype(weight.data_type)
        bias = numpy_helper.from_array(
            (np.zeros(weight.dims[1]) if bias_values is None else bias_values).astype(dtype),
            f"{outputs[0]}_gemm_bias")
        model.graph.initializer.append(bias)
        gemm = onnx.helper.make_node("Gemm", [*node.input, bias.name], outputs, name=node.name)
        model.graph.node.insert(list(model.graph.node).index(node), gemm)
        model.graph.node.remove(node)
        rewrites.append(f"MatMul {node.name or node.output[0]}{' + Add' if bias_values is not None else ''}: now a "
                        "Gemm (a Linear layer for auto_LiRPA)")
    remove_unused(model)
    return rewrites


FIELD = "model_name"


def _check(model: onnx.ModelProto, after: str | None, strict: bool) -> None:
    """The ONNX checker and shape inference (strict where the model as loaded passes it) on ``model``: a pass
    that leaves an invalid graph is named, not reported as onnx's own exception."""
    try:
        onnx.checker.check_model(model, full_check=strict)
        if not strict:
            onnx.shape_inference.infer_shapes(model, check_type=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError, ValueError) as error:
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        where = (f"the graph pass {after} leaves a graph the ONNX checker rejects" if after
                 else "the model fails the ONNX checker before any rewrite")
        raise FailedPrecondition(f"{where} ({reason}); it cannot be mirrored for verification",
                                 field=FIELD) from error


def _strict_inference_passes(model: onnx.ModelProto) -> bool:
    try:
        onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
        return True
    except (onnx.shape_inference.InferenceError, ValueError):
        return False


def prepare(model: onnx.ModelProto, *, batch_one: bool,
            fold_batch_norm: bool = True) -> tuple[onnx.ModelProto, list[str], str | None]:
    """A copy of ``model`` with the passes applied: (the copy, what they rewrote, the terminal softmax op that
    was removed or None). ``batch_one``: the model was exported with a fixed batch of 1.

    The order matters: the IR upgrade comes before any pass that adds an initializer (IR 3 would want it
    among the graph inputs), constants become initializers before the passes that read them, and the
    batch-1 Reshapes are freed before the [N, C, 1, 1] ones become Flatten. The ONNX checker (and shape
    inference) runs after every pass that rewrote something; a pass that breaks the graph is refused by
    name (FailedPrecondition on ``model_name``)."""
    prepared = onnx.ModelProto()
    prepared.CopyFrom(model)
    strict = _strict_inference_passes(prepared)
    _check(prepared, None, strict)
    passes = [graph_normalise.upgrade_ir, graph_normalise.upgrade_opset, graph_normalise.constants_to_initializers,
              graph_normalise.float16_to_float32,
              graph_normalise.identity_constants_to_initializers, graph_normalise.fold_constant_dequantize]
    passes += [fix_batch_reshapes] if batch_one else []
    passes += [strip_terminal_softmax, boundable_ops.flatten_output, boundable_ops.clip_to_relu,
               boundable_ops.hard_activations_to_relu, boundable_ops.dropout_to_identity,
               boundable_ops.unit_axes_to_flatten, matmul_to_gemm]
    passes += [fold_batchnorm] if fold_batch_norm else []
    rewrites, stripped = [], None
    for graph_pass in passes:
        lines = graph_pass(prepared)
        if graph_pass is strip_terminal_softmax and lines:
            stripped = lines[0].split()[0]
        if lines:
            _check(prepared, graph_pass.__name__, strict)
        rewrites += lines
    return prepared, rewrites, stripped
