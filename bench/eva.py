"""EVA on the bundled `shapes` model (CPU): batching, the cost of a fine grid, and how its maps score.

    python bench/eva.py             # everything (about 30 minutes on 2 cores, CROWN dominating)
    python bench/eva.py --quick     # no CROWN rows, fewer samples
    python bench/eva.py --crown-only [--full]   # CROWN's cost only (section 4), about 5 min (--full: 10 more)

1. Batched regions: the wall time of bounding the 65 regions of an 8 x 8 grid one region per auto_LiRPA call,
   over the time with 16 (the default chunk) or all 65 regions per call (ratios, fastest of --repeat
   alternating runs).
2. A 32 x 32 grid (1025 regions, fixed epsilon, each method's default chunk): wall time per bound method;
   CROWN, seconds per region here, is timed on a few regions and extrapolated (marked as such).
3. The evidence table: deletion, insertion (RISE's definitions, 16 steps), mu-fidelity and the relevance mass
   on the ground-truth object of EVA (IBP, CROWN-IBP, CROWN) next to RISE, Sobol and occlusion, over the
   samples, every method at its defaults but EVA's radius: calibrated per image (calibrate_radius, the default
   before issue 14, which bench/README.md's table measured; studies/eva.py sweeps the radius).
4. CROWN on the 8 x 8 grid, shared intermediate bounds (the default, ``MarginBounds``) against every box alone
   (``share=False``), one region per call, at two radii: 3e-4 (about twice the radius CROWN-IBP certifies on
   the first sample, i.e. what EVA's calibration picks) and 2/255 (section 2's). The full ball is bounded
   alone in both arms; then 3 regions (a corner cell, an inner one, the opposite corner), alternating the arms,
   fastest of --repeat; seconds per region, the 8 x 8 grid extrapolated (ball + 64 regions), and the peak RSS
   of each arm above the process's (VmHWM reset before each arm; the mirror's build is not counted). --full
   also times the whole grid with sharing.
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


def peak_rss_reset() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def crown_cost(model, image, repeat: int, full: bool) -> dict:
    from service.explainers import eva
    from service.verify.bounds import MarginBounds
    from service.verify.mirror import mirror_for

    scores = model.predict(image[None])[0]
    target = int(np.argmax(scores))
    competitors = eva.competitors_of(scores, target, 9)
    labels = eva.groups(image, eva.EvaParams(grid_size=8)).labels
    results = {}
    for epsilon in (3e-4, 2 / 255):
        lower, upper = eva.region_boxes(image, labels, np.array([-1, 0, 27, 63]), epsilon)
        seconds = {True: [], False: []}
        peaks, found = {}, {}
        for _ in range(repeat):
            for share in (True, False):
                bounds = MarginBounds(model, mirror_for(model), "crown", share=share)
                peak_rss_reset()
                started = time.perf_counter()
                ball = bounds(lower[:1], upper[:1], target, competitors)
                ball_seconds = time.perf_counter() - started
                started = time.perf_counter()
                regions = [bounds(lower[i:i + 1], upper[i:i + 1], target, competitors) for i in range(1, 4)]
                seconds[share].append(((time.perf_counter() - started) / 3, ball_seconds))
                peaks[share] = max(peaks.get(share, 0.0), peak_rss_mb())
                found[share] = np.concatenate([ball, *regions])
        row = {}
        for share in (True, False):
            per_region, ball_seconds = min(seconds[share])
            row["shared" if share else "alone"] = {
                "seconds_per_region": per_region, "ball_seconds": ball_seconds,
                "grid_seconds_extrapolated": ball_seconds + 64 * per_region, "peak_rss_mb": peaks[share]}
        difference = found[True] - found[False]
        row["shared_minus_alone"] = {"max": float(difference.max()), "min": float(difference.min())}
        row["speedup_per_region"] = row["alone"]["seconds_per_region"] / row["shared"]["seconds_per_region"]
        print(f"CROWN, epsilon {epsilon:.2g}: per region {row['alone']['seconds_per_region']:.2f} s alone, "
              f"{row['shared']['seconds_per_region']:.2f} s shared ({row['speedup_per_region']:.1f}x); ball "
              f"{row['shared']['ball_seconds']:.2f} s; 8 x 8 grid about {row['alone']['grid_seconds_extrapolated']:.0f}"
              f" s alone, {row['shared']['grid_seconds_extrapolated']:.0f} s shared; peak RSS "
              f"{row['alone']['peak_rss_mb']:.0f} / {row['shared']['peak_rss_mb']:.0f} MB; shared - alone in "
              f"[{difference.min():.2g}, {difference.max():.2g}]", flush=True)
        if full and epsilon == 3e-4:
            row["grid_seconds_shared"] = eva_time(model, image, 8, "crown", chunk=1, epsilon=epsilon)
            print(f"CROWN, epsilon {epsilon:.2g}, 8 x 8 grid with sharing: {row['grid_seconds_shared']:.0f} s",
                  flush=True)
        results[f"{epsilon:.3g}"] = row
    return results


def evidence(quick: bool) -> dict:
    from conftest import MODELS, load_samples
    from onnxplain_client import OnnxplainClient

    from service.api.server import EmbeddedServer
    from service.config import Settings
    from service.metrics.localisation import relevance_mass

    samples = load_samples("shapes")[:4 if quick else 8]
    rows = {
        "EVA (IBP)": ("eva", {"bound_method": "ibp", "calibrate_radius": True}, samples),
        "EVA (CROWN-IBP)": ("eva", {"bound_method": "crown_ibp", "calibrate_radius": True}, samples),
        "RISE": ("rise", {}, samples),
        "Sobol": ("sobol", {}, samples),
        "occlusion": ("occlusion", {}, samples),
    }
    if not quick:  # CROWN costs seconds per region on CPU: a 4 x 4 grid on 4 samples
        rows["EVA (CROWN, 4 x 4)"] = ("eva", {"bound_method": "crown", "grid_size": 4, "calibrate_radius": True},
                                      samples[:4])
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
    parser.add_argument("--crown-only", action="store_true", help="only section 4, CROWN's cost")
    parser.add_argument("--full", action="store_true", help="with --crown-only: time the whole 8 x 8 grid too")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()
    from conftest import load_samples

    model = shapes()
    image = load_samples("shapes")[0]["pixels"].astype(np.float32) / 255
    eva_time(model, image, 2, "ibp", chunk=5, epsilon=2 / 255)  # builds the mirror outside the timings
    if args.crown_only:
        results = {"crown_cost": crown_cost(model, image, 1 if args.quick else min(args.repeat, 2), args.full)}
        if args.out:
            args.out.write_text(json.dumps(results, indent=2))
        return
    results = {"batching": batching(model, image, 1 if args.quick else args.repeat),
               "fine_grid": fine_grid(model, image, args.quick), "evidence": evidence(args.quick)}
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
