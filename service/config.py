"""Server settings, from the environment (``ONNXPLAIN_*``) or the command line."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path

from service.budget import Budget
from service.runtime.batcher import DEFAULT_MAX_QUEUE_DELAY_MS, BatchingSettings
from service.runtime.providers import ArenaExtend, ConvAlgoSearch, DevicePreference, ExecutionSettings

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051
    # Server-side model repository; with preload, every model in it loads at start-up.
    models_dir: Path | None = None
    preload: bool = True
    # Server-side datasets for the Audit RPC, which writes its results under <data_dir>/audits.
    data_dir: Path | None = None
    # Largest request or response, both directions (the 4 MiB gRPC default is too small for images).
    max_message_mb: int = 64
    # Worker threads running jobs; more jobs than workers wait in a queue of max_queue.
    workers: int = 2
    max_queue: int = 16
    # Worker threads for the short requests (Predict; LoadModel, GetModel's first verification, InspectModel), with
    # a queue of max_queue of their own: a Predict must not wait behind a ten-minute audit or explanation.
    interactive_workers: int = 2
    batch_size: int = 32
    device: DevicePreference = DevicePreference.AUTO
    # GPU execution: each default and its reason is documented on service.runtime.providers.ExecutionSettings.
    cuda_device_id: int = ExecutionSettings.device_id
    cudnn_conv_algo_search: ConvAlgoSearch = ExecutionSettings.cudnn_conv_algo_search
    cuda_arena_extend_strategy: ArenaExtend = ExecutionSettings.arena_extend_strategy
    cuda_copy_in_default_stream: bool = ExecutionSettings.do_copy_in_default_stream
    tensorrt: bool = ExecutionSettings.tensorrt
    tensorrt_fp16: bool = ExecutionSettings.tensorrt_fp16
    tensorrt_cache_dir: Path | None = None
    io_binding: bool = ExecutionSettings.io_binding
    # Where EVA's PyTorch mirror runs: auto (CUDA when torch sees one), cpu, cuda.
    verify_device: DevicePreference = ExecutionSettings.verify_device
    # Bearer token: the value itself, or a file holding it. Health checks are exempt.
    token: str | None = None
    token_file: Path | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: str = "WARNING"
    # Requests refused before they allocate (service.budget documents each limit and why its default).
    max_job_memory_mb: int = Budget.job_memory_mb
    max_forward_passes: int = Budget.forward_passes
    max_image_pixels: int = Budget.image_pixels
    max_request_pixels: int = Budget.request_pixels
    max_model_input_pixels: int = Budget.model_input_pixels
    max_batch_size: int = Budget.batch_size
    # Threads that decode images and parse requests, so that the event loop only routes.
    decode_workers: int = 2
    # On SIGTERM: stop taking work, let running jobs finish for this long, cancel the rest, exit.
    shutdown_grace_s: float = 10.0
    # Prometheus metrics on their own HTTP port (0: off).
    metrics_port: int = 0
    # With a token set, reflection needs it too unless this is true (health is always open).
    public_reflection: bool = False
    # Merge concurrent jobs' session calls per model (service.runtime.batcher, whose docstring gives the measured
    # reason for the default) for models whose configuration does not say; and how long a call that is not full
    # may wait for others to join it.
    dynamic_batching: bool = BatchingSettings.enabled
    max_queue_delay_ms: float = DEFAULT_MAX_QUEUE_DELAY_MS

    @property
    def batching(self) -> BatchingSettings:
        return BatchingSettings(enabled=self.dynamic_batching, max_queue_delay_ms=self.max_queue_delay_ms)

    @property
    def max_message_bytes(self) -> int:
        return self.max_message_mb * MIB

    @property
    def budget(self) -> Budget:
        return Budget(job_memory_mb=self.max_job_memory_mb, forward_passes=self.max_forward_passes,
                      image_pixels=self.max_image_pixels, request_pixels=self.max_request_pixels,
                      model_input_pixels=self.max_model_input_pixels, batch_size=self.max_batch_size)

    @property
    def execution(self) -> ExecutionSettings:
        return ExecutionSettings(
            device=self.device, device_id=self.cuda_device_id, cudnn_conv_algo_search=self.cudnn_conv_algo_search,
            arena_extend_strategy=self.cuda_arena_extend_strategy,
            do_copy_in_default_stream=self.cuda_copy_in_default_stream, tensorrt=self.tensorrt,
            tensorrt_fp16=self.tensorrt_fp16, tensorrt_cache_dir=self.tensorrt_cache_dir, io_binding=self.io_binding,
            verify_device=self.verify_device)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def bearer_token(self) -> str | None:
        if self.token_file is not None:
            return self.token_file.read_text().strip() or None
        return self.token or None

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> "Settings":
        """Defaults, then ``ONNXPLAIN_<FIELD>`` variables, then explicit (non-None) overrides."""
        environ = os.environ if environ is None else environ
        values = {}
        for f in fields(cls):
            raw = environ.get(f"ONNXPLAIN_{f.name.upper()}")
            if raw not in (None, ""):
                values[f.name] = _parse(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def bundled_models_dir() -> Path:
    """ONNXPLAIN_MODELS_DIR, else the repository's bundled ``models/`` (a source checkout)."""
    configured = os.environ.get("ONNXPLAIN_MODELS_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parent.parent / "models"


_FIELD_TYPES = {f.name: {"int": int, "float": float, "bool": bool}.get(f.type, str) for f in fields(Settings)}


def _parse(name: str, raw: str):
    kind = _FIELD_TYPES.get(name, str)
    if kind in (int, float):
        return kind(raw)
    if name in ("models_dir", "data_dir", "token_file", "tls_cert", "tls_key", "tensorrt_cache_dir"):
        return Path(raw)
    if kind is bool:
        return raw.lower() in ("1", "true", "yes")
    if name in ("device", "verify_device"):
        return DevicePreference(raw.lower())
    if name == "cudnn_conv_algo_search":
        return ConvAlgoSearch(raw.upper())
    if name == "cuda_arena_extend_strategy":
        return ArenaExtend(raw)
    return raw
