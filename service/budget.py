"""What one request may cost, estimated before anything is allocated.

Every job checks its estimates against the server's ``Budget`` (``Settings``
gives the numbers) and refuses with RESOURCE_EXHAUSTED, naming the parameter
at fault and the limit, instead of discovering the cost by running out of
memory or time. The defaults are sized for a 24 GB, 2-worker machine: two jobs
at their memory limit plus the decoding pool and the models stay under 10 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.errors import ResourceExhausted

MIB = 1024 * 1024


@dataclass(frozen=True)
class Budget:
    # Host memory one job may allocate at its peak (perturbed batches, masks, designs, maps).
    job_memory_mb: int = 3072
    # Forward passes one request may ask for (the sum over every method, metric and setting it runs).
    forward_passes: int = 1_000_000
    # Pixels of one decoded image, checked from its header before decoding (8000 x 8000 is 64 M).
    image_pixels: int = 40_000_000
    # Pixels of all the images of one request together, decoded.
    request_pixels: int = 120_000_000
    # Height x width a model may declare (or be configured with): its images and maps scale with it.
    model_input_pixels: int = 4096 * 4096
    # Images per onnxruntime call (the request's batch_size, a model's configured batch).
    batch_size: int = 1024

    @property
    def job_memory_bytes(self) -> int:
        return self.job_memory_mb * MIB

    def require_memory(self, estimated_bytes: int, *, field: str, what: str) -> None:
        """Refuse work whose estimated peak memory is over the job limit; ``what`` says what takes it."""
        if estimated_bytes > self.job_memory_bytes:
            raise ResourceExhausted(
                f"{what} needs about {_mib(estimated_bytes)} MiB, over this server's {self.job_memory_mb} MiB "
                "limit per job (ONNXPLAIN_MAX_JOB_MEMORY_MB); lower it", field=field)

    def require_passes(self, passes: int, *, field: str) -> None:
        if passes > self.forward_passes:
            raise ResourceExhausted(
                f"the request needs {passes} forward passes, over this server's limit of {self.forward_passes} "
                "per request (ONNXPLAIN_MAX_FORWARD_PASSES); lower it", field=field)

    def require_pixels(self, pixels: int, *, field: str, total: bool = False) -> None:
        limit = self.request_pixels if total else self.image_pixels
        if pixels > limit:
            scope = "the request's images together hold" if total else "the image holds"
            setting = "ONNXPLAIN_MAX_REQUEST_PIXELS" if total else "ONNXPLAIN_MAX_IMAGE_PIXELS"
            raise ResourceExhausted(f"{scope} {pixels} pixels, over this server's limit of {limit} ({setting}); "
                                    "send smaller images", field=field)


def _mib(nbytes: int) -> int:
    return -(-nbytes // MIB)


DEFAULT_BUDGET = Budget()
