"""Assembles the gRPC server: services, health, reflection, auth, TLS, message limits, shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from dataclasses import replace

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from onnxplain_client._proto.xai.v1 import explain_service_pb2, model_service_pb2
from onnxplain_client._proto.xai.v1 import explain_service_pb2_grpc as ex_grpc
from onnxplain_client._proto.xai.v1 import model_service_pb2_grpc as ms_grpc

from service.api.auth import BearerTokenInterceptor
from service.api.servicers import ExplainService, ModelService
from service.api.telemetry import Telemetry
from service.api.undecodable import UndecodableRequestInterceptor
from service.config import Settings
from service.jobs.runner import JobRunner
from service.runtime.repository import ModelRepository

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    model_service_pb2.DESCRIPTOR.services_by_name["ModelService"].full_name,
    explain_service_pb2.DESCRIPTOR.services_by_name["ExplainService"].full_name,
)


class Server:
    """One gRPC server over one model repository."""

    def __init__(self, settings: Settings, repository: ModelRepository | None = None) -> None:
        self.settings = settings
        self.repository = repository or ModelRepository(settings.models_dir, default_batch_size=settings.batch_size,
                                                        device=settings.execution, budget=settings.budget,
                                                        batching=settings.batching)
        self.runner = JobRunner(settings.workers, settings.max_queue, settings.budget)
        # Its own lane for short requests, so that they never queue behind long jobs (see Settings).
        self.interactive = JobRunner(settings.interactive_workers, settings.max_queue, settings.budget,
                                     name="onnxplain-interactive")
        self.preparer = JobRunner(settings.decode_workers, settings.max_queue, settings.budget,
                                  name="onnxplain-prepare", reports_queue=False)
        self.telemetry = Telemetry({"jobs": self.runner, "interactive": self.interactive},
                                   serves=lambda name: any(m.info.name == name for m in self.repository.list()),
                                   sessions=lambda: {m.info.name: m.batch_stats.snapshot()
                                                     for m in self.repository.list()})
        self.health = health.aio.HealthServicer()
        self._server: grpc.aio.Server | None = None
        self.port: int | None = None

    async def start(self) -> int:
        """Load the models directory, bind, and start serving; returns the bound port."""
        if self.settings.preload:
            self.repository.load_all()
        token = self.settings.bearer_token()
        limit = self.settings.max_message_bytes
        # Outermost first: every RPC is counted; authentication answers before anything reads the body.
        interceptors = [self.telemetry.interceptor]
        if token:
            interceptors.append(BearerTokenInterceptor(token, public_reflection=self.settings.public_reflection))
        interceptors.append(UndecodableRequestInterceptor())
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit),
                     ("grpc.so_reuseport", 0)],
        )
        ms_grpc.add_ModelServiceServicer_to_server(ModelService(self.repository, self.interactive, self.telemetry),
                                                  server)
        ex_grpc.add_ExplainServiceServicer_to_server(
            ExplainService(self.repository, self.runner, self.preparer, limit, self.settings.data_dir,
                           interactive=self.interactive), server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
        if self.settings.tls_cert and self.settings.tls_key:
            credentials = grpc.ssl_server_credentials(
                [(self.settings.tls_key.read_bytes(), self.settings.tls_cert.read_bytes())])
            self.port = server.add_secure_port(self.settings.address, credentials)
        else:
            self.port = server.add_insecure_port(self.settings.address)
        if not self.port:
            raise OSError(f"cannot bind {self.settings.address}")
        if self.settings.metrics_port:  # first: a port taken fails the start before anything serves
            self.telemetry.start_http(self.settings.host, self.settings.metrics_port)
        await server.start()
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._server = server
        log.info("serving", extra={"address": f"{self.settings.host}:{self.port}",
                                   "models": [m.info.name for m in self.repository.list()]})
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        """Stop taking work, let requests in flight finish within ``grace`` seconds (the settings' by
        default), cancel what still runs, and close."""
        if self._server is None:
            return
        grace = self.settings.shutdown_grace_s if grace is None else grace
        await self.health.enter_graceful_shutdown()
        await self._server.stop(grace)  # past the grace, gRPC cancels the RPCs still running, and so their jobs
        self.preparer.shutdown()
        self.interactive.shutdown()
        self.runner.shutdown()
        self.repository.close()
        self.telemetry.stop_http()
        self._server = None

    async def wait(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()


async def serve(settings: Settings, on_started=None) -> None:
    """Serve until SIGINT or SIGTERM."""
    server = Server(settings)
    port = await server.start()
    if on_started is not None:
        on_started(server, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping", extra={"grace_s": settings.shutdown_grace_s, "jobs": server.runner.in_flight})
    await server.stop()


class EmbeddedServer:
    """A server in a background thread on a free localhost port, for the CLI and tests::

        with EmbeddedServer(Settings(models_dir=...)) as address:
            client = OnnxplainClient(address)
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = replace(settings, port=0)
        self.server: Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="onnxplain-embedded", daemon=True)

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.server.port}"

    def __enter__(self) -> str:
        self._thread.start()
        self.server = Server(self.settings)
        try:
            asyncio.run_coroutine_threadsafe(self.server.start(), self._loop).result()
        except BaseException:
            self._close_loop()
            raise
        return self.address

    def __exit__(self, *exc_info) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.server.stop(grace=1.0), self._loop).result()
        finally:
            self._close_loop()

    def _close_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
