"""Cut a mirror in two at a named layer, for hybrid verification (EVA on models that cannot be bounded whole).

The mirror is a ``torch.fx.GraphModule`` whose modules carry the ONNX node names (onnx2torch), so a layer is
named as it appears in the ONNX graph (Netron shows the same names). The cut must separate the graph: no
node after the layer may read a node before it (a residual connection across the cut, or a shape read from
the input), or the tail would need more than the layer's output. ``onnx_cut`` does the same on the ONNX
graph, for models onnx2torch cannot convert whole.
"""

from __future__ import annotations

import re
from typing import Any

from service.errors import InvalidArgument

FIELD = "eva.split_layer"


def normalised_name(name: str) -> str:
    """A node name without case or punctuation: onnx2torch's module targets ("0/features/0/Conv") and the
    ONNX names they come from ("/0/features.0/Conv") then compare equal."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def layer_names(module: Any) -> list[str]:
    """The names a cut can be made at: the module nodes of the mirror, in order."""
    return [str(node.target) for node in module.graph.nodes if node.op == "call_module"]


def _crossing(nodes: list, position: int):
    """(reader, source) for the first node after ``position`` that reads a node before it other than the cut
    itself (constants excepted), else None."""
    cut, early = nodes[position], set(nodes[:position + 1])
    for node in nodes[position + 1:]:
        for source in node.all_input_nodes:
            if source in early and source is not cut and source.op != "get_attr":
                return node, source
    return None


def _weighted(module: Any, nodes: list) -> bool:
    """Whether ``nodes`` hold a layer with weights (a module with parameters, or a constant they read): a tail
    without one verifies nothing the head's box does not already say."""
    for node in nodes:
        if node.op == "get_attr":
            return True
        if node.op == "call_module" and any(True for _ in module.get_submodule(str(node.target)).parameters()):
            return True
    return False


def candidate_cuts(module: Any) -> list[str]:
    """Layers the mirror can be cut at, latest first: those that separate the graph and leave a layer with
    weights after them."""
    nodes = list(module.graph.nodes)
    cuts = []
    for position in range(len(nodes) - 1, -1, -1):
        node = nodes[position]
        after = nodes[position + 1:]
        if node.op != "call_module" or not _weighted(module, after):
            continue
        if _crossing(nodes, position) is None:
            cuts.append(str(node.target))
    return cuts


def operator_count(module: Any) -> int:
    """Operators of a (tail) module: its module and function calls."""
    return sum(node.op in ("call_module", "call_function", "call_method") for node in module.graph.nodes)


def split(module: Any, layer: str) -> tuple[Any, Any]:
    """(head, tail): head(x) is the layer's output, tail(head(x)) == module(x)."""
    import torch.fx as fx

    nodes = list(module.graph.nodes)
    wanted = normalised_name(layer)
    matches = [n for n in nodes
               if n.op == "call_module" and wanted in (normalised_name(str(n.target)), normalised_name(n.name))]
    if not matches:
        names = layer_names(module)
        raise InvalidArgument(f"no layer {layer!r} in the model; layers are named as in the ONNX graph, e.g. "
                              f"{', '.join(names[:4])} ... {names[-1] if names else ''}", field=FIELD)
    cut = matches[0]
    position = nodes.index(cut)
    before, after = nodes[:position + 1], nodes[position + 1:]
    if not any(n.op == "call_module" for n in after):
        raise InvalidArgument(f"layer {layer!r} is the last one: nothing is left to bound", field=FIELD)
    crossing = _crossing(nodes, position)
    if crossing is not None:
        reader, source = crossing
        raise InvalidArgument(f"layer {layer!r} does not cut the graph: {reader.name} after it also reads "
                              f"{source.name} before it (a skip connection); cut after the block", field=FIELD)

    head_graph = fx.Graph()
    head_env: dict[Any, Any] = {}
    for node in before:
        head_env[node] = head_graph.node_copy(node, lambda n: head_env[n])
    head_graph.output(head_env[cut])

    tail_graph = fx.Graph()
    tail_env: dict[Any, Any] = {cut: tail_graph.placeholder("features")}

    def lookup(node):
        if node not in tail_env:  # a constant (get_attr) defined before the cut
            tail_env[node] = tail_graph.node_copy(node, lookup)
        return tail_env[node]

    for node in after:
        tail_env[node] = tail_graph.node_copy(node, lookup)
    return fx.GraphModule(module, head_graph), fx.GraphModule(module, tail_graph)
