"""Real architectures: torchvision models built with weights=None, exported, served identically to PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision
from onnx_builders import export_torch

from service.runtime.loader import load_model

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
SIZE = 224


@pytest.mark.parametrize("architecture", ["resnet18", "mobilenet_v3_small", "efficientnet_b0", "squeezenet1_1",
                                          "densenet121"])
def test_exported_architecture_predicts_like_pytorch(architecture, tmp_path):
    torch.manual_seed(0)
    net = getattr(torchvision.models, architecture)(weights=None).eval()
    path = export_torch(net, tmp_path / f"{architecture}.onnx", (1, 3, SIZE, SIZE))
    model = load_model(architecture, path.read_bytes(), source="test", overrides={"preprocessing": IMAGENET})
    assert (model.info.height, model.info.width, model.info.num_classes) == (SIZE, SIZE, 1000)
    pixels = np.random.default_rng(0).random((3, SIZE, SIZE, 3), dtype=np.float32)
    normalised = (pixels - np.array(IMAGENET["mean"], np.float32)) / np.array(IMAGENET["std"], np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(normalised.transpose(0, 3, 1, 2).copy())).numpy()
    ours = model.predict(pixels, batch_size=2)  # two session calls: batching must not change a thing
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-4)
    assert (ours.argmax(axis=1) == expected.argmax(axis=1)).all()
