"""Dynamic batching across requests (Triton's ``dynamic_batching``): one model's session calls, merged.

Each job chunks its own images (``LoadedModel.outputs``); on its own, eight concurrent jobs of eight images each
make eight small session calls. The model's ``Batcher`` queues every job's calls and one worker thread (started by
a call, ended after ``IDLE_EXIT_S`` idle or when the model is unloaded) runs them, one session call at a time, as
merged calls of up to ``preferred_batch_size`` images:

- Only calls that can be concatenated merge: the same output names, the same input names, dtypes and shape after
  the batch axis (a dynamic model's images of another size wait for a call of their own).
- A full batch goes at once. A batch that is not full waits for more work at most ``max_queue_delay_ms`` after its
  oldest call arrived, and only while another job may send some: a job that submitted within ``ACTIVE_WINDOW_S``
  and has nothing queued. A lone job never waits, whatever its chunk size.
- Fairness: each merged call is filled round-robin, one image at a time, over the jobs that have work queued
  (a job is one ``RunOptions``, i.e. one ``CountingPredict``), and a job's call may be split across merged
  calls; the job served first rotates. A job sending 256-image calls gets no more than an equal share of a
  call while another job has work queued: the small job's images ride in the next call.
- Cancellation: a job's ``RunOptions.terminate`` (set by its cancel, its deadline) drops its queued work at once
  and its caller returns within ``POLL_S``; a merged call in flight is terminated only when every job in it is
  cancelled, so one client leaving never stops another's work.
- Errors: a merged call that fails is retried piece by piece, each job's part alone, so the job whose images
  break the model gets its own error and the others their scores.
- Accounting: a merged call's session time is charged to its jobs in proportion to their images in it
  (``charge``/``SessionMeter``): summed over the jobs, it is the session's time exactly. Passes stay each job's own
  images (``service.jobs.counting``).

On by default (``service.config.Settings.dynamic_batching``), with a 2 ms delay. Measured on the 2-core
development machine under heavy contention from other work (load average 6 to 10; bench/batching.py,
bench/README.md): eight concurrent occlusion clients sending 8-image calls to a 224-pixel resnet18 ran at 22.2
images/s batched against 18.9 unbatched (1.17x; a second run 83.2 against 77.7, 1.07x; 112 pixels: 0.97x), and
one client alone at 19.1 against 17.8 and 74.7 against 78.0 (the same calls either way: that 4-7% is the
noise). No loss on CPU, and on a GPU, where a call of 8 images leaves most of the device idle, merging is the
point. A lone job never waits, so the delay costs only
when jobs overlap: 2 ms is under 5% of one 8-image resnet18 call on these cores (60 ms and more) and bounds
the added latency per call; Triton's own default delay is 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict, deque
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import onnxruntime as ort

from service.errors import Cancelled, InvalidArgument

log = logging.getLogger(__name__)

# How often a waiting caller looks at its job's RunOptions.terminate: the bound on how late a cancelled caller
# returns (the contract is within a second).
POLL_S = 0.05
# A job that submitted a call this recently, and has none queued now, may be computing its next one (RISE draws
# masks between calls): only then is a batch that is not full held back for it.
ACTIVE_WINDOW_S = 0.5
# A worker with nothing to run for this long ends; the next call starts another. A model nobody uses holds no
# thread, and a model loaded outside a repository (the CLI, a test) and dropped is not kept alive by its worker.
IDLE_EXIT_S = 2.0
DEFAULT_MAX_QUEUE_DELAY_MS = 2.0



@dataclass(frozen=True)
class BatchingSettings:
    """The server's defaults for models whose configuration does not say (``service.config.Settings``)."""
    enabled: bool = True
    max_queue_delay_ms: float = DEFAULT_MAX_QUEUE_DELAY_MS


Execute = Callable[[Sequence[str], dict, "ort.RunOptions | None"], list]


# --- session time charged to the caller ------------------------------------------------------------------------

@dataclass
class SessionMeter:
    """The session time charged to one caller while it is the context's meter (``service.jobs.counting``)."""
    seconds: float = 0.0


meter: ContextVar[SessionMeter | None] = ContextVar("onnxplain_session_meter", default=None)


def charge(seconds: float) -> None:
    current = meter.get()
    if current is not None:
        current.seconds += seconds


# --- statistics --------------------------------------------------------------------------------------------------

@dataclass
class BatchStats:
    """What a model's session did since it was loaded, batched or not (GetModelStatistics): session calls
    (``executions``) against the images in them (``images``), and how long calls waited in the batcher."""
    executions: int = 0
    images: int = 0
    session_seconds: float = 0.0
    queued: int = 0
    queue_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def executed(self, images: int, seconds: float) -> None:
        with self._lock:
            self.executions += 1
            self.images += images
            self.session_seconds += seconds

    def waited(self, seconds: float) -> None:
        with self._lock:
            self.queued += 1
            self.queue_seconds += seconds

    def snapshot(self) -> "BatchStats":
        with self._lock:
            return BatchStats(self.executions, self.images, self.session_seconds, self.queued, self.queue_seconds)

    def timed(self, execute: Execute, names, feed: dict, run_options) -> list:
        """One call on its own: run, count, and charge its whole time to the caller."""
        started = time.perf_counter()
        fetched = execute(names, feed, run_options)
        seconds = time.perf_counter() - started
        self.executed(_rows(feed), seconds)
        charge(seconds)
        return fetched


def _rows(feed: dict) -> int:
    return len(next(iter(feed.values())))


# --- the batcher -------------------------------------------------------------------------------------------------

class _Request:
    """One caller's session call, waiting for (pieces of) merged calls."""

    def __init__(self, job: int, names: tuple[str, ...], feed: dict, run_options) -> None:
        self.job, self.names, self.feed, self.run_options = job, names, feed, run_options
        self.key = (names, tuple((name, feed[name].shape[1:], feed[name].dtype.str) for name in sorted(feed)))
        self.rows = _rows(feed)
        self.next_row = 0  # the first row not yet handed to a call
        self.finished_rows = 0
        self.outputs: list | None = None
        self.model_seconds = 0.0
        self.error: BaseException | None = None
        self.cancelled = False
        self.submitted = time.perf_counter()
        self.done = threading.Event()

    def fail(self, error: BaseException) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


@dataclass
class _Piece:
    request: _Request
    start: int
    stop: int


@dataclass
class _Call:
    pieces: list[_Piece]
    run_options: ort.RunOptions = field(default_factory=ort.RunOptions)

    @property
    def requests(self) -> list[_Request]:
        return [piece.request for piece in self.pieces]


class Batcher:
    """Merges one model's session calls across jobs; ``run`` is what ``LoadedModel`` calls instead of running
    the session itself. ``execute(names, feed, run_options)`` runs one session call; ``capacity(input_shape)``
    is the most images one call of that input shape may hold (the model's memory-bound batch)."""

    def __init__(self, name: str, execute: Execute, *, preferred_batch_size: int, max_queue_delay_ms: float,
                 capacity: Callable[[tuple[int, ...]], int] | None = None, stats: BatchStats | None = None) -> None:
        self.name = name
        self.preferred_batch_size = preferred_batch_size
        self.max_queue_delay_s = max_queue_delay_ms / 1000.0
        self.stats = stats or BatchStats()
        self._execute = execute
        self._capacity = capacity
        self._cond = threading.Condition()
        self._queues: OrderedDict[int, deque[_Request]] = OrderedDict()  # by job, in round-robin order
        self._last_seen: dict[int, float] = {}  # by job: when it last submitted a call
        self._in_flight: _Call | None = None
        self._stopping = False
        self._thread: threading.Thread | None = None  # started by the first call, ended when idle or stopped

    # --- the caller's side ------------------------------------------------------------------------------------

    def run(self, names: Sequence[str], feed: dict, run_options: ort.RunOptions | None = None) -> list:
        """The session's outputs for ``feed``, as ``execute`` gives them, from one or more merged calls.
        Raises ``Cancelled`` within ``POLL_S`` of ``run_options.terminate``, and what the session raised for
        this call's own images."""
        # A job is its RunOptions (one per CountingPredict); a call without one is a job of its own.
        request = _Request(id(run_options) if run_options is not None else -id(feed), tuple(names), feed, run_options)
        with self._cond:
            if self._stopping:  # unloaded while a job still runs: it finishes unbatched
                return self.stats.timed(self._execute, names, feed, run_options)
            self._queues.setdefault(request.job, deque()).append(request)
            self._last_seen[request.job] = request.submitted
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"onnxplain-batcher-{self.name}",
                                                daemon=True)
                self._thread.start()
            self._cond.notify_all()
        while not request.done.wait(POLL_S):
            if run_options is not None and run_options.terminate:
                self._abandon(request)
                break
        if request.cancelled:
            raise Cancelled("the job was cancelled while its images waited for or ran in a merged call")
        if request.error is not None:
            raise request.error
        charge(request.model_seconds)
        return request.outputs

    def _abandon(self, request: _Request) -> None:
        """Drop a cancelled caller's queued work; terminate the call in flight if no live job is left in it."""
        with self._cond:
            request.cancelled = True
            request.done.set()
            queue = self._queues.get(request.job)
            if queue is not None and request in queue:
                queue.remove(request)
                if not queue:
                    del self._queues[request.job]
            call = self._in_flight
            if call is not None and request in call.requests and all(r.cancelled for r in call.requests):
                call.run_options.terminate = True

    # --- lifecycle --------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Run what is queued without waiting for more, then end the worker thread; later calls run unbatched.
        Does not block (an unload on the event loop must not wait for a session call): ``join`` waits."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the worker to end (after ``stop``, or idle); whether none runs."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    # --- the worker -------------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._cond:
                call = None
                while call is None:
                    self._drop_cancelled()
                    if not self._queues:
                        if self._stopping or not self._cond.wait(IDLE_EXIT_S) and not self._queues:
                            self._thread = None  # the next call starts another worker
                            return
                        continue
                    wait_s = 0.0 if self._stopping else self._wait_for_more()
                    if wait_s > 0:
                        self._cond.wait(wait_s)
                        continue
                    call = self._take_call()
                self._in_flight = call
            try:
                self._run_call(call)
            except BaseException as error:  # never leave a caller waiting on a worker that died
                log.exception("batcher call failed", extra={"model": self.name})
                for request in call.requests:
                    request.fail(error)
            finally:
                with self._cond:
                    self._in_flight = None

    def _drop_cancelled(self) -> None:
        for job in list(self._queues):
            queue = self._queues[job]
            live = deque(r for r in queue if not (r.run_options is not None and r.run_options.terminate))
            for request in queue:
                if request not in live:
                    request.cancelled = True
                    request.done.set()
            if live:
                self._queues[job] = live
            else:
                del self._queues[job]

    def _head_key(self):
        return next(iter(self._queues.values()))[0].key

    def _limit(self, key) -> int:
        limit = self.preferred_batch_size
        if self._capacity is not None:
            _names, inputs = key
            limit = min(limit, self._capacity((0, *inputs[0][1])))
        return max(1, limit)

    def _wait_for_more(self) -> float:
        """Seconds to hold the next call back for more work: 0 when it is full, when no other job may send work,
        or when its oldest call has waited ``max_queue_delay_ms``."""
        key = self._head_key()
        pending = [r for queue in self._queues.values() for r in queue if r.key == key]
        if sum(r.rows - r.next_row for r in pending) >= self._limit(key):
            return 0.0
        now = time.perf_counter()
        for job, seen in list(self._last_seen.items()):
            if now - seen > ACTIVE_WINDOW_S:
                del self._last_seen[job]
        if not set(self._last_seen) - set(self._queues):
            return 0.0
        return max(0.0, min(r.submitted for r in pending) + self.max_queue_delay_s - now)

    def _take_call(self) -> _Call:
        """The next merged call: the head job's kind of call, filled round-robin one image at a time."""
        key = self._head_key()
        limit = self._limit(key)
        demand = {job: sum(r.rows - r.next_row for r in queue if r.key == key) for job, queue in self._queues.items()}
        share = dict.fromkeys(demand, 0)
        left = limit
        while left > 0 and any(share[job] < demand[job] for job in demand):
            for job in demand:
                if left > 0 and share[job] < demand[job]:
                    share[job] += 1
                    left -= 1
        pieces = []
        now = time.perf_counter()
        for job, count in share.items():
            queue = self._queues[job]
            for request in [r for r in queue if r.key == key]:
                if count == 0:
                    break
                take = min(count, request.rows - request.next_row)
                if request.next_row == 0:
                    self.stats.waited(now - request.submitted)
                pieces.append(_Piece(request, request.next_row, request.next_row + take))
                request.next_row += take
                count -= take
                if request.next_row == request.rows:
                    queue.remove(request)
            if not queue:
                del self._queues[job]
        first = next(iter(share))
        if first in self._queues:
            self._queues.move_to_end(first)  # the next call starts with the next job
        return _Call(pieces)

    def _run_call(self, call: _Call) -> None:
        pieces = call.pieces
        names = pieces[0].request.names
        if len(pieces) == 1:
            piece = pieces[0]
            whole = piece.start == 0 and piece.stop == piece.request.rows
            feed = piece.request.feed if whole else {n: v[piece.start:piece.stop]
                                                     for n, v in piece.request.feed.items()}
        else:
            feed = {n: np.concatenate([p.request.feed[n][p.start:p.stop] for p in pieces])
                    for n in pieces[0].request.feed}
        started = time.perf_counter()
        try:
            fetched = self._execute(names, feed, call.run_options)
            rows = _rows(feed)
            if len(pieces) > 1 or not whole:
                for output in fetched:
                    if np.ndim(output) == 0 or len(output) != rows:
                        raise ValueError(f"an output of shape {list(np.shape(output))} for a merged call of {rows} "
                                         "images has no batch axis to split")
        except Exception as error:  # onnxruntime's own types
            if call.run_options.terminate:  # every job in it was cancelled
                for request in call.requests:
                    request.cancelled = True
                    request.done.set()
            elif len(pieces) == 1:
                self._fail(pieces[0].request, error)
            else:  # each job's part alone: only the one that breaks the model gets the error
                for piece in pieces:
                    alone = _Call([piece])
                    with self._cond:
                        if piece.request.done.is_set():  # cancelled meanwhile, or failed in an earlier part
                            continue
                        self._in_flight = alone  # what a cancel of its job terminates
                    self._run_call(alone)
            return
        seconds = time.perf_counter() - started
        self.stats.executed(rows, seconds)
        offset = 0
        for piece in pieces:
            count = piece.stop - piece.start
            request = piece.request
            request.model_seconds += seconds * count / rows
            if count == request.rows:
                request.outputs = list(fetched) if len(pieces) == 1 else [o[offset:offset + count] for o in fetched]
            else:
                if request.outputs is None:
                    request.outputs = [np.empty((request.rows, *np.shape(o)[1:]), np.asarray(o).dtype)
                                       for o in fetched]
                for target, output in zip(request.outputs, fetched):
                    target[piece.start:piece.stop] = output[offset:offset + count]
            offset += count
            request.finished_rows += count
            if request.finished_rows == request.rows:
                request.done.set()

    def _fail(self, request: _Request, error: BaseException) -> None:
        """The request's own images fail: it gets the error, and its parts not yet run are dropped."""
        with self._cond:
            queue = self._queues.get(request.job)
            if queue is not None and request in queue:
                queue.remove(request)
                if not queue:
                    del self._queues[request.job]
        request.fail(error)


def make_batcher(model, configured: dict, fields: dict[str, str],
                 defaults: BatchingSettings = BatchingSettings()) -> Batcher | None:
    """The batcher for a loaded model (``service.runtime.loader``), or None: batching off, or a fixed batch
    axis (a call holds exactly the graph's batch, so there is nothing to merge into). ``configured`` holds the
    model configuration's ``dynamic_batching`` keys, ``fields`` where each came from (errors name it)."""
    info = model.info
    if not configured.get("enabled", defaults.enabled if not configured else True) or info.fixed_batch:
        return None
    preferred = configured.get("preferred_batch_size", info.max_batch)
    if preferred > info.max_batch:
        raise InvalidArgument(f"is {preferred}, over the model's batch of {info.max_batch} images per call (its "
                              "batch_size, or the server's memory bound); give at most that",
                              field=fields.get("dynamic_batching.preferred_batch_size"))
    return Batcher(info.name, model._run_feed, preferred_batch_size=preferred,
                   max_queue_delay_ms=configured.get("max_queue_delay_ms", defaults.max_queue_delay_ms),
                   capacity=model.input_capacity, stats=model.batch_stats)
