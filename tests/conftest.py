"""Shared fixtures: a real server on a free localhost port over the bundled models, and its client."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"
sys.path.insert(0, str(MODELS))  # the scene generator and model scripts are plain modules there


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """The server's data directory (datasets for the Audit RPC, and the audits it writes)."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def server(data_dir):
    from service.api.server import EmbeddedServer
    from service.config import Settings

    embedded = EmbeddedServer(Settings(models_dir=MODELS, data_dir=data_dir, workers=2, max_queue=4))
    with embedded:
        yield embedded


@pytest.fixture(scope="session")
def client(server):
    from onnxplain_client import OnnxplainClient

    with OnnxplainClient(server.address) as client:
        yield client


def load_samples(model: str) -> list[dict]:
    """The bundled samples of a model, with their images (uint8) and masks (bool) loaded."""
    folder = MODELS / model / "samples"
    samples = json.loads((folder / "manifest.json").read_text())["samples"]
    for sample in samples:
        sample["path"] = folder / sample["image"]
        sample["pixels"] = np.asarray(Image.open(sample["path"]))
        if sample.get("mask"):
            sample["mask_array"] = np.asarray(Image.open(folder / sample["mask"])) > 127
    return samples
