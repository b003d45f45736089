"""The Node.js client's own test suite (clients/node/test/*.test.js), run against the real server: every helper,
an upload, an audit of a dataset in the server's data directory, streamed progress, cancellation, a deadline and a
refusal naming its field (`make test` installs its packages with `npm ci`)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import MODELS, ROOT, load_samples

NODE_CLIENT = ROOT / "clients" / "node"
AUDIT_ITEMS = 4


def test_node_client_against_the_real_server(server, data_dir):
    from scenes import write_scene_dataset

    node = shutil.which("node")
    if node is None or not (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("the Node client needs node and its packages: run `make test` (it runs `npm ci` first)")
    samples = load_samples("shapes")
    dataset = data_dir / "node_client_scenes"
    dataset.mkdir(exist_ok=True)
    manifest = write_scene_dataset(dataset, AUDIT_ITEMS, seed=321)
    environment = {**os.environ, "ONNXPLAIN_ADDRESS": server.address, "ONNXPLAIN_MODEL": "shapes",
                   "ONNXPLAIN_SAMPLE": str(samples[0]["path"]), "ONNXPLAIN_SAMPLE_LABEL": str(samples[0]["label"]),
                   "ONNXPLAIN_SAMPLE_2": str(samples[1]["path"]),
                   "ONNXPLAIN_DATASET": str(manifest.relative_to(data_dir)),
                   "ONNXPLAIN_DATASET_ITEMS": str(AUDIT_ITEMS),
                   "ONNXPLAIN_MODEL_FILE": str(MODELS / "shapes" / "model.onnx")}
    files = sorted(str(path.relative_to(NODE_CLIENT)) for path in (NODE_CLIENT / "test").glob("*.test.js"))
    run = subprocess.run([node, "--test", *files], cwd=NODE_CLIENT, env=environment, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# skipped 0" in run.stdout and "# pass 0" not in run.stdout, run.stdout
