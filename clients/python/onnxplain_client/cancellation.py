"""Cancelling calls from another thread, as the Node client's ``AbortSignal``.

``cancel()`` cancels every call in flight that was given the ``Cancellation`` (the server stops the job at its next
checkpoint, within a second) and every later call given it, at once: those raise ``OnnxplainError`` with code
``CANCELLED``. A call waiting in the server's queue is cancelled too, before any progress event reaches the client.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Iterator


class Cancellation:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: set[Any] = set()
        self._cancelled = False

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def cancel(self) -> None:
        with self._lock:
            self._cancelled = True
            calls = list(self._calls)
        for call in calls:
            call.cancel()

    @contextlib.contextmanager
    def tracking(self, call: Any) -> Iterator[Any]:
        """``call`` (a grpc streaming call) cancelled by ``cancel()`` while the block runs, or at once if it came
        first."""
        with self._lock:
            self._calls.add(call)
            cancelled = self._cancelled
        if cancelled:
            call.cancel()
        try:
            yield call
        finally:
            with self._lock:
                self._calls.discard(call)
