"""The audit report's size and rendering time for a large audit, from a synthetic store (no model runs).

    python bench/audit_report.py                     # 1,000 scenes x 2 models, one method, two metrics
    python bench/audit_report.py --items 5000 --models 3

The images are fresh `shapes` scenes; each result's map is a few Gaussian blobs (smooth, like the maps methods
draw), its metrics and curves random. Reported: the page's size in bytes, how many drill-down entries it holds,
and the seconds to render it: the drill-down's cap keeps the size bounded however many images were audited.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models"))

CLASSES = ["circle", "square", "triangle", "star", "cross"]


def synthetic_rows(items: list, models: list[str], seed: int) -> list[dict]:
    generator = np.random.default_rng(seed)
    grid = np.mgrid[0:64, 0:64].astype(np.float32)
    rows = []
    for item in items:
        label = CLASSES.index(item.label)
        for model in models:
            centres, signs = generator.uniform(0, 64, (3, 2)), generator.choice([-1.0, 1.0], 3)
            attribution = sum(s * np.exp(-((grid[0] - y) ** 2 + (grid[1] - x) ** 2) / 60.0)
                              for (y, x), s in zip(centres, signs))
            predicted = label if generator.random() < 0.9 else int(generator.integers(0, 5))
            deletion = np.sort(generator.random(16))[::-1].tolist()
            rows.append({"model": model, "method": "occlusion", "item": item.item_id, "label": label,
                         "predicted": predicted, "score": float(generator.normal(5, 2)), "correct": predicted == label,
                         "metrics": {"deletion": float(np.mean(deletion)), "localisation": float(generator.random())},
                         "curves": {"deletion": deletion}, "details": {}, "map": attribution.astype(np.float32),
                         "seconds": 0.1})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    from scenes import write_scene_dataset

    from service.audit.dataset import load_dataset
    from service.audit.report import write_report
    from service.audit.summary import summarise

    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        items = load_dataset(write_scene_dataset(folder, args.items, seed=2026))
        models = [f"model_{index}" for index in range(args.models)]
        rows = synthetic_rows(items, models, args.seed)
        summary = summarise(rows, {"deletion": False, "localisation": True})
        started = time.perf_counter()
        page = write_report(folder / "report.html", summary, rows, {i.item_id: i.path for i in items},
                            {model: CLASSES for model in models})
        seconds = time.perf_counter() - started
        text = page.read_text()
        print(json.dumps({"items": args.items, "models": args.models, "results": len(rows), "seed": args.seed,
                          "bytes": len(text.encode()), "megabytes": round(len(text.encode()) / 2**20, 2),
                          "drilldown_entries": text.count('<details class="entry"'),
                          "pictures": text.count("data:image/png;base64,"), "seconds": round(seconds, 1)},
                         indent=2))


if __name__ == "__main__":
    main()
