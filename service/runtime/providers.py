"""Choosing onnxruntime execution providers deliberately.

onnxruntime-gpu lists CUDAExecutionProvider even on machines without a GPU,
and asking for it there logs a loud error before falling back to the CPU. So
CUDA is requested only when the CUDA driver reports a device, and the provider
a session actually runs on is read back from the session and reported.
"""

from __future__ import annotations

import ctypes
import functools
import logging
from enum import StrEnum

import onnxruntime as ort

log = logging.getLogger(__name__)

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


class DevicePreference(StrEnum):
    AUTO = "auto"
    CPU = "cpu"
    CUDA = "cuda"


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


def choose_providers(preference: DevicePreference = DevicePreference.AUTO) -> list[str]:
    """Providers to ask for, best first; CPU always closes the list."""
    if preference is DevicePreference.CPU:
        return [CPU]
    cuda_usable = CUDA in ort.get_available_providers() and cuda_device_count() > 0
    if preference is DevicePreference.CUDA and not cuda_usable:
        log.warning("CUDA requested but no CUDA device is usable; running on CPU",
                    extra={"available": ort.get_available_providers(), "devices": cuda_device_count()})
    return [CUDA, CPU] if cuda_usable else [CPU]
