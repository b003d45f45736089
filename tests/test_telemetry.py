"""Metrics for operators: the Prometheus endpoint counts every RPC once under its final status, the forward passes
the responses report, the job queue and the process memory; GetModelStatistics gives the same counts per model."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import urllib.request

import grpc
import pytest
from conftest import MODELS, load_samples
from prometheus_client.parser import text_string_to_metric_families

from service.api.auth import BearerTokenInterceptor
from service.api.telemetry import Telemetry
from service.jobs import usage
from service.jobs.runner import JobRunner

OK, INVALID = "OK", "INVALID_ARGUMENT"
EXPLAIN = ("xai.v1.ExplainService", "Explain")
PREDICT = ("xai.v1.ExplainService", "Predict")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def scrape(port: int) -> dict[tuple[str, frozenset], float]:
    """Every sample of http://127.0.0.1:port/metrics, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def handled(samples, rpc: tuple[str, str], code: str) -> float:
    service, method = rpc
    return samples.get(("grpc_server_handled_total", frozenset(
        {"grpc_service": service, "grpc_method": method, "grpc_type": "unary", "grpc_code": code}.items())), 0.0)


def passes(samples, model: str, method: str) -> float:
    return samples.get(("onnxplain_forward_passes_total", frozenset({"model": model, "method": method}.items())), 0.0)


def test_scraped_counts_equal_the_calls_made_and_the_statistics_rpc():
    from onnxplain_client import OnnxplainClient

    from service.api.server import EmbeddedServer
    from service.config import Settings

    sample = load_samples("shapes")[0]
    port = free_port()
    with EmbeddedServer(Settings(models_dir=MODELS, preload=False, workers=2, max_queue=4,
                                 metrics_port=port)) as address, OnnxplainClient(address) as client:
        client.load_model("shapes")
        for _ in range(2):
            client.predict("shapes", sample["path"])
        explanation = client.explain("shapes", sample["path"], "occlusion", {"window": [16], "stride": [8]}, seed=0)
        streamed = client.explain("shapes", sample["path"], "occlusion", {"window": [16], "stride": [8]}, seed=0,
                                  on_progress=lambda progress: None)  # ExplainStream: counted like Explain
        with pytest.raises(grpc.RpcError) as refused:
            client.explain("shapes", sample["path"], "occlusion", {"window": [16], "stride": [0]})
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        samples = scrape(port)
        (statistics,) = client.get_model_statistics("shapes")
        assert [s.name for s in client.get_model_statistics()] == ["shapes"]  # the only model loaded

    # Requests by RPC and final status, and one latency observation each.
    assert handled(samples, PREDICT, OK) == 2
    assert handled(samples, EXPLAIN, OK) == 1
    assert handled(samples, EXPLAIN, INVALID) == 1
    assert handled(samples, ("xai.v1.ModelService", "LoadModel"), OK) == 1
    assert sum(v for (name, labels), v in samples.items()
               if name == "grpc_server_handled_total" and ("grpc_service", "xai.v1.ExplainService") in labels) == 5
    assert samples[("grpc_server_handled_total", frozenset({
        "grpc_service": "xai.v1.ExplainService", "grpc_method": "ExplainStream", "grpc_type": "server_stream",
        "grpc_code": OK}.items()))] == 1
    for rpc, count in ((PREDICT, 2), (EXPLAIN, 2)):
        labels = frozenset({"grpc_service": rpc[0], "grpc_method": rpc[1], "grpc_type": "unary"}.items())
        assert samples[("grpc_server_handling_seconds_count", labels)] == count

    # Forward passes: one per predicted image, and exactly what the explanation reported.
    assert explanation.forward_passes > 2
    assert passes(samples, "shapes", "predict") == 2
    assert passes(samples, "shapes", "occlusion") == explanation.forward_passes + streamed.forward_passes
    assert {labels for (name, labels) in samples if name == "onnxplain_forward_passes_total"} == {
        frozenset({"model": "shapes", "method": "predict"}.items()),
        frozenset({"model": "shapes", "method": "occlusion"}.items())}
    # Every job has ended: none waits, none runs.
    for lane in ("jobs", "interactive"):
        assert samples[("onnxplain_jobs_queued", frozenset({"lane": lane}.items()))] == 0
        assert samples[("onnxplain_jobs_running", frozenset({"lane": lane}.items()))] == 0
    assert samples[("process_resident_memory_bytes", frozenset())] > 0

    # The statistics RPC counts the same requests and passes.
    assert statistics.name == "shapes"
    assert (statistics.success.count, statistics.failure.count) == (4, 1)
    assert statistics.forward_passes == 2 + explanation.forward_passes + streamed.forward_passes
    methods = {m.method: m for m in statistics.methods}
    assert sorted(methods) == ["occlusion", "predict"]
    assert (methods["predict"].request_count, methods["predict"].forward_passes) == (2, 2)
    assert (methods["occlusion"].request_count, methods["occlusion"].forward_passes) == (
        2, explanation.forward_passes + streamed.forward_passes)
    assert statistics.model_ms == pytest.approx(methods["predict"].model_ms + methods["occlusion"].model_ms)
    assert statistics.last_forward_unix_ms > 0

    # The endpoint closed with the server.
    with pytest.raises(OSError):
        scrape(port)


def test_statistics_of_an_unknown_model_is_not_found(client):
    with pytest.raises(grpc.RpcError) as refused:
        client.get_model_statistics("no-such-model")
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND


# --- the interceptor on a bare server: every way an RPC can end -------------------------------------------------

class Forever:
    """A handler's wait that only the client's leaving or its deadline ends; ``entered`` says it is waiting."""

    def __init__(self) -> None:
        self.entered = threading.Event()

    async def wait(self) -> None:
        self.entered.set()
        await asyncio.Event().wait()


def bare_server(telemetry: Telemetry, forever: Forever, token: str | None = None):
    async def ok(request, context):
        return b"ok"

    async def refuse(request, context):
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no")

    async def crash(request, context):
        raise RuntimeError("a bug")

    async def hang(request, context):
        await forever.wait()

    async def stream(request, context):
        for _ in range(3):
            yield b"x"

    async def stream_refused(request, context):
        yield b"x"
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "no")

    async def stream_hang(request, context):
        yield b"x"
        await forever.wait()

    unary = {name: grpc.unary_unary_rpc_method_handler(f) for name, f in
             (("Ok", ok), ("Refuse", refuse), ("Crash", crash), ("Hang", hang))}
    streams = {name: grpc.unary_stream_rpc_method_handler(f) for name, f in
               (("Stream", stream), ("StreamRefused", stream_refused), ("StreamHang", stream_hang))}
    interceptors = [telemetry.interceptor, *([BearerTokenInterceptor(token)] if token else [])]
    server = grpc.aio.server(interceptors=interceptors)
    server.add_generic_rpc_handlers([grpc.method_handlers_generic_handler("t.Bare", {**unary, **streams})])
    return server


def count(telemetry: Telemetry, method: str, code: str) -> float:
    grpc_type = "server_stream" if method.startswith("Stream") else "unary"
    return telemetry.registry.get_sample_value("grpc_server_handled_total", {
        "grpc_service": "t.Bare", "grpc_method": method, "grpc_type": grpc_type, "grpc_code": code}) or 0.0


async def counted(telemetry: Telemetry, method: str, code: str, timeout: float = 30.0) -> float:
    """The count, once the server has seen the client leave (it learns that after the client does)."""
    waited = time.monotonic() + timeout
    while count(telemetry, method, code) == 0 and time.monotonic() < waited:
        await asyncio.sleep(0.01)
    return count(telemetry, method, code)


def test_every_ending_is_counted_once_under_the_status_the_client_got():
    telemetry = Telemetry({"jobs": JobRunner(1, 1)}, serves=lambda name: False)

    async def scenario():
        forever = Forever()
        server = bare_server(telemetry, forever)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        seen = {}
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            for method in ("Ok", "Refuse", "Crash"):
                try:
                    await channel.unary_unary(f"/t.Bare/{method}")(b"")
                    seen[method] = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as error:
                    seen[method] = error.code()
            for method in ("Stream", "StreamRefused"):
                try:
                    assert [m async for m in channel.unary_stream(f"/t.Bare/{method}")(b"")]
                    seen[method] = grpc.StatusCode.OK
                except grpc.aio.AioRpcError as error:
                    seen[method] = error.code()
            # The first message proves the handler runs; then only the deadline ends the stream.
            late = channel.unary_stream("/t.Bare/StreamHang")(b"", timeout=1.0)
            assert await late.read() == b"x"
            with pytest.raises(grpc.aio.AioRpcError) as deadline:
                await late.read()
            seen["StreamHang"] = deadline.value.code()
            timed_out = await counted(telemetry, "StreamHang", "DEADLINE_EXCEEDED")

            forever.entered.clear()
            call = channel.unary_unary("/t.Bare/Hang")(b"")
            await asyncio.get_running_loop().run_in_executor(None, forever.entered.wait)
            call.cancel()
            cancelled_unary = await counted(telemetry, "Hang", "CANCELLED")

            forever.entered.clear()
            stream = channel.unary_stream("/t.Bare/StreamHang")(b"")
            assert await stream.read() == b"x"
            await asyncio.get_running_loop().run_in_executor(None, forever.entered.wait)
            stream.cancel()
            cancelled_stream = await counted(telemetry, "StreamHang", "CANCELLED")
        await server.stop(None)
        return seen, timed_out, cancelled_unary, cancelled_stream

    seen, timed_out, cancelled_unary, cancelled_stream = asyncio.run(scenario())
    assert seen == {"Ok": grpc.StatusCode.OK, "Refuse": grpc.StatusCode.FAILED_PRECONDITION,
                    "Crash": grpc.StatusCode.UNKNOWN, "Stream": grpc.StatusCode.OK,
                    "StreamRefused": grpc.StatusCode.RESOURCE_EXHAUSTED,
                    "StreamHang": grpc.StatusCode.DEADLINE_EXCEEDED}
    for method, code in seen.items():
        assert count(telemetry, method, code.name) == 1, method
    assert (timed_out, cancelled_unary, cancelled_stream) == (1, 1, 1)
    # Once each: nothing else was counted, and latency was observed once per RPC.
    families = {f.name: f for f in telemetry.registry.collect()}
    assert sum(s.value for s in families["grpc_server_handled"].samples if s.name.endswith("_total")) == 8
    assert sum(s.value for s in families["grpc_server_handling_seconds"].samples if s.name.endswith("_count")) == 8


def test_a_refusal_by_authentication_is_counted():
    telemetry = Telemetry({"jobs": JobRunner(1, 1)}, serves=lambda name: False)

    async def scenario():
        server = bare_server(telemetry, Forever(), token="secret")
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await channel.unary_unary("/t.Bare/Ok")(b"")
            assert await channel.unary_unary("/t.Bare/Ok")(b"", metadata=(("authorization", "Bearer secret"),))
        await server.stop(None)
        return refused.value.code()

    assert asyncio.run(scenario()) == grpc.StatusCode.UNAUTHENTICATED
    assert count(telemetry, "Ok", "UNAUTHENTICATED") == 1
    assert count(telemetry, "Ok", "OK") == 1


# --- the job runner's gauges and queue time ---------------------------------------------------------------------

class RecordingSink:
    def __init__(self) -> None:
        self.waits: list[float] = []

    def forward(self, model, method, passes, seconds) -> None:  # pragma: no cover - no job here scores images
        raise AssertionError("no forward pass expected")

    def queued(self, seconds: float) -> None:
        self.waits.append(seconds)


def test_gauges_show_the_running_and_the_queued_jobs_and_each_job_reports_its_wait_once():
    runner = JobRunner(workers=1, max_queue=2)
    telemetry = Telemetry({"jobs": runner}, serves=lambda name: False)

    def gauge(name: str) -> float:
        return telemetry.registry.get_sample_value(name, {"lane": "jobs"})
    release, first_started = threading.Event(), threading.Event()

    def blocking(_control):
        first_started.set()
        release.wait(30)
        return "first"

    async def scenario():
        sink = RecordingSink()
        usage.current.set(sink)  # as the interceptor does for an RPC; the runner carries it into the worker
        first = asyncio.ensure_future(runner.run(blocking))
        await asyncio.get_running_loop().run_in_executor(None, first_started.wait)
        second = asyncio.ensure_future(runner.run(lambda _control: "second"))
        await asyncio.sleep(0)  # let the second submit
        during = (gauge("onnxplain_jobs_running"), gauge("onnxplain_jobs_queued"))
        release.set()
        results = [(await first).value, (await second).value]
        return during, results, sink.waits

    during, results, waits = asyncio.run(scenario())
    runner.shutdown()
    assert during == (1, 1)
    assert results == ["first", "second"]
    assert (gauge("onnxplain_jobs_running"), gauge("onnxplain_jobs_queued")) == (0, 0)
    assert len(waits) == 2  # one wait per job, reported from the worker
