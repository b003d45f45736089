"""A real server on a free localhost port, driven by the real Python client."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time

import grpc
import numpy as np
import pytest
import references
from conftest import MODELS, load_samples
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from onnx_builders import image_classifier, pooled_classifier
from onnxplain_client import OnnxplainClient, from_tensor
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import tensor_pb2
from onnxplain_client.tensors import to_tensor

from service.api.server import EmbeddedServer
from service.config import Settings

OCCLUSION = {"window": [8], "stride": [4]}


def assert_status(call, code: grpc.StatusCode, field: str | None = None, match: str = ""):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert error.code() == code, error.details()
    assert match in error.details()
    if field is not None:
        from google.rpc import error_details_pb2

        status = rpc_status.from_call(error)
        violations = []
        for detail in status.details:
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            violations += [v.field for v in request.field_violations]
        assert field in violations, violations
    return error


def still_serving(client):
    sample = load_samples("shapes")[0]
    assert client.predict("shapes", sample["path"])[0].top[0][0] == sample["label"]


def test_health_and_reflection(server):
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "xai.v1.ExplainService", "xai.v1.ModelService"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == \
                health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"xai.v1.ExplainService", "xai.v1.ModelService", "grpc.health.v1.Health"} <= names


def test_models_are_described(client):
    names = {m.name for m in client.list_models()}
    assert {"shapes", "digits"} <= names
    shapes = client.get_model("shapes")
    assert (shapes.height, shapes.width, shapes.channels) == (64, 64, 3)
    assert shapes.provider == "CPUExecutionProvider" and not shapes.fixed_batch
    assert shapes.output_kind_source == "sidecar" and len(shapes.labels) == shapes.num_classes
    digits = client.get_model("digits")
    assert digits.channels == 1 and digits.output_kind == 2  # OUTPUT_KIND_PROBABILITIES
    assert list(digits.preprocessing.mean) == [127.5] and digits.preprocessing.pixel_range == 2  # 0..255


@pytest.mark.parametrize("model", ["shapes", "digits"])
def test_predict_classifies_the_samples(client, model):
    samples = load_samples(model)
    predictions = client.predict(model, [s["path"] for s in samples], top_k=3)
    assert [p.top[0][0] for p in predictions] == [s["label"] for s in samples]
    for prediction in predictions:
        assert prediction.top[0][2] == pytest.approx(prediction.scores.max())


def test_image_encodings_agree(client):
    sample = load_samples("shapes")[1]
    encoded = client.explain("shapes", sample["path"], "occlusion", OCCLUSION)
    as_uint8 = client.explain("shapes", sample["pixels"], "occlusion", OCCLUSION)
    as_float = client.explain("shapes", sample["pixels"].astype(np.float32) / 255, "occlusion", OCCLUSION)
    np.testing.assert_allclose(as_uint8.map, encoded.map, atol=1e-6)
    np.testing.assert_allclose(as_float.map, encoded.map, atol=1e-4)


def test_stream_reports_progress_then_the_same_result(client):
    sample = load_samples("shapes")[2]
    events = []
    streamed = client.explain("shapes", sample["path"], "occlusion", OCCLUSION, seed=11, on_progress=events.append)
    unary = client.explain("shapes", sample["path"], "occlusion", OCCLUSION, seed=11)
    assert events and events[-1].done == events[-1].total == streamed.forward_passes, events[-3:]
    assert [e.done for e in events] == sorted(e.done for e in events), [e.done for e in events]
    # Same request, same map; onnxruntime may sum in another order when other requests share its threads.
    np.testing.assert_allclose(streamed.map, unary.map, rtol=1e-5, atol=1e-6)
    assert streamed.seed == unary.seed == 11
    windows = (int(np.ceil((64 - 8) / 4)) + 1) ** 2
    assert streamed.forward_passes == windows + 3
    assert streamed.timings["model_ms"] > 0 and streamed.provider == "CPUExecutionProvider"


def test_top_k_targets_and_baseline_report(client):
    sample = load_samples("shapes")[0]
    explanation = client.explain("shapes", sample["path"], "occlusion", OCCLUSION, top_k=3,
                                 baseline={"kind": "KIND_CONSTANT", "value": 0.5})
    scores = client.predict("shapes", sample["path"], top_k=3)[0]
    assert [a.class_index for a in explanation.attributions] == [i for i, _, _ in scores.top]
    assert len(explanation.baseline["target_scores"]) == 3
    grey = np.full((64, 64, 3), 0.5, np.float32)
    assert explanation.baseline["predicted"][0] == client.predict("shapes", grey)[0].top[0][0]
    assert explanation.parameters == {"window": [8, 8], "stride": [4, 4]}


def test_larger_images_are_resized_by_the_model_policy(client):
    from PIL import Image

    sample = load_samples("shapes")[3]
    large = np.asarray(Image.fromarray(sample["pixels"]).resize((160, 160), Image.Resampling.BILINEAR))
    assert client.predict("shapes", large)[0].top[0][0] == sample["label"]


def test_upload_load_and_unload(client):
    weights = np.random.default_rng(0).normal(size=(8 * 8 * 3, 2))
    model = image_classifier(weights, (8, 8, 3)).SerializeToString()
    info = client.load_model(onnx_model=model, name="uploaded", overrides={"labels": ["no", "yes"]})
    assert info.source == "upload" and list(info.labels) == ["no", "yes"]
    assert_status(lambda: client.load_model(onnx_model=model, name="uploaded"), grpc.StatusCode.ALREADY_EXISTS)
    client.unload_model("uploaded")
    assert_status(lambda: client.get_model("uploaded"), grpc.StatusCode.NOT_FOUND, "name")


# --- bad input: each refused precisely, and the server keeps serving -------------------------------------------

def test_corrupt_model_bytes(client):
    assert_status(lambda: client.load_model(onnx_model=b"\x08\x07not a model", name="bad"),
                  grpc.StatusCode.INVALID_ARGUMENT, "onnx_model", "not an ONNX model")
    still_serving(client)


def test_model_with_several_inputs(client):
    model = image_classifier(np.ones((8 * 8 * 3, 2)), (8, 8, 3), extra_inputs=1).SerializeToString()
    assert_status(lambda: client.load_model(onnx_model=model, name="two"), grpc.StatusCode.INVALID_ARGUMENT,
                  "onnx_model", "2 inputs")
    still_serving(client)


def test_model_without_image_input(client):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert_status(lambda: client.load_model(onnx_model=model, name="flat"), grpc.StatusCode.INVALID_ARGUMENT,
                  "onnx_model", "4-D")
    still_serving(client)


def test_path_outside_the_models_directory(client):
    assert_status(lambda: client.load_model("../pyproject.toml"), grpc.StatusCode.INVALID_ARGUMENT, "path",
                  "outside the models directory")
    assert_status(lambda: client.load_model("nothing-here"), grpc.StatusCode.NOT_FOUND, "path")
    still_serving(client)


def test_unknown_model_and_missing_method(client):
    image = load_samples("shapes")[0]["path"]
    assert_status(lambda: client.explain("nope", image), grpc.StatusCode.NOT_FOUND, "model_name", "'nope'")
    request = ex.ExplainRequest(model_name="shapes", image=tensor_pb2.Image(encoded=image.read_bytes()))
    assert_status(lambda: client.explainer.Explain(request), grpc.StatusCode.INVALID_ARGUMENT, "method")
    with pytest.raises(ValueError, match="unknown method"):
        client.explain("shapes", image, "no_such_method")
    still_serving(client)


def test_image_size_and_channels(client, tmp_path):
    from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

    shutil.copy(MODELS / "shapes" / "model.onnx", tmp_path / "strict.onnx")
    client.load_model(onnx_model=(tmp_path / "strict.onnx").read_bytes(), name="strict",
                      overrides={"preprocessing": {"resize": "RESIZE_POLICY_REJECT"}}, replace=True)
    assert client.get_model("strict").preprocessing.resize == ms.RESIZE_POLICY_REJECT
    wrong_size = np.zeros((40, 50, 3), np.uint8)
    assert_status(lambda: client.predict("strict", wrong_size), grpc.StatusCode.INVALID_ARGUMENT, "images[0].pixels",
                  "the model takes 64x64")
    assert_status(lambda: client.predict("strict", np.zeros((64, 64, 5), np.uint8)),
                  grpc.StatusCode.INVALID_ARGUMENT, "images[0].pixels", "C = 1, 3 or 4")
    # Grey images fit a colour model (and colour images a grey one) by converting channels.
    assert len(client.predict("strict", np.zeros((64, 64, 1), np.uint8))) == 1
    client.unload_model("strict")
    still_serving(client)


def test_undecodable_image(client):
    assert_status(lambda: client.explain("shapes", b"\x89PNG\r\n\x1a\n truncated"), grpc.StatusCode.INVALID_ARGUMENT,
                  "image.encoded", "cannot decode")
    still_serving(client)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_pixels(client, bad):
    pixels = np.full((64, 64, 3), 0.5, np.float32)
    pixels[3, 4, 1] = bad
    assert_status(lambda: client.explain("shapes", pixels), grpc.StatusCode.INVALID_ARGUMENT, "image.pixels",
                  "NaN or infinite")
    still_serving(client)


def test_tensor_bytes_that_do_not_match_the_shape(client):
    tensor = to_tensor(np.zeros((64, 64, 3), np.uint8))
    tensor.raw_data = tensor.raw_data[:-7]
    request = ex.PredictRequest(model_name="shapes", images=[tensor_pb2.Image(pixels=tensor)])
    assert_status(lambda: client.explainer.Predict(request), grpc.StatusCode.INVALID_ARGUMENT, "images[0].pixels",
                  "needs 12288")
    still_serving(client)


@pytest.mark.parametrize("params, field", [({"window": [65]}, "occlusion.window"),
                                           ({"stride": [0]}, "occlusion.stride")])
def test_out_of_range_parameters(client, params, field):
    image = load_samples("shapes")[0]["path"]
    assert_status(lambda: client.explain("shapes", image, "occlusion", params), grpc.StatusCode.INVALID_ARGUMENT,
                  field)
    assert_status(lambda: client.explain("shapes", image, classes=[99]), grpc.StatusCode.INVALID_ARGUMENT,
                  "target.class_indices", "out of range")
    still_serving(client)


def test_message_over_the_limit():
    with EmbeddedServer(Settings(models_dir=MODELS, max_message_mb=1)) as address, \
            OnnxplainClient(address) as client:
        huge = np.zeros((1024, 1024, 3), np.uint8)  # 3 MiB raw
        assert_status(lambda: client.predict("shapes", huge), grpc.StatusCode.RESOURCE_EXHAUSTED)
        # A response that could not be sent is refused before any work: 100 maps of 128 x 128 are 6.3 MiB.
        weights = np.random.default_rng(0).normal(size=(3, 100))
        client.load_model(onnx_model=pooled_classifier(weights, (128, 128, 3)).SerializeToString(), name="wide")
        assert_status(lambda: client.explain("wide", np.zeros((128, 128, 3), np.uint8), top_k=100),
                      grpc.StatusCode.RESOURCE_EXHAUSTED, "target", "ask for fewer classes")
        still_serving(client)


def test_deadline_stops_the_work(server, client):
    image = load_samples("shapes")[0]["path"]
    slow = {"window": [1], "stride": [1]}  # 4,097 passes
    assert_status(lambda: client.explain("shapes", image, "occlusion", slow, timeout=0.3),
                  grpc.StatusCode.DEADLINE_EXCEEDED)
    _wait_idle(server)
    still_serving(client)


def test_client_cancellation_frees_the_worker(server, client):
    image = load_samples("shapes")[0]["path"]
    request = ex.ExplainRequest(model_name="shapes", image=tensor_pb2.Image(encoded=image.read_bytes()),
                                batch_size=8)
    request.method.occlusion.window[:] = [1]
    call = client.explainer.ExplainStream(ex.ExplainStreamRequest(request=request))
    first = next(call)
    assert first.HasField("progress") and first.progress.done < first.progress.total
    call.cancel()
    _wait_idle(server)
    still_serving(client)


def test_busy_server_answers_resource_exhausted():
    with EmbeddedServer(Settings(models_dir=MODELS, workers=1, max_queue=0)) as address, \
            OnnxplainClient(address) as client:
        image = load_samples("shapes")[0]["path"]
        stream = client.explainer.ExplainStream(ex.ExplainStreamRequest(request=ex.ExplainRequest(
            model_name="shapes", image=tensor_pb2.Image(encoded=image.read_bytes()), batch_size=4,
            method={"occlusion": {"window": [1]}})))
        next(stream)  # the only job worker is now busy
        assert_status(lambda: client.explain("shapes", image), grpc.StatusCode.RESOURCE_EXHAUSTED, match="busy")
        assert client.predict("shapes", image)[0].top  # its own lane
        stream.cancel()


def test_bearer_token(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    with EmbeddedServer(Settings(models_dir=MODELS, token_file=token_file)) as address:
        image = load_samples("shapes")[0]["path"]
        with OnnxplainClient(address) as anonymous:
            assert_status(lambda: anonymous.predict("shapes", image), grpc.StatusCode.UNAUTHENTICATED,
                          match="missing")
            assert_status(lambda: anonymous.explain("shapes", image, on_progress=lambda p: None),
                          grpc.StatusCode.UNAUTHENTICATED)
            with grpc.insecure_channel(address) as channel:  # health checks need no token
                assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest()).status == \
                    health_pb2.HealthCheckResponse.SERVING
        with OnnxplainClient(address, token="wrong") as intruder:
            assert_status(lambda: intruder.list_models(), grpc.StatusCode.UNAUTHENTICATED, match="not valid")
        with OnnxplainClient(address, token="s3cret") as member:
            still_serving(member)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    with EmbeddedServer(Settings(host="localhost", models_dir=MODELS, tls_cert=cert, tls_key=key)) as address:
        with OnnxplainClient(address, root_certificates=cert.read_bytes()) as client:
            still_serving(client)
        with OnnxplainClient(address) as plaintext:
            with pytest.raises(grpc.RpcError):
                plaintext.list_models()


def test_concurrent_requests_share_one_session(client):
    """Six requests at once on one session (two per image) get exactly what each image gets alone."""
    samples = load_samples("shapes")[:3]
    alone = [client.explain("shapes", s["path"], "occlusion", OCCLUSION).map for s in samples]
    # The three references differ, so a request answered with another's map would show.
    assert all(not np.allclose(alone[i], alone[j]) for i in range(3) for j in range(i + 1, 3))
    results, errors = {}, []

    def work(i):
        try:
            results[i] = client.explain("shapes", samples[i % 3]["path"], "occlusion", OCCLUSION).map
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for i in range(6):
        np.testing.assert_array_equal(results[i], alone[i % 3])


def _wait_idle(server, timeout: float = 5.0) -> None:
    """The cancelled or timed-out job leaves its worker within one batch."""
    deadline = time.monotonic() + timeout
    while server.server.runner.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.server.runner.in_flight == 0


def test_predict_and_the_model_rpcs_do_not_wait_behind_long_jobs(server, client):
    """Both job workers hold explanations of minutes; a Predict, an InspectModel and a LoadModel still answer
    while they run (their own interactive lane), and a cancel then frees the job workers."""
    from onnxplain_client import Cancellation, OnnxplainError

    image = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    cancellation, progressed, ended = Cancellation(), set(), []

    def long_job(index: int) -> None:
        try:
            client.explain("shapes", image, "rise", {"num_masks": 200000, "target_reliability": 0}, seed=index,
                           cancel=cancellation, on_progress=lambda p: progressed.add(index))
        except OnnxplainError as error:
            ended.append(error.code())

    jobs = [threading.Thread(target=long_job, args=(i,)) for i in range(2)]
    for job in jobs:
        job.start()
    until = time.monotonic() + 30
    while progressed != {0, 1} and time.monotonic() < until:
        time.sleep(0.02)
    try:
        assert progressed == {0, 1} and server.server.runner.running == 2
        # Each RISE run takes minutes: an answer within these timeouts did not wait for a job worker.
        assert client.predict("shapes", image, timeout=20)[0].top
        assert client.inspect_model("shapes", verify=False, repeats=1).forward_timings
        assert client.load_model("shapes", name="shapes_copy").name == "shapes_copy"
        assert server.server.runner.running == 2 and not ended  # the jobs ran all along
    finally:
        cancellation.cancel()
        for job in jobs:
            job.join(timeout=10)
        client.unload_model("shapes_copy")
    assert ended == [grpc.StatusCode.CANCELLED] * 2
    _wait_idle(server)


# --- metrics, inline and on their own; the consistency study -----------------------------------------------------

def test_metrics_inline_match_evaluate_on_the_same_map(client):
    sample = load_samples("shapes")[0]
    metrics = {"deletion": {"steps": 16}, "insertion": {"steps": 16}, "mu_fidelity": {"num_samples": 32},
               "morf": {}, "lerf": {}, "localisation": {}}
    explanation = client.explain("shapes", sample["path"], "occlusion", OCCLUSION, metrics=metrics,
                                 mask=sample["path"].with_name(sample["mask"]), seed=3, probabilities=True)
    inline = explanation.attributions[0].metrics
    assert set(inline) == set(metrics)
    evaluated = client.evaluate("shapes", sample["path"], explanation.map, metrics,
                                mask=sample["path"].with_name(sample["mask"]), seed=3, probabilities=True)
    assert evaluated.class_index == sample["label"]
    for result in evaluated.results:
        assert result.score == pytest.approx(inline[result.name].score, abs=1e-6), result.name
    deletion, insertion = inline["deletion"], inline["insertion"]
    assert len(deletion.curve) == 17 and deletion.forward_passes == 17
    assert deletion.score < insertion.score  # removing the relevant pixels first hurts; revealing them helps
    assert inline["morf"].score > inline["lerf"].score
    assert inline["localisation"].values["relevance_mass"] > 0.5
    # Passes: 2 (clean, baseline) + occlusion + the metrics' own.
    assert explanation.forward_passes == 2 + 226 + sum(m.forward_passes for m in inline.values())


def test_evaluate_scores_a_callers_map_and_refuses_a_wrong_one(client):
    sample = load_samples("shapes")[1]
    mask = sample["mask_array"].astype(np.float32)
    good = client.evaluate("shapes", sample["path"], mask, {"deletion": {}, "insertion": {}}, probabilities=True)
    background_first = client.evaluate("shapes", sample["path"], 1.0 - mask, {"deletion": {}, "insertion": {}},
                                       probabilities=True)
    good_scores, bad_scores = ({r.name: r.score for r in e.results} for e in (good, background_first))
    # Removing the object first drops the score sooner; revealing it first raises it sooner.
    assert good_scores["deletion"] < bad_scores["deletion"] and good_scores["insertion"] > bad_scores["insertion"]
    assert_status(lambda: client.evaluate("shapes", sample["path"], np.zeros((10, 10)), {"deletion": {}}),
                  grpc.StatusCode.INVALID_ARGUMENT, "attribution", "[64, 64]")
    assert_status(lambda: client.evaluate("shapes", sample["path"], mask, {"localisation": {}}),
                  grpc.StatusCode.INVALID_ARGUMENT, "mask")
    assert_status(lambda: client.evaluate("shapes", sample["path"], mask, {"deletion": {"steps": 0}}),
                  grpc.StatusCode.INVALID_ARGUMENT, "deletion.steps")
    still_serving(client)


def _matrix(message, size: int) -> np.ndarray:
    return np.array(message.values).reshape(size, size)


def _ranks_by_hand(scores, lower_is_better: bool) -> list[int]:
    """0 = best; equal scores keep the settings' order."""
    order = sorted(range(len(scores)), key=lambda i: (scores[i] if lower_is_better else -scores[i], i))
    return [order.index(i) for i in range(len(scores))]


def test_consistency_reports_agreement_and_ranking_stability(client):
    sample = load_samples("shapes")[2]
    settings = [{"method": "occlusion", "params": {"window": 8, "stride": 4}, "baseline": {"kind": kind}}
                for kind in ("KIND_BLACK", "KIND_IMAGE_MEAN", "KIND_BLUR")]
    settings.append({"method": "occlusion", "params": {"window": 8, "stride": 4},
                     "baseline": {"kind": "KIND_IMAGE_MEAN"}, "label": "twin"})
    events = []
    result = client.consistency("shapes", sample["path"], settings, seed=1, probabilities=True, return_maps=True,
                                on_progress=events.append)
    assert events and events[-1].done == events[-1].total == result.forward_passes
    size = len(settings)
    maps = [from_tensor(m) for m in result.maps]
    np.testing.assert_array_equal(maps[1], maps[3])  # the same setting twice: the same map
    # Every agreement against its definition, computed here from the maps returned.
    np.testing.assert_allclose(_matrix(result.spearman, size),
                               [[references.spearman(a, b) for b in maps] for a in maps], atol=1e-9)
    np.testing.assert_allclose(_matrix(result.top_iou, size),
                               [[references.top_iou(a, b, 0.1) for b in maps] for a in maps], atol=1e-12)
    np.testing.assert_allclose(_matrix(result.ssim, size),
                               [[references.ssim_of_scaled_maps(a, b) for b in maps] for a in maps], atol=1e-6)
    assert result.settings[3] == "twin" and result.metric == "deletion"
    assert [r.baseline for r in result.rankings] == ["black", "dataset_mean", "blur"]
    for ranking in result.rankings:
        assert list(ranking.ranks) == _ranks_by_hand(list(ranking.scores), lower_is_better=True)
        assert ranking.scores[1] == ranking.scores[3]  # the twins score alike under every metric baseline
    scores = [list(r.scores) for r in result.rankings]
    np.testing.assert_allclose(_matrix(result.kendall_tau, 3),
                               [[references.kendall_tau_b(a, b) for b in scores] for a in scores], atol=1e-12)
    assert_status(lambda: client.consistency("shapes", sample["path"], settings[:1]),
                  grpc.StatusCode.INVALID_ARGUMENT, "settings")


# A linear probe whose occlusion maps are known: 16 x 16 RGB, class 0 weighs pixel p by w_p on every channel
# (w_p = (k_p - 127.5) / 64 for a permutation k of 0..255: all distinct, summing to 0), class 1 by -w_p.
PROBE_SIDE = 16
PROBE_GREY = 128  # the image: every channel of every pixel; c = 128 / 255 in pixel space


def probe_weights() -> np.ndarray:
    return (np.random.default_rng(5).permutation(PROBE_SIDE**2).reshape(PROBE_SIDE, PROBE_SIDE) - 127.5) / 64


def test_consistency_gives_the_known_agreements_of_a_linear_probe(client):
    """The probe's logits are (f, -f) with f(x) = sum_p w_p (x_pR + x_pG + x_pB), so class 0's probability is
    sigmoid(2 f). On a grey image c, where f = 0, occluding pixel p with a constant b drops it by
    g(w_p (c - b)) = sigmoid(6 w_p (c - b)) - 1/2: the black (b = 0) and constant 0.25 maps are two different
    increasing functions of w (not proportional: Pearson would not give 1, Spearman must), the white one
    (b = 1) a decreasing one. So Spearman is 1 and -1, the top 10% of pixels the same or disjoint (IoU 1 and 0).
    Deletion removes pixels by descending map into a metric baseline m: both maps that order by w score alike,
    the white one as their mirror, and the ranking flips between a darker (m < c) and a lighter (m > c) metric
    baseline (Kendall -1)."""
    weights = probe_weights()
    columns = np.repeat(weights[..., None], 3, axis=-1).reshape(-1, 1)  # NHWC flattening: pixel-major
    model = image_classifier(np.hstack([columns, -columns]), (PROBE_SIDE, PROBE_SIDE, 3), layout="NHWC")
    preprocessing = client.load_model(onnx_model=model.SerializeToString(), name="linear-probe",
                                      replace=True).preprocessing
    try:
        assert set(preprocessing.mean) == {0.0} and set(preprocessing.std) == {1.0}  # pixels in [0, 1] as they are
        image = np.full((PROBE_SIDE, PROBE_SIDE, 3), PROBE_GREY, np.uint8)
        fills = {"black": 0.0, "white": 1.0, "grey": 0.25}
        kinds = {"black": {"kind": "KIND_BLACK"}, "white": {"kind": "KIND_WHITE"},
                 "grey": {"kind": "KIND_CONSTANT", "value": 0.25}}
        settings = [{"method": "occlusion", "params": {"window": [1], "stride": [1]}, "baseline": kinds[name],
                     "label": name} for name in fills]
        result = client.consistency("linear-probe", image, settings, metric=("deletion", {"steps": 16}),
                                    metric_baselines=list(kinds.values()), class_index=0, probabilities=True,
                                    return_maps=True, seed=0)
        sigmoid = lambda x: 1 / (1 + np.exp(-x))
        c = PROBE_GREY / 255
        expected_maps = [sigmoid(6 * weights * (c - fill)) - 0.5 for fill in fills.values()]
        for expected, map_tensor in zip(expected_maps, result.maps):
            np.testing.assert_allclose(from_tensor(map_tensor), expected, atol=1e-5)  # float32 logits
        np.testing.assert_allclose(_matrix(result.spearman, 3), [[1, -1, 1], [-1, 1, -1], [1, -1, 1]], atol=1e-9)
        np.testing.assert_array_equal(_matrix(result.top_iou, 3), [[1, 0, 1], [0, 1, 0], [1, 0, 1]])
        np.testing.assert_allclose(_matrix(result.ssim, 3), [[references.ssim_of_scaled_maps(a, b)
                                                              for b in expected_maps] for a in expected_maps],
                                   atol=1e-4)

        # Deletion by hand: 16 steps of 16 pixels. With the n largest w (k = 255, 254, ...) set to the metric
        # baseline m, as sum_p w_p = 0, f = 3 (m - c) S_n, S_n the sum of those n weights, and class 0's probability
        # sigmoid(2 f); the score is the trapezoid area over t in [0, 1].
        removed = np.arange(17) * 16
        top_sums = (removed * 127.5 - removed * (removed - 1) / 2) / 64
        for ranking, m in zip(result.rankings, fills.values()):
            curve = sigmoid(6 * (m - c) * top_sums)
            by_w = (curve.sum() - curve[0] / 2 - curve[-1] / 2) / 16
            np.testing.assert_allclose(ranking.scores, [by_w, 1 - by_w, by_w], atol=1e-6)  # sigmoid(-x) = 1 - ...
        assert [list(r.ranks) for r in result.rankings] == [[0, 2, 1], [1, 0, 2], [0, 2, 1]]
        np.testing.assert_allclose(_matrix(result.kendall_tau, 3), [[1, -1, 1], [-1, 1, -1], [1, -1, 1]],
                                   atol=1e-12)
        # The clean image once; per setting its pure baseline (Explain's report) and occlusion's 257; then 3 x 3
        # deletions of 17.
        assert result.forward_passes == 1 + 3 * (1 + PROBE_SIDE**2 + 1) + 3 * 3 * 17
    finally:
        client.unload_model("linear-probe")
