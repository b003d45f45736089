"""Hybrid EVA (empirical head, verified tail) and the bound methods offered per model.

Oracles: the served model (onnxruntime) at every point the hybrid head saw, which must stay under the bound of
the box those points span; random points of a feature box through the tail, under the tail's verified bound;
a linear head and a linear tail, whose hybrid bound is a closed form once the head's box is exact (it is the
hull of the head's values at every corner of the pixel box, which the samples cover); auto_LiRPA 0.3's own
refusal of CROWN through a MaxPool whose stride is not its kernel.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import export_torch, strided_maxpool_classifier, thresholded_relu_graph

from service.errors import FailedPrecondition
from service.explainers import eva
from service.explainers.eva import EvaParams
from service.runtime.loader import load_model
from service.verify import bounds as bounds_module
from service.verify import capability
from service.verify.bounds import METHODS, HybridBounds, MarginBounds
from service.verify.mirror import build_mirror, mirror_for


def explain(model, image, bound_method="ibp", split_layer="", samples=16, attack_steps=2, **params):
    """EVA of the predicted class through the method and the verifier, as the job resolves split_layer."""
    scores = model.predict(image[None])[0]
    target = int(np.argmax(scores))
    mirror = mirror_for(model)
    parts = mirror.resolve(split_layer, METHODS[bound_method])
    bounds = (MarginBounds(model, mirror, bound_method) if parts is None else
              HybridBounds(model, mirror, bound_method, parts, samples=samples, attack_steps=attack_steps,
                           rng=np.random.default_rng(0)))
    output = eva.METHOD.attribute(None, image, EvaParams(bound_method=bound_method, split_layer=split_layer,
                                                         hybrid_samples=samples, attack_steps=attack_steps, **params),
                                  baseline=None, batch_size=0, rng=np.random.default_rng(0), bound_margins=bounds,
                                  all_scores=scores,
                                  targets=[target])
    return output.details[0], target, bounds


def margins(model, pixels, target, competitors):
    scores = model.predict(np.asarray(pixels, dtype=np.float32))
    return scores[:, competitors] - scores[:, [target]]


def assert_sound_on_seen_points(model, hybrid, image, target, competitors, epsilon, fixed=(-1, 0)):
    """The served model's margin at every point the head saw is under the tail's bound over their box."""
    labels = eva.groups(image, EvaParams(grid_size=2)).labels
    lower, upper = eva.region_boxes(image, labels, np.array(fixed), epsilon)
    for region in range(len(fixed)):
        low, high, points = hybrid.feature_box(lower[region], upper[region], target, competitors)
        bound = hybrid.bound_tail([(low, high)], target, competitors)[0]
        reached = margins(model, points.cpu().numpy(), target, competitors).max(axis=0)
        assert (reached <= bound + 1e-4).all(), (reached, bound)
    return points


def onnx_classifier(name, nodes, input_dims, classes, initializers):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("image", TensorProto.FLOAT, input_dims)],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", classes])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return load_model(name, model.SerializeToString(), source="test")


class ErfNet(torch.nn.Module):
    """A CNN with an Erf (unboundable by auto_LiRPA 0.3) right after its first convolution."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.first = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.second = torch.nn.Conv2d(4, 6, 3, padding=1, stride=2)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.classifier = torch.nn.Linear(6, 5)

    def forward(self, x):
        x = torch.relu(self.second(torch.erf(self.first(x))))
        return self.classifier(self.pool(x).flatten(1))


@pytest.fixture(scope="module")
def erf_net(tmp_path_factory):
    path = export_torch(ErfNet(), tmp_path_factory.mktemp("erf") / "erf.onnx", (1, 3, 12, 12))
    return load_model("erfnet", path.read_bytes(), source="test")


def test_auto_cuts_an_erf_cnn_at_its_pooled_features_and_bounds_every_point_it_saw(erf_net):
    model = erf_net
    image = np.random.default_rng(0).random((12, 12, 3), dtype=np.float32)
    mirror = mirror_for(model)
    assert mirror.bounded is None and "Erf" in mirror.whole_reason
    graph = onnx.load_model_from_string(model.model_bytes).graph
    producers = {output: node for node in graph.node for output in node.output}
    classifier = next(node for node in graph.node if node.op_type == "Gemm")
    latest = producers[classifier.input[0]].name  # the Flatten of the pooled features
    details, target, hybrid = explain(model, image, "crown_ibp", epsilon=0.02, grid_size=2)
    assert details["split_layer"] == latest == mirror.cuts()[0]
    assert details["verified"] == f"tail after {latest}: 1 operator" and details["head_runtime"] == "pytorch"
    assert not details["certified"]
    points = assert_sound_on_seen_points(model, hybrid, image, target, details["competitors"], 0.02)
    assert len(points) == 1 + 16 + 2 * (2 + 1)  # centre, samples, two attack paths


def test_the_tails_verified_bounds_hold_inside_the_feature_box(erf_net):
    """Cut right after the Erf: the tail (Conv, Relu, pooling, Linear) is bounded by CROWN-IBP over the box the
    head's samples span; random points of that box, and its corners, through the tail stay under the bound."""
    model = erf_net
    image = np.random.default_rng(1).random((12, 12, 3), dtype=np.float32)
    erf = next(node.name for node in onnx.load_model_from_string(model.model_bytes).graph.node if node.op_type == "Erf")
    details, target, hybrid = explain(model, image, "crown_ibp", split_layer=erf, epsilon=0.02, grid_size=2)
    assert details["split_layer"] == erf and details["verified"].startswith(f"tail after {erf}: ")
    competitors = details["competitors"]
    lower, upper = eva.region_boxes(image, np.zeros((12, 12), np.int64), np.array([-1]), 0.05)
    low, high, _ = hybrid.feature_box(lower[0], upper[0], target, competitors)
    bound = hybrid.bound_tail([(low, high)], target, competitors)[0]
    generator = torch.Generator().manual_seed(2)
    draws = torch.rand((256, *low.shape), generator=generator)
    inside = torch.cat([low + (high - low) * draws, torch.where(draws < 0.5, low, high)])
    with torch.no_grad():
        logits = hybrid.tail(inside).numpy()
    reached = (logits[:, competitors] - logits[:, [target]]).max(axis=0)
    assert (reached <= bound + 1e-4).all()


def test_a_linear_head_and_tail_give_the_closed_form_of_the_exact_head_box():
    """f = W2 (W1 v + b1) + b2 on v = s x + o, cut between the two layers. Over a pixel box the head's hull is
    exact per feature (each end at a corner), and a linear tail's bound over a box is exact: the hybrid AO of
    each region is max_j sum_i max(d_ji lo_i, d_ji hi_i) + e_j, and at least the whole model's (verified) AO."""
    rng = np.random.default_rng(3)
    w1, b1 = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    w2, b2 = rng.normal(size=(3, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    nodes = [helper.make_node("Flatten", ["image"], ["flat"], axis=1, name="flatten"),
             helper.make_node("Gemm", ["flat", "w1", "b1"], ["hidden"], name="hidden"),
             helper.make_node("Gemm", ["hidden", "w2", "b2"], ["logits"], name="classifier")]
    model = onnx_classifier("linear2", nodes, ["n", 1, 2, 2], 3, {"w1": w1, "b1": b1, "w2": w2, "b2": b2})
    image = np.array([[[0.2], [0.9]], [[0.5], [0.03]]], dtype=np.float32)
    epsilon = 0.1
    # 256 corner draws over at most 4 free pixels (16 corners): every corner is drawn.
    details, target, _ = explain(model, image, "crown", split_layer="hidden", samples=512, attack_steps=0,
                                 epsilon=epsilon, grid_size=2, target_reliability=0)
    whole, _, _ = explain(model, image, "crown", split_layer="whole", epsilon=epsilon, grid_size=2)
    assert details["split_layer"] == "hidden" and not details["certified"] and whole["certified"]
    scale, offset = (float(v[0]) for v in model.info.preprocessing.affine())
    competitors, labels = details["competitors"], details["segments"]
    expected = []
    for fixed in range(-1, 4):
        free = (labels != fixed)[..., None]
        values = [scale * np.clip(image - side * epsilon * free, 0, 1).ravel() + offset for side in (1, -1)]
        lo = np.minimum(values[0][:, None] * w1, values[1][:, None] * w1).sum(axis=0) + b1
        hi = np.maximum(values[0][:, None] * w1, values[1][:, None] * w1).sum(axis=0) + b1
        expected.append(max(np.maximum(d * lo, d * hi).sum() + b2[j] - b2[target]
                            for j in competitors for d in [w2[:, j] - w2[:, target]]))
    hybrid_overlaps = [details["adversarial_overlap"], *details["group_overlaps"]]
    np.testing.assert_allclose(hybrid_overlaps, expected, atol=1e-4)
    verified = np.array([whole["adversarial_overlap"], *whole["group_overlaps"]])
    assert (np.array(hybrid_overlaps) >= verified - 1e-5).all()


def test_a_tiny_vit_runs_hybrid_at_its_class_token(tmp_path):
    import torchvision

    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                                               mlp_dim=64, num_classes=10)
    torch.nn.init.normal_(vit.heads.head.weight, std=0.5)  # torchvision zeroes it: every margin would be 0
    model = load_model("vit", export_torch(vit, tmp_path / "vit.onnx", (1, 3, 32, 32)).read_bytes(), source="test")
    image = np.random.default_rng(4).random((32, 32, 3), dtype=np.float32)
    details, target, hybrid = explain(model, image, "ibp", samples=8, attack_steps=1, epsilon=0.01, grid_size=2)
    mirror = mirror_for(model)
    assert mirror.bounded is None and "Erf" in mirror.whole_reason
    graph = onnx.load_model_from_string(model.model_bytes).graph
    cut = next(node for node in graph.node if node.name == details["split_layer"])
    assert cut.op_type == "Gather" and [n.op_type for n in graph.node if cut.output[0] in n.input] == ["Gemm"]
    assert not details["certified"] and details["head_runtime"] == "pytorch"
    assert details["verified"] == f"tail after {cut.name}: 1 operator"
    assert_sound_on_seen_points(model, hybrid, image, target, details["competitors"], 0.01, fixed=(-1,))


def test_a_graph_onnx2torch_cannot_convert_runs_its_head_on_onnxruntime():
    """ThresholdedRelu has no onnx2torch converter (onnxruntime runs it): the cut is made on the ONNX graph, the
    head is the served graph on onnxruntime (samples only: no gradient), the tail converted and bounded."""
    model = load_model("thresholded", thresholded_relu_graph().SerializeToString(), source="test")
    mirror = mirror_for(model)
    assert mirror.module is None and "ThresholdedRelu" in mirror.whole_reason
    image = np.random.default_rng(6).random((8, 8, 1), dtype=np.float32)
    details, target, hybrid = explain(model, image, "crown", samples=24, attack_steps=5, epsilon=0.05, grid_size=2)
    assert details["split_layer"] == "flatten" and details["head_runtime"] == "onnxruntime"
    assert not details["certified"] and details["verified"] == "tail after flatten: 1 operator"
    points = assert_sound_on_seen_points(model, hybrid, image, target, details["competitors"], 0.05)
    assert len(points) == 1 + 24  # no attack without gradients
    with pytest.raises(FailedPrecondition, match="ThresholdedRelu"):  # a cut before it leaves it in the tail
        mirror.resolve("conv", "IBP")


def maxpool_model():
    return load_model("maxpool", strided_maxpool_classifier().SerializeToString(), source="test")


def test_only_the_methods_that_run_are_offered_and_the_others_are_refused_by_name():
    model = maxpool_model()
    mirror = build_mirror(model)
    assert mirror.methods["IBP"].runs
    for method in ("CROWN-IBP", "CROWN"):
        assert not mirror.methods[method].runs and "stride" in mirror.methods[method].reason
        assert len(mirror.methods[method].reason) <= capability.REASON_CHARS
    mirror = mirror_for(model)
    with pytest.raises(FailedPrecondition, match="CROWN.*stride") as caught:
        MarginBounds(model, mirror, "crown")
    assert caught.value.field == "eva.bound_method"
    with pytest.raises(FailedPrecondition, match="CROWN.*stride"):
        mirror.resolve("whole", "CROWN")
    parts = mirror.resolve("", "CROWN")  # auto: the whole model does not take CROWN, the tail after flatten does
    assert parts.layer == "flatten" and parts.methods["CROWN"].runs
    assert mirror.resolve("auto", "IBP") is None


def test_a_bounding_failure_at_request_time_is_a_failed_precondition_logged_in_one_line(monkeypatch, caplog):
    model = maxpool_model()
    mirror = mirror_for(model)

    def broken(*args, **kwargs):
        raise RuntimeError("The size of tensor a (16) must match the size of tensor b (352)")

    monkeypatch.setattr(bounds_module, "compute_upper_bounds", broken)
    image = np.random.default_rng(8).random((1, 8, 8, 1), dtype=np.float32)
    with caplog.at_level(logging.WARNING), pytest.raises(FailedPrecondition, match="ibp.*size of tensor") as caught:
        MarginBounds(model, mirror, "ibp")(image, image, 0, [1, 2])
    assert caught.value.field == "eva.bound_method"
    assert [r.exc_info for r in caplog.records if r.name == bounds_module.__name__] == [None]


def test_a_method_whose_bounds_miss_a_point_of_the_box_is_not_offered(monkeypatch):
    """The probe checks soundness: bounds below the margin at the box's centre make the method refused."""
    model = maxpool_model()
    real = capability.compute_upper_bounds

    def low(bounded, x, lower, upper, spec, method, checkpoint=None):
        result = real(bounded, x, lower, upper, spec, method, checkpoint)
        return result - 1.0 if method == "IBP" else result

    monkeypatch.setattr(capability, "compute_upper_bounds", low)
    checks = build_mirror(model).methods
    assert not checks["IBP"].runs and checks["IBP"].reason.startswith("unsound")


def test_a_bound_method_is_checked_when_first_asked_for_and_a_stopped_check_decides_nothing():
    """A job asking for IBP does not wait for CROWN's check (tens of seconds on a 224-pixel CNN): each method is
    checked on first use, once; a check stopped by the job's deadline or cancellation is not cached as a
    refusal, and GetModel's report still checks every method."""
    from service.errors import Cancelled
    from service.verify.mirror import verification_report

    model = maxpool_model()
    mirror = build_mirror(model)
    assert all(mirror.methods.decided(name) is None for name in mirror.methods)
    assert mirror.resolve("auto", "IBP") is None
    assert mirror.methods.decided("IBP").runs
    assert [name for name in mirror.methods if mirror.methods.decided(name) is not None] == ["IBP"]

    def cancelled() -> None:
        raise Cancelled("stopped")

    with pytest.raises(Cancelled):
        mirror.check(mirror.methods, "CROWN", cancelled)
    assert mirror.methods.decided("CROWN") is None
    checks = {check["name"]: check for check in verification_report(model)["method_checks"]}
    assert set(checks) == {"ibp", "crown_ibp", "crown", "alpha_crown"}
    assert checks["ibp"]["verified"] == "whole model" and "stride" in checks["crown"]["reason"]


def test_a_method_whose_bounds_are_vacuous_is_not_offered():
    """x -> H x with H = [[1, 1], [1, -1]] (H H = 2 I), 28 times: the function is 2**14 x, linear, so CROWN's
    bounds are exact, while IBP multiplies the box's width by |H|'s row sums, 2, at every layer: its margin bounds
    over a box of radius 1e-3 are about 2**28 * 1e-3, 8,000 times what the function reaches there, which is no
    information about the model."""
    from service.verify.lirpa_compat import bounded_module

    layers = []
    for _ in range(28):
        layer = torch.nn.Linear(2, 2)  # with a (zero) bias: 0.3's IBP fails on a specification over a bare MatMul
        layer.weight.data, layer.bias.data = torch.tensor([[1.0, 1.0], [1.0, -1.0]]), torch.zeros(2)
        layers.append(layer)
    module = torch.nn.Sequential(*layers).eval()
    centre = torch.tensor([[0.0, 0.0], [1e-4, -1e-4]])  # where the function is near 0: its range is the box's
    checks = capability.probe(bounded_module(module, centre[:1], "cpu"), module, centre)
    assert not checks["IBP"].runs and checks["IBP"].reason.startswith("vacuous"), checks["IBP"]
    assert checks["CROWN"].runs, checks["CROWN"]


# --- Precision of hybrid sampling (issue 12) -------------------------------------------------------------------
# ErfNet cut right after its Erf: the head's features each read a 3 x 3 patch, so the sampled boxes settle within
# tens of points and holding a group changes the boxes of its own patch: a map with structure, unlike the pooled
# cut, where a 6-feature box over 432 pixel dimensions barely moves with any one group (reliability near 0 at
# any affordable count, which is the truth about that map). No attack: PGD alone fixes the boxes' extremes.


def erf_cut(model):
    return next(node.name for node in onnx.load_model_from_string(model.model_bytes).graph.node
                if node.op_type == "Erf")


def sampled(model, image, seed, samples, attack_steps=0, cut="", **params):
    """Hybrid EVA (IBP tail) of the predicted class cut after the Erf (or at ``cut``); (output, hybrid bounds)."""
    scores = model.predict(image[None])[0]
    target = int(np.argmax(scores))
    mirror = mirror_for(model)
    cut = cut or erf_cut(model)
    parts = mirror.resolve(cut, "IBP")
    hybrid = HybridBounds(model, mirror, "ibp", parts, samples=samples, attack_steps=attack_steps,
                          rng=np.random.default_rng(seed))
    params = {"epsilon": 0.05, "grid_size": 4, **params}
    output = eva.METHOD.attribute(None, image, EvaParams(bound_method="ibp", split_layer=cut,
                                                         hybrid_samples=samples, attack_steps=attack_steps, **params),
                                  baseline=None, batch_size=0, rng=np.random.default_rng(seed), bound_margins=hybrid,
                                  all_scores=scores, targets=[target])
    return output, hybrid


def test_hybrid_reliability_rises_with_samples_and_predicts_the_agreement_of_independent_runs(erf_net):
    """On one image, 6 seeds at 2 and at 32 points per region: the reported reliability rises with the points, and at
    each count its mean is within 0.2 of the mean Spearman between the group importances of two independent full runs
    (what it claims to predict); the half-difference standard error's root mean square is within a factor 2 of the
    root mean square spread of the importances over the seeds (measured 0.74 to 1.19 on this model)."""
    from scipy import stats

    image = np.random.default_rng(0).random((12, 12, 3), dtype=np.float32)
    reliability = {}
    for samples in (2, 32):
        outputs = [sampled(erf_net, image, seed, samples, target_reliability=0)[0] for seed in range(6)]
        importance = np.array([o.details[0]["group_importance"] for o in outputs])
        reported = np.array([o.precision.reliability[0] for o in outputs])
        agreement = [stats.spearmanr(importance[i], importance[i + 1])[0] for i in range(0, 6, 2)]
        assert abs(reported.mean() - np.mean(agreement)) < 0.2, (samples, reported, agreement)
        error = np.array([o.details[0]["group_standard_error"] for o in outputs])
        ratio = np.sqrt((error**2).mean()) / np.sqrt(importance.var(axis=0, ddof=1).mean())
        assert 0.5 < ratio < 2.0, (samples, ratio)
        for o in outputs:  # the map paints each group's error on its pixels
            np.testing.assert_allclose(o.precision.standard_error[0],
                                       np.asarray(o.details[0]["group_standard_error"])[o.details[0]["segments"]],
                                       rtol=1e-6)
        reliability[samples] = reported.mean()
    assert reliability[32] > reliability[2] + 0.2, reliability


def test_hybrid_sampling_honours_the_cap_the_target_and_the_time(erf_net):
    image = np.random.default_rng(0).random((12, 12, 3), dtype=np.float32)
    full, _ = sampled(erf_net, image, 1, 64, target_reliability=0)
    # 64 points: 32 per half in 16 rounds of 2; both halves' centre; no attack.
    assert (full.precision.samples, full.precision.max_samples, full.precision.rounds) == (64, 64, 16)
    assert full.precision.stop_reason.value == "samples" and full.details[0]["hybrid_samples_used"] == 64
    regions = 4 * 4 + 1
    assert full.precision.forward_passes == regions * (64 + 2)
    reached, _ = sampled(erf_net, image, 1, 64, target_reliability=0.8)
    assert reached.precision.stop_reason.value == "reliability" and reached.precision.reliability[0] >= 0.8
    assert 5 <= reached.precision.rounds < 16 and reached.precision.samples == 4 * reached.precision.rounds
    hard, _ = sampled(erf_net, image, 1, 64, target_reliability=0.999)
    assert hard.precision.stop_reason.value == "samples" and hard.precision.samples == 64
    assert hard.precision.samples_for_target > 64  # the prophecy asks for more than the cap gave
    # The pooled cut: 6 features over 432 pixel dimensions, which no group moves beyond the sampling noise (a flat
    # map, reliability near 0 at any count): the same target is never reached there, and the cap is spent.
    flat, _ = sampled(erf_net, image, 1, 64, cut=mirror_for(erf_net).cuts()[0], target_reliability=0.8)
    assert flat.precision.stop_reason.value == "samples" and flat.precision.reliability[0] < 0.8
    timed, _ = sampled(erf_net, image, 1, 64, target_reliability=0, max_seconds=1e-9)
    assert timed.precision.stop_reason.value == "time" and timed.precision.rounds == 1
    assert timed.precision.samples == 4


def test_the_map_bounds_the_union_of_both_halves_points_drawn_alike_in_every_region(erf_net, monkeypatch):
    """Reference: the points rebuilt from rng.spawn(2) and the rounds (common unit draws, even rows uniform, odd
    rows corners), through the head, their min and max, bounded by the tail: the map's AO of every region is that of
    the union of both halves' points; each half's own box lies inside it. Every region sees the same draws: its points
    equal the full ball's except on the group it holds, where they are the clean image."""
    image = np.random.default_rng(2).random((12, 12, 3), dtype=np.float32)
    seen = []
    real = HybridBounds._features

    def recording(self, points):
        seen.append(points.detach().cpu().numpy())
        return real(self, points)

    monkeypatch.setattr(HybridBounds, "_features", recording)
    output, hybrid = sampled(erf_net, image, 3, 8, target_reliability=0)
    monkeypatch.setattr(HybridBounds, "_features", real)
    details = output.details[0]
    labels, epsilon = details["segments"], details["epsilon"]
    lower, upper = eva.region_boxes(image, labels, np.arange(-1, 16), epsilon)
    halves = np.random.default_rng(3).spawn(2)
    points = [[] for _ in range(2)]
    for index in range(4):  # 4 rounds of 1 point per half
        for half, generator in enumerate(halves):
            if index == 0:
                generator.random((1, *image.shape), dtype=np.float32)  # the attack's start, drawn even unused
            points[half].append(generator.random((1, *image.shape), dtype=np.float32))
    units = [np.concatenate(p) for p in points]
    for units_of_half in units:
        units_of_half[1::2] = units_of_half[1::2] < 0.5
    assert not np.array_equal(units[0], units[1])
    head = hybrid.head
    overlaps = []
    for region in range(17):
        pixels = [lower[region] + (upper[region] - lower[region]) * u for u in units]
        centre = (lower[region] + upper[region]) / 2
        with torch.no_grad():
            features = [head(hybrid._values(torch.from_numpy(np.concatenate([p, centre[None]])))) for p in pixels]
        boxes = [(f.min(dim=0).values, f.max(dim=0).values) for f in features]
        union = (torch.minimum(boxes[0][0], boxes[1][0]), torch.maximum(boxes[0][1], boxes[1][1]))
        bounds = hybrid.bound_tail([union, *boxes], int(np.argmax(erf_net.predict(image[None])[0])),
                                   details["competitors"]).max(axis=1)
        assert bounds[0] >= bounds[1:].max() - 1e-6  # IBP is inclusion-monotone: the union bounds both halves
        overlaps.append(bounds[0])
    np.testing.assert_allclose([details["adversarial_overlap"], *details["group_overlaps"]], overlaps, rtol=1e-5,
                               atol=1e-6)
    # The first call of the run: the first half's first round, regions 0 .. 16 in order, one point each.
    first = seen[0]
    assert len(first) == 17
    for region in range(1, 17):
        held = labels == region - 1
        np.testing.assert_array_equal(first[region][~held], first[0][~held])
        np.testing.assert_allclose(first[region][held], image[held], atol=1e-7)
