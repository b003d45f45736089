"""The page's bounds: how many runs go at once, how large an upload may be, how long a finished run is kept.

A page anyone on the network can open must not let one visitor fill the machine's memory or its server's queue.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    max_active_runs: int = 4  # runs still explaining; the server's own queue bounds the rest
    max_kept_runs: int = 32  # finished runs kept for their results (the oldest are dropped first)
    max_upload_bytes: int = 8 * MIB
    max_pixels: int = 4096 * 4096  # a decoded image's width x height (decompression bombs)
    max_methods: int = 8  # methods in one run
    run_ttl_s: float = 900.0  # a run is forgotten this long after it started


class Refusal(Exception):
    """A request the page refuses: an HTTP status, the gRPC-like code shown to the user, and the form field."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.field = status, code, message, field

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, "field": self.field}}


def check_admission(limits: Limits, active_runs: int, methods: int) -> None:
    """Refuse a new run over the bounds, before anything is decoded or sent."""
    if methods == 0:
        raise Refusal(400, "INVALID_ARGUMENT", "choose at least one method", "methods")
    if methods > limits.max_methods:
        raise Refusal(400, "INVALID_ARGUMENT", f"at most {limits.max_methods} methods in one run", "methods")
    if active_runs >= limits.max_active_runs:
        raise Refusal(429, "RESOURCE_EXHAUSTED",
                      f"{active_runs} runs are still going (at most {limits.max_active_runs}); wait or cancel one")


def check_upload_size(limits: Limits, size: int, field: str = "image") -> None:
    if size > limits.max_upload_bytes:
        raise Refusal(413, "INVALID_ARGUMENT",
                      f"{size} bytes; at most {limits.max_upload_bytes} bytes ({limits.max_upload_bytes // MIB} MiB)",
                      field)
