"""An audit of 1,000 synthetic `shapes` scenes (CPU): throughput in images per second per core.

    python bench/audit.py                 # 1,000 scenes, occlusion + deletion, embedded engine
    python bench/audit.py --items 200     # a smaller run

The scenes are fresh (a seed the training never used), written as PNGs with masks and a CSV manifest, then
audited through the same code as `onnxplain audit` (results stored one by one in SQLite, summary, report).
Reported: wall time of the audit alone, images per second, and that divided by the cores used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    from scenes import write_scene_dataset

    from service.cli import main as cli

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        started = time.perf_counter()
        manifest = write_scene_dataset(folder, args.items, seed=2026)
        print(f"{args.items} scenes written in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        assert cli(["audit", str(manifest), "--model", str(ROOT / "models" / "shapes"), "--method",
                    "occlusion:window=8,stride=4", "--metric", "deletion:steps=16", "--metric", "localisation",
                    "--out", str(folder / "audit")]) == 0
        seconds = time.perf_counter() - started
        summary = json.loads((folder / "audit" / "summary.json").read_text())["groups"][0]
        cores = len(os.sched_getaffinity(0))
        print(json.dumps({"items": args.items, "seconds": round(seconds, 1),
                          "images_per_second": round(args.items / seconds, 2),
                          "images_per_second_per_core": round(args.items / seconds / cores, 2), "cores": cores,
                          "accuracy": summary["accuracy"], "metrics": summary["metrics"]}, indent=2))


if __name__ == "__main__":
    main()
