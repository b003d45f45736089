"""What a hostile client sent, and the precise status each gets (issue 10's list, one test per cause)."""

from __future__ import annotations

import io
import logging
import struct
import zlib

import grpc
import numpy as np
import pytest
from conftest import MODELS, load_samples
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from onnxplain_client import OnnxplainClient
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms
from onnxplain_client._proto.xai.v1 import tensor_pb2
from onnxplain_client.tensors import to_tensor
from PIL import Image
from test_server import assert_status, still_serving

from service.api.server import EmbeddedServer
from service.config import Settings

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def shapes_image() -> tensor_pb2.Image:
    return tensor_pb2.Image(encoded=load_samples("shapes")[0]["path"].read_bytes())


def explain_request(**method) -> ex.ExplainRequest:
    return ex.ExplainRequest(model_name="shapes", image=shapes_image(), method=method)


def png(width: int, height: int, *, broken: bool = False) -> bytes:
    """A greyscale PNG written by hand: a few kilobytes whatever its size (the rows are all alike).

    ``broken``: the image data continues in a chunk whose type is not a chunk name, which Pillow
    reports with a SyntaxError while decoding (the header still reads fine).
    """
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = bytes(width + 1)  # the filter byte and black pixels
    rows = zlib.compress(row * height, 9)
    half = len(rows) // 2
    data = chunk(b"IDAT", rows[:half]) + chunk(b"\xb7V)E" if broken else b"IDAT", rows[half:])
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + data + chunk(b"IEND", b""))


def test_unknown_enum_values_inside_parameters(client):
    assert_status(lambda: client.explainer.Explain(explain_request(sobol={"grid_size": 4, "perturbation": 99})),
                  INVALID, "sobol.perturbation", "unknown")
    request = explain_request(occlusion={"window": [16], "stride": [16]})
    request.metrics.add().mu_fidelity.correlation = 7
    assert_status(lambda: client.explainer.Explain(request), INVALID, "mu_fidelity.correlation", "unknown")
    still_serving(client)


@pytest.mark.parametrize("path, match", [("shapes\x00/model.onnx", "NUL"), ("a" * 300, "longer")])
def test_paths_no_filesystem_takes(client, path, match):
    assert_status(lambda: client.models.LoadModel(ms.LoadModelRequest(path=path)), INVALID, "path", match)
    assert_status(lambda: client.explainer.Audit(ex.AuditRequest(dataset=path, models=["shapes"], name="x")).next(),
                  INVALID, "dataset", match)
    still_serving(client)


@pytest.mark.parametrize("shape, datatype, match", [
    ([2**62, 4], tensor_pb2.DATA_TYPE_UINT8, "needs 18446744073709551616"),  # int64 arithmetic would say 0
    ([2**62, 4, 3], tensor_pb2.DATA_TYPE_UINT8, "needs"),
    ([3, 2**61, 3], tensor_pb2.DATA_TYPE_FLOAT32, "needs"),
    ([0, 0, 3], tensor_pb2.DATA_TYPE_FLOAT32, "0x0"),
    ([0, 0, 3], tensor_pb2.DATA_TYPE_UINT8, "0x0"),
    ([5], tensor_pb2.DATA_TYPE_UINT8, "H x W x C"),
])
def test_pixel_tensors_of_impossible_shapes(client, shape, datatype, match):
    raw = b"\x00" * 5 if shape == [5] else b""
    request = ex.PredictRequest(model_name="shapes", images=[tensor_pb2.Image(
        pixels=tensor_pb2.Tensor(datatype=datatype, shape=shape, raw_data=raw))])
    assert_status(lambda: client.explainer.Predict(request), INVALID, "images[0].pixels", match)
    still_serving(client)


def test_a_mask_without_pixels(client):
    request = explain_request(occlusion={"window": [16], "stride": [16]})
    request.mask.pixels.CopyFrom(tensor_pb2.Tensor(datatype=tensor_pb2.DATA_TYPE_UINT8, shape=[0, 5]))
    request.metrics.add().localisation.SetInParent()
    assert_status(lambda: client.explainer.Explain(request), INVALID, "mask.pixels", "0x5")


def test_bytes_of_no_image_format_are_named_as_such_not_as_a_buffer(client):
    request = ex.PredictRequest(model_name="shapes", images=[tensor_pb2.Image(encoded=b"plain text, no picture")])
    with pytest.raises(grpc.RpcError) as refused:
        client.explainer.Predict(request)
    assert refused.value.code() == INVALID
    assert refused.value.details() == ("images[0].encoded: is not an image format Pillow reads; send PNG or JPEG "
                                       "bytes")
    still_serving(client)


def test_png_whose_decoder_raises_syntax_error(client):
    data = png(64, 64, broken=True)
    with pytest.raises(SyntaxError):  # the precondition: Pillow's own exception type for this file
        np.asarray(Image.open(io.BytesIO(data)).convert("L"))
    request = ex.PredictRequest(model_name="shapes", images=[tensor_pb2.Image(encoded=data)])
    assert_status(lambda: client.explainer.Predict(request), INVALID, "images[0].encoded", "SyntaxError")
    still_serving(client)


def test_decoding_bomb_is_refused_from_the_header(client):
    bomb = png(8000, 8000)  # 64 M pixels in about 60 kB
    assert len(bomb) < 100_000
    request = ex.PredictRequest(model_name="shapes", images=[tensor_pb2.Image(encoded=bomb)])
    assert_status(lambda: client.explainer.Predict(request), grpc.StatusCode.RESOURCE_EXHAUSTED,
                  "images[0].encoded", "8000x8000")


def test_the_request_total_of_pixels_is_bounded():
    with EmbeddedServer(Settings(models_dir=MODELS, max_image_pixels=4000 * 4000,
                                 max_request_pixels=3 * 3000 * 3000)) as address, OnnxplainClient(address) as client:
        many = [tensor_pb2.Image(encoded=png(3000, 3000)) for _ in range(4)]
        assert_status(lambda: client.explainer.Predict(ex.PredictRequest(model_name="shapes", images=many)),
                      grpc.StatusCode.RESOURCE_EXHAUSTED, "images[3]", "together")
        response = client.explainer.Predict(ex.PredictRequest(model_name="shapes", images=many[:3]))
        assert len(response.predictions) == 3


def test_audit_enums_must_be_specified(client, data_dir):
    (data_dir / "one").mkdir(exist_ok=True)
    base = dict(dataset="one", models=["shapes"], name="enums")
    assert_status(lambda: next(client.explainer.Audit(ex.AuditRequest(**base, measures=[0, 4]))), INVALID,
                  "measures[0]", "unspecified")
    assert_status(lambda: next(client.explainer.Audit(ex.AuditRequest(**base, scales={"corruptions": [0]}))),
                  INVALID, "scales.corruptions[0]", "unspecified")
    assert_status(lambda: next(client.explainer.Audit(ex.AuditRequest(**base, measures=[77]))), INVALID,
                  "measures[0]", "unknown enum value 77")


def test_audit_output_through_a_symbolic_link_is_refused(client, data_dir, tmp_path):
    (data_dir / "one").mkdir(exist_ok=True)
    (data_dir / "audits").mkdir(exist_ok=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (data_dir / "audits" / "planted").symlink_to(elsewhere)
    assert_status(lambda: next(client.explainer.Audit(ex.AuditRequest(dataset="one", models=["shapes"],
                                                                      name="planted"))),
                  INVALID, "name", "symbolic link")
    assert list(elsewhere.iterdir()) == []


def test_undecodable_bodies_are_invalid_arguments(server):
    with grpc.insecure_channel(server.address) as channel:
        for method in ("/xai.v1.ExplainService/Predict", "/xai.v1.ModelService/ListModels",
                       "/xai.v1.ExplainService/ExplainStream"):
            raw = channel.unary_unary(method, request_serializer=None, response_deserializer=None) \
                if not method.endswith("Stream") else channel.unary_stream(method)
            with pytest.raises(grpc.RpcError) as caught:
                result = raw(b"\xff\xff\xff\xff\x0f garbage", timeout=5)
                list(result) if method.endswith("Stream") else result
            assert caught.value.code() == INVALID, (method, caught.value.details())
            assert "not a valid" in caught.value.details()


def test_reflection_needs_the_token_unless_made_public(tmp_path):
    def list_services(address: str, metadata=()) -> list[str]:
        with grpc.insecure_channel(address) as channel:
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            (response,) = list(stub.ServerReflectionInfo(iter([request]), metadata=metadata, timeout=5))
            return [s.name for s in response.list_services_response.service]

    for public in (False, True):
        with EmbeddedServer(Settings(models_dir=MODELS, token="s3cret", public_reflection=public,
                                     preload=False)) as address:
            assert "xai.v1.ExplainService" in list_services(address, [("authorization", "Bearer s3cret")])
            if public:
                assert "xai.v1.ExplainService" in list_services(address)
            else:
                assert_status(lambda: list_services(address), grpc.StatusCode.UNAUTHENTICATED, match="missing")


def test_two_authorization_headers_are_refused():
    with EmbeddedServer(Settings(models_dir=MODELS, token="s3cret", preload=False)) as address, \
            grpc.insecure_channel(address) as channel:
        list_models = channel.unary_unary("/xai.v1.ModelService/ListModels",
                                          request_serializer=ms.ListModelsRequest.SerializeToString,
                                          response_deserializer=ms.ListModelsResponse.FromString)
        good = ("authorization", "Bearer s3cret")
        assert list_models(ms.ListModelsRequest(), metadata=[good], timeout=5).models == []
        for second in (good, ("authorization", "Bearer wrong")):
            for headers in ([good, second], [second, good]):
                assert_status(lambda: list_models(ms.ListModelsRequest(), metadata=headers, timeout=5),
                              grpc.StatusCode.UNAUTHENTICATED, match="exactly one")


def test_a_stream_past_its_deadline_logs_no_unretrieved_exception(server, client, caplog):
    request = ex.ExplainStreamRequest(request=explain_request(occlusion={"window": [1], "stride": [1]}))
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with pytest.raises(grpc.RpcError) as caught:
            list(client.explainer.ExplainStream(request, timeout=0.3))
        assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        still_serving(client)
        import gc
        gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]


def test_evaluate_scores_wavelet_maps_only_when_told_so(client):
    attribution = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    request = ex.EvaluateRequest(model_name="shapes", image=shapes_image(), attribution=to_tensor(attribution),
                                 class_index=0, seed=3)
    request.metrics.add().wavelet_deletion.steps = 8
    assert_status(lambda: client.explainer.Evaluate(request), INVALID, "metrics[0]", "set attribution_domain")
    request.attribution_domain = ex.MAP_DOMAIN_WAVELET
    scored = client.explainer.Evaluate(request).results[0]
    request.metrics.add().deletion.SetInParent()
    assert_status(lambda: client.explainer.Evaluate(request), INVALID, "metrics[1]", "pixel-domain")
    # The same map through wavelet_deletion's own function and the model, outside the server.
    from service.explainers.baselines import Baseline
    from service.metrics import get_metric
    from service.runtime.repository import ModelRepository
    from service.runtime.scores import ScoreSpace

    model = ModelRepository(MODELS).load_path("shapes")
    image = model.fit_image(np.asarray(Image.open(load_samples("shapes")[0]["path"])))
    metric = get_metric("wavelet_deletion")
    # Metrics score probabilities unless told otherwise (RISE's definition).
    direct = metric.evaluate(lambda x: model.predict(x, score_space=ScoreSpace.PROBABILITY)[:, 0], image, attribution,
                             metric.make_params({"steps": 8}),
                             baseline=Baseline().resolve(image, model.info.preprocessing, np.random.default_rng(3)),
                             mask=None, batch_size=32, rng=np.random.default_rng(3))
    assert scored.score == pytest.approx(direct.score, rel=1e-5)


def test_a_cancel_stops_the_session_call_in_progress():
    """2,048 images in session calls of 1,024, cancelled early: they end long before they could have finished.

    The comparison is with 256 images timed in the same run: the whole call would take about 8 times that,
    and the cancel comes after half of it, so even a loaded machine keeps the two far apart."""
    import threading
    import time

    from service.errors import Cancelled
    from service.jobs.control import JobControl
    from service.jobs.counting import CountingPredict
    from service.runtime.repository import ModelRepository
    from service.runtime.scores import ScoreSpace

    model = ModelRepository(MODELS).load_path("shapes", overrides={"batch_size": 1024})
    images = np.random.default_rng(0).random((2048, 64, 64, 3), dtype=np.float32)

    def counting(control: JobControl) -> CountingPredict:
        return CountingPredict(model, control, total=len(images), score_space=ScoreSpace.RAW, batch_size=1024,
                               method="test")
    eighth = time.perf_counter()
    counting(JobControl()).all_classes(images[:256])
    eighth = time.perf_counter() - eighth
    control = JobControl()
    predict = counting(control)
    threading.Timer(eighth / 2, control.cancel).start()
    stopped = time.perf_counter()
    with pytest.raises(Cancelled):
        predict.all_classes(images)
    stopped = time.perf_counter() - stopped
    assert predict.passes == 0
    assert stopped < 4 * eighth, (stopped, eighth)


def test_an_undecodable_message_in_a_request_stream_is_an_invalid_argument(server):
    with grpc.insecure_channel(server.address) as channel:
        reflect = channel.stream_stream("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
        with pytest.raises(grpc.RpcError) as caught:
            list(reflect(iter([b"\x00"]), timeout=5))
        assert caught.value.code() == INVALID, caught.value.details()


def _served_model(nodes, initializers=(), name="hostile"):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def test_a_model_that_runs_only_at_its_traced_batch_is_refused_at_load(client):
    from onnx import helper, numpy_helper

    shape = numpy_helper.from_array(np.array([2, 3], np.int64), "shape")
    model = _served_model([helper.make_node("ReduceMean", ["x"], ["r"], axes=[2, 3], keepdims=0),
                           helper.make_node("Reshape", ["r", "shape"], ["y"])], [shape])
    assert_status(lambda: client.models.LoadModel(ms.LoadModelRequest(name="only_two", onnx_model=model)),
                  INVALID, "onnx_model", "probe")
    assert "only_two" not in [m.name for m in client.list_models()]


def test_a_model_that_fails_or_gives_nan_at_request_time_is_a_failed_precondition(client):
    from onnx import helper

    # log of the mean pixel: finite on the load probe (random pixels), -inf on a black image.
    model = _served_model([helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
                           helper.make_node("Log", ["m"], ["y"])])
    client.models.LoadModel(ms.LoadModelRequest(name="log_mean", onnx_model=model))
    try:
        black = ex.PredictRequest(model_name="log_mean", images=[tensor_pb2.Image(
            pixels=to_tensor(np.zeros((8, 8, 3), np.uint8)))])
        assert_status(lambda: client.explainer.Predict(black), grpc.StatusCode.FAILED_PRECONDITION,
                      match="NaN or infinite scores for 1 of 1")
        grey = ex.PredictRequest(model_name="log_mean", images=[tensor_pb2.Image(
            pixels=to_tensor(np.full((8, 8, 3), 128, np.uint8)))])
        (prediction,) = client.explainer.Predict(grey).predictions
        from onnxplain_client.tensors import from_tensor
        assert from_tensor(prediction.scores).ravel()[0] == pytest.approx(np.log(128 / 255), rel=1e-5)
    finally:
        client.models.UnloadModel(ms.UnloadModelRequest(name="log_mean"))
    still_serving(client)


def test_sixteen_bit_png_is_scaled_not_clipped():
    from service.runtime import images

    for value, expected in ((0, 0), (32768, 128), (65535, 255), (1000, 3)):
        buffer = io.BytesIO()
        Image.fromarray(np.full((4, 4), value, np.uint16)).save(buffer, format="PNG")
        assert images.decode(buffer.getvalue())[0, 0, 0] == expected


def test_stability_models_are_bounded_and_distinct(client):
    sample = load_samples("shapes")[0]["path"]
    assert_status(lambda: list(client.measure("shapes", sample, stability_models=["shapes_run1"] * 17)), INVALID,
                  "stability_models", "at most 16")
    assert_status(lambda: list(client.measure("shapes", sample, stability_models=["shapes_run1", "shapes_run1"])),
                  INVALID, "stability_models[1]", "named twice")


def test_too_many_scale_variants_name_the_list_that_makes_them():
    from service.corruptions import Corruption
    from service.errors import InvalidArgument
    from service.jobs.scales import MAX_VARIANTS, variants

    with pytest.raises(InvalidArgument) as caught:
        variants([], [], [1.5] * MAX_VARIANTS)
    assert caught.value.field == "zooms" and f"{MAX_VARIANTS} zoomed" in caught.value.message
    with pytest.raises(InvalidArgument) as caught:
        variants(list(Corruption), list(range(1, 6)) * 4, [2.0])
    assert caught.value.field == "corruptions"
    assert len(variants([], [], [1.5] * (MAX_VARIANTS - 1))) == MAX_VARIANTS


def test_a_wavelet_too_long_for_the_image_is_named():
    from service.errors import InvalidArgument
    from service.explainers.wavelets import make_layout

    with pytest.raises(InvalidArgument) as caught:
        make_layout(64, 64, 3, "db38", prefix="wcam.")  # 76 taps: not one level of 64 pixels
    assert caught.value.field == "wcam.wavelet" and "76 taps" in caught.value.message
    assert make_layout(64, 64, 3, "db2", prefix="wcam.").levels == 3
