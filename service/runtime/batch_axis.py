"""Freeing a batch axis the exporter fixed at 1, and the proof that the freed graph computes the same per
image (onnx and numpy only: the sessions are the caller's, ``service.runtime.batch_serving``).

``torch.onnx.export`` without ``dynamic_axes`` fixes the input's batch at 1 (the shape it traced), and so does
every shape it folded into a constant on the way. Served as exported, such a model takes one image per session
call: a 224 x 224 ShuffleNet took 67 s for an occlusion map, a 112 x 112 resnet18 explained 1.36x slower than
its dynamic-batch twin. ``free_batch_axis`` derives the dynamic-batch graph:

- the input's batch axis becomes the symbolic ``batch``, and so does the leading 1 of every graph output;
- the exporter's ``value_info`` shapes (all inferred at batch 1) are dropped: onnxruntime infers them again;
- ``free_batch_reshapes``: a Reshape of an image-dependent tensor whose first axis is 1, to a constant shape
  that starts with 1 (ShuffleNet's channel shuffle, ``x.view(1, -1)`` heads): [1, -1] becomes a Flatten,
  otherwise the leading 1 becomes -1 and any other -1 is resolved from the inferred shape (the verification
  mirror shares this pass: ``service.verify.graph_passes``, whose bound propagation traces shapes and needs a
  single -1).

What is not rewritten (a batch merged into another axis, as attention's [tokens, batch * heads, dim] reshapes;
constants expanded to the traced batch; an operator that reduces or indexes the batch axis) either fails on a
batch of several images or gives other scores: ``prove_per_image`` runs the freed graph on a probe batch against
one-at-a-time runs of the graph as exported, and only a graph that passes is served
(``service.runtime.batch_serving``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import onnx
from onnx import numpy_helper

from service.verify.graph_normalise import constant_tensor

BATCH_DIM_PARAM = "batch"
# Images in the probe batch: more than 2 so that a graph that only runs at the traced batch or at two (a padded
# pair) is caught, few enough that the proof costs a handful of forward passes at load.
PROOF_BATCH = 4
PROOF_SEED = 20260613
# How far a batched score may be from the same image's one-at-a-time score, relative to that image's largest
# score (plus an absolute floor for rows of zeros). Batched and single runs of the same graph differ only by the
# order of sums in the kernels (GEMM blocking, thread splits): a few float32 ulps (eps 1.2e-7) times the
# square root of the sum's length, ~1e-6 of the scale for thousands of terms; 1e-4 leaves 100x margin, while a
# graph that mixes images (a mean over the batch of random images) moves scores by a fraction of their scale.
# float16 keeps 11 significant bits (eps 9.8e-4) and kernels that accumulate in float16 round at every layer:
# 1e-2, the conformance matrix's float16 tolerance (tests/conformance_models.FLOAT16).
PROOF_RTOL = {onnx.TensorProto.FLOAT16: 1e-2, onnx.TensorProto.BFLOAT16: 3e-2}
DEFAULT_PROOF_RTOL = 1e-4
PROOF_ATOL = 1e-6


class BatchAxis(StrEnum):
    """How a model's batch axis is served."""

    DYNAMIC = "dynamic"  # the graph's own batch axis is dynamic
    FREED = "freed"  # the graph fixes a batch of 1; the freed graph is served, proved equal per image
    FIXED = "fixed"  # the graph's fixed batch is served as exported (chunks of that batch, a short one padded)


class NotFreed(Exception):
    """The graph's batch axis cannot be freed; the message says why (one line, for ModelInfo)."""


def free_batch_axis(model: onnx.ModelProto) -> tuple[onnx.ModelProto, list[str]]:
    """A copy of ``model`` (a single image input whose batch axis is fixed at 1) with that axis dynamic, and
    one line per rewrite. Raises NotFreed for a graph whose input is not fixed at batch 1."""
    freed = onnx.ModelProto()
    freed.CopyFrom(model)
    graph = freed.graph
    initializer_names = {tensor.name for tensor in graph.initializer}
    inputs = [value for value in graph.input if value.name not in initializer_names]
    if len(inputs) != 1:
        raise NotFreed(f"the graph has {len(inputs)} inputs; only a single image input is freed")
    dims = inputs[0].type.tensor_type.shape.dim
    if not dims or dims[0].dim_value != 1:
        raise NotFreed("the input's batch axis is not fixed at 1")
    # The Reshapes first: they read the shapes inferred at batch 1.
    rewrites = free_batch_reshapes(freed)
    _make_symbolic(dims[0])
    rewrites.append(f"input {inputs[0].name}: batch 1 -> {BATCH_DIM_PARAM}")
    for output in graph.output:
        output_dims = output.type.tensor_type.shape.dim
        if output_dims and output_dims[0].dim_value == 1:
            _make_symbolic(output_dims[0])
            rewrites.append(f"output {output.name}: batch 1 -> {BATCH_DIM_PARAM}")
    if len(graph.value_info):
        rewrites.append(f"{len(graph.value_info)} value_info shapes inferred at batch 1: dropped")
        del graph.value_info[:]
    return freed, rewrites


def _make_symbolic(dim: onnx.TensorShapeProto.Dimension) -> None:
    dim.Clear()
    dim.dim_param = BATCH_DIM_PARAM


def free_batch_reshapes(model: onnx.ModelProto) -> list[str]:
    """Reshapes that would keep the traced batch of 1, rewritten in place to keep any batch; one line each.

    A Reshape is rewritten when its data depends on the graph's input (a weight's reshape has no batch), its
    first axis is 1 in the inferred shapes or unknown there (ONNX's inference gives up after a Slice whose ends
    are computed, as ShuffleNet's channel split; the leading 1 of a reshape of image data is then the batch, and
    a wrong guess fails the proof), and its shape is a constant (initializer or Constant node) that starts with
    1 and copies no input dimension (0). [1, -1] becomes a Flatten; otherwise the leading 1 becomes -1, the
    batch, and any other -1 is resolved from the inferred shape (left as exported when it cannot be)."""
    graph = model.graph
    initializers = {tensor.name: tensor for tensor in graph.initializer}
    constants = {node.output[0]: node for node in graph.node if node.op_type == "Constant"}
    inferred = onnx.shape_inference.infer_shapes(model)
    input_dims = {value.name: [d.dim_value or None for d in value.type.tensor_type.shape.dim]
                  for value in [*inferred.graph.value_info, *inferred.graph.input]}
    from_input = image_dependent(model)
    rewrites = []
    for index, node in enumerate(list(graph.node)):
        if node.op_type != "Reshape" or node.input[0] not in from_input:
            continue
        if node.input[1] in initializers:
            shape = numpy_helper.to_array(initializers[node.input[1]]).copy()
        elif node.input[1] in constants and constant_tensor(constants[node.input[1]]) is not None:
            shape = numpy_helper.to_array(constant_tensor(constants[node.input[1]])).copy()
        else:
            continue
        dims = input_dims.get(node.input[0]) or [None]
        if shape.size < 2 or shape[0] != 1 or dims[0] not in (1, None) or (shape == 0).any():
            continue  # not a reshape of the batch-1 axis, or one that copies input dimensions (0)
        name = node.name or node.output[0]
        if shape.size == 2 and shape[1] == -1:
            flatten = onnx.helper.make_node("Flatten", [node.input[0]], list(node.output), name=node.name, axis=1)
            graph.node.remove(node)
            graph.node.insert(index, flatten)
            rewrites.append(f"Reshape {name}: [1, -1] -> Flatten (batch kept)")
            continue
        if (shape[1:] == -1).any():
            known = [d for d in dims[1:] if d]
            if dims[0] is None or len(known) != len(dims) - 1:
                continue  # the other -1 cannot be resolved: left as exported (the proof or the mirror decides)
            shape[1:][shape[1:] == -1] = int(np.prod(known)) // int(np.prod(shape[1:][shape[1:] != -1]))
        shape[0] = -1
        # A fresh tensor: the exported one may be shared with another Reshape.
        freed = numpy_helper.from_array(shape.astype(np.int64), f"{node.input[1]}_batch_freed_{index}")
        graph.initializer.append(freed)
        node.input[1] = freed.name
        rewrites.append(f"Reshape {name}: shape {shape.tolist()} (leading 1 -> -1, the batch)")
    return rewrites


def image_dependent(model: onnx.ModelProto) -> set[str]:
    """The tensors computed from the graph's inputs (initializers listed among the inputs by IR 3 excluded):
    only they carry a batch axis. Nodes are in topological order, as ONNX requires."""
    dependent = {value.name for value in model.graph.input} - {tensor.name for tensor in model.graph.initializer}
    for node in model.graph.node:
        if any(name in dependent for name in node.input):
            dependent.update(name for name in node.output if name)
    return dependent


@dataclass(frozen=True)
class Proof:
    """The freed graph against one-at-a-time runs of the graph as exported, on a probe batch."""

    holds: bool
    # One line: the largest deviation found and the tolerance, or why the freed graph failed.
    summary: str


Scores = Callable[[np.ndarray], Sequence[np.ndarray]]  # images -> one (N, values) array per output compared


def prove_per_image(one_at_a_time: Scores, batched: Scores, images: np.ndarray, names: Sequence[str],
                    elem_type: int) -> Proof:
    """Whether ``batched`` (the freed graph, one call for all of ``images``) gives every image, in every output of
    ``names``, the scores ``one_at_a_time`` (the graph as exported, one image a call) gives it, within
    ``PROOF_RTOL`` (by ``elem_type``, the graph's input element type) of that image's score scale.

    A freed graph that fails to run, returns another number of rows, or mixes images across the batch (scores
    that depend on the other images) does not hold."""
    reference = [np.asarray(rows, dtype=np.float64) for rows in one_at_a_time(images)]
    try:
        served = [np.asarray(rows, dtype=np.float64) for rows in batched(images)]
    except Exception as error:  # noqa: BLE001 - onnxruntime's own types, wrapped: a shape left at the traced batch
        cause = error.__cause__ or error
        return Proof(False, f"the freed graph fails on a batch of {len(images)} images "
                            f"({' '.join(str(cause).split())[:300]})")
    rtol = PROOF_RTOL.get(elem_type, DEFAULT_PROOF_RTOL)
    worst = 0.0
    for name, expected, rows in zip(names, reference, served):
        if rows.shape != expected.shape:
            return Proof(False, f"the freed graph gives {name!r} of shape {list(rows.shape)} for a batch of "
                                f"{len(images)} images, one at a time {list(expected.shape)}")
        for image in range(len(images)):
            scale = float(np.abs(expected[image]).max(initial=0.0))
            deviation = np.abs(rows[image] - expected[image])
            worst = max(worst, float(deviation.max(initial=0.0)) / max(scale, PROOF_ATOL))
            if not np.all(deviation <= rtol * scale + PROOF_ATOL):
                where = int(np.argmax(deviation))
                return Proof(False, f"on a batch of {len(images)} images the freed graph's {name!r} differs from "
                                    f"one-at-a-time runs (image {image}, class {where}: {rows[image, where]:.6g} vs "
                                    f"{expected[image, where]:.6g}, beyond {rtol:g} of the scores' scale "
                                    f"{scale:.3g}): the graph mixes images across the batch")
    return Proof(True, f"proved on {len(images)} images against one-at-a-time runs: largest deviation {worst:.2g} "
                       f"of the scores' scale (tolerance {rtol:g})")
