"""The input side: models with dynamic height and width, the letterbox resize and the frame maps come back in,
and model overrides on the command line (--set).

Ground truth throughout is the pooled classifier: scores = (per-channel mean of the input) @ W. Its occlusion map
with 1-pixel windows and a black baseline is, in closed form, the per-pixel function f(x)_ij = sum_c W[c,k] x_cij
/ (H W) of the model's input, so where a map lands is checked against where the image's pixels went."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx_builders import export_torch, pooled_classifier
from PIL import Image

from service.budget import Budget
from service.cli import main
from service.errors import InvalidArgument, ResourceExhausted
from service.runtime import images
from service.runtime.loader import DEFAULT_DYNAMIC_SIZE, load_model
from service.runtime.preprocessing import ResizePolicy

# Class 0 weighs red, class 1 blue (and a little green).
WEIGHTS = np.array([[3.0, -1.0], [0.0, 0.5], [-1.0, 2.0]], dtype=np.float32)
SIDE = 32  # the letterbox model's input


def _dynamic_model() -> onnx.ModelProto:
    return pooled_classifier(WEIGHTS, ("height", "width", 3))


def _scores(pixels: np.ndarray) -> np.ndarray:
    """The pooled classifier's scores in closed form, of (H, W, 3) pixels in [0, 1]."""
    return pixels.reshape(-1, 3).astype(np.float64).mean(axis=0) @ WEIGHTS


def _scene(height: int, width: int, square: tuple[int, int, int, int]) -> np.ndarray:
    """Black, with a white square at rows square[0]..square[1], columns square[2]..square[3] (ends excluded)."""
    pixels = np.zeros((height, width, 3), np.uint8)
    top, bottom, left, right = square
    pixels[top:bottom, left:right] = 255
    return pixels


# --- dynamic height and width ------------------------------------------------------------------------------------


def test_a_dynamic_model_loads_without_configuration_and_takes_each_image_at_its_own_size():
    loaded = load_model("dyn", _dynamic_model().SerializeToString(), source="test")
    info = loaded.info
    assert (info.dynamic_height, info.dynamic_width) == (True, True)
    assert (info.height, info.width) == (DEFAULT_DYNAMIC_SIZE, DEFAULT_DYNAMIC_SIZE)  # the probe's size
    rng = np.random.default_rng(0)
    for shape in ((17, 45, 3), (64, 9, 3)):
        image = (rng.random(shape) * 255).astype(np.uint8)
        fitted = loaded.fit_image(image)
        assert fitted.shape == shape  # no resize at all
        np.testing.assert_allclose(loaded.predict(fitted[None])[0], _scores(image / 255.0), rtol=1e-5, atol=1e-6)
    # A configured axis is fixed; the other stays the image's.
    half = load_model("half", _dynamic_model().SerializeToString(), source="test", overrides={"height": 16}).info
    assert (half.dynamic_height, half.dynamic_width, half.height) == (False, True, 16)


def test_one_dynamic_axis_keeps_the_aspect_ratio():
    """Fixed height 16, free width (an OCR line model): a 8 x 20 image becomes 16 x 40."""
    loaded = load_model("line", _dynamic_model().SerializeToString(), source="test", overrides={"height": 16})
    assert loaded.input_size(8, 20) == (16, 40)
    assert loaded.fit_image(np.zeros((8, 20, 3), np.uint8)).shape == (16, 40, 3)
    strict = load_model("strict", _dynamic_model().SerializeToString(), source="test",
                        overrides={"height": 16, "preprocessing": {"resize": "reject"}})
    assert strict.fit_image(np.zeros((16, 7, 3), np.uint8)).shape == (16, 7, 3)
    with pytest.raises(InvalidArgument, match="is 8x20 .* the model takes 16x20"):
        strict.fit_image(np.zeros((8, 20, 3), np.uint8))


def test_a_dynamic_models_batch_and_pixels_follow_the_image_size():
    budget = Budget(job_memory_mb=1, model_input_pixels=300 * 300)
    loaded = load_model("dyn", _dynamic_model().SerializeToString(), source="test", budget=budget,
                        default_batch_size=32)
    # One call's float32 input within 1 MiB: 1 MiB / (H W 3 4 bytes) images.
    assert loaded.batch_limit(16, 16) == 32
    assert loaded.batch_limit(90, 90) == (1 << 20) // (90 * 90 * 3 * 4) == 10
    with pytest.raises(ResourceExhausted, match="301 x 300 = 90300 pixels") as refused:
        loaded.fit_image(np.zeros((301, 300, 3), np.uint8), field="image.pixels")
    assert refused.value.field == "image.pixels"
    # Under a limit below the probe's 224 x 224, a dynamic model needs a smaller size configured.
    small = Budget(model_input_pixels=100 * 100)
    with pytest.raises(InvalidArgument, match="probed at 224 x 224 = 50176 pixels") as refused:
        load_model("dyn", _dynamic_model().SerializeToString(), source="test", budget=small)
    assert refused.value.field == "overrides.height"
    sized = load_model("dyn", _dynamic_model().SerializeToString(), source="test", budget=small,
                       overrides={"height": 64, "width": 64}).info
    assert (sized.height, sized.width, sized.dynamic_size) == (64, 64, False)


def test_a_torchvision_export_with_free_height_and_width(tmp_path):
    """A real exporter's graph (torchvision's MobileNetV3-Small, weights=None, dynamic H and W): loads with no
    configuration and scores images of two sizes as PyTorch does."""
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v3_small(weights=None, num_classes=5).eval()
    path = tmp_path / "mobilenet.onnx"
    export_torch(net, path, (1, 3, 64, 64))
    exported = onnx.load(path)
    for axis, name in ((2, "height"), (3, "width")):
        exported.graph.input[0].type.tensor_type.shape.dim[axis].dim_param = name
    loaded = load_model("mobilenet", exported.SerializeToString(), source="test")
    assert loaded.info.dynamic_size
    rng = np.random.default_rng(1)
    for shape in ((48, 80, 3), (72, 40, 3)):
        pixels = loaded.fit_image(rng.random(shape).astype(np.float32))
        with torch.no_grad():
            expected = net(torch.from_numpy(pixels.transpose(2, 0, 1)[None].copy())).numpy()[0]
        np.testing.assert_allclose(loaded.predict(pixels[None])[0], expected, rtol=1e-4, atol=1e-4)


def test_get_model_reports_the_dynamic_axes_and_predict_takes_mixed_sizes(client):
    client.load_model(onnx_model=_dynamic_model().SerializeToString(), name="inputs-dynamic", replace=True)
    info = client.get_model("inputs-dynamic")
    assert (info.dynamic_height, info.dynamic_width, info.height, info.width) == (True, True, 224, 224)
    rng = np.random.default_rng(2)
    pictures = [(rng.random(shape) * 255).astype(np.uint8) for shape in ((20, 30, 3), (20, 30, 3), (41, 13, 3))]
    predictions = client.predict("inputs-dynamic", pictures, top_k=2)
    for picture, prediction in zip(pictures, predictions):
        np.testing.assert_allclose(prediction.scores, _scores(picture / 255.0), rtol=1e-5, atol=1e-6)
    # An explanation at the image's own size: the occlusion map is the closed form over its pixels.
    picture = pictures[2]
    explanation = client.explain("inputs-dynamic", picture, "occlusion", {"window": [1], "stride": [1]},
                                 classes=[0], baseline={"kind": "KIND_CONSTANT", "value": 0.0})
    expected = (picture / 255.0) @ WEIGHTS[:, 0] / (41 * 13)
    assert explanation.map_frame == "model_input" and explanation.map.shape == (41, 13)
    np.testing.assert_allclose(explanation.map, expected, rtol=1e-4, atol=1e-6)


def test_jobs_of_several_images_on_a_dynamic_model(client):
    """Measure takes images of two sizes at their own sizes (one occlusion map each, costed at its size);
    Aggregate, which returns one tensor of maps, asks for images of one size."""
    import grpc

    client.load_model(onnx_model=_dynamic_model().SerializeToString(), name="inputs-dynamic-jobs", replace=True)
    rng = np.random.default_rng(4)
    pictures = [(rng.random(shape) * 255).astype(np.uint8) for shape in ((12, 20, 3), (18, 10, 3))]
    measured = client.measure("inputs-dynamic-jobs", pictures, "occlusion", {"window": [2], "stride": [2]},
                              measures=["entropy"], seed=0)
    assert len(measured.class_indices) == 2
    expected = [int(np.argmax(_scores(p / 255.0))) for p in pictures]
    assert list(measured.class_indices) == expected
    with pytest.raises(grpc.RpcError) as refused:
        client.aggregate("inputs-dynamic-jobs", pictures, methods={"occlusion": {"window": [2], "stride": [2]}})
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "send images of one size" in \
        refused.value.details()


# --- letterbox -----------------------------------------------------------------------------------------------------


def test_the_letterbox_keeps_the_aspect_ratio_and_pads_with_the_fill():
    image = images.to_unit_pixels(_scene(20, 40, (5, 10, 10, 20)))
    fill = np.array([0.2, 0.4, 0.6], np.float32)
    boxed = images.fit(image, SIDE, SIDE, ResizePolicy.LETTERBOX, pad_value=fill)
    box = images.letterbox_placement(20, 40, SIDE, SIDE)
    assert (box.top, box.left, box.height, box.width) == (8, 0, 16, 32)  # scale 0.8, centred vertically
    np.testing.assert_array_equal(boxed[:8], np.broadcast_to(fill, (8, SIDE, 3)))
    np.testing.assert_array_equal(boxed[24:], np.broadcast_to(fill, (8, SIDE, 3)))
    # The square (rows 5-10, columns 10-20 of 20 x 40) lands at rows 8 + 4..8, columns 8..16, scaled by 0.8.
    weights = boxed[8:24, :, 0]
    rows, cols = np.nonzero(weights > 0.5)
    assert (rows.min() + 8, rows.max() + 8, cols.min(), cols.max()) == (12, 15, 8, 15)
    total = weights.sum()
    centre = ((np.arange(16)[:, None] * weights).sum() / total + 8, (np.arange(SIDE)[None] * weights).sum() / total)
    np.testing.assert_allclose(centre, (8 + 7.5 * 0.8 - 0.1, 14.5 * 0.8 + 0.3), atol=0.5)
    # A tall image is centred horizontally, the odd leftover column on the right.
    assert images.letterbox_placement(40, 9, SIDE, SIDE) == images.Placement(40, 9, 0, 12, 32, 7)


def test_pad_value_is_checked_and_reported():
    model = pooled_classifier(WEIGHTS, (SIDE, SIDE, 3)).SerializeToString()
    with pytest.raises(InvalidArgument, match=r"give values in \[0, 1\]") as refused:
        load_model("m", model, source="test", overrides={"preprocessing": {"pad_value": 2}})
    assert refused.value.field == "overrides.preprocessing.pad_value"
    with pytest.raises(InvalidArgument, match="has 2 values"):
        load_model("m", model, source="test", overrides={"preprocessing": {"pad_value": [0.1, 0.2]}})
    info = load_model("m", model, source="test", overrides={"preprocessing": {"resize": "letterbox"}}).info
    assert info.preprocessing.pad_value == (0.5,) and info.preprocessing.resize is ResizePolicy.LETTERBOX
    # Per channel, the fill is in the model's channel order, as mean and std are: B, G, R for a BGR model.
    bgr = load_model("m", model, source="test", overrides={"preprocessing": {
        "resize": "letterbox", "channel_order": "BGR", "pad_value": [0.1, 0.2, 0.3]}})
    fitted = bgr.fit_image(np.zeros((8, 32, 3), np.uint8))
    model_input = bgr.info.preprocessing.apply(fitted[None], channels_first=True)[0]
    np.testing.assert_allclose(model_input[:, 0, 0], [0.1, 0.2, 0.3], rtol=1e-6)


def _letterbox_model(client, name: str, pad: float | list[float] = 0.5) -> None:
    client.load_model(onnx_model=pooled_classifier(WEIGHTS, (SIDE, SIDE, 3)).SerializeToString(), name=name,
                      replace=True, overrides={"preprocessing": {"resize": "RESIZE_POLICY_LETTERBOX",
                                                                 "pad_value": pad if isinstance(pad, list) else [pad]}})


def test_letterbox_maps_come_back_aligned_with_the_image(client):
    """Occlusion (1-pixel windows, black baseline) on the pooled classifier maps f(input) per pixel: returned in
    the image's frame, it is f(image) there, the padding's own (non-zero) attribution cut off."""
    _letterbox_model(client, "inputs-letterbox")
    scene = _scene(20, 40, (4, 16, 8, 32))
    explanation = client.explain("inputs-letterbox", scene, "occlusion", {"window": [1], "stride": [1]},
                                 classes=[0], baseline={"kind": "KIND_CONSTANT", "value": 0.0})
    placement = explanation.response.placement
    assert explanation.map_frame == "image" and explanation.map.shape == (20, 40)
    assert (placement.image_height, placement.image_width, placement.top, placement.left, placement.height,
            placement.width) == (20, 40, 8, 0, 16, 32)
    assert explanation.image.shape == (SIDE, SIDE, 3)  # the model's input, padding included
    white = WEIGHTS[:, 0].sum() / SIDE ** 2  # f of a white pixel; black is 0
    attribution = explanation.map
    rows, cols = np.mgrid[:20, :40]

    def within(margin: int) -> np.ndarray:  # pixels at least ``margin`` inside the square's edge
        return (rows >= 4 + margin) & (rows < 16 - margin) & (cols >= 8 + margin) & (cols < 32 - margin)

    def beyond(margin: int) -> np.ndarray:  # pixels at least ``margin`` outside it
        return (rows < 4 - margin) | (rows >= 16 + margin) | (cols < 8 - margin) | (cols >= 32 + margin)

    # Aligned within one pixel: above half of f(white) a pixel inside the edge, below it a pixel outside
    # (resampling down into the input and back up only softens the edge, over about two pixels).
    assert attribution[within(1)].min() > white / 2 > attribution[beyond(1)].max()
    np.testing.assert_allclose(attribution[within(3)], white, rtol=1e-5)  # f(white) exactly inside
    assert np.abs(attribution[beyond(3)]).max() < 1e-6 * white  # and f(black) = 0 outside: the padding's own
    # attribution, f(mid-grey) = white / 2, is cut off, not resampled into the image's border
    weights = np.clip(attribution, 0, None)
    centre = ((rows * weights).sum() / weights.sum(), (cols * weights).sum() / weights.sum())
    np.testing.assert_allclose(centre, (9.5, 19.5), atol=0.5)  # the square's centre
    # Inline metrics ran on the model's input: deletion's first point is the clean score of the padded input.
    pads = np.full((SIDE, SIDE, 3), 0.5)
    pads[8:24] = images.fit(images.to_unit_pixels(scene), 16, SIDE, ResizePolicy.STRETCH)
    np.testing.assert_allclose(explanation.attributions[0].score, _scores(pads)[0], rtol=1e-5)


def test_evaluate_takes_a_letterboxed_images_map_in_either_frame(client):
    """An image-frame map of ones is the model-frame map of ones over the image's box and zeros on the padding:
    both score the same, and the response says which frame was read."""
    _letterbox_model(client, "inputs-letterbox-eval", pad=[0.1, 0.5, 0.9])
    scene = _scene(20, 40, (5, 10, 10, 20))
    in_model_frame = np.zeros((SIDE, SIDE), np.float32)
    in_model_frame[8:24] = 1.0
    metrics = {"deletion": {"steps": 4}, "insertion": {"steps": 4}}
    by_image = client.evaluate("inputs-letterbox-eval", scene, np.ones((20, 40), np.float32), metrics,
                               class_index=0, seed=3)
    by_model = client.evaluate("inputs-letterbox-eval", scene, in_model_frame, metrics, class_index=0, seed=3)
    assert by_image.attribution_frame == 2 and by_model.attribution_frame == 1  # IMAGE, MODEL_INPUT
    assert [r.score for r in by_image.results] == [r.score for r in by_model.results]
    import grpc

    with pytest.raises(grpc.RpcError) as refused:
        client.evaluate("inputs-letterbox-eval", scene, np.ones((20, 41), np.float32), metrics)
    assert "[32, 32] or, as Explain returns maps of a letterboxed image, the image's own size [20, 40]" in \
        refused.value.details()


def test_a_letterboxed_mask_is_placed_like_its_image():
    loaded = load_model("m", pooled_classifier(WEIGHTS, (SIDE, SIDE, 3)).SerializeToString(), source="test",
                        overrides={"preprocessing": {"resize": "letterbox"}})
    mask = _scene(20, 40, (5, 10, 10, 20))[..., 0] / 255.0
    fitted = loaded.fit_mask(mask, (20, 40))
    rows, cols = np.nonzero(fitted)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (12, 15, 8, 15)  # where the image's square went
    assert not fitted[:8].any() and not fitted[24:].any()  # the padding is background


# --- --set on the command line -------------------------------------------------------------------------------------


@pytest.fixture
def files(tmp_path):
    onnx.save(pooled_classifier(WEIGHTS, (SIDE, SIDE, 3)), tmp_path / "pooled.onnx")
    colour = np.zeros((20, 40, 3), np.uint8)
    colour[...] = (200, 40, 100)
    Image.fromarray(colour).save(tmp_path / "wide.png")
    return tmp_path


def test_predict_with_set_overrides_letterbox_and_labels(files, capsys):
    assert main(["predict", str(files / "pooled.onnx"), str(files / "wide.png"), "--top-k", "2", "--json",
                 "--set", "preprocessing.resize=letterbox", "--set", "preprocessing.pad_value=0.25",
                 "--set", "labels=180,0"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    # Half the input is the image (16 of 32 rows), half the 0.25 padding: the scores of that mean pixel.
    mean = 0.5 * np.array([200, 40, 100]) / 255.0 + 0.5 * 0.25
    expected = mean @ WEIGHTS
    assert [t["label"] for t in result["top"]] == ["180", "0"]
    np.testing.assert_allclose([t["score"] for t in result["top"]], sorted(expected, reverse=True), rtol=1e-5)


def test_set_values_are_checked_naming_the_option(files, capsys):
    image = str(files / "wide.png")
    model = str(files / "pooled.onnx")
    cases = [
        (["--set", "height=abc"], "error: INVALID_ARGUMENT: --set height: 'abc': must be a positive integer"),
        (["--set", "colour=red"], "error: INVALID_ARGUMENT: --set colour: is not a model override; known: layout"),
        (["--set", "labls=a"], "error: INVALID_ARGUMENT: --set labls: is not a model override ('labls': did you "
                               "mean 'labels'?); known: layout"),
        (["--set", "preprocessing.resize=squash"], "error: INVALID_ARGUMENT: --set preprocessing.resize: 'squash'"),
        (["--set", "height"], "error: INVALID_ARGUMENT: --set: 'height': write KEY=VALUE"),
        # Checked by the server against the model: the field it names is the command line's option.
        (["--set", "preprocessing.mean=0.5,0.5"], "error: INVALID_ARGUMENT: --set preprocessing.mean: has 2 values"),
        (["--set", "labels=a,b,c"], "error: INVALID_ARGUMENT: --set labels: 3 labels for 2 classes"),
    ]
    for options, expected in cases:
        assert main(["predict", model, image, *options]) == 1
        err = capsys.readouterr().err
        assert err.startswith(expected) and err.count("\n") == 1, err


def test_a_missing_file_is_one_line(files, capsys):
    assert main(["predict", str(files / "pooled.onnx"), str(files / "absent.png")]) == 2
    assert capsys.readouterr().err == f"error: {files / 'absent.png'}: No such file or directory\n"


def test_a_model_that_needs_a_size_says_so_in_set_terms(tmp_path, capsys):
    """A graph with free axes that computes at one size only: the one-line refusal tells the CLI user the
    --set keys to give, and giving them works."""
    import torch

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2))
    path = export_torch(net, tmp_path / "flat.onnx", (1, 3, 8, 8))
    exported = onnx.load(path)
    for axis, name in ((2, "height"), (3, "width")):
        exported.graph.input[0].type.tensor_type.shape.dim[axis].dim_param = name
    onnx.save(exported, path)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "small.png")
    assert main(["predict", str(path), str(tmp_path / "small.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: INVALID_ARGUMENT: --set height: the input's height and width are dynamic in the "
                          "graph, but the model fails at 224 x 224") and "in the sidecar or --set" in err
    assert main(["predict", str(path), str(tmp_path / "small.png"), "--set", "height=8", "--set", "width=8"]) == 0


def test_explain_with_set_draws_over_the_image_as_given(files, capsys):
    out = files / "out"
    assert main(["explain", str(files / "pooled.onnx"), str(files / "wide.png"), "-p", "window=4", "-p", "stride=4",
                 "--set", "preprocessing.resize=letterbox", "--class", "0", "--out", str(out), "--json"]) == 0
    summary = json.loads((out / "wide.occlusion.json").read_text())
    assert summary["map_frame"] == "image" and np.load(summary["maps"]).shape == (1, 20, 40)
    assert Image.open(summary["targets"][0]["overlay"]).size == (4 * 40, 4 * 20)


def test_set_is_refused_against_a_running_server(server, files, capsys):
    assert main(["predict", "shapes", str(files / "wide.png"), "--server", server.address,
                 "--set", "height=8"]) == 1
    assert capsys.readouterr().err.startswith("error: INVALID_ARGUMENT: --set: applies to a model this command loads")


def test_set_keys_reach_the_server_as_the_sidecar_would_give_them():
    """--set -> ModelOverrides -> what LoadModel merges: every key arrives as written (floats as float32)."""
    from google.protobuf import json_format
    from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

    from service.api.requests import overrides
    from service.cli.overrides import parse_overrides, to_model_overrides

    spec = parse_overrides(["layout=NHWC", "height=224", "width=200", "batch_size=4", "output_kind=probabilities",
                            "labels=180,0", "preprocessing.mean=0.5,0.25,0.125", "preprocessing.std=[1, 2, 4]",
                            "preprocessing.resize=letterbox", "preprocessing.pad_value=0.5",
                            "preprocessing.channel_order=BGR", "preprocessing.pixel_range=0_255", "height=112"])
    assert spec["height"] == 112 and spec["labels"] == ["180", "0"]  # the later --set wins; labels stay text
    received = overrides(json_format.ParseDict(to_model_overrides(spec), ms.ModelOverrides()))
    assert received == {"layout": "NHWC", "output_kind": "probabilities", "batch_size": 4, "height": 112,
                        "width": 200, "labels": ["180", "0"],
                        "preprocessing": {"pixel_range": "0_255", "channel_order": "BGR", "resize": "letterbox",
                                          "mean": [0.5, 0.25, 0.125], "std": [1.0, 2.0, 4.0], "pad_value": [0.5]}}


def test_an_audit_of_a_letterbox_model_stores_maps_in_the_images_frame(files, capsys):
    """Audit results hold maps as Explain returns them: a letterboxed image's map at the image's own size,
    scored (and ensembled) at the model's input."""
    import sqlite3

    data = files / "data"
    data.mkdir()
    Image.fromarray(_scene(20, 40, (4, 16, 8, 32))).save(data / "wide.png")
    Image.fromarray(_scene(36, 12, (10, 20, 2, 10))).save(data / "tall.png")
    (data / "labels.csv").write_text("path,label\nwide.png,0\ntall.png,0\n")
    out = files / "audit"
    assert main(["audit", str(data / "labels.csv"), "--model", str(files / "pooled.onnx"), "--method",
                 "occlusion:window=[1],stride=[1]", "--method", "occlusion:window=[2],stride=[2]", "--metric",
                 "deletion:steps=4", "--ensemble", "max_abs/mean", "--set", "preprocessing.resize=letterbox",
                 "--set", "preprocessing.pad_value=0", "--out", str(out)]) == 0
    with sqlite3.connect(out / "results.sqlite") as connection:
        rows = connection.execute("SELECT item, method, map_shape, metrics FROM results").fetchall()
    assert len(rows) == 6  # two methods and the ensemble, on two images
    shapes = {item: {tuple(json.loads(shape)) for row_item, _, shape, _ in rows if row_item == item}
              for item in ("wide.png", "tall.png")}
    assert shapes == {"wide.png": {(20, 40)}, "tall.png": {(36, 12)}}
    assert all("deletion" in json.loads(metrics) for *_, metrics in rows)  # the ensemble scored too
    assert (out / "report.html").stat().st_size > 1000
