"""The Python client raises one error type for every refusal, as the Node client does: the gRPC status, the field
the server's BadRequest names, and the message without that field repeated; still a grpc.RpcError. A
``Cancellation`` stops calls from another thread, as the Node client's AbortSignal, queued ones included."""

from __future__ import annotations

import threading
import time

import grpc
import numpy as np
import pytest
from conftest import MODELS, load_samples
from grpc_status import rpc_status
from onnxplain_client import Cancellation, OnnxplainError
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

SAMPLE = load_samples("shapes")[0]["path"]


def _raised(call) -> OnnxplainError:
    with pytest.raises(OnnxplainError) as caught:
        call()
    return caught.value


def test_an_invalid_argument_names_its_field_once(client):
    error = _raised(lambda: client.explain("shapes", SAMPLE, "occlusion", {"window": [8], "stride": [0]}))
    assert isinstance(error, grpc.RpcError) and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.code_name, error.field) == ("INVALID_ARGUMENT", "occlusion.stride")
    assert error.message == "stride height must be at least 1, not 0"
    assert error.details() == f"occlusion.stride: {error.message}"  # grpc's own text, unchanged
    assert str(error) == "INVALID_ARGUMENT: occlusion.stride: stride height must be at least 1, not 0"


def test_a_streamed_call_raises_it_as_it_is_read(client):
    events = []
    error = _raised(lambda: client.explain("no_such_model", SAMPLE, "occlusion", on_progress=events.append))
    assert (error.code(), error.field) == (grpc.StatusCode.NOT_FOUND, "model_name") and not events
    assert error.message.startswith("no model named 'no_such_model' is loaded"), error.message


def test_the_raw_stubs_raise_it_and_keep_grpcs_status_details(client):
    error = _raised(lambda: client.models.LoadModel(ms.LoadModelRequest(path=str(MODELS.parent / "pyproject.toml"))))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.field == "path"
    status = rpc_status.from_call(error)  # what a raw-grpc caller reads still reads
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT.value[0] and status.message == error.details()


def test_a_deadline_is_one_too(client):
    image = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    error = _raised(lambda: client.explain("shapes", image, "rise", {"num_masks": 200000, "target_reliability": 0},
                                           timeout=0.3))
    assert (error.code(), error.field) == (grpc.StatusCode.DEADLINE_EXCEEDED, None)
    assert str(error) == f"DEADLINE_EXCEEDED: {error.details()}"


# A RISE run far longer than any test: every mask drawn (no reliability stop), so only a cancel ends it.
LONG = dict(method="rise", params={"num_masks": 200000, "target_reliability": 0}, seed=1)


def _wait_idle(server, timeout: float = 5.0) -> None:
    until = time.monotonic() + timeout
    while server.server.runner.in_flight and time.monotonic() < until:
        time.sleep(0.02)
    assert server.server.runner.in_flight == 0, "the cancelled jobs still hold their workers"


def test_a_cancellation_stops_running_and_queued_calls_from_another_thread(server, client):
    """The server's two workers hold two long calls; a third waits in its queue, where it gets no progress event.
    One ``cancel()`` ends all three as CANCELLED, and the server's workers are free again."""
    image = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    cancellation, outcomes, progress = Cancellation(), [], []

    def call(index: int) -> None:
        try:
            client.explain("shapes", image, **LONG, cancel=cancellation,
                           on_progress=(lambda p: progress.append(index)) if index < 2 else None)
            outcomes.append("finished")
        except OnnxplainError as error:
            outcomes.append(error.code())

    callers = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for caller in callers[:2]:
        caller.start()
    until = time.monotonic() + 30
    while set(progress) != {0, 1} and time.monotonic() < until:  # both workers busy
        time.sleep(0.02)
    assert set(progress) == {0, 1}
    callers[2].start()
    time.sleep(0.3)
    cancelled_at = time.monotonic()
    cancellation.cancel()
    for caller in callers:
        caller.join(timeout=10)
    assert outcomes == [grpc.StatusCode.CANCELLED] * 3, outcomes
    assert time.monotonic() - cancelled_at < 5
    _wait_idle(server)


def test_a_call_given_a_cancelled_cancellation_is_cancelled_at_once(server, client):
    cancellation = Cancellation()
    cancellation.cancel()
    error = _raised(lambda: client.explain("shapes", SAMPLE, **LONG, cancel=cancellation))
    assert error.code() == grpc.StatusCode.CANCELLED and cancellation.cancelled
    _wait_idle(server)


def test_the_raw_stubs_future_and_with_call_raise_it_too(client):
    from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex

    request = ex.ExplainRequest(model_name="no_such_model")
    for call in (lambda: client.explainer.Explain.with_call(request),
                 lambda: client.explainer.Explain.future(request).result()):
        assert _raised(call).code() == grpc.StatusCode.NOT_FOUND
    future = client.explainer.Explain.future(request)
    assert isinstance(future.exception(), OnnxplainError) and future.exception().field == "model_name"


def test_a_cancelled_call_says_who_cancelled_it(client):
    cancellation = Cancellation()
    cancellation.cancel()
    error = _raised(lambda: client.explain("shapes", SAMPLE, **LONG, cancel=cancellation))
    assert error.message.startswith("cancelled by this client"), error.message
    assert error.__cause__ is None and error.__suppress_context__  # one traceback, not grpc's chained under it


def test_a_request_the_client_would_not_send_is_one_too_with_its_field(client):
    """As the Node client's ``local`` errors: INVALID_ARGUMENT naming the field, and nothing sent."""
    from onnxplain_client import InvalidRequest

    cases = [(lambda: client.explain("shapes", SAMPLE, "occlusion", {"strides": [2]}), "method.occlusion.strides",
              "OcclusionParams has no field 'strides' (it has window, stride)"),
             (lambda: client.explain("shapes", SAMPLE, "occlussion"), "method", "unknown method 'occlussion'"),
             (lambda: client.explain("shapes", SAMPLE, score_space="logits"), "score_space",
              "unknown score space 'logits'; one of raw, probability, logit, log_probability")]
    for call, field, message in cases:
        error = _raised(call)
        assert isinstance(error, InvalidRequest) and isinstance(error, ValueError) and error.local
        assert (error.code(), error.field) == (grpc.StatusCode.INVALID_ARGUMENT, field)
        assert error.message.startswith(message), error.message
        assert str(error) == f"INVALID_ARGUMENT: {field}: {error.message}"
