"""A PyTorch mirror of a loaded ONNX model, for auto_LiRPA, checked before it is trusted.

The mirror is onnx2torch's conversion of the graph after ``graph_passes.prepare`` (batch-1 Reshapes
freed, a terminal Softmax removed, BatchNorm folded into Conv, constant MatMuls made Linear). Before any
bound is computed, four computations on the same random batch of 3 must agree to 1e-3 of the outputs' scale + 1e-5
absolute: onnxruntime on the prepared graph, the mirror, auto_LiRPA's forward of the mirror, and
auto_LiRPA's bounds of a zero-width box around each input. Where the mirror and onnxruntime disagree, the
error names the first node whose outputs differ; where a converter or auto_LiRPA lacks an operator, it
names the operator and its node. Each bound method is run on a tiny box (``capability``) the first time it is
asked for: only those that run and hold are offered.

A model that cannot be bounded whole keeps its mirror, with the reason, for hybrid EVA (Fel et al. 2023,
Fig. 3): cut at a layer, the head runs on the mirror (PyTorch) or, where onnx2torch cannot convert the whole
graph, on onnxruntime (``onnx_cut``); only the tail is converted, checked like the whole and bounded.
Mirrors, their cuts (and their failures) are built once per loaded model and cached.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import onnx
import onnxruntime as ort

from service.errors import Cancelled, DeadlineExceeded, FailedPrecondition, ServiceError
from service.runtime.model import LoadedModel
from service.runtime.scores import log_softmax, softmax
from service.runtime.signature import Layout
from service.verify import capability, graph_passes, onnx_cut
from service.verify import split as split_module
from service.verify.capability import MethodCheck, MethodChecks
from service.verify.device import torch_device
from service.verify.lirpa_compat import (LirpaUnavailable, auto_lirpa, available_methods, bounded_module,
                                         compute_upper_bounds)
from service.verify.split import normalised_name

log = logging.getLogger(__name__)

# The mirror against onnxruntime on the same graph: the largest difference over the check batch, relative to
# the largest output. Relative to each element (numpy's allclose) is too strict for deep networks: resnet50,
# regnet_y_400mf and densenet121 differ by 2e-4 to 3e-4 on unit-scale logits, the rounding of float32
# convolutions computed in another order, while a wrong conversion is off by the outputs' own scale.
RTOL, ATOL = 1e-3, 1e-5
# The served session may run on CUDA, whose kernels round differently from the CPU's; a float16 model is mirrored
# in float32 (graph_normalise.float16_to_float32), a float16 rounding (2**-11) per operation away.
SERVED_RTOL, SERVED_ATOL = 1e-3, 1e-4
FLOAT16_RTOL = 2e-2
MIRRORED_INPUTS = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
CHECK_BATCH, CHECK_SEED = 3, 0
FIELD = "model_name"
# A job waiting for another job's build of the same mirror checks its deadline this often (seconds).
WAIT_STEP = 0.1


# Cuts tried, latest first, when split_layer is auto and the whole model does not bound with the method: each
# try converts (ONNX route) and wraps a tail; the latest cut's tail is one layer and almost always bounds.
AUTO_CUTS = 8
WHOLE, AUTO = "whole", "auto"


@dataclass
class HybridParts:
    """The model cut at ``layer``: the head gives the cut tensor from model inputs, the tail the logits from it."""

    layer: str  # the cut, as the ONNX node is named
    head: Callable[[Any], Any]  # model inputs (torch) -> the cut tensor (torch)
    head_runtime: str  # "pytorch" (the mirror's head) or "onnxruntime" (the prepared graph)
    tail: Any  # torch.nn.Module: the cut tensor -> logits
    bounded_tail: Any  # auto_LiRPA BoundedModule of ``tail``, None when it cannot be bounded
    operators: int  # in the tail
    methods: MethodChecks  # per compat method name, on the tail

    @property
    def differentiable(self) -> bool:
        return self.head_runtime == "pytorch"

    @property
    def verified(self) -> str:
        return f"tail after {self.layer}: {self.operators} operator{'s' if self.operators != 1 else ''}"


@dataclass
class Mirror:
    module: Any  # torch.nn.Module (onnx2torch GraphModule), eval, float32, on ``device``; None when onnx2torch
    # cannot convert the whole graph (or its conversion diverges): then only the ONNX route's tails are mirrored
    bounded: Any  # auto_LiRPA BoundedModule of ``module``, None when the whole model cannot be bounded
    device: str
    rewrites: list[str]
    max_error: float  # worst |mirror - onnxruntime| over the check batch; -1 without a whole mirror
    channels_first: bool
    check_input: Any  # the check batch, as model input on ``device``
    prepared: Any = None  # onnx.ModelProto after graph_passes, batch axis free
    reference: Any = None  # onnxruntime's logits of the prepared graph on the check batch (numpy)
    whole_reason: str = ""  # why the whole model cannot be bounded at all
    # Per compat method name, on the whole model; each checked when first asked for (``check``).
    methods: MethodChecks = field(default_factory=lambda: MethodChecks.refused("not mirrored"))
    # A BoundedModule keeps the state of a bound computation in its nodes: one computation at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)
    hybrids: dict[str, "HybridParts | _Refusal"] = field(default_factory=dict)
    _cuts: list[str] | None = None
    report: dict[str, Any] | None = None  # GetModel's verification, once computed (it may build and probe cuts)

    @property
    def head_runtime(self) -> str:
        return "pytorch" if self.module is not None else "onnxruntime"

    def cuts(self) -> list[str]:
        """Layers the model can be cut at, latest first, named as the ONNX nodes."""
        if self._cuts is None:
            self._cuts = ([self._onnx_name(target) for target in split_module.candidate_cuts(self.module)]
                          if self.module is not None else onnx_cut.candidate_cuts(self.prepared))
        return self._cuts

    def hybrid(self, layer: str, checkpoint: Callable[[], None] = lambda: None) -> HybridParts:
        """The mirror cut at ``layer``, its tail wrapped for auto_LiRPA and checked like the whole (cached per
        layer, refusals too; its bound methods are checked when first asked for, as the whole model's).
        InvalidArgument for a layer that is not there or does not cut."""
        with holding(self.lock, checkpoint):
            if layer not in self.hybrids:
                try:
                    self.hybrids[layer] = (self._torch_parts(layer, checkpoint) if self.module is not None
                                           else self._onnx_parts(layer, checkpoint))
                except FailedPrecondition as error:
                    log.warning("cut refused: %s", error.message, extra={"layer": layer})
                    self.hybrids[layer] = _Refusal(error.message, "eva.split_layer")
                except (ServiceError, LirpaUnavailable):  # a bad name, a deadline, a cancellation: not decided
                    raise
                except Exception as error:  # onnxruntime, onnx2torch or torch on a cut they cannot take
                    reason = f"the model cannot be cut at {layer!r} ({capability.one_line(error)})"
                    log.warning("cut refused: %s", reason, extra={"layer": layer})
                    self.hybrids[layer] = _Refusal(reason, "eva.split_layer")
            decided = self.hybrids[layer]
        if isinstance(decided, _Refusal):
            raise FailedPrecondition(decided.message, field=decided.field)
        return decided

    def _onnx_name(self, target: str) -> str:
        wanted = normalised_name(target)
        return next((node.name for node in self.prepared.graph.node if normalised_name(node.name) == wanted), target)

    def _torch_parts(self, layer: str, checkpoint: Callable[[], None]) -> HybridParts:
        torch = _torch()
        head, tail = split_module.split(self.module, layer)
        with torch.no_grad():
            features = head(self.check_input)
        name = self._onnx_name(_cut_target(head))
        return self._parts(name, head, "pytorch", tail, features, split_module.operator_count(tail), checkpoint)

    def _onnx_parts(self, layer: str, checkpoint: Callable[[], None]) -> HybridParts:
        torch = _torch()
        node = onnx_cut.node_named(self.prepared, layer)
        session = _cpu_session(onnx_cut.with_output(self.prepared, node.output[0]))
        input_name, device = _input_name(self.prepared), self.device

        def head(values):
            (features,) = session.run([node.output[0]], {input_name: values.detach().cpu().numpy()})
            return torch.from_numpy(features).to(device)

        features = head(self.check_input)
        tail_graph = onnx_cut.tail_model(self.prepared, node, tuple(features.shape))
        checkpoint()
        tail = _convert(tail_graph).to(self.device)
        return self._parts(node.name or node.output[0], head, "onnxruntime", tail, features,
                           len(tail_graph.graph.node), checkpoint)

    def _parts(self, name, head, runtime, tail, features, operators, checkpoint) -> HybridParts:
        torch = _torch()
        with torch.no_grad():
            rebuilt = tail(features).cpu().numpy()
        if rebuilt.shape != self.reference.shape or not _close(rebuilt, self.reference):
            raise FailedPrecondition(f"the model cut at {name!r} does not recompose it", field="eva.split_layer")
        checkpoint()
        try:
            bounded = _checked_bounded(tail, features, self.reference, self.device)
            methods = MethodChecks(bounded, tail, features)
        except FailedPrecondition as error:
            log.warning("tail not bounded: %s", error.message, extra={"layer": name})
            bounded, methods = None, MethodChecks.refused(error.message)
        return HybridParts(name, head, runtime, tail, bounded, operators, methods)

    def check(self, checks: MethodChecks, method: str, checkpoint: Callable[[], None] = lambda: None
              ) -> MethodCheck:
        """``method``'s check on the whole model or a tail (``checks``), run on first use under the mirror's lock:
        a bounded module holds one computation at a time. An unknown method does not run."""
        if method not in checks:
            return MethodCheck(False, "unknown method")
        decided = checks.decided(method)
        if decided is None:
            with holding(self.lock, checkpoint):
                decided = checks.check(method, checkpoint)
        return decided

    def resolve(self, split_layer: str, method: str, checkpoint: Callable[[], None] = lambda: None
                ) -> HybridParts | None:
        """Where to bound with ``method`` (a compat name): None for the whole model, else the cut. ``split_layer``
        "" or "auto": the whole model when the method runs on it, else the latest cut whose tail it bounds;
        "whole": the whole model only; a node name: that cut. FailedPrecondition naming the method and why,
        when it runs on none of them."""
        wanted = split_layer.strip()
        whole = self.check(self.methods, method, checkpoint)
        if wanted.lower() == WHOLE or (wanted.lower() in ("", AUTO) and whole.runs):
            if not whole.runs:
                raise FailedPrecondition(f"{method} does not run on the whole model: {whole.reason}",
                                         field="eva.bound_method")
            return None
        if wanted.lower() not in ("", AUTO):
            parts = self.hybrid(wanted, checkpoint)
            check = self.check(parts.methods, method, checkpoint)
            if not check.runs:
                raise FailedPrecondition(f"{method} does not run on the {parts.verified}: "
                                         f"{check.reason}", field="eva.bound_method")
            return parts
        if method not in available_methods():
            raise FailedPrecondition(f"{method} is {whole.reason}", field="eva.bound_method")
        tried = []
        for layer in self.cuts()[:AUTO_CUTS]:
            checkpoint()
            try:
                parts = self.hybrid(layer, checkpoint)
            except FailedPrecondition as error:
                tried.append(f"{layer}: {error.message}")
                continue
            check = self.check(parts.methods, method, checkpoint)
            if check.runs:
                return parts
            tried.append(f"{parts.verified}: {check.reason}")
        cuts = (f"nor after any layer ({tried[0]})" if tried
                else "and no layer cuts the graph with a weighted layer after it")
        field_name = FIELD if self.whole_reason else "eva.bound_method"
        raise FailedPrecondition(f"{method} runs neither on the whole model ({whole.reason}) {cuts}",
                                 field=field_name)


def _cut_target(head: Any) -> str:
    """The module the head ends at (the cut)."""
    output = next(n for n in head.graph.nodes if n.op == "output")
    return str(output.args[0].target)


def _torch():
    try:
        import torch
        return torch
    except ImportError as error:
        raise LirpaUnavailable("torch is not installed; install onnxplain[verify]") from error


def _free_batch_axis(model: onnx.ModelProto) -> None:
    """A fixed batch axis becomes dynamic: the check and the bounds batch several images or regions."""
    for value in (model.graph.input[0], model.graph.output[0]):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].Clear()
            dims[0].dim_param = "batch"


def _cpu_session(model: onnx.ModelProto, *, as_defined: bool = False) -> ort.InferenceSession:
    """A CPU session of ``model``; ``as_defined``: without graph optimisations, so that onnxruntime computes what
    the ONNX operators define (its optimiser fuses QuantizeLinear/DequantizeLinear pairs into integer kernels,
    which round differently)."""
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only, as the model runtime's sessions
    if as_defined:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _quantized(model: onnx.ModelProto) -> bool:
    return any(node.op_type in ("QuantizeLinear", "DequantizeLinear") for node in model.graph.node)


def _input_name(model: onnx.ModelProto) -> str:
    initializers = {tensor.name for tensor in model.graph.initializer}
    return next(value.name for value in model.graph.input if value.name not in initializers)


def _failing_node(error: BaseException) -> Any:
    """The onnx2torch node being converted when ``error`` was raised (its ``convert`` loop variable), if any."""
    traceback = error.__traceback__
    node = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_name == "convert" and "onnx_node" in traceback.tb_frame.f_locals:
            node = traceback.tb_frame.f_locals["onnx_node"]
        traceback = traceback.tb_next
    return node


def _conversion_refusal(prepared: onnx.ModelProto, error: Exception) -> FailedPrecondition:
    """What onnx2torch could not convert, naming the operator, its node and the cause."""
    node = _failing_node(error)
    if node is not None:
        op, names = node.operation_type, [node.name or node.output_values[0]]
    else:
        match = re.search(r"operation_type='([^']+)'", str(error))
        op = match.group(1) if match else None
        names = [n.name or n.output[0] for n in prepared.graph.node if n.op_type == op][:3]
    version = re.search(r"version=(\d+)", str(error))
    if isinstance(error, KeyError):
        missing = error.args[0] if error.args else "?"
        producer = next((n.op_type for n in prepared.graph.node if missing in n.output), None)
        cause = (f"it reads {missing!r} as a constant (onnx2torch takes weights and shapes only from "
                 f"initializers), but the graph computes it{f' with a {producer} node' if producer else ''}")
    elif "Converter is not implemented" in str(error):
        cause = f"onnx2torch has no converter for {op}{f' version {version.group(1)}' if version else ''}"
    else:
        cause = f"onnx2torch cannot convert it: {str(error).strip()[:200] or type(error).__name__}"
    return FailedPrecondition(f"operator {op or '?'} (node {', '.join(names) or '?'}): {cause}; the model cannot be "
                              "mirrored in PyTorch for verification", field=FIELD)


def _convert(prepared: onnx.ModelProto) -> Any:
    try:
        from onnx2torch import convert
    except ImportError as error:
        raise LirpaUnavailable(f"onnx2torch is not importable ({error}); install onnxplain[verify]") from error

    try:
        return convert(prepared).eval().float()
    except (NotImplementedError, KeyError) as error:
        raise _conversion_refusal(prepared, error) from error


class _UnsupportedOps(logging.Handler):
    """Collects the operator names auto_LiRPA logs before it gives up on a graph."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.ops: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        match = re.match(r"Name: (\S+),", record.getMessage())
        if match:
            self.ops.append(match.group(1).removeprefix("onnx::"))


def _bound(module: Any, example: Any, device: str) -> Any:
    collector = _UnsupportedOps()
    lirpa_log = logging.getLogger("auto_LiRPA")
    lirpa_log.addHandler(collector)
    propagate, lirpa_log.propagate = lirpa_log.propagate, False  # its error lines become our one error
    try:
        return bounded_module(module, example, device)
    except NotImplementedError as error:
        ops = ", ".join(dict.fromkeys(collector.ops)) or str(error)
        raise FailedPrecondition(f"auto_LiRPA {auto_lirpa().__version__} cannot bound the operator(s) {ops}",
                                 field=FIELD) from error
    finally:
        lirpa_log.removeHandler(collector)
        lirpa_log.propagate = propagate


def _close(values: np.ndarray, reference: np.ndarray, rtol: float = RTOL, atol: float = ATOL) -> bool:
    """Equal up to ``atol`` plus ``rtol`` of the reference's largest magnitude (its scale), everywhere."""
    if values.shape != reference.shape:
        return False
    scale = float(np.abs(reference).max()) if reference.size else 0.0
    return bool(np.all(np.abs(values - reference) <= atol + rtol * scale))


def _explained_output_only(model: onnx.ModelProto, output_name: str) -> onnx.ModelProto:
    """The graph with the explained output as its only output: the passes and the mirror read output 0."""
    kept = [value for value in model.graph.output if value.name == output_name]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    return model


def first_divergence(prepared: onnx.ModelProto, module: Any, values: np.ndarray) -> str:
    """The first node (in the graph's order) whose float output differs between onnxruntime and the mirror.

    onnxruntime runs a copy of the graph with every float node output exposed; the mirror runs under an
    ``fx.Interpreter`` that records each module's output. onnx2torch names its modules after the ONNX
    nodes, so the two are matched by name.
    """
    torch = _torch()
    inferred = onnx.shape_inference.infer_shapes(prepared)
    floats = {value.name for value in [*inferred.graph.value_info, *inferred.graph.output]
              if value.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    probe = onnx.ModelProto()
    probe.CopyFrom(inferred)
    exposed = [node.output[0] for node in probe.graph.node if node.output and node.output[0] in floats]
    known = {output.name for output in probe.graph.output}
    probe.graph.output.extend(onnx.ValueInfoProto(name=name) for name in exposed if name not in known)
    session = _cpu_session(probe)
    names = [output.name for output in session.get_outputs()]
    reference = dict(zip(names, session.run(None, {_input_name(probe): values})))

    recorded: dict[str, np.ndarray] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, node):
            result = super().run_node(node)
            if node.op == "call_module" and isinstance(result, torch.Tensor):
                recorded[normalised_name(str(node.target))] = result.detach().cpu().numpy()
            return result

    with torch.no_grad():
        Recorder(module).run(torch.from_numpy(values).to(next(module.parameters()).device))
    for node in probe.graph.node:
        mine = recorded.get(normalised_name(node.name))
        theirs = reference.get(node.output[0]) if node.output else None
        if mine is not None and theirs is not None and (mine.shape != theirs.shape or not _close(mine, theirs)):
            return node.name or node.output[0]
    return "the graph output"


def _served_outputs(reference: np.ndarray, stripped: str | None) -> np.ndarray:
    """What the served graph outputs, given the prepared graph's logits and the softmax that was removed."""
    if stripped is None:
        return reference
    return log_softmax(reference) if stripped == "LogSoftmax" else softmax(reference)


def _checked_bounded(module: Any, x: Any, reference: np.ndarray, device: str) -> Any:
    """auto_LiRPA's wrapper of ``module``, checked: its forward and its IBP bounds of a batch of points (a box of
    width 0) equal ``reference`` (onnxruntime's outputs on ``x``). FailedPrecondition otherwise."""
    torch = _torch()
    try:
        bounded = _bound(module, x[:1], device)
        with torch.no_grad():
            lirpa_forward = bounded(x).cpu().numpy()
    except FailedPrecondition:
        raise
    except Exception as error:  # auto_LiRPA's tracer or graph builder on a module it cannot take
        raise FailedPrecondition(f"auto_LiRPA cannot wrap it ({capability.one_line(error)})", field=FIELD) from error
    if lirpa_forward.shape != reference.shape or not _close(lirpa_forward, reference):
        raise FailedPrecondition(f"auto_LiRPA's forward differs from onnxruntime by up to "
                                 f"{np.abs(lirpa_forward - reference).max():.3g}; its bounds would not hold",
                                 field=FIELD)
    # Bounds of a zero-width box are the values themselves: proves the bound graph runs on a batch (a shape
    # frozen at the traced batch fails here) and computes the served model's margins.
    classes = reference.shape[1]
    spec = torch.from_numpy(np.eye(classes, dtype=np.float32)[None].repeat(len(x), 0)).to(device)
    try:
        with torch.no_grad():
            point_bounds = compute_upper_bounds(bounded, x, x, x, spec, "IBP").cpu().numpy()
    except Exception as error:
        raise FailedPrecondition(f"auto_LiRPA's IBP fails on a batch of points ({capability.one_line(error)})",
                                 field=FIELD) from error
    if not _close(point_bounds, reference):
        raise FailedPrecondition("auto_LiRPA's bounds on a batch of points differ from onnxruntime's outputs by up to "
                                 f"{np.abs(point_bounds - reference).max():.3g}; its bounds would not hold",
                                 field=FIELD)
    return bounded


def build_mirror(model: LoadedModel, *, fold_batch_norm: bool = True, device: str | None = None,
                 checkpoint: Callable[[], None] = lambda: None) -> Mirror:
    """Convert, check and wrap ``model`` for bound propagation (its bound methods are checked when first asked
    for: ``Mirror.check``). Raises FailedPrecondition only when no part of the model can be mirrored (a non-float
    input, graph rewrites that change the function); a model that cannot be converted or bounded whole gets a
    mirror without ``module`` or ``bounded``, with the reason, for hybrid EVA. ``checkpoint`` runs between the
    steps (conversion, checks, auto_LiRPA's wrapping), each one call that cannot be interrupted."""
    torch = _torch()
    info = model.info
    if info.signature.input_elem_type not in MIRRORED_INPUTS:
        raise FailedPrecondition("verification needs a float32 or float16 input; this model takes "
                                 f"{onnx.TensorProto.DataType.Name(info.signature.input_elem_type)}", field=FIELD)
    device = device or torch_device(info.verify_device, info.verify_device_id)
    source = _explained_output_only(onnx.load_model_from_string(model.model_bytes), info.signature.output_name)
    prepared, rewrites, stripped = graph_passes.prepare(
        source, batch_one=info.signature.fixed_batch == 1, fold_batch_norm=fold_batch_norm)
    _free_batch_axis(prepared)
    checkpoint()

    channels_first = info.layout is Layout.NCHW
    pixels = np.random.default_rng(CHECK_SEED).random((CHECK_BATCH, *info.image_shape), dtype=np.float32)
    values = info.preprocessing.apply(pixels, channels_first=channels_first)
    (reference,) = _cpu_session(prepared).run([prepared.graph.output[0].name], {_input_name(prepared): values})
    # The passes must not change the function: the prepared graph against the model as it is served (on its
    # own provider, hence a looser tolerance), through the softmax that was removed. A quantized graph is served
    # with integer kernels that round otherwise than its ONNX definition: the passes are checked against that
    # definition (both graphs unoptimised), and the mirror is of the definition.
    if _quantized(source):
        (served,) = _cpu_session(source, as_defined=True).run([info.signature.output_name],
                                                              {_input_name(source): values})
        (defined,) = _cpu_session(prepared, as_defined=True).run([prepared.graph.output[0].name],
                                                                 {_input_name(prepared): values})
        served, checked = served.reshape(len(values), -1), defined
    else:
        served, checked = model.outputs(pixels).raw, reference  # the explained rows, before any score space
    # A float16 graph, or a float32 one served in fp16 (service.runtime.half_precision): fp16's rounding.
    half = info.signature.input_elem_type == onnx.TensorProto.FLOAT16 or info.precision == "fp16"
    if not _close(_served_outputs(checked, stripped), served, rtol=FLOAT16_RTOL if half else SERVED_RTOL,
                  atol=SERVED_ATOL):
        raise FailedPrecondition(f"the graph rewrites for verification ({'; '.join(rewrites) or 'none'}) change "
                                 "what the model computes; it cannot be mirrored", field=FIELD)
    checkpoint()
    x = torch.from_numpy(values).to(device)
    module, bounded, whole_reason, max_error = None, None, "", -1.0
    try:
        module = _convert(prepared).to(device)
    except FailedPrecondition as refusal:
        whole_reason = refusal.message
    except Exception as error:  # onnx2torch misreading a graph (e.g. a Conv bias it looks for among initializers)
        whole_reason = f"onnx2torch cannot convert the graph ({capability.one_line(error)})"
    checkpoint()
    mirrored = None
    if module is not None:
        try:
            with torch.no_grad():
                mirrored = module(x).cpu().numpy()
        except Exception as error:  # a converted module that cannot run (onnx2torch misread a shape)
            whole_reason = f"the PyTorch mirror fails on the check batch ({capability.one_line(error)})"
            module = None
    if module is not None:
        if mirrored.shape != reference.shape or not _close(mirrored, reference):
            node = first_divergence(prepared, module, values)
            whole_reason = (f"the PyTorch mirror diverges from onnxruntime first at node {node!r} (beyond "
                            f"{RTOL:g} of the outputs' scale + {ATOL:g}), so its bounds would not hold for the "
                            "served model")
            module = None
        else:
            max_error = float(np.abs(mirrored - reference).max())
    checkpoint()
    if module is not None:
        try:
            bounded = _checked_bounded(module, x, reference, device)
        except FailedPrecondition as refusal:
            whole_reason = refusal.message
    checkpoint()
    methods = MethodChecks(bounded, module, x) if bounded is not None else MethodChecks.refused(whole_reason)
    if whole_reason:
        log.warning("the whole model cannot be bounded: %s", whole_reason, extra={"model": info.name})
    log.info("mirror built", extra={"model": info.name, "device": device, "rewrites": rewrites,
                                    "max_error": max_error})
    return Mirror(module=module, bounded=bounded, device=device, rewrites=rewrites, max_error=max_error,
                  channels_first=channels_first, check_input=x, prepared=prepared, reference=reference,
                  whole_reason=whole_reason, methods=methods)


@dataclass(frozen=True)
class _Refusal:
    """Why a model cannot be mirrored, kept instead of the exception (whose traceback would hold the request
    that first asked, and the model itself)."""

    message: str
    field: str | None


_mirrors: "weakref.WeakKeyDictionary[LoadedModel, Mirror | _Refusal]" = weakref.WeakKeyDictionary()
_locks: "weakref.WeakKeyDictionary[LoadedModel, threading.Lock]" = weakref.WeakKeyDictionary()
_locks_guard = threading.Lock()


def cached_mirror(model: LoadedModel) -> "Mirror | _Refusal | None":
    """The mirror or refusal already decided for ``model``, without building anything."""
    return _mirrors.get(model)


@contextlib.contextmanager
def holding(lock: threading.Lock, checkpoint: Callable[[], None]):
    """``lock`` held for the block; ``checkpoint`` (the job's) runs while another job holds it, so a job
    waiting for a build or a bound computation of the same model still stops at its deadline."""
    while not lock.acquire(timeout=WAIT_STEP):
        checkpoint()
    try:
        yield
    finally:
        lock.release()


def mirror_for(model: LoadedModel, checkpoint: Callable[[], None] = lambda: None) -> Mirror:
    """The model's mirror, built on first use (one build per model at a time; other models do not wait). A
    model that cannot be mirrored is refused the same way each time; an unexpected failure while building
    is logged with its traceback and refused too, naming its type and message. ``checkpoint`` (the job's)
    runs while waiting for another job's build and between the steps of a build: a build stopped by a
    deadline or a cancellation decides nothing, and the next job starts it again."""
    with _locks_guard:
        lock = _locks.setdefault(model, threading.Lock())
    with holding(lock, checkpoint):
        decided = _mirrors.get(model)
        if decided is None:
            try:
                decided = build_mirror(model, checkpoint=checkpoint)
            except (Cancelled, DeadlineExceeded):
                raise
            except FailedPrecondition as error:
                decided = _Refusal(error.message, error.field)
            except LirpaUnavailable as error:  # an installation matter, not the model's: not cached
                raise FailedPrecondition(f"verified methods are not installed on this server: {error}",
                                         field="method") from error
            except Exception as error:  # onnxruntime or onnx on a graph they cannot take
                log.warning("mirror failed: %s", capability.one_line(error), extra={"model": model.info.name})
                log.debug("mirror failed", exc_info=True)
                decided = _Refusal(f"the model cannot be mirrored for verification ({capability.one_line(error)})",
                                   FIELD)
            _mirrors[model] = decided
    if isinstance(decided, _Refusal):
        raise FailedPrecondition(decided.message, field=decided.field)
    return decided


def verification_report(model: LoadedModel, checkpoint: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Whether verified methods run on the model, and how (GetModel's ``verification``): per bound method, where
    EVA's default ``split_layer`` (auto) would bound with it (the whole model, or the tail after a cut) or why
    it cannot. ``checkpoint`` as in ``mirror_for``."""
    from service.verify.bounds import METHODS

    try:
        mirror = mirror_for(model, checkpoint)
    except FailedPrecondition as error:
        return {"verifiable": False, "reason": error.message}
    if mirror.report is not None:
        return mirror.report
    checks = []
    for name, method in METHODS.items():
        try:
            parts = mirror.resolve(AUTO, method, checkpoint)
        except FailedPrecondition as refusal:
            checks.append({"name": name, "runs": False, "reason": refusal.message})
            continue
        # After a cut, say why not on the whole model (vacuous bounds, an operator): the user's next question.
        checks.append({"name": name, "runs": True, "split_layer": parts.layer if parts else "",
                       "verified": parts.verified if parts else "whole model",
                       "head_runtime": parts.head_runtime if parts else "",
                       "reason": mirror.check(mirror.methods, method, checkpoint).reason if parts else ""})
    running = [check["name"] for check in checks if check["runs"]]
    reason = "" if running else (mirror.whole_reason or checks[0]["reason"])
    mirror.report = {"verifiable": bool(running), "reason": reason,
            "rewrites": mirror.rewrites, "device": mirror.device, "max_error": mirror.max_error,
            "bound_methods": running, "auto_lirpa_version": auto_lirpa().__version__, "method_checks": checks,
            "whole_model_reason": mirror.whole_reason}
    return mirror.report


def cached_report(model: LoadedModel) -> dict[str, Any] | None:
    """GetModel's verification when it is already decided (no build, no probe: safe on the event loop)."""
    decided = _mirrors.get(model)
    if isinstance(decided, _Refusal):
        return {"verifiable": False, "reason": decided.message}
    return decided.report if decided is not None else None
