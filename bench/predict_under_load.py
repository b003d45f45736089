"""Predict's latency while long jobs hold every job worker (the interactive lane, stop 22).

    python bench/predict_under_load.py              # the bundled shapes model, 40 Predicts per arm
    python bench/predict_under_load.py --predicts 100

An in-process server (2 job workers, 2 interactive workers) on ``models/``. Arm "idle": Predicts of one image one
after another on an idle server. Arm "loaded": the same Predicts while both job workers run RISE explanations
that last minutes (every mask drawn), which are cancelled after the arm. Reported: the median and 95th percentile
latency of each arm and their ratio, loaded / idle. Before the interactive lane, a loaded Predict waited for a job
worker: its latency was the rest of a job (600 s in the stop-22 review).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "clients" / "python"))

LONG_RISE = {"num_masks": 200000, "target_reliability": 0}


def latencies(client, image: np.ndarray, count: int) -> list[float]:
    timed = []
    for _ in range(count):
        started = time.perf_counter()
        client.predict("shapes", image, timeout=60)
        timed.append(time.perf_counter() - started)
    return timed


def summary(timed: list[float]) -> dict[str, float]:
    return {"median_ms": float(np.median(timed) * 1000), "p95_ms": float(np.percentile(timed, 95) * 1000)}


def measure(predicts: int) -> dict:
    from onnxplain_client import Cancellation, OnnxplainClient, OnnxplainError

    from service.api.server import EmbeddedServer
    from service.config import Settings

    image = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    with EmbeddedServer(Settings(models_dir=ROOT / "models", workers=2, interactive_workers=2)) as address, \
            OnnxplainClient(address) as client:
        latencies(client, image, 5)  # warm
        idle = latencies(client, image, predicts)
        cancellation, started = Cancellation(), set()

        def job(index: int) -> None:
            try:
                client.explain("shapes", image, "rise", LONG_RISE, seed=index, cancel=cancellation,
                               on_progress=lambda p: started.add(index))
            except OnnxplainError:
                pass  # cancelled at the end of the arm

        jobs = [threading.Thread(target=job, args=(i,)) for i in range(2)]
        for thread in jobs:
            thread.start()
        while started != {0, 1}:
            time.sleep(0.02)
        loaded = latencies(client, image, predicts)
        cancellation.cancel()
        for thread in jobs:
            thread.join()
    idle_s, loaded_s = summary(idle), summary(loaded)
    return {"predicts": predicts, "idle": idle_s, "loaded": loaded_s,
            "ratio_median": loaded_s["median_ms"] / idle_s["median_ms"],
            "ratio_p95": loaded_s["p95_ms"] / idle_s["p95_ms"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predicts", type=int, default=40)
    result = measure(parser.parse_args().predicts)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
