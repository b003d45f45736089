"""Opening onnxruntime sessions (the providers asked for, their options, the cores left to it) and running
them (``SessionRunner``: the one place a session call happens)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
from threadpoolctl import threadpool_limits

from service.errors import InvalidArgument
from service.runtime import providers as providers_mod

log = logging.getLogger(__name__)

# Device buffers a thread keeps, by input shape: a job sends full batches and one last partial batch, the
# load probe two more shapes; beyond this many the oldest is dropped (device memory is not held for sizes a
# dynamic model met once).
BUFFERS_PER_THREAD = 4


@functools.cache
def reserve_cores_for_onnxruntime() -> None:
    """Keep numpy's BLAS single-threaded, process-wide, once a model is loaded.

    Explainers call BLAS between forward passes (RISE builds its masks with matmul); OpenBLAS's
    threads then spin on the cores onnxruntime's own threads need. Measured on 2 cores with a
    224-pixel resnet18: RISE ran at 1.19x the bare forward passes, 1.06x with BLAS on one thread.
    """
    threadpool_limits(limits=1, user_api="blas")


class SessionRunner:
    """A session and how one call runs on it, shared by concurrent requests (``run`` is thread-safe).

    On the CPU provider a call is the plain ``session.run``: inputs already are in host memory, a binding would
    only add work. On CUDA (or TensorRT) with ``bound``, each input is copied into a device buffer this thread
    keeps for that shape (``OrtValue.update_inplace``: one host-to-device copy, no allocation per call) and the
    outputs are left on the device until ``copy_outputs_to_cpu``; ``bench/gpu.py`` measures this against the
    plain run, which allocates and copies through onnxruntime's own staging on every call."""

    def __init__(self, session: ort.InferenceSession, *, bound: bool = False, device_id: int = 0) -> None:
        self.session = session
        # The provider the session really runs on, best first as it was granted (not as it was asked for).
        self.provider = session.get_providers()[0]
        self.bound = bound
        self._device = "cpu" if self.provider == providers_mod.CPU else "cuda"
        self._device_id = device_id
        self._local = threading.local()

    def run(self, names: Sequence[str], feed: Mapping[str, np.ndarray],
            run_options: ort.RunOptions | None = None) -> list[np.ndarray]:
        """The outputs ``names`` for ``feed`` (host arrays), as host arrays; ``run_options.terminate`` stops it."""
        if not self.bound:
            return self.session.run(list(names), dict(feed), run_options)
        binding = self.session.io_binding()
        for name, values in feed.items():
            binding.bind_ortvalue_input(name, self._input_buffer(name, values))
        for name in names:
            binding.bind_output(name, self._device, self._device_id)
        self.session.run_with_iobinding(binding, run_options)
        return binding.copy_outputs_to_cpu()

    def _input_buffer(self, name: str, values: np.ndarray) -> ort.OrtValue:
        """This thread's device buffer for ``name`` at this shape and type, holding a copy of ``values``."""
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            buffers = self._local.buffers = {}
        values = np.ascontiguousarray(values)
        key = (name, values.shape, values.dtype.str)
        buffer = buffers.pop(key, None)  # re-inserted below: the dict's order is the order of last use
        if buffer is None:
            if len(buffers) >= BUFFERS_PER_THREAD:
                buffers.pop(next(iter(buffers)))
            buffer = ort.OrtValue.ortvalue_from_shape_and_type(values.shape, values.dtype, self._device,
                                                               self._device_id)
        buffer.update_inplace(values)
        buffers[key] = buffer
        return buffer


def open_session(model: bytes | Path, execution: providers_mod.ExecutionSettings | providers_mod.DevicePreference,
                 field: str, profile: providers_mod.InputProfile | None = None) -> SessionRunner:
    """A session from the model's bytes, or from its file (external data then resolves in its folder), on the
    providers ``execution`` allows; ``profile`` (the input's shapes, when its non-batch axes are known) lets
    TensorRT build one engine for every batch size."""
    execution = providers_mod.ExecutionSettings.of(execution)
    reserve_cores_for_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: keep CPU-only machines quiet
    source = str(model) if isinstance(model, Path) else model
    providers = providers_mod.provider_options(execution, profile)
    if providers[0][0] != providers_mod.CPU:
        providers_mod.preload_cuda_libraries()
    if any(name == providers_mod.TENSORRT for name, _ in providers):
        try:
            execution.cache_dir().mkdir(parents=True, exist_ok=True)
        except OSError as error:  # the server's setting, not the model's fault: run on CUDA without TensorRT
            log.warning("TensorRT engine cache %s unusable (%s); TensorRT not used", execution.cache_dir(), error)
            providers = [entry for entry in providers if entry[0] != providers_mod.TENSORRT]
    try:
        session = ort.InferenceSession(source, options, providers=[name for name, _ in providers],
                                       provider_options=[opts for _, opts in providers])
    except Exception as error:  # onnxruntime's own types (Fail, InvalidGraph, NotImplemented)
        raise InvalidArgument(f"onnxruntime cannot load the model: {error}", field=field) from error
    on_cpu = session.get_providers()[0] == providers_mod.CPU
    return SessionRunner(session, bound=execution.io_binding and not on_cpu, device_id=execution.device_id)
