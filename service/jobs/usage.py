"""Where a job reports the work it does to the server that runs it, so that operators can count it.

The server sets ``current`` for each RPC (service.api.telemetry); the runner carries it into the worker thread,
where ``CountingPredict`` reports every forward pass. Jobs run by the CLI or by tests have none and report nothing.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Protocol


class UsageSink(Protocol):
    def forward(self, model: str, method: str, passes: int, seconds: float) -> None:
        """``passes`` images of ``model`` scored for ``method`` in ``seconds`` of session time."""

    def queued(self, seconds: float) -> None:
        """A job of the request waited ``seconds`` for a worker."""


current: ContextVar[UsageSink | None] = ContextVar("onnxplain_usage", default=None)
