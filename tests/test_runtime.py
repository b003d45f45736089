"""The model runtime: layouts, batch axes, output kinds, preprocessing sources, and refusals."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx_builders import export_torch, image_classifier

from service.errors import InvalidArgument, NotFound
from service.runtime.loader import load_model
from service.runtime.repository import ModelRepository
from service.runtime.scores import ScoreSpace
from service.runtime.signature import Layout, OutputKind

RNG = np.random.default_rng(7)
SHAPE = (6, 5, 3)  # a non-square image catches swapped axes


def _linear(layout="NCHW", **kwargs):
    h, w, c = SHAPE
    weights = RNG.normal(size=(h * w * c, 4)).astype(np.float32)
    return weights, image_classifier(weights, SHAPE, layout=layout, **kwargs)


def _oracle(weights, pixels, layout, mean=0.0, std=1.0):
    values = (pixels - mean) / std
    if layout == "NCHW":
        values = values.transpose(0, 3, 1, 2)
    return values.reshape(len(values), -1) @ weights


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
def test_layout_is_detected_and_predictions_follow_it(layout):
    weights, model = _linear(layout)
    loaded = load_model("m", model.SerializeToString(), source="test")
    assert loaded.info.layout is Layout(layout)
    assert (loaded.info.height, loaded.info.width, loaded.info.channels) == SHAPE
    pixels = RNG.random((3, *SHAPE), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(pixels), _oracle(weights, pixels, layout), rtol=1e-5, atol=1e-5)


def test_preprocessing_override_is_applied_after_pixels():
    weights, model = _linear()
    overrides = {"preprocessing": {"mean": [0.2, 0.4, 0.6], "std": [0.5, 0.25, 2.0], "pixel_range": "0_255"}}
    loaded = load_model("m", model.SerializeToString(), source="test", overrides=overrides)
    pixels = RNG.random((2, *SHAPE), dtype=np.float32)
    expected = _oracle(weights, pixels * 255, "NCHW", np.array([0.2, 0.4, 0.6]), np.array([0.5, 0.25, 2.0]))
    np.testing.assert_allclose(loaded.predict(pixels), expected, rtol=1e-4, atol=1e-3)
    assert loaded.info.preprocessing_source == "overrides"


def test_bgr_channel_order_reverses_channels():
    weights, model = _linear(layout="NHWC")
    loaded = load_model("m", model.SerializeToString(), source="test",
                        overrides={"preprocessing": {"channel_order": "BGR"}})
    pixels = RNG.random((2, *SHAPE), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(pixels), _oracle(weights, pixels[..., ::-1], "NHWC"), rtol=1e-5,
                               atol=1e-5)


def test_output_kind_from_graph_probe_and_override():
    _, probabilities = _linear(softmax=True)
    info = load_model("m", probabilities.SerializeToString(), source="test").info
    assert (info.output_kind, info.output_kind_source) == (OutputKind.PROBABILITIES, "graph")
    _, logits = _linear()
    info = load_model("m", logits.SerializeToString(), source="test").info
    assert (info.output_kind, info.output_kind_source) == (OutputKind.LOGITS, "probe")
    info = load_model("m", logits.SerializeToString(), source="test",
                      overrides={"output_kind": "log_probabilities"}).info
    assert (info.output_kind, info.output_kind_source) == (OutputKind.LOG_PROBABILITIES, "overrides")


def test_probability_space_is_softmax_of_logits():
    weights, model = _linear()
    loaded = load_model("m", model.SerializeToString(), source="test")
    pixels = RNG.random((2, *SHAPE), dtype=np.float32)
    logits = _oracle(weights, pixels, "NCHW")
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(loaded.predict(pixels, score_space=ScoreSpace.PROBABILITY), expected, rtol=1e-4)


def test_fixed_batch_runs_in_chunks_and_pads_the_last(tmp_path):
    import torch  # the test extra installs it: a missing reference fails, never skips
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 8 * 8, 3))
    path = export_torch(net, tmp_path / "fixed.onnx", (4, 3, 8, 8), dynamic_batch=False)
    loaded = load_model("fixed", path.read_bytes(), source="test")
    assert loaded.info.fixed_batch and loaded.info.max_batch == 4
    pixels = RNG.random((7, 8, 8, 3), dtype=np.float32)  # 4 + 3: the second call is padded
    with torch.no_grad():
        expected = net(torch.from_numpy(pixels.transpose(0, 3, 1, 2))).numpy()
    np.testing.assert_allclose(loaded.predict(pixels), expected, rtol=1e-4, atol=1e-4)


def test_nhwc_torch_model_matches_torch(tmp_path):
    import torch  # the test extra installs it: a missing reference fails, never skips

    class ChannelsLast(torch.nn.Module):  # a TF-style model: NHWC input
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 5, 3)
            self.head = torch.nn.Linear(5, 6)

        def forward(self, x):
            features = self.conv(x.permute(0, 3, 1, 2)).relu().mean(dim=(2, 3))
            return self.head(features)

    torch.manual_seed(1)
    net = ChannelsLast()
    path = export_torch(net, tmp_path / "nhwc.onnx", (2, 12, 10, 3))
    loaded = load_model("nhwc", path.read_bytes(), source="test")
    assert loaded.info.layout is Layout.NHWC and not loaded.info.fixed_batch
    pixels = RNG.random((5, 12, 10, 3), dtype=np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(pixels)).numpy()
    np.testing.assert_allclose(loaded.predict(pixels), expected, rtol=1e-4, atol=1e-4)


def test_sidecar_and_metadata_props(tmp_path):
    _, model = _linear()
    model.metadata_props.add(key="onnxplain", value=json.dumps({"preprocessing": {"mean": [0.5], "std": [0.5]},
                                                                  "labels": ["a", "b", "c", "d"]}))
    folder = tmp_path / "linear"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    repository = ModelRepository(tmp_path)
    info = repository.load_path("linear").info
    assert info.preprocessing.mean == (0.5,) and info.preprocessing_source == "metadata_props"
    assert info.labels == ("a", "b", "c", "d")
    (folder / "config.json").write_text(json.dumps({"preprocessing": {"std": [0.25]}, "labels": list("wxyz")}))
    info = repository.load_path("linear", replace=True).info
    # The sidecar wins key by key; the metadata's mean survives.
    assert info.preprocessing.mean == (0.5,) and info.preprocessing.std == (0.25,)
    assert info.preprocessing_source == "sidecar" and info.labels == tuple("wxyz")


def test_cpu_machine_gets_the_cpu_provider_without_noise(capfd):
    _, model = _linear()
    info = load_model("m", model.SerializeToString(), source="test").info
    assert info.provider == "CPUExecutionProvider"
    captured = capfd.readouterr()
    assert "CUDA" not in captured.err + captured.out


@pytest.mark.parametrize("payload, message", [
    (b"", "not an ONNX model"),
    (b"\x00\x01garbage bytes that are not protobuf", "not an ONNX model"),
])
def test_corrupt_bytes_are_refused(payload, message):
    with pytest.raises(InvalidArgument, match=message) as caught:
        load_model("m", payload, source="test")
    assert caught.value.field == "onnx_model"


def test_several_inputs_are_refused():
    _, model = _linear(extra_inputs=1)
    with pytest.raises(InvalidArgument, match="2 inputs"):
        load_model("m", model.SerializeToString(), source="test")


def test_input_that_is_not_an_image_is_refused():
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 10])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(InvalidArgument, match="4-D"):
        load_model("m", model.SerializeToString(), source="test")


def test_dynamic_axes_that_the_graph_cannot_take_need_a_size():
    """A graph that declares its spatial axes dynamic but flattens into a fixed MatMul runs at one size only:
    refused at load with the axes to configure, and loaded once they are."""
    h, w, c = SHAPE
    weights = RNG.normal(size=(h * w * c, 2)).astype(np.float32)
    model = image_classifier(weights, SHAPE)
    for axis, name in ((2, "height"), (3, "width")):
        model.graph.input[0].type.tensor_type.shape.dim[axis].dim_param = name
    with pytest.raises(InvalidArgument, match="height and width are dynamic in the graph, but the model fails at "
                                              "224 x 224") as caught:
        load_model("m", model.SerializeToString(), source="test")
    assert caught.value.field == "overrides.height" and "give the size it takes" in caught.value.message
    info = load_model("m", model.SerializeToString(), source="test", overrides={"height": h, "width": w}).info
    assert (info.height, info.width) == (h, w)


def test_labels_must_match_the_classes():
    _, model = _linear()
    with pytest.raises(InvalidArgument, match="3 labels for 4 classes"):
        load_model("m", model.SerializeToString(), source="test", overrides={"labels": ["a", "b", "c"]})


def test_paths_are_confined_to_the_models_directory(tmp_path):
    inside = tmp_path / "models"
    inside.mkdir()
    (tmp_path / "secret.onnx").write_bytes(_linear()[1].SerializeToString())
    repository = ModelRepository(inside)
    for path in ("../secret.onnx", "/etc/passwd", str(tmp_path / "secret.onnx")):
        with pytest.raises(InvalidArgument, match="outside the models directory"):
            repository.load_path(path)
    with pytest.raises(NotFound):
        repository.load_path("missing.onnx")


def test_checker_rejects_a_broken_graph():
    _, model = _linear()
    model.graph.node[1].input[1] = "undefined_tensor"
    with pytest.raises(InvalidArgument, match="checker"):
        load_model("m", model.SerializeToString(), source="test")


def test_a_broken_model_in_the_repository_does_not_stop_the_others(tmp_path, caplog):
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    (tmp_path / "good.onnx").write_bytes(_linear()[1].SerializeToString())
    repository = ModelRepository(tmp_path)
    assert [m.info.name for m in repository.load_all()] == ["good"]
    assert any(r.levelname == "ERROR" and getattr(r, "path", "") == "broken.onnx" for r in caplog.records)
