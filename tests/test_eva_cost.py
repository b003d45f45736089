"""EVA's CROWN with shared intermediate bounds (``MarginBounds(share=True)``) against CROWN on every box alone.

Oracles: the reference path (``share=False``: auto_LiRPA's CROWN on each region's box, as before); points
sampled inside each region's box and its corners, scored by onnxruntime (the served model); and, for the
cones the sharing relies on, the exact dependence of every neuron on the input, from autograd.
Model: the bundled shapes architecture (``PooledCNN``: strided conv, conv, max-pool, conv, max-pool, conv, mean,
linear) at reduced widths and 32 x 32 pixels, random weights, BatchNorm statistics made non-trivial.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from common import PooledCNN
from onnx_builders import export_torch

from service.explainers import eva
from service.explainers.eva import EvaParams
from service.runtime.loader import load_model
from service.verify.bounds import MarginBounds
from service.verify.cones import reached
from service.verify.lirpa_compat import relu_inputs
from service.verify.mirror import build_mirror

SIDE = 32


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory):
    torch.manual_seed(0)
    module = PooledCNN((8, 8, 12, 16), 5).eval()
    for norm in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        norm.running_mean.uniform_(-0.2, 0.2)
        norm.running_var.uniform_(0.5, 2.0)
    path = export_torch(module, tmp_path_factory.mktemp("cost") / "cnn.onnx", (1, 3, SIDE, SIDE))
    model = load_model("cnn", path.read_bytes(), source="test")
    mirror = build_mirror(model)
    image = np.random.default_rng(4).random((SIDE, SIDE, 3), dtype=np.float32)
    scores = model.predict(image[None])[0]
    target = int(np.argmax(scores))
    return model, mirror, image, target, eva.competitors_of(scores, target, 4)


def margins(model, pixels, target, competitors):
    scores = model.predict(pixels.astype(np.float32))
    return scores[:, competitors] - scores[:, [target]]


@pytest.mark.parametrize("epsilon", [0.002, 0.02])
def test_shared_bounds_are_sound_and_match_or_beat_each_box_alone(small_cnn, epsilon):
    model, mirror, image, target, competitors = small_cnn
    labels = eva.groups(image, EvaParams(grid_size=4)).labels
    fixed = np.array([-1, 0, 5, 15])  # the ball, a corner cell, an inner cell, the opposite corner
    lower, upper = eva.region_boxes(image, labels, fixed, epsilon)
    alone = MarginBounds(model, mirror, "crown", share=False)
    shared = MarginBounds(model, mirror, "crown", share=True)
    reference = np.concatenate([alone(lower[i:i + 1], upper[i:i + 1], target, competitors) for i in range(len(fixed))])
    # One region per call, as EVA's default chunk for CROWN, and the full ball first, as EVA bounds it.
    faster = np.concatenate([shared(lower[i:i + 1], upper[i:i + 1], target, competitors) for i in range(len(fixed))])
    scale = np.abs(reference).max()
    # Tighter or equal: never above the reference beyond float32 rounding of the sums (1e-5 of the scale).
    assert (faster <= reference + 1e-5 * scale).all(), (faster - reference).max()
    # And the full ball, bounded alone in both, is the same computation.
    np.testing.assert_array_equal(faster[0], reference[0])
    rng = np.random.default_rng(5)
    for region in range(len(fixed)):
        low, high = lower[region], upper[region]
        samples = low + (high - low) * rng.random((32, *low.shape), dtype=np.float32)
        corners = np.where(rng.random((32, *low.shape)) < 0.5, low, high)
        seen = margins(model, np.concatenate([samples, corners]), target, competitors).max(axis=0)
        assert (seen <= faster[region] + 1e-4).all(), (region, seen, faster[region])


def test_a_region_bounded_with_the_ball_in_one_call_is_bounded_as_in_its_own(small_cnn):
    """EVA's CROWN-IBP-sized chunks: the ball then its regions in one call; the ball is bounded alone first."""
    model, mirror, image, target, competitors = small_cnn
    labels = eva.groups(image, EvaParams(grid_size=4)).labels
    lower, upper = eva.region_boxes(image, labels, np.array([-1, 5, 6]), 0.002)
    together = MarginBounds(model, mirror, "crown")(lower, upper, target, competitors)
    one_by_one = MarginBounds(model, mirror, "crown")
    apart = np.concatenate([one_by_one(lower[i:i + 1], upper[i:i + 1], target, competitors) for i in range(3)])
    # The union of the regions' cones is bounded for both: a neuron bounded for a region whose cone misses
    # it gets the ball's bound, the same up to rounding.
    np.testing.assert_allclose(together, apart, rtol=0, atol=1e-5 * np.abs(apart).max())


def test_the_cone_holds_every_neuron_the_changed_pixels_reach(small_cnn):
    """The structural cone is a superset of the true dependence: a neuron with a nonzero gradient with respect
    to a changed input element is in the cone (autograd through every layer, at a point where no ReLU is
    exactly at 0)."""
    _, mirror, image, _, _ = small_cnn
    bounded = mirror.bounded
    names = relu_inputs(bounded)
    changed = torch.zeros((1, 3, SIDE, SIDE), dtype=torch.bool)
    changed[:, :, 8:16, 16:24] = True  # one cell of a 4 x 4 grid
    cones = reached(bounded, changed, names)
    outputs = {}
    hooks = [layer.register_forward_hook(lambda m, i, o, key=index: outputs.__setitem__(key, o))
             for index, layer in enumerate(m for m in mirror.module.modules() if isinstance(m, torch.nn.Conv2d))]
    x = torch.from_numpy(image).permute(2, 0, 1)[None].clone().requires_grad_(True)
    mirror.module(x)
    for hook in hooks:
        hook.remove()
    assert len(outputs) == len(names) == 4
    for index, name in enumerate(names):
        assert cones[name].shape == outputs[index].shape
        cone = cones[name][0]
        outside = torch.nonzero(~cone)[:200]  # a sample of the neurons outside the cone: 200 gradients per layer
        for channel, row, column in outside.tolist():
            (gradient,) = torch.autograd.grad(outputs[index][0, channel, row, column], x, retain_graph=True)
            assert gradient[changed].abs().max() == 0, (name, channel, row, column)
        if index < 2:  # the cone is local: a cell of 8 x 8 pixels reaches a fifth of the first layers
            assert cone.float().mean() < 0.5
