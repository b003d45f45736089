"""A PyTorch mirror of a loaded ONNX model, for auto_LiRPA, checked before it is trusted.

The mirror is onnx2torch's conversion of the graph after ``graph_passes.prepare`` (batch-1 Reshapes
freed, a terminal Softmax removed, BatchNorm folded into Conv, constant MatMuls made Linear). Before any
bound is computed, four computations on the same random batch of 3 must agree to 1e-4 relative / 1e-5
absolute: onnxruntime on the prepared graph, the mirror, auto_LiRPA's forward of the mirror, and
auto_LiRPA's bounds of a zero-width box around each input. Where the mirror and onnxruntime disagree, the
error names the first node whose outputs differ; where a converter or auto_LiRPA lacks an operator, it
names the operator and its node. Mirrors (and their failures) are built once per loaded model and cached.
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

from service.errors import Cancelled, DeadlineExceeded, FailedPrecondition
from service.runtime.model import LoadedModel
from service.runtime.signature import Layout
from service.verify import graph_passes
from service.verify.split import normalised_name, split
from service.verify.lirpa_compat import LirpaUnavailable, auto_lirpa, bounded_module, compute_upper_bounds

log = logging.getLogger(__name__)

RTOL, ATOL = 1e-4, 1e-5
# The served session may run on CUDA, whose kernels round differently from the CPU's.
SERVED_RTOL, SERVED_ATOL = 1e-3, 1e-4
CHECK_BATCH, CHECK_SEED = 3, 0
FIELD = "model_name"
# A job waiting for another job's build of the same mirror checks its deadline this often (seconds).
WAIT_STEP = 0.1


@dataclass
class Mirror:
    module: Any  # torch.nn.Module (onnx2torch GraphModule), eval mode, float32, on ``device``
    bounded: Any  # auto_LiRPA BoundedModule of ``module``
    device: str
    rewrites: list[str]
    max_error: float  # worst |mirror - onnxruntime| over the check batch
    channels_first: bool
    check_input: Any  # the check batch, as model input on ``device``
    # A BoundedModule keeps the state of a bound computation in its nodes: one computation at a time.
    lock: threading.Lock = field(default_factory=threading.Lock)
    hybrids: dict[str, "HybridParts"] = field(default_factory=dict)

    def hybrid(self, layer: str) -> "HybridParts":
        """The mirror cut at ``layer``, its tail wrapped for auto_LiRPA and checked like the whole (cached)."""
        torch = _torch()
        with self.lock:
            if layer not in self.hybrids:
                head, tail = split(self.module, layer)
                with torch.no_grad():
                    features = head(self.check_input)
                    whole, rebuilt = self.module(self.check_input), tail(features)
                if not _close(rebuilt.cpu().numpy(), whole.cpu().numpy()):
                    raise FailedPrecondition(f"the mirror cut at {layer!r} does not recompose the model",
                                             field="eva.split_layer")
                bounded = _bound(tail, features[:1], self.device)
                with torch.no_grad():
                    if not _close(bounded(features).cpu().numpy(), whole.cpu().numpy()):
                        raise FailedPrecondition(f"auto_LiRPA's forward of the part after {layer!r} differs from the "
                                                 "mirror", field="eva.split_layer")
                self.hybrids[layer] = HybridParts(head, tail, bounded)
            return self.hybrids[layer]


@dataclass(frozen=True)
class HybridParts:
    head: Any  # pixels' model input -> the layer's output
    tail: Any  # the layer's output -> logits
    bounded_tail: Any  # auto_LiRPA BoundedModule of ``tail``


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


def _cpu_session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only, as the model runtime's sessions
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


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


def _close(values: np.ndarray, reference: np.ndarray) -> bool:
    return bool(np.allclose(values, reference, rtol=RTOL, atol=ATOL))


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
    shifted = reference - reference.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return log_probabilities if stripped == "LogSoftmax" else np.exp(log_probabilities)


def build_mirror(model: LoadedModel, *, fold_batch_norm: bool = True, device: str | None = None,
                 checkpoint: Callable[[], None] = lambda: None) -> Mirror:
    """Convert, check and wrap ``model`` for bound propagation (raises FailedPrecondition on any failure).
    ``checkpoint`` runs between the steps (conversion, checks, auto_LiRPA's wrapping), each one call that
    cannot be interrupted."""
    torch = _torch()
    info = model.info
    if info.signature.input_elem_type != onnx.TensorProto.FLOAT:
        raise FailedPrecondition("verification needs a float32 input; this model takes "
                                 f"{onnx.TensorProto.DataType.Name(info.signature.input_elem_type)}", field=FIELD)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    prepared, rewrites, stripped = graph_passes.prepare(
        onnx.load_model_from_string(model.model_bytes), batch_one=info.fixed_batch and info.max_batch == 1,
        fold_batch_norm=fold_batch_norm)
    _free_batch_axis(prepared)
    checkpoint()
    module = _convert(prepared).to(device)
    checkpoint()

    channels_first = info.layout is Layout.NCHW
    pixels = np.random.default_rng(CHECK_SEED).random((CHECK_BATCH, *info.image_shape), dtype=np.float32)
    values = info.preprocessing.apply(pixels, channels_first=channels_first)
    (reference,) = _cpu_session(prepared).run([prepared.graph.output[0].name], {_input_name(prepared): values})
    # The passes must not change the function: the prepared graph against the model as it is served (on its
    # own provider, hence a looser tolerance), through the softmax that was removed.
    served = model.predict(pixels)
    if not np.allclose(_served_outputs(reference, stripped), served, rtol=SERVED_RTOL, atol=SERVED_ATOL):
        raise FailedPrecondition(f"the graph rewrites for verification ({'; '.join(rewrites) or 'none'}) change "
                                 "what the model computes; it cannot be mirrored", field=FIELD)
    checkpoint()
    x = torch.from_numpy(values).to(device)
    with torch.no_grad():
        mirrored = module(x).cpu().numpy()
    if mirrored.shape != reference.shape or not _close(mirrored, reference):
        node = first_divergence(prepared, module, values)
        raise FailedPrecondition(f"the PyTorch mirror diverges from onnxruntime first at node {node!r} (beyond "
                                 f"{RTOL:g} relative / {ATOL:g} absolute), so its bounds would not hold for the "
                                 "served model", field=FIELD)
    checkpoint()
    bounded = _bound(module, x[:1], device)
    checkpoint()
    with torch.no_grad():
        lirpa_forward = bounded(x).cpu().numpy()
    if not _close(lirpa_forward, reference):
        raise FailedPrecondition(f"auto_LiRPA's forward of the mirror differs from onnxruntime by up to "
                                 f"{np.abs(lirpa_forward - reference).max():.3g}; its bounds would not hold",
                                 field=FIELD)
    # Bounds of a zero-width box are the values themselves: proves the bound graph runs on a batch (a shape
    # frozen at the traced batch fails here) and computes the served model's margins.
    classes = reference.shape[1]
    spec = torch.from_numpy(np.eye(classes, dtype=np.float32)[None].repeat(CHECK_BATCH, 0)).to(device)
    with torch.no_grad():
        point_bounds = compute_upper_bounds(bounded, x, x, x, spec, "IBP").cpu().numpy()
    if not _close(point_bounds, reference):
        raise FailedPrecondition("auto_LiRPA's bounds on a batch of points differ from onnxruntime's outputs by up to "
                                 f"{np.abs(point_bounds - reference).max():.3g}; its bounds would not hold",
                                 field=FIELD)
    error = float(np.abs(mirrored - reference).max())
    log.info("mirror built", extra={"model": info.name, "device": device, "rewrites": rewrites, "max_error": error})
    return Mirror(module=module, bounded=bounded, device=device, rewrites=rewrites, max_error=error,
                  channels_first=channels_first, check_input=x)


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
            except Exception as error:  # onnxruntime, onnx, onnx2torch or auto_LiRPA on a graph they cannot take
                log.exception("mirror failed", extra={"model": model.info.name})
                decided = _Refusal(f"the model cannot be mirrored for verification ({type(error).__name__}: "
                                   f"{error})", FIELD)
            _mirrors[model] = decided
    if isinstance(decided, _Refusal):
        raise FailedPrecondition(decided.message, field=decided.field)
    return decided


def verification_report(model: LoadedModel, checkpoint: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Whether verified methods run on the model, and how (GetModel's ``verification``); ``checkpoint`` as in
    ``mirror_for``."""
    from service.verify.bounds import METHODS
    from service.verify.lirpa_compat import available_methods

    try:
        mirror = mirror_for(model, checkpoint)
    except FailedPrecondition as error:
        return {"verifiable": False, "reason": error.message}
    offered = available_methods()
    return {"verifiable": True, "rewrites": mirror.rewrites, "device": mirror.device, "max_error": mirror.max_error,
            "bound_methods": [name for name, method in METHODS.items() if method in offered],
            "auto_lirpa_version": auto_lirpa().__version__}
