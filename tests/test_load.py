"""16 clients for 30 s against a server with default settings: every answer OK (or RESOURCE_EXHAUSTED when the queue
is full, as documented), the same answer a lone client gets, some answers for every client, and memory flat."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
from conftest import MODELS
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import explain_service_pb2_grpc as ex_grpc
from onnxplain_client._proto.xai.v1 import methods_pb2, metrics_pb2, tensor_pb2
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms
from onnxplain_client._proto.xai.v1 import model_service_pb2_grpc as ms_grpc
from onnxplain_client.tensors import from_tensor, to_tensor

from fuzzing import rss_mb

CLIENTS = 16
DURATION_S = 30.0
WARM_UP_S = 3.0
DEADLINE_S = 20.0
# RSS of this process (which hosts the server) may grow this much from the end of the warm-up to the end. Measured
# on the 2-core development machine: +1 MiB (249 -> 250 MiB, about 6,600 requests); a leak of 10 KB per request
# would exceed the bound within the 30 s.
RSS_GROWTH_MB = 64
MODELS_USED = ("shapes", "digits", "scale_shape")


def _image(model: str) -> tensor_pb2.Image:
    return tensor_pb2.Image(encoded=(MODELS / model / "samples" / "sample_00.png").read_bytes())


def _requests() -> list[tuple[str, object]]:
    """(kind, request): the cheap mix each client cycles through."""
    occlusion = methods_pb2.MethodSpec(occlusion=methods_pb2.OcclusionParams(window=[16], stride=[16]))
    deletion = metrics_pb2.MetricSpec(deletion=metrics_pb2.DeletionParams(steps=8))
    attribution = to_tensor(np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64))
    mix = [("ListModels", ms.ListModelsRequest())]
    for model in MODELS_USED:
        mix.append(("Predict", ex.PredictRequest(model_name=model, images=[_image(model)], top_k=3)))
    mix.append(("Explain", ex.ExplainRequest(model_name="shapes", image=_image("shapes"), method=occlusion, seed=1)))
    mix.append(("Evaluate", ex.EvaluateRequest(model_name="shapes", image=_image("shapes"), attribution=attribution,
                                               class_index=0, metrics=[deletion], seed=1)))
    return mix


def _send(stubs: dict, kind: str, request):
    return getattr(stubs["model" if kind == "ListModels" else "explain"], kind)(request, timeout=DEADLINE_S)


def _digest(kind: str, response) -> object:
    """What must not change under load: the scores, the maps, the metric values, the models listed."""
    if kind == "ListModels":
        return sorted(m.name for m in response.models)
    if kind == "Predict":
        return [from_tensor(p.scores) for p in response.predictions]
    if kind == "Explain":
        return [from_tensor(a.map) for a in response.attributions]
    return [(r.name, r.score) for r in response.results]


def _same(expected, actual) -> bool:
    if isinstance(expected, list) and expected and isinstance(expected[0], np.ndarray):
        return len(expected) == len(actual) and all(np.allclose(e, a, rtol=1e-5, atol=1e-6)
                                                    for e, a in zip(expected, actual))
    if isinstance(expected, list) and expected and isinstance(expected[0], tuple):
        return [n for n, _ in expected] == [n for n, _ in actual] and np.allclose(
            [s for _, s in expected], [s for _, s in actual], rtol=1e-5, atol=1e-6)
    return expected == actual


@dataclass
class Client:
    statuses: Counter = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def default_server():
    from service.api.server import EmbeddedServer
    from service.config import Settings

    with EmbeddedServer(Settings(models_dir=MODELS)) as address:
        yield address


def _stubs(channel) -> dict:
    return {"model": ms_grpc.ModelServiceStub(channel), "explain": ex_grpc.ExplainServiceStub(channel)}


def test_sixteen_clients_for_thirty_seconds(default_server):
    mix = _requests()
    with grpc.insecure_channel(default_server) as channel:  # what a lone client gets
        reference = [_digest(kind, _send(_stubs(channel), kind, request)) for kind, request in mix]
    clients = [Client() for _ in range(CLIENTS)]
    start = threading.Barrier(CLIENTS + 1)
    stop = threading.Event()

    def client(number: int, state: Client) -> None:
        with grpc.insecure_channel(default_server) as channel:  # one connection per client, as separate processes
            stubs = _stubs(channel)
            start.wait(timeout=60)
            turn = number
            while not stop.is_set():
                position = turn % len(mix)
                kind, request = mix[position]
                turn += 1
                try:
                    response = _send(stubs, kind, request)
                except grpc.RpcError as error:
                    state.statuses[error.code().name] += 1
                    if not (error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "busy" in error.details()):
                        state.errors.append(f"{kind}: {error.code().name} {error.details()}")
                    continue
                state.statuses["OK"] += 1
                if not _same(reference[position], _digest(kind, response)):
                    state.wrong.append(kind)

    threads = [threading.Thread(target=client, args=(i, c)) for i, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    start.wait(timeout=60)
    began = time.monotonic()
    samples: list[tuple[float, float]] = []
    while (elapsed := time.monotonic() - began) < DURATION_S:
        samples.append((elapsed, rss_mb()))
        time.sleep(0.25)
    stop.set()
    for thread in threads:
        thread.join(DEADLINE_S + 5)
    samples.append((time.monotonic() - began, rss_mb()))

    total = sum((c.statuses for c in clients), Counter())
    after_warm_up = next(m for t, m in samples if t >= WARM_UP_S)
    peak = max(m for _, m in samples)
    growth = samples[-1][1] - after_warm_up
    report = (f"{sum(total.values())} requests from {CLIENTS} clients in {DURATION_S:.0f} s: {dict(total)}; "
              f"OK per client {min(c.statuses['OK'] for c in clients)}..{max(c.statuses['OK'] for c in clients)}; "
              f"RSS {after_warm_up:.0f} MiB after {WARM_UP_S:.0f} s, {samples[-1][1]:.0f} MiB at the end "
              f"({growth:+.0f}), peak {peak:.0f} MiB")
    print("\n" + report)
    errors = [e for c in clients for e in c.errors]
    wrong = Counter(w for c in clients for w in c.wrong)
    assert not any(t.is_alive() for t in threads), "a client is still waiting for an answer"
    assert not errors, f"{len(errors)} errors, e.g. {errors[:5]}\n{report}"
    assert not wrong, f"answers that differ from a lone client's: {dict(wrong)}\n{report}"
    assert all(c.statuses["OK"] >= 20 for c in clients), report
    assert growth < RSS_GROWTH_MB, report
