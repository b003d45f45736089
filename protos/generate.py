"""Generate the Python protobuf/gRPC modules from protos/ (the only way they are made).

    python protos/generate.py            # write clients/python/onnxplain_client/_proto
    python protos/generate.py --check    # exit 1 when the committed modules are stale

protoc names imports after the proto paths (``from xai.v1 import ...``); they are
rewritten to absolute imports inside ``onnxplain_client._proto`` so the package
needs nothing on sys.path. The output depends on grpcio-tools' version, which the
``dev`` requirements pin.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "protos"
PACKAGE = "onnxplain_client._proto"
OUTPUT = ROOT / "clients" / "python" / "onnxplain_client" / "_proto"


def generate(out_dir: Path) -> list[Path]:
    from grpc_tools import protoc  # imported lazily: only this script needs grpcio-tools

    protos = sorted(PROTO_ROOT.glob("xai/v1/*.proto"))
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *(str(p.relative_to(PROTO_ROOT)) for p in protos),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    written = sorted(p for p in out_dir.rglob("*") if p.is_file())
    for path in written:
        text = path.read_text()
        text = re.sub(r"^from xai\.v1 import", f"from {PACKAGE}.xai.v1 import", text, flags=re.M)
        text = re.sub(r"^import xai\.v1\.", f"import {PACKAGE}.xai.v1.", text, flags=re.M)
        path.write_text(text)
    for package_dir in {out_dir, *(p.parent for p in written)}:
        while package_dir != out_dir.parent:
            (package_dir / "__init__.py").touch()
            package_dir = package_dir.parent
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "_proto"
        fresh.mkdir()
        generate(fresh)
        if args.check:
            comparison = filecmp.dircmp(fresh, OUTPUT)
            stale = _differences(comparison)
            if stale:
                print("generated protobuf code is stale; run `python protos/generate.py`:", *stale, sep="\n  ")
                return 1
            print("generated protobuf code is up to date")
            return 0
        shutil.rmtree(OUTPUT, ignore_errors=True)
        shutil.copytree(fresh, OUTPUT)
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


def _differences(comparison: filecmp.dircmp) -> list[str]:
    found = [f"{comparison.right}/{name}" for name in comparison.diff_files + comparison.right_only]
    found += [f"{comparison.left}/{name} (missing)" for name in comparison.left_only]
    found += [f for sub in comparison.subdirs.values() for f in _differences(sub)]
    return [f for f in found if "__pycache__" not in f]


if __name__ == "__main__":
    sys.exit(main())
