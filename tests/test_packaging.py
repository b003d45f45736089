"""What ships: generated code in step with the protos, a Dockerfile that lints and configures real settings."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys

from conftest import ROOT

from service.config import Settings


def test_generated_protobuf_code_is_up_to_date():
    run = subprocess.run([sys.executable, "protos/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_dockerfile_lints_clean():
    hadolint = shutil.which("hadolint") or str(ROOT / ".venv" / "bin" / "hadolint")
    run = subprocess.run([hadolint, "--failure-threshold", "info", "Dockerfile"], cwd=ROOT, capture_output=True,
                         text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_dockerfile_sets_only_real_settings():
    names = set(re.findall(r"ONNXPLAIN_([A-Z_]+)=", (ROOT / "Dockerfile").read_text()))
    known = {f.name.upper() for f in dataclasses.fields(Settings)}
    assert names and names <= known, names - known


def test_settings_read_the_environment():
    settings = Settings.from_env({"ONNXPLAIN_PORT": "6000", "ONNXPLAIN_PRELOAD": "false",
                                  "ONNXPLAIN_MAX_MESSAGE_MB": "8"}, host="0.0.0.0")
    assert (settings.port, settings.preload, settings.max_message_bytes, settings.host) == (6000, False, 8 << 20,
                                                                                            "0.0.0.0")
