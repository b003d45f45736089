"""SIGTERM: the server stops taking work, lets running jobs finish for the grace period, cancels the rest
and exits, leaving no core busy."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import grpc
from conftest import MODELS, ROOT, load_samples
from grpc_health.v1 import health_pb2, health_pb2_grpc
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import explain_service_pb2_grpc as ex_grpc
from onnxplain_client._proto.xai.v1 import tensor_pb2

GRACE_S = 1.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_serving(address: str, process: subprocess.Popen, timeout: float = 60.0) -> None:
    until = time.monotonic() + timeout
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() < until:
            assert process.poll() is None, process.stderr.read()
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=1).status == \
                        health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                time.sleep(0.2)
    raise AssertionError("the server did not start")


def test_sigterm_cancels_running_jobs_after_the_grace_period_and_exits():
    port = free_port()
    environment = dict(os.environ, ONNXPLAIN_SHUTDOWN_GRACE_S=str(GRACE_S), PYTHONPATH=os.pathsep.join(
        [str(ROOT), str(ROOT / "clients" / "python"), os.environ.get("PYTHONPATH", "")]))
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--models-dir", str(MODELS / "shapes"),
                                "--port", str(port)], env=environment, stderr=subprocess.PIPE, text=True)
    address = f"127.0.0.1:{port}"
    try:
        wait_serving(address, process)
        # Far more work than the grace period: 400,000 RISE masks, all of them (no early stop), run for minutes.
        request = ex.ExplainRequest(model_name="shapes", batch_size=8,
                                    method={"rise": {"num_masks": 400_000, "target_reliability": 0}},
                                    image=tensor_pb2.Image(encoded=load_samples("shapes")[0]["path"].read_bytes()))
        outcome: list = []
        with grpc.insecure_channel(address) as channel:
            stream = ex_grpc.ExplainServiceStub(channel).ExplainStream(ex.ExplainStreamRequest(request=request))
            first = next(stream)
            assert first.HasField("progress")

            def drain():
                try:
                    outcome.extend(stream)
                except grpc.RpcError as error:
                    outcome.append(error.code())
            reader = threading.Thread(target=drain)
            reader.start()
            signalled = time.monotonic()
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
            exited_after = time.monotonic() - signalled
            reader.join(timeout=10)
        assert process.returncode == 0, process.stderr.read()
        # The grace period, then the job's next checkpoint (a batch of 8 masks) and the interpreter's exit.
        print(f"exited {exited_after:.2f} s after SIGTERM (grace {GRACE_S} s)")
        assert GRACE_S <= exited_after < GRACE_S + 3.0, exited_after
        assert outcome and outcome[-1] in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), outcome[-1:]
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
