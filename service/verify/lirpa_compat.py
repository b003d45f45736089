"""The one place that knows which auto_LiRPA is installed and how to make it run on today's numpy and torch.

The package index has auto_LiRPA 0.3 only (2022, written for torch < 1.13 and numpy 1); 0.7.x is installed
from source when someone needs it. 0.3 needs four shims, each applied only when what it replaces is missing:

- numpy 2 removed ``numpy.lib.arraysetops`` (0.3 imports ``isin`` from it): the module is aliased to the
  functions numpy now exports at top level;
- torch 2 removed ``torch.onnx.symbolic_helper._set_opset_version`` (0.3 imports it to trace at opset 12):
  restored as a setter of the exporter's global opset;
- torch 2 dropped ``torch._C.Node.__getitem__`` (0.3 reads node attributes as ``node[name]``): restored
  through ``symbolic_helper._node_get``, which is what 0.7.x calls;
- torch's ``Module.named_parameters`` passes ``remove_duplicate`` to ``_named_members``, which 0.3's
  ``BoundedModule`` overrides without it (CROWN's intermediate bounds on residual graphs call it): the
  override is given the argument; it always removed duplicates, which is torch's default.

Between the versions ``compute_bounds`` renamed ``intermediate_layer_bounds`` to ``interm_bounds`` (the
service never passes intermediate bounds, so neither name appears) and the ReLU relaxation option ``relu``
to ``activation_bound_option`` (``bound_options`` sets both; each version ignores the other's).
alpha-CROWN is offered only where it works: 0.3's fails on MaxPool.

Two wrappers are the service's own, not compatibility: each operator's backward step runs the job's
checkpoint (``_shim_interruptible``), and intermediate bounds a caller already holds can replace those of
chosen neurons (``_shim_shared_bounds``, EVA's regions sharing the full ball's, ``bounds.MarginBounds``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import logging
import sys
import threading
import types
import warnings
from functools import cache
from typing import Any, Callable

import numpy as np

BOUND_METHODS = ("IBP", "CROWN-IBP", "CROWN", "alpha-CROWN")
# auto_LiRPA's own names for them.
_LIRPA_METHOD = {"IBP": "IBP", "CROWN-IBP": "CROWN-IBP", "CROWN": "CROWN", "alpha-CROWN": "CROWN-Optimized"}


class LirpaUnavailable(RuntimeError):
    """auto_LiRPA (or torch) is not installed: the ``verify`` extra is missing."""


def _shim_numpy() -> None:
    try:
        importlib.import_module("numpy.lib.arraysetops")
    except ImportError:
        module = types.ModuleType("numpy.lib.arraysetops")
        for name in ("isin", "in1d", "unique", "intersect1d", "setdiff1d", "union1d", "setxor1d", "ediff1d"):
            if hasattr(np, name):
                setattr(module, name, getattr(np, name))
        sys.modules["numpy.lib.arraysetops"] = module


def _exporter_globals() -> Any:
    for path in ("torch.onnx._internal.torchscript_exporter._globals", "torch.onnx._globals"):
        try:
            return importlib.import_module(path).GLOBALS
        except ImportError:
            continue
    raise LirpaUnavailable("this torch has no TorchScript ONNX exporter globals; auto_LiRPA cannot trace with it")


def _shim_torch() -> None:
    import torch

    # ``import torch.onnx.symbolic_helper`` (what auto_LiRPA does) and ``from torch.onnx import
    # symbolic_helper`` are different modules on torch 2.9+: patch the one the import statement finds.
    symbolic_helper = importlib.import_module("torch.onnx.symbolic_helper")
    if not hasattr(symbolic_helper, "_set_opset_version"):
        def _set_opset_version(opset_version: int) -> None:
            _exporter_globals().export_onnx_opset_version = opset_version

        symbolic_helper._set_opset_version = _set_opset_version
    if not hasattr(torch._C.Node, "__getitem__"):
        torch._C.Node.__getitem__ = lambda node, key: symbolic_helper._node_get(node, key)


@cache
def auto_lirpa() -> types.ModuleType:
    """auto_LiRPA, imported after the shims it needs on this numpy and torch."""
    try:
        import torch  # noqa: F401
    except ImportError as error:
        raise LirpaUnavailable("torch is not installed; install onnxplain[verify]") from error
    _shim_numpy()
    _shim_torch()
    module = _quiet_import()
    _shim_bounded_module(module.BoundedModule)
    _shim_shared_bounds(module.BoundedModule)
    _shim_interruptible(importlib.import_module("auto_LiRPA.operators").Bound)
    return module


# The checkpoint of the job whose bounds this thread computes (see ``compute_upper_bounds``).
_interrupt = threading.local()


def _shim_interruptible(bound_class: type) -> None:
    """CROWN spends seconds in one ``compute_bounds`` call (7 s a region on the 64-pixel shapes CNN), walking
    backward through every layer from each layer in turn. Each operator's backward step (at most about a
    second there) first runs the calling job's checkpoint, so a cancelled job or a passed deadline stops
    within one step instead of at the end of the call."""
    def subclasses(cls: type):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)

    for cls in {bound_class, *subclasses(bound_class)}:
        backward = cls.__dict__.get("bound_backward")
        if backward is None or getattr(backward, "checkpointed", False):
            continue

        def checkpointed(self, *args, _backward=backward, **kwargs):
            checkpoint = getattr(_interrupt, "checkpoint", None)
            if checkpoint is not None:
                checkpoint()
            return _backward(self, *args, **kwargs)

        checkpointed.checkpointed = True
        functools.update_wrapper(checkpointed, backward)
        cls.bound_backward = checkpointed


# Per node name, (lower, upper, recompute) of the current thread's ``compute_upper_bounds``'s ``shared``.
_shared = threading.local()


def _shim_shared_bounds(bounded_module_class: type) -> None:
    """Give some neurons known intermediate bounds instead of computing them. auto_LiRPA bounds by CROWN only
    the neurons its IBP reference leaves unstable (over the union of the batch, ``get_unstable_locations``)
    and gives the others their IBP bounds (``restore_sparse_bounds``). With ``compute_upper_bounds``'s
    ``shared``, a neuron outside the node's ``recompute`` mask counts as stable and is restored to the shared
    bounds instead of IBP's. The node being bounded is the one ``get_sparse_C`` was last called with (the two
    calls follow it in ``compute_intermediate_bounds``)."""
    if getattr(bounded_module_class.get_sparse_C, "shares_bounds", False):
        return
    get_sparse_c = bounded_module_class.get_sparse_C
    get_unstable_locations = bounded_module_class.get_unstable_locations
    restore_sparse_bounds = bounded_module_class.restore_sparse_bounds

    def current(name: str | None = None):
        shared = getattr(_shared, "bounds", None) or {}
        return shared.get(name if name is not None else getattr(_shared, "node", None))

    def get_sparse_C(self, node, *args, **kwargs):
        _shared.node = node.name
        return get_sparse_c(self, node, *args, **kwargs)

    def shared_unstable_locations(self, lower, upper, *args, **kwargs):
        known = current()
        if known is not None and not kwargs.get("channel_only") and lower.shape == known[2].shape:
            import torch

            lower = torch.where(known[2], lower, torch.zeros_like(lower))  # lower bound 0: not unstable
        return get_unstable_locations(self, lower, upper, *args, **kwargs)

    def shared_restore(self, node, unstable_idx, unstable_size, reference_lower, reference_upper, *args, **kwargs):
        known = current(node.name)
        if known is not None and reference_lower.shape == known[2].shape:
            import torch

            low, high, recompute = known
            reference_lower = torch.where(recompute, reference_lower, low)
            reference_upper = torch.where(recompute, reference_upper, high)
        return restore_sparse_bounds(self, node, unstable_idx, unstable_size, reference_lower, reference_upper,
                                     *args, **kwargs)

    get_sparse_C.shares_bounds = True
    bounded_module_class.get_sparse_C = get_sparse_C
    bounded_module_class.get_unstable_locations = shared_unstable_locations
    bounded_module_class.restore_sparse_bounds = shared_restore


def intermediate_bounds(bounded: Any) -> dict[str, tuple[Any, Any]]:
    """The bounds the last ``compute_upper_bounds`` left on the nodes auto_LiRPA bounds by a backward walk of
    their own (the inputs of ReLUs), detached: what ``compute_upper_bounds``'s ``shared`` takes."""
    found = {}
    for name in relu_inputs(bounded):
        node = bounded[name]
        if getattr(node, "lower", None) is not None and getattr(node, "upper", None) is not None:
            found[name] = (node.lower.detach(), node.upper.detach())
    return found


def relu_inputs(bounded: Any) -> list[str]:
    """The names of the perturbed nodes whose output feeds a ReLU: those auto_LiRPA bounds sparsely."""
    return [relu.inputs[0].name for relu in bounded.relus if getattr(relu.inputs[0], "perturbed", False)]


def _shim_bounded_module(bounded_module_class: type) -> None:
    override = bounded_module_class._named_members
    if "remove_duplicate" in inspect.signature(override).parameters:
        return

    def _named_members(self, get_members_fn, prefix="", recurse=True, remove_duplicate=True):
        return override(self, get_members_fn, prefix, recurse)

    bounded_module_class._named_members = _named_members


def _quiet_import() -> types.ModuleType:
    """Import auto_LiRPA without its side effects on logging and warnings: 0.3 calls ``logging.basicConfig``
    (a handler on the root logger, which would double every log line of the service), logs at INFO and
    resets the warning filters; importing it also makes torch warn that no CUDA runtime is there, which on
    a CPU machine is no news."""
    root = logging.getLogger()
    root_handlers, root_level = list(root.handlers), root.level
    recursion_limit = sys.getrecursionlimit()
    extension_log = logging.getLogger("torch.utils.cpp_extension")
    extension_level = extension_log.level
    extension_log.setLevel(logging.ERROR)
    try:
        # 0.3 sets warnings.simplefilter("once") at import (undone when this block exits), which overrides any
        # filter set here; its import-time warnings (torch.jit.script's deprecation) are dropped at the sink.
        with warnings.catch_warnings():
            warnings.showwarning = lambda *args, **kwargs: None
            module = importlib.import_module("auto_LiRPA")
    except ImportError as error:
        raise LirpaUnavailable(f"auto_LiRPA is not importable ({error}); install it with "
                               "`pip install --no-deps auto_LiRPA` (see the Makefile)") from error
    finally:
        extension_log.setLevel(extension_level)
        for handler in [h for h in root.handlers if h not in root_handlers]:
            root.removeHandler(handler)
        root.setLevel(root_level)
        # 0.3 raises the limit to 10**6 for its recursive graph walks; at that limit a C recursion (json's
        # parser on nested input) overflows the thread's stack and kills the process instead of raising.
        # 10,000 frames cover graphs of thousands of nodes.
        sys.setrecursionlimit(max(recursion_limit, RECURSION_LIMIT))
    logging.getLogger("auto_LiRPA").setLevel(logging.WARNING)
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("auto_LiRPA."):
            logging.getLogger(name).setLevel(logging.WARNING)
    return module


RECURSION_LIMIT = 10_000


def version() -> tuple[int, ...]:
    return tuple(int(part) for part in auto_lirpa().__version__.split(".")[:3] if part.isdigit())


def available_methods() -> tuple[str, ...]:
    """The bound methods this installation supports on the models we mirror (0.3's alpha-CROWN breaks on
    MaxPool, so it is offered from 0.4 on)."""
    return BOUND_METHODS if version() >= (0, 4) else BOUND_METHODS[:3]


def bound_options() -> dict[str, Any]:
    """``bound_opts`` for ``BoundedModule``: the adaptive ReLU relaxation under both of its option names
    (unknown keys are ignored by every version)."""
    return {"relu": "adaptive", "activation_bound_option": "adaptive"}


def bounded_module(module: Any, example: Any, device: str) -> Any:
    """auto_LiRPA's wrapper of ``module``, traced on ``example``. The trace warns about every shape a converter
    computes in Python (onnx2torch's Reshape), which the mirror's checks on a batch catch, and that tracing
    itself is deprecated: neither is for the service's users."""
    import torch

    lirpa = auto_lirpa()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation: auto_LiRPA traces
        return lirpa.BoundedModule(module, example, bound_opts=bound_options(), device=device)


def compute_upper_bounds(bounded: Any, x: Any, lower: Any, upper: Any, spec: Any, method: str,
                         checkpoint: Callable[[], None] | None = None,
                         shared: dict[str, tuple[Any, Any, Any]] | None = None) -> Any:
    """Upper bounds of ``spec @ f(x')`` over the box ``lower <= x' <= upper``: (batch, specs).

    Only upper bounds are propagated (half the backward work of CROWN). ``x``, ``lower``, ``upper`` and
    ``spec`` share their batch size: one row per region. ``checkpoint`` (the job's) runs between the
    backward walks of one call, and may raise to stop it. ``shared``: per node of ``relu_inputs``,
    (lower, upper, recompute), batch-shaped: the neurons outside ``recompute`` take these bounds, which must
    hold on this box (the caller's proof), the others are bounded as usual (IBP where it makes them stable,
    else CROWN); it takes effect where auto_LiRPA bounds the node sparsely (at most ``minimum_sparsity``, 90 %,
    of its neurons left to bound), else every neuron is bounded.
    """
    lirpa = auto_lirpa()
    if method not in _LIRPA_METHOD:
        raise ValueError(f"unknown bound method {method!r}; one of {BOUND_METHODS}")
    perturbation = lirpa.PerturbationLpNorm(norm=np.inf, x_L=lower, x_U=upper)
    bounded_input = lirpa.BoundedTensor(x, perturbation)
    previous = getattr(_interrupt, "checkpoint", None)
    _interrupt.checkpoint = checkpoint
    _shared.bounds, _shared.node = shared, None
    try:
        _, upper_bounds = bounded.compute_bounds(x=(bounded_input,), C=spec, method=_LIRPA_METHOD[method],
                                                 bound_lower=False, bound_upper=True)
    finally:
        _interrupt.checkpoint = previous
        _shared.bounds = _shared.node = None
    return upper_bounds
