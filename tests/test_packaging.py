"""What ships: generated code in step with the protos, a Dockerfile that lints and configures real settings, a Python
client that installs on its own."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

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


def test_the_python_client_builds_and_installs_on_its_own_with_its_extras(tmp_path):
    """The client is a package of its own: its wheel holds only onnxplain_client, declares the ``plot`` and
    ``dataframe`` extras, and, installed in a fresh virtual environment beside its dependencies (no server, no
    repository), imports with its display and DataFrame modules."""
    import sysconfig
    import venv
    import zipfile

    wheels = tmp_path / "wheels"
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                          "-q", "-w", str(wheels), str(ROOT / "clients" / "python")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    [wheel] = wheels.glob("onnxplain_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {name.split("/")[0] for name in names} == {"onnxplain_client", wheel.name.split("-py")[0] + ".dist-info"}
    assert {"onnxplain_client/display.py", "onnxplain_client/frames.py",
            "onnxplain_client/_proto/xai/v1/explain_service_pb2.py"} <= set(names)
    extras = set(re.findall(r"^Provides-Extra: (\S+)$", metadata, re.M))
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    assert extras == {"plot", "dataframe"}
    assert any(r.startswith("matplotlib") and 'extra == "plot"' in r for r in requires), requires
    assert {r.split(">")[0].split(";")[0].strip() for r in requires if 'extra == "dataframe"' in r} == {"pandas",
                                                                                                       "pyarrow"}
    assert not any(r.startswith(("onnxruntime", "onnx", "torch", "jinja2")) for r in requires), requires

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    run = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", site,
                          str(wheel)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    # The dependencies (grpcio, protobuf, numpy, pillow, and the extras) from this environment, as a plain path:
    # its .pth files, the editable install of the server among them, are not run.
    (Path(site) / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"])
    check = ("import importlib.util, onnxplain_client, onnxplain_client.display, onnxplain_client.frames\n"
             "assert onnxplain_client.__file__.startswith(%r), onnxplain_client.__file__\n"
             "assert importlib.util.find_spec('service') is None\n" % site)
    run = subprocess.run([python, "-c", check], cwd=tmp_path, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stdout + run.stderr
