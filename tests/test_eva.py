"""EVA and its verifier against closed forms, sampled and attacked points, and models that cannot be mirrored.

Oracles: a linear classifier, whose adversarial overlap over a clipped box is exact in closed form (reference
eva.md §1.6 item 1); soundness, every bound at least the margin at random, corner and PGD-attacked points of
its box, scored by onnxruntime (the served model, not the mirror); IBP's inclusion monotonicity (EVA >= 0
exactly); EVA -> 0 as epsilon -> 0.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import onnx
import pytest
import torch
from conftest import MODELS, load_samples
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import export_torch, image_classifier

from service.errors import FailedPrecondition
from service.explainers import eva
from service.explainers.eva import EvaParams
from service.runtime.loader import load_model
from service.verify.bounds import MarginBounds
from service.verify.mirror import build_mirror, first_divergence, mirror_for

NORMALISED = {"preprocessing": {"pixel_range": "0_1", "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3]}}


def explain(model, image, bound_method="crown", **params):
    """EVA of the predicted class, straight through the method and the verifier (no server). The whole model is
    bounded, which samples nothing: no precision, and no generator is needed (rng None)."""
    scores = model.predict(image[None])[0]
    target = int(np.argmax(scores))
    bounds = MarginBounds(model, mirror_for(model), bound_method)
    output = eva.METHOD.attribute(None, image, EvaParams(bound_method=bound_method, **params), baseline=None,
                                  batch_size=0, rng=None, bound_margins=bounds, all_scores=scores, targets=[target])
    assert output.precision is None and "group_standard_error" not in output.details[0]
    return output.maps[0], output.details[0], target


def onnx_model(name, nodes, input_dims, output_dims, initializers):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_dims)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, output_dims)],
                              initializer=[numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return load_model(name, model.SerializeToString(), source="test")


@functools.cache
def shapes_model():
    """One loaded model for the module: its mirror (built and probed once, CROWN's probe taking tens of seconds
    on 2 cores) is cached per loaded model."""
    path = MODELS / "shapes" / "model.onnx"
    return load_model("shapes", path.read_bytes(), source="test", model_path=path)


def linear_overlaps(pixel_weights, offset_logits, image, labels, epsilon, target, competitors) -> list[float]:
    """Exact AO of the full ball and of each B_u for logits = x . pixel_weights + offset_logits: over a box each
    pixel takes whichever end raises the margin's slope d_j times it."""
    expected = []
    for fixed in range(-1, int(labels.max()) + 1):
        free = (labels != fixed)[..., None]
        lower = np.clip(image - epsilon * free, 0, 1).ravel()
        upper = np.clip(image + epsilon * free, 0, 1).ravel()
        expected.append(max(
            np.maximum(d * lower, d * upper).sum() + offset_logits[j] - offset_logits[target]
            for j in competitors for d in [pixel_weights[:, j] - pixel_weights[:, target]]))
    return expected


def shapes_case(index: int):
    """(model, mirror, image, predicted class, every other class) for a bundled shapes sample."""
    model = shapes_model()
    image = load_samples("shapes")[index]["pixels"].astype(np.float32) / 255
    target = int(np.argmax(model.predict(image[None])[0]))
    return model, mirror_for(model), image, target, [j for j in range(5) if j != target]


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("bound_method", ["ibp", "crown_ibp", "crown"])
def test_linear_model_eva_is_its_closed_form(layout, bound_method):
    """f = W v on normalised values v = s x + o: margin_j(x) = d_j . x + e_j with d_j = s (w_j - w_c) and
    e_j = o . (w_j - w_c), so over a box each pixel takes whichever end raises d_j . x, exactly."""
    rng = np.random.default_rng(0)
    shape, classes, epsilon = (8, 8, 3), 4, 0.01
    model_weights = rng.normal(size=(math.prod(shape), classes))  # rows in the layout's flattening order
    linear = image_classifier(model_weights, shape, layout=layout, softmax=True)
    model = load_model("linear", linear.SerializeToString(), source="test", overrides=NORMALISED)
    scale, offset = model.info.preprocessing.affine()
    # Weights per pixel value in (H, W, C) order, with the normalisation's scale and offset folded in.
    per_value = model_weights.reshape(*((3, 8, 8) if layout == "NCHW" else shape), classes)
    per_value = per_value.transpose(1, 2, 0, 3) if layout == "NCHW" else per_value
    pixel_weights = (per_value * scale[:, None]).reshape(-1, classes)
    offset_logits = (per_value * offset[:, None]).sum(axis=(0, 1, 2))
    image = rng.random(shape, dtype=np.float32)
    image[0, 0] = [0.0, 1.0, 0.004]  # at and near the ends of the range: the box is clipped there

    attribution, details, target = explain(model, image, bound_method, epsilon=epsilon, grid_size=4)
    competitors = [j for j in range(classes) if j != target]
    assert details["competitors"] == competitors and details["certified"]
    labels = details["segments"]
    expected = linear_overlaps(pixel_weights, offset_logits, image, labels, epsilon, target, competitors)
    np.testing.assert_allclose([details["adversarial_overlap"], *details["group_overlaps"]], expected, atol=2e-4)
    np.testing.assert_allclose(details["group_importance"], expected[0] - np.array(expected[1:]), atol=2e-4)
    np.testing.assert_allclose(attribution, (expected[0] - np.array(expected[1:]))[labels], atol=2e-4)


def margins(model, pixels, target, competitors):
    scores = model.predict(pixels.astype(np.float32))
    return scores[:, competitors] - scores[:, [target]]


def pgd(mirror, model, lower, upper, target, competitors, steps=20):
    """Signed-gradient ascent on the largest margin inside the pixel box, through the mirror."""
    scale, offset = model.info.preprocessing.affine()
    scale, offset = (torch.from_numpy(v).view(1, -1, 1, 1) for v in (scale, offset))
    low, high = torch.from_numpy(lower).permute(0, 3, 1, 2), torch.from_numpy(upper).permute(0, 3, 1, 2)
    x = low + (high - low) * torch.rand_like(low, generator=torch.Generator().manual_seed(0))
    step = (high - low).max() / 8
    for _ in range(steps):
        x.requires_grad_(True)
        logits = mirror.module(x * scale + offset)
        objective = (logits[:, competitors] - logits[:, [target]]).max(dim=1).values.sum()
        (gradient,) = torch.autograd.grad(objective, x)
        x = torch.minimum(torch.maximum(x.detach() + step * gradient.sign(), low), high)
    return x.permute(0, 2, 3, 1).numpy()


@pytest.mark.parametrize("bound_method", ["ibp", "crown_ibp"])
def test_bounds_hold_at_sampled_corner_and_attacked_points(bound_method):
    model, mirror, image, target, competitors = shapes_case(0)
    epsilon, grid = 1 / 255, 4
    labels = eva.groups(image, EvaParams(grid_size=grid)).labels
    fixed = np.array([-1, 0, 5, 15])
    lower, upper = eva.region_boxes(image, labels, fixed, epsilon)
    bounds = MarginBounds(model, mirror, bound_method)(lower, upper, target, competitors)
    rng = np.random.default_rng(1)
    for region in range(len(fixed)):
        low, high = lower[region], upper[region]
        samples = low + (high - low) * rng.random((64, *low.shape), dtype=np.float32)
        corners = np.where(rng.random((64, *low.shape)) < 0.5, low, high)
        attacked = pgd(mirror, model, low[None].repeat(4, 0), high[None].repeat(4, 0), target, competitors)
        reached = margins(model, np.concatenate([samples, corners, attacked]), target, competitors).max(axis=0)
        assert (reached <= bounds[region] + 1e-4).all(), (region, reached, bounds[region])
    # The attack does climb: the bound is above the clean margin, and so is the attacked point.
    assert (margins(model, attacked, target, competitors).max() > margins(model, image[None], target,
                                                                         competitors).max())


def test_ibp_eva_is_never_negative_and_vanishes_with_epsilon():
    model = shapes_model()
    image = load_samples("shapes")[3]["pixels"].astype(np.float32) / 255
    attribution, details, _ = explain(model, image, "ibp", epsilon=1 / 255, grid_size=8)
    importance = np.array(details["group_importance"])
    assert importance.min() >= 0 and importance.max() > 0  # IBP is monotone under inclusion: exactly >= 0
    small, small_details, _ = explain(model, image, "ibp", epsilon=1e-6, grid_size=8)
    # IBP bounds are affine in epsilon while every ReLU is stable: EVA shrinks in proportion.
    assert np.abs(small).max() < 1e-3 * np.abs(attribution).max()
    assert small_details["adversarial_overlap"] < details["adversarial_overlap"]


class Residual(torch.nn.Module):
    """Conv-BN-ReLU, a residual block with BatchNorm, average pooling, linear: what a ResNet is made of."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU())
        self.block = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                         torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.BatchNorm2d(8))
        self.pool = torch.nn.AvgPool2d(2)
        self.head = torch.nn.Linear(8 * 8 * 8, 3)
        for norm in (m for m in self.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            norm.running_mean.uniform_(-0.5, 0.5)
            norm.running_var.uniform_(0.5, 2.0)
            norm.weight.data.uniform_(0.5, 1.5)

    def forward(self, x):
        stem = self.stem(x)
        return self.head(self.pool(torch.relu(stem + self.block(stem))).flatten(1))


def test_residual_network_with_batchnorm_is_mirrored_folded_and_bounded_soundly(tmp_path):
    module = Residual().eval()
    path = export_torch(module, tmp_path / "residual.onnx", (1, 3, 16, 16), keep_batchnorm=True)
    assert sum(node.op_type == "BatchNormalization" for node in onnx.load(path).graph.node) == 3
    model = load_model("residual", path.read_bytes(), source="test")
    mirror = build_mirror(model)
    assert sum("folded" in line for line in mirror.rewrites) == 3 and mirror.max_error < 1e-4
    image = np.random.default_rng(2).random((16, 16, 3), dtype=np.float32)
    for bound_method in ("ibp", "crown_ibp", "crown"):
        _, details, target = explain(model, image, bound_method, epsilon=0.01, grid_size=4)
        samples = np.clip(image - 0.01 + 0.02 * np.random.default_rng(3).random((256, 16, 16, 3)), 0, 1)
        competitors = details["competitors"]
        assert margins(model, samples, target, competitors).max() <= details["adversarial_overlap"] + 1e-4


def test_a_model_exported_at_batch_one_is_freed_for_batches(tmp_path):
    """Reshape to [1, -1] and a fixed batch of 1: the mirror rewrites both and bounds 16 regions at once."""
    shape = (6, 6, 3)
    weights = np.random.default_rng(4).normal(size=(math.prod(shape), 3)).astype(np.float32)
    nodes = [helper.make_node("Reshape", ["image", "flat_shape"], ["flat"]),
             helper.make_node("MatMul", ["flat", "weights"], ["logits"])]
    model = onnx_model("batch1", nodes, [1, 3, 6, 6], [1, 3],
                       {"flat_shape": np.array([1, -1], np.int64), "weights": weights})
    # Served freed (service.runtime.batch_serving); the mirror reads the graph as loaded and frees it itself.
    assert model.info.signature.fixed_batch == 1 and model.info.batch_axis == "freed"
    mirror = mirror_for(model)
    assert any("Flatten" in line for line in mirror.rewrites), mirror.rewrites
    image = np.random.default_rng(5).random(shape, dtype=np.float32)
    _, details, target = explain(model, image, "crown", epsilon=0.01, grid_size=6, chunk_size=16)
    scale, offset = model.info.preprocessing.affine()
    per_value = weights.reshape(3, 6, 6, 3).transpose(1, 2, 0, 3)  # rows in NCHW order -> (H, W, C)
    pixel_weights = (per_value * scale[:, None]).reshape(-1, 3)
    offset_logits = (per_value * offset[:, None]).sum(axis=(0, 1, 2))
    expected = linear_overlaps(pixel_weights, offset_logits, image, details["segments"], 0.01, target,
                               details["competitors"])
    np.testing.assert_allclose([details["adversarial_overlap"], *details["group_overlaps"]], expected, atol=2e-4)


def test_an_operator_auto_lirpa_cannot_bound_is_named():
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["scores"]),
             helper.make_node("Erf", ["scores"], ["logits"])]
    model = onnx_model("erf", nodes, ["n", 1, 4, 4], ["n", 2], {"weights": np.ones((16, 2), np.float32)})
    mirror = build_mirror(model)  # kept for hybrid EVA, with the reason the whole cannot be bounded
    assert mirror.bounded is None and "Erf" in mirror.whole_reason
    assert all(not check.runs and "Erf" in check.reason for check in mirror.methods.values())
    # No cut helps: the only weighted layer is before the Erf, so every tail still holds it.
    with pytest.raises(FailedPrecondition, match="Erf") as caught:
        mirror.resolve("auto", "IBP")
    assert caught.value.field == "model_name"


def test_average_pooling_that_excludes_padding_is_caught_by_the_three_way_check():
    """ONNX's AveragePool defaults to count_include_pad=0; auto_LiRPA 0.3 always counts the padding, so its
    forward differs from onnxruntime at the borders and the model must be refused, not bounded wrongly."""
    nodes = [helper.make_node("AveragePool", ["image"], ["pooled"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["logits"])]
    weights = np.random.default_rng(5).normal(size=(16, 2)).astype(np.float32)
    model = onnx_model("pool", nodes, ["n", 1, 4, 4], ["n", 2], {"weights": weights})
    mirror = build_mirror(model)
    assert mirror.bounded is None and "differs" in mirror.whole_reason
    with pytest.raises(FailedPrecondition, match="differs"):
        MarginBounds(model, mirror, "ibp")


def test_first_divergence_names_the_node_that_differs():
    """Spoil the mirror's second convolution: the search must point at that node, not before, not after."""
    model = shapes_model()
    mirror = build_mirror(model)
    prepared = onnx.load_model_from_string(model.model_bytes)
    second_conv = [node.name for node in prepared.graph.node if node.op_type == "Conv"][1]
    convs = [module for module in mirror.module.modules() if isinstance(module, torch.nn.Conv2d)]
    with torch.no_grad():
        convs[1].weight.add_(0.1)
    values = model.info.preprocessing.apply(np.random.default_rng(0).random((2, 64, 64, 3), dtype=np.float32),
                                            channels_first=True)
    assert first_divergence(prepared, mirror.module, values) == second_conv


def test_calibrate_radius_is_twice_the_certified_radius_of_a_linear_model():
    """For f linear and a ball inside [0, 1], AO(eps) = max_j (m_j + eps ||d_j||_1): the verifier certifies
    exactly the radii below eps* = min_j -m_j / ||d_j||_1, and the ladder lands within one fine rung of it."""
    rng = np.random.default_rng(6)
    shape, classes = (6, 6, 1), 3
    weights = rng.normal(size=(math.prod(shape), classes))
    model = load_model("linear", image_classifier(weights, shape).SerializeToString(), source="test")
    image = (0.3 + 0.4 * rng.random(shape)).astype(np.float32)
    _, details, target = explain(model, image, "crown", calibrate_radius=True, grid_size=3)
    scores = image.ravel() @ weights
    radii = [-(scores[j] - scores[target]) / np.abs(weights[:, j] - weights[:, target]).sum()
             for j in range(classes) if j != target]
    exact = min(radii)
    fine_step = (1 / eva.SMALLEST_RADIUS) ** (1 / (eva.LADDER - 1) / (eva.LADDER + 1))
    assert exact / fine_step <= details["certified_radius"] <= exact
    assert details["epsilon"] == pytest.approx(2 * details["certified_radius"])
    assert details["adversarial_overlap"] > 0  # twice the certified radius: the ball holds candidate adversaries
    assert details["radius_source"] == "calibrated" and not details["ball_certified"]


def test_default_radius_is_one_grey_level_for_every_image_and_ball_certified_is_the_linear_closed_form():
    """epsilon 0 (the default) is 1/255 whatever the image, with no certified radius computed; on a linear model
    AO(1/255) = max_j (m_j + ||d_j||_1 / 255) for a ball inside [0, 1], so ball_certified is exactly AO < 0."""
    rng = np.random.default_rng(7)
    shape, classes = (6, 6, 1), 3
    weights = rng.normal(size=(math.prod(shape), classes))
    model = load_model("linear", image_classifier(weights, shape).SerializeToString(), source="test")
    for _ in range(6):
        image = (0.3 + 0.4 * rng.random(shape)).astype(np.float32)
        _, details, target = explain(model, image, "crown", grid_size=3)
        scores = image.ravel() @ weights
        exact = max(scores[j] - scores[target] + np.abs(weights[:, j] - weights[:, target]).sum() / 255
                    for j in range(classes) if j != target)
        assert details["epsilon"] == eva.DEFAULT_RADIUS == pytest.approx(1 / 255)
        assert details["radius_source"] == "default" and details["certified_radius"] is None
        assert details["adversarial_overlap"] == pytest.approx(exact, abs=1e-4)
        assert details["ball_certified"] == (exact < 0)
    _, requested, _ = explain(model, image, "crown", epsilon=0.02, grid_size=3)
    assert requested["epsilon"] == pytest.approx(0.02) and requested["radius_source"] == "requested"


def test_hybrid_bounds_sit_between_the_points_they_saw_and_the_verified_bounds():
    """IBP is monotone under inclusion and the empirical box lies inside the true reachable set, which lies inside
    IBP's own box at the cut: hybrid AO <= verified AO; and every sampled or attacked point is inside the
    empirical box, so its margin is below the hybrid bound."""
    from service.verify.bounds import HybridBounds

    model, mirror, image, target, competitors = shapes_case(5)
    labels = eva.groups(image, EvaParams(grid_size=2)).labels
    lower, upper = eva.region_boxes(image, labels, np.array([-1, 0, 3]), 2 / 255)
    layer = [node.name for node in onnx.load_model_from_string(model.model_bytes).graph.node
             if node.op_type == "Conv"][2]
    hybrid = HybridBounds(model, mirror, "ibp", layer, samples=32, attack_steps=5, rng=np.random.default_rng(0))
    assert not hybrid.certified
    empirical = hybrid(lower, upper, target, competitors)
    verified = MarginBounds(model, mirror, "ibp")(lower, upper, target, competitors)
    assert (empirical <= verified + 1e-4).all() and (empirical < verified).any()
    # Every point the hybrid saw (centre, samples, attack path) has its head output inside the box, so the served
    # model's margin there must be under the tail's bound over that box.
    low, high, points = hybrid.feature_box(lower[1], upper[1], target, competitors)
    bound = hybrid.bound_tail([(low, high)], target, competitors)[0]
    assert len(points) == 1 + 32 + 2 * (5 + 1)
    assert (margins(model, points.numpy(), target, competitors) <= bound + 1e-4).all()


def test_a_cut_across_a_skip_connection_or_at_no_layer_is_refused(tmp_path):
    from service.errors import InvalidArgument
    from service.verify.split import layer_names, split

    path = export_torch(Residual().eval(), tmp_path / "residual.onnx", (1, 3, 16, 16))
    mirror = mirror_for(load_model("residual", path.read_bytes(), source="test"))
    inside_block = [name for name in layer_names(mirror.module) if "block" in name][0]
    with pytest.raises(InvalidArgument, match="skip connection"):
        split(mirror.module, inside_block)
    with pytest.raises(InvalidArgument, match="no layer 'nowhere'") as caught:
        split(mirror.module, "nowhere")
    assert caught.value.field == "eva.split_layer"
    after_block = [name for name in layer_names(mirror.module) if "Relu" in name][-1]
    head, tail = split(mirror.module, after_block)
    with torch.no_grad():
        torch.testing.assert_close(tail(head(mirror.check_input)), mirror.module(mirror.check_input))


def test_a_graph_pass_that_changes_the_function_is_caught(monkeypatch):
    """The prepared graph is checked against the served model: a pass that rescales a weight must be refused."""
    from service.verify import graph_passes

    def spoil(model):
        tensor = next(t for t in model.graph.initializer if len(t.dims) == 4)
        tensor.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(tensor) * 2, tensor.name))
        return ["spoilt a Conv weight"]

    monkeypatch.setattr(graph_passes, "fold_batchnorm", spoil)
    with pytest.raises(FailedPrecondition, match="change what the model computes"):
        build_mirror(shapes_model())
