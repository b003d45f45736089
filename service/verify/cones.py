"""Which neurons of a bounded graph a change of its input box can reach: the forward cone of the change.

A CROWN bound of a neuron depends only on the input box inside the neuron's backward cone: its backward walk
only meets neurons with a path of nonzero weight to it, whose relaxations depend on their own bounds, hence
(inductively) on the box inside their own, smaller cones; IBP, which picks the unstable neurons auto_LiRPA
bounds, is cone-local too. Two boxes that differ only on some input elements therefore give the same bounds
to every neuron outside the forward cone of those elements: EVA's regions differ from the full ball only in
the group held at its clean value (reference note eva.md section 2), so most of their intermediate bounds are
the ball's (``bounds.MarginBounds``).

The cone is taken structurally, with all-ones kernels (a superset of the true dependence: a zero weight still
counts as a path), through the operators whose reach is local: Conv, MaxPool and elementwise activations.
Any other operator with a perturbed input reaches its whole output, which only means recomputing more.
"""

from __future__ import annotations

from typing import Any

# Operators whose output element depends on the same input element only (auto_LiRPA class names).
ELEMENTWISE = {"BoundRelu", "BoundNeg", "BoundSigmoid", "BoundTanh", "BoundIdentity", "BoundDropout"}
# Operators whose CROWN backward step reads no bounds of their inputs (auto_LiRPA class names).
LINEAR = {"BoundConv", "BoundLinear", "BoundMatMul", "BoundReduceMean", "BoundReduceSum", "BoundAdd", "BoundSub",
          "BoundFlatten", "BoundReshape"}


def reached(bounded: Any, changed: Any, names: list[str]) -> dict[str, Any]:
    """Per node of ``names``: a bool mask (batch, *node shape), True where a change of the input elements
    ``changed`` (bool, the input's shape with its batch) can move the node's bounds."""
    import torch
    import torch.nn.functional as F

    masks: dict[str, Any] = {}

    def cone(node) -> Any:
        if node.name in masks:
            return masks[node.name]
        kind = type(node).__name__
        perturbed_inputs = [i for i in node.inputs if getattr(i, "perturbed", False)]
        if kind == "BoundInput" and getattr(node, "perturbed", False):
            mask = changed.float()
        elif not getattr(node, "perturbed", False):
            mask = None  # constant under every box
        elif (kind == "BoundConv" and len(perturbed_inputs) == 1 and perturbed_inputs[0] is node.inputs[0]
              and len(node.output_shape) == 4):  # Conv2d; any other falls to the whole output
            source = cone(node.inputs[0])
            weight = node.inputs[1].forward()
            ones = torch.ones((weight.shape[0], source.shape[1] // node.groups, *weight.shape[2:]),
                              dtype=source.dtype, device=source.device)
            mask = F.conv2d(source, ones, None, node.stride, node.padding, node.dilation, node.groups)
        elif kind == "BoundMaxPool" and len(node.output_shape) == 4:
            mask = F.max_pool2d(cone(node.inputs[0]), node.kernel_size, node.stride, node.padding)
        elif kind in ELEMENTWISE:
            mask = cone(node.inputs[0])
        else:
            mask = changed.new_ones((changed.shape[0], *node.output_shape[1:]), dtype=torch.float32)
        masks[node.name] = mask
        return mask

    return {name: cone(bounded[name]) > 0 for name in names}


def settled(bounded: Any, known: dict[str, tuple[Any, Any]]) -> dict[str, Any]:
    """Per node of ``known`` (a ReLU's input, with bounds (lower, upper) valid on the box being bounded): the
    neurons whose exact bounds cannot change the result, given those bounds. A ReLU whose input is certainly
    negative outputs [0, 0] whatever its input bounds; one whose input is certainly non-negative is the
    identity in CROWN's relaxation whatever they are, so its bounds matter only where an operator downstream
    reads bounds (another activation or pooling, IBP's reference for a later layer): only in the last layer of
    activations are such neurons settled too."""
    found = {}
    for name, (low, high) in known.items():
        node = bounded[name]
        stable = high <= 0
        if _last_activation(bounded, node):
            stable = stable | (low >= 0)
        found[name] = stable
    return found


def _last_activation(bounded: Any, node: Any) -> bool:
    """Whether ``node`` feeds only ReLUs from which every node reached is linear in CROWN's backward walk (reads
    no bounds): the last layer of activations before the output."""
    consumers = [bounded[name] for name in node.output_name]
    if not all(type(consumer).__name__ == "BoundRelu" for consumer in consumers):
        return False
    seen, queue = set(), [bounded[name] for consumer in consumers for name in consumer.output_name]
    while queue:
        current = queue.pop()
        if current.name in seen:
            continue
        seen.add(current.name)
        if type(current).__name__ not in LINEAR:
            return False
        queue.extend(bounded[name] for name in current.output_name)
    return True
