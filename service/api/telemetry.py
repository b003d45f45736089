"""Metrics for operators: one Prometheus registry per server, an interceptor that counts every RPC once, and the
per-model statistics that GetModelStatistics returns (in the spirit of Triton's ModelStatistics).

Exposed on their own HTTP port when ``Settings.metrics_port`` is set:

- ``grpc_server_handled_total{grpc_service, grpc_method, grpc_type, grpc_code}``: RPCs by their final status, and
  ``grpc_server_handling_seconds{grpc_service, grpc_method, grpc_type}``: their latency (the names of
  go-grpc-prometheus, so that its dashboards read them);
- ``onnxplain_jobs_queued{lane}`` and ``onnxplain_jobs_running{lane}``: each runner's queue depth and busy workers
  (lane "jobs": explanations, metrics, studies, audits; "interactive": Predict and the model RPCs);
- ``onnxplain_forward_passes_total{model, method}`` and ``onnxplain_model_seconds_total{model, method}``: images
  scored and session time, counted as the jobs run (service.jobs.usage);
- ``onnxplain_session_calls_total{model}``, ``onnxplain_session_images_total{model}`` and
  ``onnxplain_batch_queue_seconds_total{model}``: each loaded model's session calls, their images and its
  calls' waits in its batcher (service.runtime.batcher), since the model was loaded: calls over images is the
  mean batch dynamic batching achieves, the waits what its delay costs;
- ``process_*`` (``process_resident_memory_bytes`` on Linux), ``python_gc_*`` and ``python_info``.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import inspect
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import grpc
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms
from prometheus_client import (CollectorRegistry, Counter, GCCollector, Gauge, Histogram, PlatformCollector,
                               ProcessCollector, start_http_server)
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from service.jobs import usage
from service.jobs.runner import JobRunner
from service.runtime.batcher import BatchStats

# A client whose deadline passes cancels the call itself, and that reaches the server a few milliseconds before the
# server's own timer fires: a cancellation this close to the deadline is the deadline.
DEADLINE_SLACK_S = 0.1
# From health checks (milliseconds) to audits (minutes).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)


@dataclass
class Tally:
    count: int = 0
    seconds: float = 0.0

    def add(self, seconds: float, count: int = 1) -> None:
        self.count += count
        self.seconds += seconds


@dataclass
class MethodTally:
    requests: int = 0
    forward_passes: int = 0
    model_seconds: float = 0.0
    queue_seconds: float = 0.0


@dataclass
class ModelTally:
    success: Tally = field(default_factory=Tally)
    failure: Tally = field(default_factory=Tally)
    queue: Tally = field(default_factory=Tally)
    forward_passes: int = 0
    model_seconds: float = 0.0
    last_forward: float = 0.0  # time.time() of the last forward pass; 0 if none
    methods: dict[str, MethodTally] = field(default_factory=dict)


class Telemetry:
    """What one server counts. ``serves(name)`` tells whether a model of that name is loaded: requests are
    attributed to the model they name only then, so that made-up names cannot grow the statistics."""

    def __init__(self, runners: Mapping[str, JobRunner], serves: Callable[[str], bool],
                 sessions: Callable[[], Mapping[str, BatchStats]] | None = None) -> None:
        """``sessions``: each loaded model's session statistics, by name (the repository's models)."""
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        rpc_labels = ("grpc_service", "grpc_method", "grpc_type")
        self.handled = Counter("grpc_server_handled", "RPCs completed on the server, by final status.",
                               (*rpc_labels, "grpc_code"), registry=self.registry)
        self.latency = Histogram("grpc_server_handling_seconds", "Time from an RPC's start to its final status.",
                                 rpc_labels, buckets=LATENCY_BUCKETS, registry=self.registry)
        queued = Gauge("onnxplain_jobs_queued", "Jobs accepted and waiting for a worker, by lane.", ("lane",),
                       registry=self.registry)
        running = Gauge("onnxplain_jobs_running", "Jobs a worker is executing (a cancelled one until its next "
                        "batch), by lane.", ("lane",), registry=self.registry)
        for lane, runner in runners.items():  # "jobs", and "interactive" for Predict and the model RPCs
            queued.labels(lane=lane).set_function(lambda runner=runner: runner.queued)
            running.labels(lane=lane).set_function(lambda runner=runner: runner.running)
        self.forward_passes = Counter("onnxplain_forward_passes", "Images a model scored, by the method they served.",
                                      ("model", "method"), registry=self.registry)
        self.model_seconds = Counter("onnxplain_model_seconds", "Time spent in a model's session, by method.",
                                     ("model", "method"), registry=self.registry)
        if sessions is not None:
            self.registry.register(SessionCollector(sessions))
        self.interceptor = TelemetryInterceptor(self)
        self._serves = serves
        self._models: dict[str, ModelTally] = {}
        self._lock = threading.Lock()
        self._http = None

    def start_http(self, host: str, port: int) -> None:
        """Serve ``/metrics`` on ``host:port`` from a thread of its own."""
        self._http = start_http_server(port, addr=host, registry=self.registry)

    def stop_http(self) -> None:
        if self._http is not None:
            server, thread = self._http
            server.shutdown()
            server.server_close()
            thread.join()
            self._http = None

    def statistics(self, names: Iterable[str]) -> list[tuple[str, ModelTally]]:
        """A snapshot of each named model's tally (zeros for one that did nothing yet)."""
        with self._lock:
            return [(name, copy.deepcopy(self._models.get(name, ModelTally()))) for name in names]

    def forward(self, model: str, method: str, passes: int, seconds: float) -> None:
        self.forward_passes.labels(model, method).inc(passes)
        self.model_seconds.labels(model, method).inc(seconds)
        with self._lock:
            tally = self._models.setdefault(model, ModelTally())
            tally.forward_passes += passes
            tally.model_seconds += seconds
            tally.last_forward = time.time()
            by_method = tally.methods.setdefault(method, MethodTally())
            by_method.forward_passes += passes
            by_method.model_seconds += seconds

    def begin(self, rpc: tuple[str, str, str], request) -> "Call":
        named = getattr(request, "model_name", "")
        if not named and hasattr(request, "request"):  # ExplainStream wraps an ExplainRequest: count its model too
            named = getattr(request.request, "model_name", "")
        return Call(self, rpc, named if isinstance(named, str) and named and self._serves(named) else None)

    def finish(self, call: "Call", code: grpc.StatusCode, seconds: float, methods: Iterable[tuple[str, str]]) -> None:
        """Count an ended RPC; ``methods`` are the (model, method) pairs its jobs ran forward passes for."""
        self.handled.labels(*call.rpc, code.name).inc()
        self.latency.labels(*call.rpc).observe(seconds)
        with self._lock:
            if call.model is not None:
                tally = self._models.setdefault(call.model, ModelTally())
                (tally.success if code == grpc.StatusCode.OK else tally.failure).add(seconds)
                if call.jobs:
                    tally.queue.add(call.queue_seconds, call.jobs)
            for model, method in methods:
                by_method = self._models[model].methods[method]  # made by the forward pass that named them
                by_method.requests += 1
                by_method.queue_seconds += call.queue_seconds


class SessionCollector(Collector):
    """The loaded models' session calls, read when scraped (they live with each model: service.runtime.batcher)."""

    def __init__(self, sessions: Callable[[], Mapping[str, BatchStats]]) -> None:
        self._sessions = sessions

    def collect(self):
        calls = CounterMetricFamily("onnxplain_session_calls", "Session calls a loaded model ran, batched or not.",
                                    labels=("model",))
        images = CounterMetricFamily("onnxplain_session_images", "Images in those session calls.", labels=("model",))
        waits = CounterMetricFamily("onnxplain_batch_queue_seconds",
                                    "Time calls waited in the model's batcher before their first images ran.",
                                    labels=("model",))
        for name, stats in sorted(self._sessions().items()):
            calls.add_metric((name,), stats.executions)
            images.add_metric((name,), stats.images)
            waits.add_metric((name,), stats.queue_seconds)
        return [calls, images, waits]


class Call:
    """One RPC as the telemetry sees it; also the usage sink its jobs report to (service.jobs.usage)."""

    def __init__(self, telemetry: Telemetry, rpc: tuple[str, str, str], model: str | None) -> None:
        self.telemetry, self.rpc, self.model = telemetry, rpc, model
        self.methods: set[tuple[str, str]] = set()  # (model, method) pairs its jobs ran forward passes for
        self.jobs, self.queue_seconds = 0, 0.0
        self._started = time.perf_counter()
        self._ended = False
        self._lock = threading.Lock()

    def forward(self, model: str, method: str, passes: int, seconds: float) -> None:
        self.telemetry.forward(model, method, passes, seconds)
        with self._lock:
            self.methods.add((model, method))

    def queued(self, seconds: float) -> None:
        with self._lock:
            self.jobs += 1
            self.queue_seconds += seconds

    def end(self, context: grpc.aio.ServicerContext, error: BaseException | None) -> None:
        """Count the RPC under its final status, once, whichever of the handler and the RPC's end comes first."""
        with self._lock:
            if self._ended:
                return
            self._ended = True
            methods = frozenset(self.methods)
        self.telemetry.finish(self, final_code(context, error), time.perf_counter() - self._started, methods)


def final_code(context: grpc.aio.ServicerContext, error: BaseException | None) -> grpc.StatusCode:
    """The status the client gets, from how the handler ended."""
    if error is None:
        return context.code() or grpc.StatusCode.OK  # a handler may set_code and return
    if isinstance(error, grpc.aio.AbortError):
        return context.code()
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):  # the client left, or the deadline passed
        remaining = context.time_remaining()
        return grpc.StatusCode.DEADLINE_EXCEEDED if remaining is not None and remaining <= DEADLINE_SLACK_S \
            else grpc.StatusCode.CANCELLED
    return grpc.StatusCode.UNKNOWN  # what grpcio answers for an exception a handler let out


_RPC_TYPES = {(False, False): "unary", (False, True): "server_stream", (True, False): "client_stream",
              (True, True): "bidi_stream"}
_HANDLER_FACTORIES = {(False, False): grpc.unary_unary_rpc_method_handler,
                      (False, True): grpc.unary_stream_rpc_method_handler,
                      (True, False): grpc.stream_unary_rpc_method_handler,
                      (True, True): grpc.stream_stream_rpc_method_handler}


class TelemetryInterceptor(grpc.aio.ServerInterceptor):
    """Wraps every registered RPC so that it is counted once, under its final status, and its jobs' work is
    attributed to it. Put it first, so that refusals by later interceptors (authentication) are counted too;
    unknown methods (UNIMPLEMENTED) are not, so that made-up names cannot grow the label set."""

    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        kind = (handler.request_streaming, handler.response_streaming)
        service, _, method = handler_call_details.method.lstrip("/").rpartition("/")
        rpc = (service, method, _RPC_TYPES[kind])
        behavior = handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
        telemetry = self._telemetry

        def begin(request, context) -> Call:
            call = telemetry.begin(rpc, None if handler.request_streaming else request)
            usage.current.set(call)  # each RPC runs in a task of its own: nothing to reset
            # A stream may end while its handler waits at a yield (the client left): its end counts it then.
            context.add_done_callback(lambda ended: call.end(ended, asyncio.CancelledError()))
            return call

        if handler.response_streaming and inspect.isasyncgenfunction(behavior):
            async def counted(request, context):
                call = begin(request, context)
                try:
                    async with contextlib.aclosing(behavior(request, context)) as messages:
                        async for message in messages:
                            yield message
                except BaseException as error:
                    call.end(context, error)
                    raise
                call.end(context, None)
        else:  # unary responses, and streams written with context.write (health's Watch)
            async def counted(request, context):
                call = begin(request, context)
                try:
                    response = await behavior(request, context)
                except BaseException as error:
                    call.end(context, error)
                    raise
                call.end(context, None)
                return response

        return _HANDLER_FACTORIES[kind](counted, request_deserializer=handler.request_deserializer,
                                        response_serializer=handler.response_serializer)


def statistics_response(tallies: list[tuple[str, ModelTally]],
                        sessions: Mapping[str, BatchStats] | None = None) -> ms.GetModelStatisticsResponse:
    """``sessions``: each loaded model's session calls since its load (service.runtime.batcher.BatchStats)."""
    sessions = sessions or {}
    return ms.GetModelStatisticsResponse(models=[ms.ModelStatistics(
        name=name,
        execution_count=sessions[name].executions if name in sessions else 0,
        inference_count=sessions[name].images if name in sessions else 0,
        batch_queue=ms.StatisticDuration(count=sessions[name].queued, total_ms=sessions[name].queue_seconds * 1000.0)
        if name in sessions else None,
        success=_duration(tally.success),
        failure=_duration(tally.failure),
        queue=_duration(tally.queue),
        forward_passes=tally.forward_passes,
        model_ms=tally.model_seconds * 1000.0,
        last_forward_unix_ms=int(tally.last_forward * 1000.0),
        methods=[ms.MethodStatistics(method=method, request_count=m.requests, forward_passes=m.forward_passes,
                                     model_ms=m.model_seconds * 1000.0, queue_ms=m.queue_seconds * 1000.0)
                 for method, m in sorted(tally.methods.items())],
    ) for name, tally in tallies])


def _duration(tally: Tally) -> ms.StatisticDuration:
    return ms.StatisticDuration(count=tally.count, total_ms=tally.seconds * 1000.0)
