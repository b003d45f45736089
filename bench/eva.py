"""EVA on the bundled `shapes` model (CPU): batching, the cost of a fine grid, and how its maps score.

    python bench/eva.py             # everything (about 30 minutes on 2 cores, CROWN dominating)
    python bench/eva.py --quick     # no CROWN rows, fewer samples

1. Batched regions: the wall time of bounding the 65 regions of an 8 x 8 grid one region per auto_LiRPA call,
   over the time with 16 (the default chunk) or all 65 regions per call (ratios, fastest of --repeat
   alternating runs).
2. A 32 x 32 grid (1025 regions, fixed epsilon, each method's default chunk): wall time per bound method;
   CROWN, seconds per region here, is timed on a few regions and extrapolated (marked as such).
3. The evidence table: deletion, insertion (RISE's definitions, 16 steps), mu-fidelity and the relevance mass
   on the ground-truth object of EVA (IBP, CROWN-IBP, CROWN) next to RISE, Sobol and occlusion, over the
   samples, every method at its defaults (EVA's epsilon calibrated per image).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # conftest.load_samples reads the bundled samples and masks

METRICS = {"deletion": {"steps": 16}, "insertion": {"steps": 16}, "mu_fidelity": {}}


def shapes():
    from service.runtime.loader import load_model

    path = ROOT / "models" / "shapes" / "model.onnx"
    return load_model("shapes", path.read_bytes(), source=str(path), model_path=path)


def eva_time(model, image, grid: int, method: str, chunk: int, epsilon: float, limit: int | None = None) -> float:
    """Seconds to bound the full ball and every group (or the first ``limit`` regions) with the chosen chunk."""
    from service.explainers import eva
    from service.verify.bounds import MarginBounds
    from service.verify.mirror import mirror_for

    scores = model.predict(image[None])[0]
    target = int(np.argmax(scores))
    competitors = eva.competitors_of(scores, target, 9)
    bounds = MarginBounds(model, mirror_for(model), method)
    found = eva.groups(image, eva.EvaParams(grid_size=grid))
    fixed = np.arange(-1, found.count)[:limit]
    started = time.perf_counter()
    for start in range(0, len(fixed), chunk):
        lower, upper = eva.region_boxes(image, found.labels, fixed[start:start + chunk], epsilon)
        bounds(lower, upper, target, competitors)
    return time.perf_counter() - started


def batching(model, image, repeat: int) -> dict:
    """One region per call, the default chunk (16) and all 65 in one call; fastest of ``repeat`` alternations."""
    results = {}
    for method in ("ibp", "crown_ibp"):
        times = {chunk: [] for chunk in (1, 16, 65)}
        for _ in range(repeat):
            for chunk in times:
                times[chunk].append(eva_time(model, image, 8, method, chunk=chunk, epsilon=2 / 255))
        best = {chunk: min(values) for chunk, values in times.items()}
        results[method] = {"seconds": best, "one_over_chunk16": best[1] / best[16], "one_over_all": best[1] / best[65]}
        print(f"{method}: 65 regions, one per call {best[1]:.2f} s, 16 per call {best[16]:.2f} s, all in one "
              f"{best[65]:.2f} s; one-at-a-time / chunked: {best[1] / best[16]:.1f} (16), {best[1] / best[65]:.1f} "
              "(65)", flush=True)
    return results


def fine_grid(model, image, quick: bool) -> dict:
    from service.explainers.eva import DEFAULT_CHUNKS

    results = {}
    for method in ("ibp", "crown_ibp"):
        chunk = DEFAULT_CHUNKS[method]
        seconds = eva_time(model, image, 32, method, chunk=chunk, epsilon=2 / 255)
        results[method] = {"seconds": seconds, "regions": 1025, "chunk": chunk}
        print(f"32 x 32 grid, {method}: {seconds:.1f} s for 1025 regions (chunks of {chunk})", flush=True)
    if not quick:
        sampled = 4
        seconds = eva_time(model, image, 32, "crown", chunk=1, epsilon=2 / 255, limit=sampled)
        results["crown"] = {"seconds_per_region": seconds / sampled, "extrapolated_seconds": seconds / sampled * 1025}
        print(f"32 x 32 grid, crown: {seconds / sampled:.1f} s per region, about {seconds / sampled * 1025 / 60:.0f} "
              "min for 1025 (extrapolated)", flush=True)
    return results


def evidence(quick: bool) -> dict:
    from conftest import MODELS, load_samples
    from onnxplain_client import OnnxplainClient

    from service.api.server import EmbeddedServer
    from service.config import Settings
    from service.metrics.localisation import relevance_mass

    samples = load_samples("shapes")[:4 if quick else 8]
    rows = {
        "EVA (IBP)": ("eva", {"bound_method": "ibp"}, samples),
        "EVA (CROWN-IBP)": ("eva", {"bound_method": "crown_ibp"}, samples),
        "RISE": ("rise", {}, samples),
        "Sobol": ("sobol", {}, samples),
        "occlusion": ("occlusion", {}, samples),
    }
    if not quick:  # CROWN costs seconds per region on CPU: a 4 x 4 grid on 4 samples
        rows["EVA (CROWN, 4 x 4)"] = ("eva", {"bound_method": "crown", "grid_size": 4}, samples[:4])
    table = {}
    with EmbeddedServer(Settings(models_dir=MODELS)) as address, OnnxplainClient(address) as client:
        for row, (method, params, chosen) in rows.items():
            scores = {name: [] for name in [*METRICS, "relevance_mass"]}
            started = time.perf_counter()
            for sample in chosen:
                explanation = client.explain("shapes", sample["path"], method, params, seed=0, metrics=METRICS)
                for name in METRICS:
                    scores[name].append(explanation.attributions[0].metrics[name].score)
                scores["relevance_mass"].append(relevance_mass(explanation.map, sample["mask_array"]))
            table[row] = {name: float(np.mean(values)) for name, values in scores.items()}
            table[row]["samples"] = len(chosen)
            table[row]["seconds_per_image"] = (time.perf_counter() - started) / len(chosen)
            print(f"{row:20s} " + "  ".join(f"{k} {v:.3f}" for k, v in table[row].items()), flush=True)
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    from conftest import load_samples

    model = shapes()
    image = load_samples("shapes")[0]["pixels"].astype(np.float32) / 255
    eva_time(model, image, 2, "ibp", chunk=5, epsilon=2 / 255)  # builds the mirror outside the timings
    results = {"batching": batching(model, image, 1 if args.quick else args.repeat),
               "fine_grid": fine_grid(model, image, args.quick), "evidence": evidence(args.quick)}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
