"""Graphs exported with a fixed batch of 1, served freed: real torchvision exports we did not design, against
onnxruntime on the graph as exported, one image a call (the reference, not the code under test).

Tolerance: a batched score may differ from the same image's one-at-a-time score by 1e-4 of that image's largest
score (+1e-6): both run the same float32 kernels, whose batched forms only reorder sums (a few ulps, eps 1.2e-7,
times the square root of a sum's length: ~1e-6 of the scale), while a graph that mixes images moves scores by
a fraction of their scale. float16 graphs: 1e-2 (11-bit mantissas, ~5e-4 per rounding, a few layers of them).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conformance_models import IMAGENET, _seeded
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import export_torch, image_classifier

from service.explainers import get_method
from service.jobs.explain import ExplainJob, run_explain
from service.runtime.batch_axis import BatchAxis
from service.runtime.loader import load_model
from service.runtime.scores import LogitSource, ScoreSpace

SIZE = 64  # every torchvision case's input side: their adaptive pooling takes it, and it keeps exports fast
CLASSES = 10
RTOL, ATOL = 1e-4, 1e-6
PREPROCESSING = {"preprocessing": IMAGENET}
ARCHITECTURES = ["resnet18", "shufflenet_v2_x0_5", "mobilenet_v3_small", "squeezenet1_1"]


class CountingSession:
    """A session that counts its calls: how many session calls a batch of images took."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session, self.calls = session, 0

    def run(self, *args, **kwargs):
        self.calls += 1
        return self.session.run(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.session, name)


def counted(model):
    model._session = CountingSession(model._session)
    return model._session


def one_at_a_time(model_bytes: bytes, values: np.ndarray, outputs: list[str] | None = None) -> np.ndarray:
    """Onnxruntime on the graph as exported, one image a call: the reference."""
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    rows = [session.run(outputs, {name: values[i:i + 1]})[0] for i in range(len(values))]
    return np.concatenate(rows).reshape(len(values), -1)


def input_values(model, pixels: np.ndarray) -> np.ndarray:
    """The values the served session is fed (the model's preprocessing, NCHW): the reference gets the very same
    input, since a random-initialised network can amplify a rounding of its input (mobilenet_v3_small's logits of
    ~1e4 move by 4e-4 of their scale between (x - mean) / std and x * scale + offset)."""
    return model.info.preprocessing.apply(pixels, channels_first=True).astype(np.float32)


def assert_per_image_close(served: np.ndarray, reference: np.ndarray, rtol: float = RTOL) -> None:
    assert served.shape == reference.shape
    scale = np.abs(reference).max(axis=1, keepdims=True)
    assert np.all(np.abs(served - reference) <= rtol * scale + ATOL), np.abs(served - reference).max()


def pixels(count: int, size: int = SIZE, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).random((count, size, size, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Each architecture exported at batch 1 without dynamic_axes (and, for the explain test, with them)."""
    import torchvision

    folder = tmp_path_factory.mktemp("fixed_batch")
    built = {}

    def get(architecture: str, dynamic: bool = False):
        key = (architecture, dynamic)
        if key not in built:
            factory = getattr(torchvision.models, architecture)
            net = _seeded(lambda: factory(weights=None, num_classes=CLASSES), **IMAGENET)
            path = export_torch(net, folder / f"{architecture}{'_dynamic' if dynamic else ''}.onnx",
                                (1, 3, SIZE, SIZE), dynamic_batch=dynamic, output_name="scores")
            built[key] = path
        return built[key]

    return get


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_a_real_batch_one_export_is_served_freed_and_scores_each_image_as_alone(exports, architecture):
    path = exports(architecture)
    exported = path.read_bytes()
    assert onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[0].dim_value == 1
    model = load_model(architecture, exported, source="test", overrides=PREPROCESSING)
    info = model.info
    assert info.batch_axis is BatchAxis.FREED and not info.fixed_batch and info.max_batch == 32
    assert info.batch_axis_reason.startswith("the graph fixes a batch of 1: freed")
    assert "proved on 4 images" in info.batch_axis_reason
    assert info.signature.fixed_batch == 1  # the graph as exported, as GetModel's input shows it
    if architecture == "shufflenet_v2_x0_5":  # its channel shuffles reshape to [1, 2, C/2, H, W] and back
        assert sum(line.startswith("Reshape") for line in info.batch_axis_rewrites) == 2 * 16
    images = pixels(6)
    session = counted(model)
    served = model.predict(images)
    assert session.calls == 1
    assert_per_image_close(served, one_at_a_time(exported, input_values(model, images)))
    assert model.model_bytes == exported  # the verification mirror reads the graph as loaded


def test_a_vision_transformer_whose_batch_is_folded_into_attention_is_served_one_at_a_time(tmp_path):
    """torchvision's VisionTransformer at batch 1: its class token is expanded to the traced batch and attention
    reshapes to [tokens, batch * heads, dim]; no rewrite of a leading 1 frees that, and the proof says so."""
    from torchvision.models import VisionTransformer

    net = _seeded(lambda: VisionTransformer(image_size=32, patch_size=8, num_layers=1, num_heads=2, hidden_dim=32,
                                            mlp_dim=64, num_classes=CLASSES), **IMAGENET)
    exported = export_torch(net, tmp_path / "vit.onnx", (1, 3, 32, 32), dynamic_batch=False,
                            output_name="scores").read_bytes()
    model = load_model("vit", exported, source="test", overrides=PREPROCESSING)
    info = model.info
    assert info.batch_axis is BatchAxis.FIXED and info.fixed_batch and info.max_batch == 1
    assert "the freed graph fails on a batch of 4 images" in info.batch_axis_reason, info.batch_axis_reason
    images = pixels(3, 32)
    assert_per_image_close(model.predict(images), one_at_a_time(exported, input_values(model, images)))


def mixing_graph() -> bytes:
    """scores = logits + mean over the batch of the logits: at batch 1 twice the logits, at batch N not."""
    rng = np.random.default_rng(2)
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
             helper.make_node("ReduceMean", ["logits"], ["batch_mean"], axes=[0], keepdims=1),
             helper.make_node("Add", ["logits", "batch_mean"], ["scores"])]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 8, 8])
    graph = helper.make_graph(nodes, "mixing", [image],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4])],
                              [numpy_helper.from_array(rng.normal(size=(192, 4)).astype(np.float32), "weights")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def test_a_graph_that_mixes_images_across_the_batch_is_proved_unequal_and_served_one_at_a_time():
    exported = mixing_graph()
    model = load_model("mixing", exported, source="test")
    info = model.info
    assert info.batch_axis is BatchAxis.FIXED and info.fixed_batch and info.max_batch == 1
    assert "mixes images across the batch" in info.batch_axis_reason and "one image per session call" in \
        info.batch_axis_reason
    assert info.batch_axis_rewrites == ()
    images = pixels(3, 8)
    session = counted(model)
    served = model.predict(images)
    assert session.calls == 3
    values = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    assert_per_image_close(served, one_at_a_time(exported, values))


@pytest.mark.parametrize("where", ["overrides", "sidecar"])
def test_free_batch_false_serves_the_graph_as_exported(exports, tmp_path, where):
    path = exports("shufflenet_v2_x0_5")
    if where == "sidecar":
        local = tmp_path / "model.onnx"
        local.write_bytes(path.read_bytes())
        (tmp_path / "config.json").write_text(json.dumps({"free_batch": False, **PREPROCESSING}))
        model = load_model("off", local.read_bytes(), source="test", model_path=local)
    else:
        model = load_model("off", path.read_bytes(), source="test", overrides={"free_batch": False, **PREPROCESSING})
    info = model.info
    assert info.batch_axis is BatchAxis.FIXED and info.fixed_batch and info.max_batch == 1
    assert f"{where}.free_batch is false" in info.batch_axis_reason


def test_free_batch_must_be_a_boolean():
    from service.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as refused:
        load_model("bad", mixing_graph(), source="test", overrides={"free_batch": "no"})
    assert refused.value.field == "overrides.free_batch"


def test_a_fixed_batch_of_two_is_left_as_exported():
    weights = np.random.default_rng(3).normal(size=(192, 4)).astype(np.float32)
    model = load_model("two", image_classifier(weights, (8, 8, 3), batch=2).SerializeToString(), source="test")
    info = model.info
    assert info.batch_axis is BatchAxis.FIXED and info.fixed_batch and info.max_batch == 2
    assert info.batch_axis_reason.startswith("the graph fixes a batch of 2") and info.batch_axis_rewrites == ()


def test_a_configured_batch_size_is_kept_for_a_freed_graph():
    weights = np.random.default_rng(4).normal(size=(192, 4)).astype(np.float32)
    model = load_model("five", image_classifier(weights, (8, 8, 3), batch=1).SerializeToString(), source="test",
                       overrides={"batch_size": 5})
    assert model.info.batch_axis is BatchAxis.FREED and model.info.max_batch == 5


def test_the_logits_beside_a_softmax_come_from_the_freed_graph_too():
    weights = np.random.default_rng(5).normal(size=(192, 4)).astype(np.float32)
    graph = image_classifier(weights, (8, 8, 3), batch=1, softmax=True)
    exported = graph.SerializeToString()
    model = load_model("softmax", exported, source="test")
    assert model.info.batch_axis is BatchAxis.FREED and model.info.logit_source is LogitSource.PRE_ACTIVATION
    images = pixels(5, 8)
    session = counted(model)
    logits = model.predict(images, score_space=ScoreSpace.LOGIT)
    assert session.calls == 1
    values = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    graph.graph.output.append(helper.make_tensor_value_info("scores", TensorProto.FLOAT, None))  # the logits
    assert_per_image_close(logits, one_at_a_time(graph.SerializeToString(), values, ["scores"]))


def test_a_float16_graph_is_freed_within_its_tolerance():
    weights = np.random.default_rng(6).normal(size=(192, 4)).astype(np.float16)
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["logits"])]
    image = helper.make_tensor_value_info("image", TensorProto.FLOAT16, [1, 3, 8, 8])
    graph = helper.make_graph(nodes, "half", [image],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT16, [1, 4])],
                              [numpy_helper.from_array(weights, "weights")])
    exported = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    exported.ir_version = 8
    model = load_model("half", exported.SerializeToString(), source="test")
    assert model.info.batch_axis is BatchAxis.FREED and "tolerance 0.01" in model.info.batch_axis_reason
    images = pixels(4, 8)
    values = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).astype(np.float16)
    reference = one_at_a_time(exported.SerializeToString(), values).astype(np.float32)
    assert_per_image_close(model.predict(images), reference, rtol=1e-2)


def test_fp16_serves_the_freed_graph_converted(exports):
    """fp16 and a freed batch compose: the graph converted is the freed one (several images a call), and each
    image's scores stay within fp16's tolerance of the graph as exported run alone in float32."""
    from service.runtime import half_precision

    path = exports("resnet18")
    exported = path.read_bytes()
    model = load_model("r18_fp16", exported, source="test", overrides={**PREPROCESSING, "precision": "fp16"})
    assert model.info.batch_axis is BatchAxis.FREED and model.info.precision == "fp16"
    images = pixels(6)
    session = counted(model)
    served = model.predict(images)
    assert session.calls == 1
    reference = one_at_a_time(exported, input_values(model, images))
    scale = reference.max(axis=1, keepdims=True) - reference.min(axis=1, keepdims=True)
    assert np.all(np.abs(served - reference) <= half_precision.RELATIVE_TOLERANCE * scale)
    assert np.abs(served - reference).max() > 0  # fp16 rounding shows: the converted graph is what runs


def test_external_data_models_are_freed(exports, tmp_path):
    exported = exports("resnet18").read_bytes()
    source = onnx.load_model_from_string(exported)  # its tensors become references to weights.bin when saved
    local = tmp_path / "model.onnx"
    onnx.save_model(source, str(local), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.bin", size_threshold=0)
    model = load_model("external", local.read_bytes(), source="test", model_path=local, overrides=PREPROCESSING)
    assert model.info.batch_axis is BatchAxis.FREED and model.info.max_batch == 32
    images = pixels(3)
    assert_per_image_close(model.predict(images), one_at_a_time(exported, input_values(model, images)))


def test_an_explanation_of_the_fixed_export_equals_its_dynamic_twins_with_batched_calls(exports):
    fixed = load_model("fixed", exports("shufflenet_v2_x0_5").read_bytes(), source="test", overrides=PREPROCESSING)
    twin = load_model("twin", exports("shufflenet_v2_x0_5", dynamic=True).read_bytes(), source="test",
                      overrides=PREPROCESSING)
    assert fixed.info.batch_axis is BatchAxis.FREED and twin.info.batch_axis is BatchAxis.DYNAMIC
    occlusion = get_method("occlusion")
    image = pixels(1, seed=12)[0]

    def explain(model):
        job = ExplainJob(occlusion, occlusion.make_params({"window": [16], "stride": [8]}), image, seed=3)
        return run_explain(model, job)

    session = counted(fixed)
    served, reference = explain(fixed), explain(twin)
    assert served.forward_passes == reference.forward_passes == 49 + 1 + 2
    assert session.calls < served.forward_passes / 10  # batches of up to 32, not one image a call
    scale = np.abs(reference.maps).max()
    np.testing.assert_allclose(served.maps, reference.maps, rtol=0, atol=RTOL * scale + ATOL)


def test_get_model_says_how_the_batch_axis_is_served(client, exports):
    exported = exports("shufflenet_v2_x0_5").read_bytes()
    client.load_model(onnx_model=exported, name="fixed_batch_freed", replace=True)
    client.load_model(onnx_model=exported, name="fixed_batch_off", overrides={"free_batch": False}, replace=True)
    try:
        freed, off = client.get_model("fixed_batch_freed"), client.get_model("fixed_batch_off")
    finally:
        client.unload_model("fixed_batch_freed")
        client.unload_model("fixed_batch_off")
    assert (freed.batch_axis, freed.fixed_batch, freed.max_batch) == ("freed", False, 32)
    assert "proved on 4 images" in freed.batch_axis_reason
    assert any(line.startswith("Reshape /stage2/") for line in freed.batch_axis_rewrites)
    assert list(freed.input.shape) == [1, 3, SIZE, SIZE]  # the graph as exported
    # The verification mirror reads the graph as loaded and frees its Reshapes itself, checked against the session.
    assert freed.verification.verifiable, freed.verification.reason
    assert (off.batch_axis, off.fixed_batch, off.max_batch) == ("fixed", True, 1)
    assert "overrides.free_batch is false" in off.batch_axis_reason and not off.batch_axis_rewrites
