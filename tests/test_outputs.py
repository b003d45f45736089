"""The output side of real classifiers: [N, C, 1, 1] outputs, the output chosen by name, sigmoid heads (binary and
multi-label), exact logits from a terminal activation's input, and the score spaces with their defaults.

Every model here is a few nodes built with onnx.helper, exported the ways real exporters do (a terminal Softmax, a
Caffe2-style [N, C, 1, 1] softmax, a Keras-style sigmoid head); every expectation is a closed form computed in
numpy from the weights, or onnxruntime on the original graph.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from service.errors import InvalidArgument
from service.explainers import get_method
from service.explainers.baselines import Baseline, BaselineKind
from service.jobs.explain import ExplainJob, Targets, run_explain
from service.jobs.predict import run_predict
from service.runtime.loader import load_model
from service.runtime.scores import LogitSource, ScoreSpace
from service.runtime.signature import OutputKind

SHAPE = (8, 8, 3)  # H, W, C
PIXELS = SHAPE[0] * SHAPE[1] * SHAPE[2]


def _model(nodes, outputs, initializers, *, batch="N", opset=17, ir=8) -> onnx.ModelProto:
    height, width, channels = SHAPE
    graph = helper.make_graph(nodes, "test", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                                                                            [batch, channels, height, width])],
                              outputs, initializer=[numpy_helper.from_array(
                                  v if v.dtype.kind == "i" else v.astype(np.float32), k)
                                  for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir
    onnx.checker.check_model(model)
    return model


def _out(name, dims):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def linear(weights: np.ndarray, bias: np.ndarray, activation: str | None, output: str = "scores") -> onnx.ModelProto:
    """scores = activation(flatten(x) @ weights + bias), x NCHW."""
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["product"]),
             helper.make_node("Add", ["product", "bias"], ["logits" if activation else output])]
    if activation:
        nodes.append(helper.make_node(activation, ["logits"], [output], **({"axis": 1} if "Softmax" in activation
                                                                          else {})))
    return _model(nodes, [_out(output, ["N", weights.shape[1]])], {"weights": weights, "bias": bias})


def true_logits(images: np.ndarray, weights: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """The same linear map in float64 numpy: images (N, H, W, C) in NCHW flattening order."""
    return images.astype(np.float64).transpose(0, 3, 1, 2).reshape(len(images), -1) @ weights + bias


def _load(model: onnx.ModelProto, **overrides):
    return load_model("test", model.SerializeToString(), source="upload", overrides=overrides)


def _images(count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *SHAPE), dtype=np.float32)


# --- saturation ----------------------------------------------------------------------------------------------

def saturating_weights() -> tuple[np.ndarray, np.ndarray]:
    """Class 0's logit beats the others by hundreds on any image in [0, 1] with a 4 x 4 window blacked out: its
    softmax is exactly 1.0 in float32, and stays there under every occlusion."""
    rng = np.random.default_rng(0)
    weights = rng.normal(0.0, 1.0, (PIXELS, 3))
    weights[:, 0] += 10.0
    return weights, np.array([0.0, -50.0, -60.0])


def occlusion_reference(image: np.ndarray, weights: np.ndarray, bias: np.ndarray, window: int) -> np.ndarray:
    """Occlusion of class 0's logit with non-overlapping windows and a black baseline: each pixel gets its window's
    logit drop."""
    clean = true_logits(image[None], weights, bias)[0, 0]
    expected = np.zeros(SHAPE[:2])
    for y in range(0, SHAPE[0], window):
        for x in range(0, SHAPE[1], window):
            occluded = image.copy()
            occluded[y:y + window, x:x + window] = 0.0
            expected[y:y + window, x:x + window] = clean - true_logits(occluded[None], weights, bias)[0, 0]
    return expected


def _occlusion(model, image, **job):
    method = get_method("occlusion")
    return run_explain(model, ExplainJob(method, method.make_params({"window": [4, 4], "stride": [4, 4]}), image,
                                         Targets((0,)), baseline=Baseline(BaselineKind.BLACK), seed=0, **job))


def test_a_saturated_softmax_gives_a_zero_map_on_probabilities_and_the_logits_map_by_default():
    weights, bias = saturating_weights()
    model = _load(linear(weights, bias, "Softmax"))
    assert (model.info.output_kind, model.info.logit_source) == (OutputKind.PROBABILITIES, LogitSource.PRE_ACTIVATION)
    image = _images(1)[0]
    assert model.predict(image[None], score_space=ScoreSpace.PROBABILITY)[0, 0] == np.float32(1.0)

    on_probabilities = _occlusion(model, image, score_space=ScoreSpace.PROBABILITY)
    assert np.count_nonzero(on_probabilities.maps) == 0

    by_default = _occlusion(model, image)
    assert by_default.score_space is ScoreSpace.LOGIT
    expected = occlusion_reference(image, weights, bias, 4)
    assert np.all(expected > 50)  # the logits move by tens while the probability stays 1.0
    np.testing.assert_allclose(by_default.maps[0], expected, rtol=1e-4, atol=2e-3)


def test_log_probability_is_the_log_softmax_of_the_true_logits_even_where_probabilities_underflow():
    weights, bias = saturating_weights()
    images = _images(3)
    logits = true_logits(images, weights, bias)
    expected = logits - logits.max(axis=1, keepdims=True)
    expected -= np.log(np.exp(expected).sum(axis=1, keepdims=True))
    for activation in ("Softmax", "LogSoftmax"):
        model = _load(linear(weights, bias, activation))
        np.testing.assert_allclose(model.predict(images, score_space=ScoreSpace.LOG_PROBABILITY), expected,
                                   rtol=1e-5, atol=2e-3)
        np.testing.assert_allclose(model.predict(images, score_space=ScoreSpace.LOGIT), logits, rtol=1e-5, atol=2e-3)
    assert expected.min() < -200  # far below log(float32 tiny) = -87.3: no log of a probability gives these


def test_probabilities_made_without_a_softmax_fall_back_to_log_probabilities():
    """exp(z) / sum(exp(z)) spelt out: no pre-softmax tensor, so LOGIT is log p, the logits up to one constant per
    image (class differences exact), and the model says so."""
    rng = np.random.default_rng(3)
    weights, bias = rng.normal(0, 0.1, (PIXELS, 4)), rng.normal(0, 1, 4)
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["product"]),
             helper.make_node("Add", ["product", "bias"], ["logits"]),
             helper.make_node("Exp", ["logits"], ["exp"]),
             helper.make_node("ReduceSum", ["exp", "axes"], ["total"], keepdims=1),
             helper.make_node("Div", ["exp", "total"], ["prob"])]
    model = _model(nodes, [_out("prob", ["N", 4])], {"weights": weights, "bias": bias,
                                                     "axes": np.array([1], np.int64)})
    loaded = _load(model)
    assert (loaded.info.output_kind, loaded.info.logit_source) == (OutputKind.PROBABILITIES,
                                                                    LogitSource.LOG_PROBABILITY)
    images = _images(2)
    logits, scores = true_logits(images, weights, bias), loaded.predict(images, score_space=ScoreSpace.LOGIT)
    np.testing.assert_allclose(scores - scores[:, :1], logits - logits[:, :1], atol=1e-4)
    shift = scores - logits
    assert np.ptp(shift[0]) < 1e-4 and abs(shift[0, 0] - shift[1, 0]) > 1e-3  # a constant per image, not across


def test_a_softmax_over_groups_of_classes_is_not_taken_for_the_outputs_logits():
    """Softmax over 2 x 3 groups, reshaped back to 6 scores: its input is no softmax's logits for the 6 classes; the
    probe says so and LOGIT falls back, the output served unchanged."""
    weights = np.random.default_rng(10).normal(0, 0.1, (PIXELS, 6))
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
             helper.make_node("Reshape", ["logits", "grouped_shape"], ["grouped"]),
             helper.make_node("Softmax", ["grouped"], ["softmaxed"], axis=1),
             helper.make_node("Reshape", ["softmaxed", "flat_shape"], ["prob"])]
    model = _model(nodes, [_out("prob", ["N", 6])], {"weights": weights, "grouped_shape": np.array([0, 2, 3]),
                                                     "flat_shape": np.array([0, 6])})
    loaded = _load(model)
    assert loaded.info.output_kind_source == "graph" and loaded.info.signature.pre_activation == "grouped"
    assert loaded.info.logit_source is LogitSource.LOG_PROBABILITY  # the graph's candidate, refused by the probe
    images = _images(2)
    z = true_logits(images, weights, np.zeros(6)).reshape(2, 2, 3)
    expected = (np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)).reshape(2, 6)
    np.testing.assert_allclose(loaded.predict(images, score_space=ScoreSpace.RAW), expected, rtol=1e-5)


# --- sigmoid heads -------------------------------------------------------------------------------------------

def test_a_binary_sigmoid_is_served_as_two_classes_with_the_right_prediction_on_both_sides():
    rng = np.random.default_rng(4)
    weights = rng.normal(0, 0.2, (PIXELS, 1))
    images = _images(6, seed=5)
    z0 = true_logits(images, weights, np.zeros(1))[:, 0]
    bias = np.array([-np.median(z0)])  # half the images on each side
    model = _load(linear(weights, bias, "Sigmoid"))
    info = model.info
    assert (info.output_kind, info.num_classes, info.labels) == (OutputKind.SIGMOID, 2, ("negative", "positive"))
    assert info.logit_source is LogitSource.PRE_ACTIVATION
    z = true_logits(images, weights, bias)[:, 0]
    p = 1.0 / (1.0 + np.exp(-z))
    assert (z > 0).any() and (z < 0).any()
    np.testing.assert_allclose(model.predict(images, score_space=ScoreSpace.PROBABILITY),
                               np.stack([1 - p, p], axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.predict(images, score_space=ScoreSpace.LOGIT), np.stack([-z, z], axis=1),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.predict(images, score_space=ScoreSpace.LOG_PROBABILITY),
                               np.stack([np.log(1 - p), np.log(p)], axis=1), rtol=1e-5, atol=1e-6)
    result = run_predict(model, images, top_k=1)
    assert [t[0].class_index for t in result.top] == (z > 0).astype(int).tolist()
    assert [[s.class_index for s in a] for a in result.above_threshold] == [[int(v > 0)] for v in z]
    assert result.top[int(np.argmax(z))][0].label == "positive"


def multilabel_model() -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    weights = np.random.default_rng(6).normal(0, 0.05, (PIXELS, 4))
    bias = np.array([3.0, -3.0, 2.0, -4.0])
    return linear(weights, bias, "Sigmoid"), weights, bias


def test_a_multilabel_sigmoid_has_independent_probabilities_and_the_classes_above_the_threshold():
    model, weights, bias = multilabel_model()
    loaded = _load(model)
    assert (loaded.info.num_classes, loaded.info.threshold) == (4, 0.5)
    images = np.concatenate([np.zeros((1, *SHAPE), np.float32), _images(2)])
    z = true_logits(images, weights, bias)
    p = 1.0 / (1.0 + np.exp(-z))
    probabilities = loaded.predict(images, score_space=ScoreSpace.PROBABILITY)
    np.testing.assert_allclose(probabilities, p, rtol=1e-5)
    assert not np.allclose(probabilities.sum(axis=1), 1.0, atol=0.1)  # no softmax across classes
    result = run_predict(loaded, images, top_k=4)
    expected = [sorted(np.flatnonzero(row > 0.5).tolist(), key=lambda i: -row[i]) for row in p]
    assert expected[0] == [0, 2]
    assert [[s.class_index for s in a] for a in result.above_threshold] == expected

    strict = _load(model, threshold=0.97)  # sigmoid(3) = 0.953: nothing is above it on the black image
    result = run_predict(strict, images[:1], top_k=1)
    assert result.above_threshold == [[]] and result.top[0][0].class_index == 0


def test_a_sigmoid_head_is_taken_from_the_configuration_when_the_graph_hides_it():
    """A sigmoid the graph does not end in (here: spelt 1 / (1 + exp(-z))): configured, its logits are
    log(p / (1 - p))."""
    weights = np.random.default_rng(7).normal(0, 0.05, (PIXELS, 3))
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["z"]),
             helper.make_node("Neg", ["z"], ["minus"]), helper.make_node("Exp", ["minus"], ["e"]),
             helper.make_node("Add", ["e", "one"], ["d"]), helper.make_node("Reciprocal", ["d"], ["p"])]
    model = _model(nodes, [_out("p", ["N", 3])], {"weights": weights, "one": np.ones(1)})
    loaded = _load(model, output_kind="sigmoid")
    assert (loaded.info.output_kind_source, loaded.info.logit_source) == ("overrides", LogitSource.INVERSE_SIGMOID)
    images = _images(2)
    np.testing.assert_allclose(loaded.predict(images, score_space=ScoreSpace.LOGIT),
                               true_logits(images, weights, np.zeros(3)), atol=2e-5)


# --- output intake -------------------------------------------------------------------------------------------

def caffe2_style(batch) -> tuple[onnx.ModelProto, np.ndarray, np.ndarray]:
    """Conv -> GlobalAveragePool -> Softmax over channels: scores [N, 5, 1, 1], as SqueezeNet's Caffe2 export."""
    rng = np.random.default_rng(8)
    kernel, bias = rng.normal(0, 1, (5, 3, 3, 3)), rng.normal(0, 1, 5)
    nodes = [helper.make_node("Conv", ["image", "kernel", "bias"], ["conv"], pads=[1, 1, 1, 1]),
             helper.make_node("GlobalAveragePool", ["conv"], ["pooled"]),
             helper.make_node("Softmax", ["pooled"], ["prob"], axis=1)]
    model = _model(nodes, [_out("prob", [batch, 5, 1, 1])], {"kernel": kernel, "bias": bias}, batch=batch,
                   opset=9, ir=4)
    return model, kernel, bias


@pytest.mark.parametrize("batch", ["N", 1])
def test_a_caffe2_style_output_loads_and_predicts_as_onnxruntime_on_the_original_graph(batch):
    import torch

    model, kernel, bias = caffe2_style(batch)
    loaded = _load(model)
    assert loaded.info.num_classes == 5 and loaded.info.logit_source is LogitSource.PRE_ACTIVATION
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for count in (1, 3):
        images = _images(count, seed=count)
        nchw = images.transpose(0, 3, 1, 2)
        original = np.concatenate([session.run(None, {"image": nchw[i:i + 1] if batch == 1 else nchw})[0]
                                   for i in range(count if batch == 1 else 1)])
        assert original.shape == (count, 5, 1, 1)
        np.testing.assert_allclose(loaded.predict(images, score_space=ScoreSpace.RAW), original.reshape(count, 5),
                                   rtol=1e-5, atol=1e-7)
        # The logits are the pooled convolution, as PyTorch computes it.
        pooled = torch.nn.functional.conv2d(torch.from_numpy(nchw).double(), torch.from_numpy(kernel),
                                            torch.from_numpy(bias), padding=1).mean(dim=(2, 3)).numpy()
        np.testing.assert_allclose(loaded.predict(images, score_space=ScoreSpace.LOGIT), pooled, rtol=1e-4,
                                   atol=1e-5)


def two_outputs(feature_map: bool) -> tuple[onnx.ModelProto, np.ndarray]:
    """A first output (a feature map [N, 3, 8, 8], or channel means [N, 3] like an auxiliary head), then 5-class
    logits."""
    weights = np.random.default_rng(9).normal(0, 0.1, (PIXELS, 5))
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
             helper.make_node("Identity", ["image"], ["features"]) if feature_map else
             helper.make_node("ReduceMean", ["image"], ["features"], axes=[2, 3], keepdims=0)]
    first = _out("features", ["N", 3, 8, 8] if feature_map else ["N", 3])
    return _model(nodes, [first, _out("logits", ["N", 5])], {"weights": weights}), weights


def test_the_output_is_chosen_by_name_and_a_wrong_name_lists_the_outputs():
    model, weights = two_outputs(feature_map=True)
    images = _images(2)
    loaded = _load(model)  # the feature map is not [batch, classes]: the logits are the first that is
    assert loaded.info.signature.output_name == "logits"
    np.testing.assert_allclose(loaded.predict(images), true_logits(images, weights, np.zeros(5)), rtol=1e-5,
                               atol=1e-5)

    model, weights = two_outputs(feature_map=False)
    with pytest.raises(InvalidArgument) as ambiguous:  # both are [batch, classes], neither activated: ask
        _load(model)
    assert ambiguous.value.field == "overrides.output" and "2 outputs could be class scores" in str(ambiguous.value)
    named = _load(model, output="logits")
    assert named.info.num_classes == 5
    np.testing.assert_allclose(named.predict(images), true_logits(images, weights, np.zeros(5)), rtol=1e-5, atol=1e-5)
    with pytest.raises(InvalidArgument) as error:
        _load(model, output="prob")
    assert error.value.field == "overrides.output"
    assert "'features'" in str(error.value) and "'logits'" in str(error.value)


# --- through the server --------------------------------------------------------------------------------------

def test_every_response_echoes_the_resolved_score_spaces(client, data_dir):
    """One saturated softmax model uploaded; every RPC that scores asked with the spaces unspecified, then with one
    named: the response says which spaces were used."""
    from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
    from onnxplain_client._proto.xai.v1 import tensor_pb2
    from onnxplain_client.tensors import from_tensor, to_tensor
    from PIL import Image

    weights, bias = saturating_weights()
    info = client.load_model(onnx_model=linear(weights, bias, "Softmax").SerializeToString(), name="saturated",
                             replace=True)
    assert (info.output_kind, info.logit_source, info.logits_tensor) == (2, "pre_activation", "logits")
    image = _images(1)[0]
    pixels = tensor_pb2.Image(pixels=to_tensor(image))
    occlusion = {"window": [4, 4], "stride": [4, 4]}
    method = ex.ExplanationSetting(method={"occlusion": occlusion}).method
    logit, probability = ex.SCORE_SPACE_LOGIT, ex.SCORE_SPACE_PROBABILITY

    predicted = client.explainer.Predict(ex.PredictRequest(model_name="saturated", images=[pixels]))
    assert predicted.score_space == ex.SCORE_SPACE_RAW and not predicted.predictions[0].above_threshold
    predicted = client.explainer.Predict(ex.PredictRequest(model_name="saturated", images=[pixels],
                                                           score_space=ex.SCORE_SPACE_LOG_PROBABILITY))
    assert predicted.score_space == ex.SCORE_SPACE_LOG_PROBABILITY

    request = ex.ExplainRequest(model_name="saturated", image=pixels, method=method, seed=0,
                                baseline={"kind": "KIND_BLACK"})
    request.metrics.add().deletion.steps = 4
    explained = client.explainer.Explain(request)
    assert (explained.score_space, explained.metric_score_space) == (logit, probability)
    np.testing.assert_allclose(from_tensor(explained.attributions[0].map),
                               occlusion_reference(image, weights, bias, 4), rtol=1e-4, atol=2e-3)
    request.score_space, request.metric_score_space = probability, logit
    explained = client.explainer.Explain(request)
    assert (explained.score_space, explained.metric_score_space) == (probability, logit)
    assert not np.any(from_tensor(explained.attributions[0].map))

    evaluated = client.explainer.Evaluate(ex.EvaluateRequest(
        model_name="saturated", image=pixels, attribution=to_tensor(np.ones(SHAPE[:2], np.float32)),
        metrics=[request.metrics[0]], seed=0))
    assert evaluated.score_space == probability

    consistency = ex.ConsistencyRequest(model_name="saturated", image=pixels, seed=0, metric=request.metrics[0],
                                        metric_baselines=[{"kind": "KIND_BLACK"}])
    consistency.settings.add(method=method)
    consistency.settings.add(method={"occlusion": {"window": [8, 8]}})
    result = list(client.explainer.Consistency(consistency))[-1].result
    assert (result.score_space, result.metric_score_space) == (logit, probability)

    aggregate = ex.AggregateRequest(model_name="saturated", images=[pixels], methods=[method], seed=0,
                                    metric=request.metrics[0], metric_score_space=ex.SCORE_SPACE_RAW)
    result = list(client.explainer.Aggregate(aggregate))[-1].result
    assert (result.score_space, result.metric_score_space) == (logit, ex.SCORE_SPACE_RAW)

    measure = ex.MeasureRequest(model_name="saturated", images=[pixels], method=method, seed=0,
                                measures=[ex.SALIENCE_MEASURE_ENTROPY])
    assert list(client.explainer.Measure(measure))[-1].result.score_space == logit

    scales = client.analyze_scales("shapes", load_samples_image(), zooms=[2.0], wcam={"num_designs": 2}, seed=0,
                                   score_space="log_probability")
    assert scales.score_space == ex.SCORE_SPACE_LOG_PROBABILITY

    folder = data_dir / "outputs_echo"
    folder.mkdir(exist_ok=True)
    Image.fromarray(np.rint(image * 255).astype(np.uint8)).save(folder / "one.png")
    audited = client.audit("outputs_echo", ["saturated"], "outputs_echo", methods=[("occlusion", occlusion)],
                           metrics={"deletion": {"steps": 4}})
    assert (audited.score_space, audited.metric_score_space) == (logit, probability)
    client.unload_model("saturated")


def load_samples_image():
    from conftest import load_samples

    return load_samples("shapes")[0]["path"]


# --- exports we did not design ---------------------------------------------------------------------------------

class _CaffeStyleSqueezeNet:
    """torchvision's SqueezeNet 1.0 (random weights) without its final flatten, softmax over channels: the
    [N, C, 1, 1] probabilities of the Caffe2-era zoo export; its logits are the classifier's output."""

    @staticmethod
    def build():
        import torch
        import torchvision

        net = torchvision.models.squeezenet1_0(weights=None, num_classes=7)

        class Head(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def logits(self, x):
                return self.net.classifier(self.net.features(x))

            def forward(self, x):
                return torch.softmax(self.logits(x), dim=1)

        return Head()


class _BinaryMobileNet:
    """torchvision's MobileNetV3-small (random weights) with one output and a sigmoid: a binary head."""

    @staticmethod
    def build():
        import torch
        import torchvision

        net = torchvision.models.mobilenet_v3_small(weights=None, num_classes=1)

        class Head(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def logits(self, x):
                return self.net(x)

            def forward(self, x):
                return torch.sigmoid(self.logits(x))

        return Head()


@pytest.mark.parametrize("export", [_CaffeStyleSqueezeNet, _BinaryMobileNet], ids=["squeezenet", "mobilenet"])
def test_torchvision_exports_give_their_pytorch_logits_and_probabilities(export, tmp_path):
    import torch

    from onnx_builders import export_torch

    torch.manual_seed(0)
    module = export.build().eval()
    size = 64
    path = export_torch(module, tmp_path / "model.onnx", (1, 3, size, size), output_name="scores")
    loaded = load_model("export", path.read_bytes(), source="upload")
    images = np.random.default_rng(11).random((3, size, size, 3), dtype=np.float32)
    with torch.no_grad():
        x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
        z = module.logits(x).double().numpy().reshape(3, -1)
        p = module(x).double().numpy().reshape(3, -1)
    assert loaded.info.logit_source is LogitSource.PRE_ACTIVATION
    if export is _BinaryMobileNet:
        assert (loaded.info.output_kind, loaded.info.num_classes) == (OutputKind.SIGMOID, 2)
        z, p = np.concatenate([-z, z], axis=1), np.concatenate([1 - p, p], axis=1)
    else:
        assert loaded.info.signature.output_graph_dims[2:] == (1, 1)
    for count in (1, 3):
        np.testing.assert_allclose(loaded.predict(images[:count], score_space=ScoreSpace.LOGIT), z[:count],
                                   rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(loaded.predict(images[:count], score_space=ScoreSpace.PROBABILITY), p[:count],
                                   rtol=1e-3, atol=1e-5)


def test_eva_refuses_a_sigmoid_head_with_a_precise_status():
    from service.errors import FailedPrecondition

    model, _, _ = multilabel_model()
    loaded = _load(model)
    eva = get_method("eva")
    with pytest.raises(FailedPrecondition) as error:
        run_explain(loaded, ExplainJob(eva, eva.make_params({}), _images(1)[0], seed=0))
    assert error.value.field == "method" and "sigmoid head" in str(error.value)


@pytest.mark.parametrize("threshold", [0, 1, 1.5, "0.5", True, float("nan")])
def test_a_threshold_outside_the_open_unit_interval_is_refused(threshold):
    model, _, _ = multilabel_model()
    with pytest.raises(InvalidArgument) as error:
        _load(model, threshold=threshold)
    assert error.value.field == "overrides.threshold"


def test_a_sidecar_names_the_output_and_its_errors_name_the_sidecar(tmp_path):
    import json

    model, weights = two_outputs(feature_map=False)
    path = tmp_path / "model.onnx"
    path.write_bytes(model.SerializeToString())
    (tmp_path / "config.json").write_text(json.dumps({"output": "logits"}))
    loaded = load_model("sidecar", path.read_bytes(), source=str(path), model_path=path)
    assert (loaded.info.signature.output_name, loaded.info.num_classes) == ("logits", 5)
    (tmp_path / "config.json").write_text(json.dumps({"output": "missing"}))
    with pytest.raises(InvalidArgument) as error:
        load_model("sidecar", path.read_bytes(), source=str(path), model_path=path)
    assert error.value.field == "sidecar.output"


def test_a_float16_softmax_model_gives_its_logits():
    """fp16 I/O (onnxconverter's float16 conversion without keep_io_types): the exposed logits are float16 too."""
    weights, bias = np.random.default_rng(12).normal(0, 0.05, (PIXELS, 4)), np.zeros(4)
    model = linear(weights, bias, "Softmax")
    for tensor in model.graph.initializer:
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16), tensor.name))
    for value in (*model.graph.input, *model.graph.output):
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    onnx.checker.check_model(model)
    loaded = _load(model)
    assert loaded.info.logit_source is LogitSource.PRE_ACTIVATION
    images = _images(2)
    np.testing.assert_allclose(loaded.predict(images, score_space=ScoreSpace.LOGIT),
                               true_logits(images, weights, bias), atol=2e-2)


def test_the_python_client_gets_a_multilabel_models_classes_above_its_threshold(client):
    model, _, bias = multilabel_model()
    info = client.load_model(onnx_model=model.SerializeToString(), name="multilabel", replace=True,
                             overrides={"threshold": 0.9})
    assert (info.output_kind, info.threshold, info.logit_source) == (4, pytest.approx(0.9), "pre_activation")
    black = np.zeros(SHAPE, np.float32)  # z = bias: sigmoid(3) = 0.953, sigmoid(2) = 0.881
    (prediction,) = client.predict("multilabel", black, top_k=2, score_space="logit")
    assert [(i, label) for i, label, _ in prediction.above_threshold] == [(0, "0")]
    assert [score for _, _, score in prediction.top] == pytest.approx([3.0, 2.0], abs=1e-5)
    client.unload_model("multilabel")
