"""Choosing onnxruntime execution providers, and their options, deliberately.

onnxruntime-gpu lists CUDAExecutionProvider (and TensorrtExecutionProvider) even on machines without a GPU,
and asking for one there logs a loud error before falling back to the CPU. So CUDA is requested only when
the CUDA driver reports a device, TensorRT only when its library loads too, and the provider a session
actually runs on is read back from the session and reported (``ModelInfo.provider``).

Every option handed to a provider comes from ``ExecutionSettings`` (server settings, ``ONNXPLAIN_*``: see
``service.config``), never from a request or a model's sidecar: a path in a provider option is written to by
onnxruntime (TensorRT's engine cache), so it must be the server's own.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger(__name__)

TENSORRT = "TensorrtExecutionProvider"
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# The TensorRT major version onnxruntime-gpu 1.31's TensorRT provider links against.
TENSORRT_LIBRARY = "libnvinfer.so.10"


class DevicePreference(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


class ConvAlgoSearch(StrEnum):
    """cuDNN's convolution algorithm search (the CUDA provider's ``cudnn_conv_algo_search``)."""

    EXHAUSTIVE = "EXHAUSTIVE"  # benchmark every algorithm on each new input shape, keep the fastest
    HEURISTIC = "HEURISTIC"  # cuDNN's guess, no benchmarking: the first call of a shape is fast
    DEFAULT = "DEFAULT"  # one fixed algorithm


class ArenaExtend(StrEnum):
    """How the CUDA provider's memory arena grows (``arena_extend_strategy``)."""

    NEXT_POWER_OF_TWO = "kNextPowerOfTwo"
    SAME_AS_REQUESTED = "kSameAsRequested"


@dataclass(frozen=True)
class ExecutionSettings:
    """Where sessions run and with which provider options (server settings; see ``service.config``)."""

    device: DevicePreference = DevicePreference.AUTO
    # The CUDA device sessions (and, with verify_device, EVA's mirror) run on.
    device_id: int = 0
    # EXHAUSTIVE (onnxruntime's default): an explanation runs thousands of passes of one or two shapes (the
    # batch, the last partial batch), and the load probe already runs batches of 2 and 1, so the search's cost
    # (benchmarking each convolution's algorithms, once per new input shape and cached for the session) is paid
    # once against every later pass running the fastest kernel; at most one search per batch size up to the
    # model's batch. HEURISTIC suits a server whose images come in many sizes (dynamic models): each new size
    # would be searched again. bench/gpu.py takes the best of its repeats, so it times searched shapes.
    cudnn_conv_algo_search: ConvAlgoSearch = ConvAlgoSearch.EXHAUSTIVE
    # kSameAsRequested, not onnxruntime's kNextPowerOfTwo: a server holds several models on one GPU and a job
    # repeats the same few shapes, so the arena grows once to what those need; doubling could hold up to twice
    # that, per model.
    arena_extend_strategy: ArenaExtend = ArenaExtend.SAME_AS_REQUESTED
    # onnxruntime's default (1): copies on the compute stream. 0 lets copies overlap compute, but onnxruntime
    # documents data races for some models with it (OrtCUDAProviderOptions, issue #4829); a session here is
    # shared by concurrent requests, so correctness first.
    do_copy_in_default_stream: bool = True
    # TensorRT first when it is installed and a GPU is there: it fuses the graph into one engine, usually the
    # fastest on NVIDIA GPUs; nodes it cannot take fall back to CUDA, then CPU.
    tensorrt: bool = True
    # TensorRT's own fp16 kernels change the scores (the model's precision key, checked at load, is the way to
    # serve fp16): off unless asked.
    tensorrt_fp16: bool = False
    # TensorRT engines (minutes to build for a ResNet-50) and its timing cache are kept here, keyed by
    # onnxruntime on the graph and the GPU. None: ``default_tensorrt_cache``.
    tensorrt_cache_dir: Path | None = None
    # On CUDA, feed inputs and fetch outputs through an I/O binding with buffers kept per thread and shape
    # (``service.runtime.session.SessionRunner``); on the CPU provider a plain run is used regardless.
    io_binding: bool = True
    # Where EVA's PyTorch mirror runs (auto: CUDA when torch sees a device).
    verify_device: DevicePreference = DevicePreference.AUTO

    @classmethod
    def of(cls, device: DevicePreference | ExecutionSettings) -> ExecutionSettings:
        """Settings from a bare device preference (the callers that only choose the device)."""
        return device if isinstance(device, ExecutionSettings) else cls(device=DevicePreference(device))

    def cache_dir(self) -> Path:
        return self.tensorrt_cache_dir or default_tensorrt_cache()


def default_tensorrt_cache() -> Path:
    """$XDG_CACHE_HOME/onnxplain/tensorrt (else ~/.cache/...): the server user's own, surviving restarts, so
    an engine is built once per model and GPU rather than at every start."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "onnxplain" / "tensorrt"


@functools.cache
def cuda_device_count() -> int:
    """Devices the CUDA driver sees; 0 when there is no driver (quietly: no GPU is normal)."""
    try:
        driver = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if driver.cuInit(0) != 0 or driver.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


@functools.cache
def tensorrt_loadable() -> bool:
    """Whether TensorRT's runtime library loads (from the system, or the ``tensorrt`` wheel's folder)."""
    candidates = [TENSORRT_LIBRARY]
    try:
        import tensorrt_libs  # the pip wheel keeps its libraries in its package folder

        candidates.append(str(Path(tensorrt_libs.__file__).parent / TENSORRT_LIBRARY))
    except ImportError:
        pass
    for candidate in candidates:
        try:
            ctypes.CDLL(candidate)
            return True
        except OSError:
            continue
    return False


@functools.cache
def preload_cuda_libraries() -> None:
    """Load the CUDA runtime and cuDNN from the nvidia-* wheels (or torch's) before the first CUDA session: the
    CUDA provider finds them there only when they are loaded first (``onnxruntime.preload_dlls``). Missing ones
    are left to the system's library path; the provider really granted is read back from the session."""
    try:
        ort.preload_dlls()
    except Exception as error:  # its own loading errors: the session creation says the rest
        log.warning("could not preload the CUDA libraries: %s", error)


@dataclass(frozen=True)
class InputProfile:
    """The input's shapes a TensorRT engine is built for: ``min`` (one image) to ``max`` (the model's batch),
    optimised at ``max`` (explainers send full batches). Each is a shape with every axis known."""

    name: str
    min: tuple[int, ...]
    max: tuple[int, ...]

    def option(self, shape: tuple[int, ...]) -> str:
        return f"{self.name}:{'x'.join(map(str, shape))}"


def provider_options(settings: ExecutionSettings, profile: InputProfile | None = None, *,
                     available: list[str] | None = None, devices: int | None = None,
                     tensorrt_usable: bool | None = None) -> list[tuple[str, dict[str, str]]]:
    """Providers to ask for, best first, each with its options; CPU always closes the list. ``available``,
    ``devices`` and ``tensorrt_usable`` default to this machine's (given, for tests of another machine).
    TensorRT needs ``profile`` (an input whose non-batch axes are known): without one it would build an engine
    for every new input shape it meets, each taking minutes."""
    available = ort.get_available_providers() if available is None else available
    devices = cuda_device_count() if devices is None else devices
    if settings.device is DevicePreference.CPU:
        return [(CPU, {})]
    cuda_usable = CUDA in available and devices > settings.device_id
    if not cuda_usable:
        if settings.device is DevicePreference.CUDA:
            log.warning("CUDA requested but no CUDA device is usable; running on CPU",
                        extra={"available": available, "devices": devices, "device_id": settings.device_id})
        return [(CPU, {})]
    chosen = []
    if settings.tensorrt and TENSORRT in available and profile is not None and (
            tensorrt_loadable() if tensorrt_usable is None else tensorrt_usable):
        cache = str(settings.cache_dir())
        chosen.append((TENSORRT, {
            "device_id": str(settings.device_id),
            "trt_fp16_enable": str(settings.tensorrt_fp16),
            "trt_engine_cache_enable": "True", "trt_engine_cache_path": cache,
            "trt_timing_cache_enable": "True", "trt_timing_cache_path": cache,
            "trt_profile_min_shapes": profile.option(profile.min),
            "trt_profile_opt_shapes": profile.option(profile.max),
            "trt_profile_max_shapes": profile.option(profile.max),
        }))
    chosen.append((CUDA, {
        "device_id": str(settings.device_id),
        "cudnn_conv_algo_search": settings.cudnn_conv_algo_search.value,
        "arena_extend_strategy": settings.arena_extend_strategy.value,
        "do_copy_in_default_stream": "1" if settings.do_copy_in_default_stream else "0",
    }))
    return chosen + [(CPU, {})]

