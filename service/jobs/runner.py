"""Runs blocking jobs on a bounded worker pool from asyncio, with deadlines and cancellation.

onnxruntime releases the GIL, so a few worker threads keep a session busy while
the event loop keeps serving. Work beyond the workers waits in a bounded
queue; past that the server answers RESOURCE_EXHAUSTED instead of piling up.
``queued`` and ``running`` are what the server's telemetry shows as gauges.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Generic, TypeVar

from service.budget import DEFAULT_BUDGET, Budget
from service.errors import ResourceExhausted
from service.jobs import usage
from service.jobs.control import JobControl, Progress

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    value: T
    queue_ms: float


class JobRunner:
    def __init__(self, workers: int, max_queue: int, budget: Budget = DEFAULT_BUDGET, *,
                 name: str = "onnxplain-job", reports_queue: bool = True) -> None:
        """``reports_queue``: the wait for a worker is the request's queue time in its statistics (the job
        workers' wait, not the decoding pool's, so that each request reports one)."""
        self.reports_queue = reports_queue
        self.budget = budget
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._controls: set[JobControl] = set()
        self._capacity = workers + max_queue
        self._in_flight = 0  # changed on the event loop's thread only
        self._running = 0  # raised by a worker as it starts a job, lowered on the loop as the job ends
        self._running_lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def running(self) -> int:
        """Jobs a worker is executing now, including those whose caller left and that stop at their next batch."""
        return self._running

    @property
    def queued(self) -> int:
        """Jobs accepted and waiting for a worker."""
        return self._in_flight - self._running

    async def run(self, work: Callable[[JobControl], T], *, deadline: float | None = None,
                  on_progress: Callable[[Progress], None] | None = None) -> Outcome[T]:
        """Run ``work(control)`` in a worker; if the awaiting task is cancelled, the work stops at its next batch.

        ``on_progress`` is called on the event loop's thread.
        """
        if self._in_flight >= self._capacity:
            raise ResourceExhausted(f"the server is busy ({self._in_flight} jobs running or queued); retry later")
        loop = asyncio.get_running_loop()
        forward = None if on_progress is None else (lambda p: loop.call_soon_threadsafe(on_progress, p))
        control = JobControl(deadline=deadline, on_progress=forward, budget=self.budget)
        submitted = time.perf_counter()
        started: list[float] = []

        def task() -> T:
            started.append(time.perf_counter())
            with self._running_lock:
                self._running += 1
            sink = usage.current.get()
            if sink is not None and self.reports_queue:
                sink.queued(started[0] - submitted)
            control.checkpoint()  # a request may have been cancelled or timed out while it waited
            return work(control)

        def finished(future: asyncio.Future) -> None:
            self._in_flight -= 1
            if started:  # a job cancelled before it started never ran
                with self._running_lock:
                    self._running -= 1
            if not future.cancelled():
                future.exception()  # retrieved: a caller who left must not leave an unretrieved-exception warning

        self._controls.add(control)
        self._in_flight += 1
        # The worker sees the request's context: its usage sink (service.jobs.usage) above all.
        future = loop.run_in_executor(self._executor, contextvars.copy_context().run, task)
        future.add_done_callback(finished)
        try:
            value = await asyncio.shield(future)
        except asyncio.CancelledError:
            control.cancel()
            raise
        finally:
            self._controls.discard(control)
        return Outcome(value, ((started[0] if started else submitted) - submitted) * 1000.0)

    def shutdown(self) -> None:
        """Drop queued work and stop running jobs at their next checkpoint (within a second)."""
        for control in list(self._controls):
            control.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)
