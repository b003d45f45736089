"""Progress, cancellation and deadlines for work that runs in a worker thread.

The worker calls ``checkpoint`` between batches; the caller (a gRPC handler on
the event loop, or the CLI) sets ``cancel()`` or a deadline. Work stops at the
next batch boundary, so nothing keeps a session busy for a caller who left.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from service.budget import DEFAULT_BUDGET, Budget
from service.errors import Cancelled, DeadlineExceeded


@dataclass(frozen=True)
class Progress:
    stage: str
    done: int
    total: int
    elapsed_ms: float


class JobControl:
    def __init__(self, *, deadline: float | None = None,
                 on_progress: Callable[[Progress], None] | None = None, budget: Budget = DEFAULT_BUDGET) -> None:
        """``deadline`` is a ``time.monotonic()`` instant; ``on_progress`` runs in the worker thread;
        ``budget`` is what the job may cost, checked by the job before it allocates."""
        self.deadline = deadline
        self.budget = budget
        self._on_progress = on_progress
        self._cancelled = threading.Event()
        self._started = time.monotonic()
        self._on_cancel: list[Callable[[], None]] = []
        self._lock = threading.Lock()

    def cancel(self) -> None:
        with self._lock:
            self._cancelled.set()
            hooks = list(self._on_cancel)
        for hook in hooks:
            hook()

    def on_cancel(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` (from the cancelling thread) when the job is cancelled; at once if it already is.
        For work that cannot wait for the next checkpoint, such as a session call in progress."""
        with self._lock:
            self._on_cancel.append(hook)
            cancelled = self._cancelled.is_set()
        if cancelled:
            hook()

    @property
    def cancelled(self) -> bool:
        return self._cancelled.is_set()

    @property
    def elapsed_ms(self) -> float:
        return (time.monotonic() - self._started) * 1000.0

    def checkpoint(self) -> None:
        if self._cancelled.is_set():
            raise Cancelled("the request was cancelled")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise DeadlineExceeded(f"the deadline passed after {self.elapsed_ms:.0f} ms; allow more time or "
                                   "ask for fewer forward passes")

    def report(self, stage: str, done: int, total: int) -> None:
        if self._on_progress is not None:
            self._on_progress(Progress(stage, done, total, self.elapsed_ms))
