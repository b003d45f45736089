"""The Node.js client's own test suite, run against the real server (`make test` installs its packages)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import ROOT, load_samples

NODE_CLIENT = ROOT / "clients" / "node"


def test_node_client_against_the_real_server(server):
    node = shutil.which("node")
    if node is None or not (NODE_CLIENT / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("the Node client needs node and its packages: run `make test` (it runs `npm ci` first)")
    sample = load_samples("shapes")[0]
    environment = {**os.environ, "ONNXPLAIN_ADDRESS": server.address, "ONNXPLAIN_MODEL": "shapes",
                   "ONNXPLAIN_SAMPLE": str(sample["path"]), "ONNXPLAIN_SAMPLE_LABEL": str(sample["label"])}
    run = subprocess.run([node, "--test", "test/"], cwd=NODE_CLIENT, env=environment, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "# fail 0" in run.stdout and "# pass 0" not in run.stdout, run.stdout
