"""Opening onnxruntime sessions: the providers asked for, the session options, the cores left to it."""

from __future__ import annotations

import functools
from pathlib import Path

import onnxruntime as ort
from threadpoolctl import threadpool_limits

from service.errors import InvalidArgument
from service.runtime import providers as providers_mod


@functools.cache
def reserve_cores_for_onnxruntime() -> None:
    """Keep numpy's BLAS single-threaded, process-wide, once a model is loaded.

    Explainers call BLAS between forward passes (RISE builds its masks with matmul); OpenBLAS's
    threads then spin on the cores onnxruntime's own threads need. Measured on 2 cores with a
    224-pixel resnet18: RISE ran at 1.19x the bare forward passes, 1.06x with BLAS on one thread.
    """
    threadpool_limits(limits=1, user_api="blas")


def open_session(model: bytes | Path, device: providers_mod.DevicePreference, field: str) -> ort.InferenceSession:
    """A session from the model's bytes, or from its file (external data then resolves in its folder)."""
    reserve_cores_for_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: keep CPU-only machines quiet
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, options, providers=providers_mod.choose_providers(device))
    except Exception as error:  # onnxruntime's own types (Fail, InvalidGraph, NotImplemented)
        raise InvalidArgument(f"onnxruntime cannot load the model: {error}", field=field) from error
