"""The Python client raises one error type for every refusal, as the Node client does: the gRPC status, the field
the server's BadRequest names, and the message without that field repeated; still a grpc.RpcError."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from conftest import MODELS, load_samples
from grpc_status import rpc_status
from onnxplain_client import OnnxplainError
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
