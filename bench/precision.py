"""Samples chosen by convergence against fixed sample counts, per randomized method.

    python bench/precision.py                 # bundled models, then 224 x 224 models (about 40 min on 2 cores)
    python bench/precision.py --quick         # bundled models only, 3 seeds, 2 images each

For every randomized method, model and image, over several seeds:

- **adaptive**: the method at its defaults (``target_reliability`` 0.9, its count parameter a cap): samples
  and forward passes used, the reliability it reports, how often it reached the target;
- **fixed**: the method at its former fixed count (``target_reliability`` 0): the reliability it reports;
- **seed-to-seed**: the Spearman correlation of the maps of two seeds at the defaults, the agreement a user
  sees when re-running (what the reliability predicts);
- **overhead**: a call's wall time over the wall time of as many bare forward passes at the same batch size
  (precision estimates and reliability checks included; goal <= 1.05), on the 224^2 resnet18 of
  ``bench/explainers.py``, where the forward pass costs what it costs in production.

The 224^2 convergence rows use the bundled shapes CNN exported at 224 x 224 (``shapes_at_224``).

Prints a Markdown table (the one in bench/README.md) and, with ``--out``, writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from explainers import bare, export_resnet18, load  # noqa: E402 - bench/explainers.py: the 224^2 model, bare passes

METHODS = ("rise", "sobol", "hsic", "lime", "kernel_shap", "wcam")
# The counts each method used before issue 12 (fixed): what "fixed" reruns.
FORMER = {"rise": {"num_masks": 4000}, "sobol": {"num_designs": 32}, "hsic": {"num_designs": 500},
          "lime": {"num_samples": 1000}, "kernel_shap": {"num_samples": 1000}, "wcam": {"num_designs": 8}}
BUNDLED = ("shapes", "scale_texture", "digits")
BATCH = 32


def bundled(name: str):
    from service.runtime.loader import load_model

    path = ROOT / "models" / name / "model.onnx"
    return load_model(name, path.read_bytes(), source=str(path), model_path=path, default_batch_size=BATCH)


def samples(model, name: str, count: int) -> list[np.ndarray]:
    folder = ROOT / "models" / name / "samples"
    manifest = json.loads((folder / "manifest.json").read_text())["samples"][:count]
    return [model.fit_image(np.asarray(Image.open(folder / s["image"]))) for s in manifest]


def explain(model, method_name: str, params: dict, image: np.ndarray, seed: int):
    from service.explainers import get_method
    from service.jobs.explain import ExplainJob, run_explain

    method = get_method(method_name)
    started = time.perf_counter()
    result = run_explain(model, ExplainJob(method, method.make_params(params), image, seed=seed, batch_size=BATCH))
    return result, time.perf_counter() - started


def run_case(model, model_name: str, method: str, images: list[np.ndarray], seeds: int) -> dict:
    adaptive, fixed, agreement = [], [], []
    for index, image in enumerate(images):
        maps = []
        for seed in range(seeds):
            result, seconds = explain(model, method, {}, image, seed)
            precision = result.precision
            adaptive.append((precision.samples, result.forward_passes, float(precision.reliability[0]),
                             precision.stop_reason.value))
            maps.append(result.maps[0].ravel())
            if seed < 2:  # the fixed count is deterministic in cost; two seeds show its reliability
                fixed_result, _ = explain(model, method, {**FORMER[method], "target_reliability": 0.0}, image, seed)
                fixed.append((fixed_result.forward_passes, float(fixed_result.precision.reliability[0])))
        agreement += [stats.spearmanr(a, b).statistic for a, b in itertools.combinations(maps, 2)]
    samples_used, passes, reliability, reasons = zip(*adaptive)
    return {"model": model_name, "method": method, "images": len(images), "seeds": seeds,
            "adaptive_samples_median": float(np.median(samples_used)),
            "adaptive_samples_range": [int(min(samples_used)), int(max(samples_used))],
            "adaptive_passes_mean": float(np.mean(passes)),
            "adaptive_reliability_mean": float(np.mean(reliability)),
            "adaptive_reliability_sd": float(np.std(reliability)),
            "reached_target": float(np.mean([r == "reliability" for r in reasons])),
            "fixed_passes": float(np.mean([p for p, _ in fixed])),
            "fixed_reliability_mean": float(np.mean([r for _, r in fixed])),
            "seed_agreement_mean": float(np.nanmean(agreement)), "seed_agreement_sd": float(np.nanstd(agreement))}


def shapes_at_224(folder: Path):
    """The bundled shapes CNN (convolutions and a global average pool: any input size) exported at 224 x 224
    from its PyTorch weights: a 224^2 model whose maps have structure (a random-weight resnet18's are flat, so
    its reliability stays near 0 at any sample count)."""
    import torch

    sys.path.insert(0, str(ROOT / "models"))
    from common import export_onnx
    from make_shapes import ShapesNet
    from service.runtime.loader import load_model

    net = ShapesNet()
    net.load_state_dict(torch.load(ROOT / "models" / "shapes" / "source.pt"))
    path = folder / "shapes224.onnx"
    export_onnx(net, torch.zeros(1, 3, 224, 224), path, "logits")
    config = json.loads((ROOT / "models" / "shapes" / "config.json").read_text())
    return load_model("shapes224", path.read_bytes(), source=str(path), default_batch_size=BATCH,
                      overrides={"preprocessing": config["preprocessing"], "labels": config["labels"]})


def load_resnet18(folder: Path):
    return load(export_resnet18(folder / "resnet18.onnx"))  # the 224^2 benchmark model of bench/explainers.py


# Fixed counts of about 1000 passes each for the overhead, with the reliability checks running (a target no map
# of a random-weight resnet18 reaches, so every round is looked at and the whole count is spent).
OVERHEAD = {"rise": {"num_masks": 1024}, "sobol": {"num_designs": 16}, "hsic": {"num_designs": 1024},
            "lime": {"num_samples": 1024}, "kernel_shap": {"num_samples": 1024},
            "wcam": {"num_designs": 16, "grid_size": 8, "sufficient_image": False}}


def overhead(model, image: np.ndarray, methods: list[str]) -> list[tuple[str, int, float]]:
    """Each method's wall time (precision included) over as many bare forward passes: the fastest of 3 runs
    each, alternating with the bare runs so a change of the machine's load hits both."""
    found = []
    for method in methods:
        params = {**OVERHEAD[method], "target_reliability": 0.99}
        runs, floors = [], []
        for seed in range(3):
            result, seconds = explain(model, method, params, image, seed)
            runs.append(seconds)
            floors.append(bare(model, result.forward_passes, image))
        found.append((method, result.forward_passes, min(runs) / min(floors)))
    return found


def overhead_table(found: list[tuple[str, int, float]]) -> str:
    lines = ["| method (resnet18 224, target 0.99) | passes | wall time / bare forward passes |", "|---|---|---|"]
    lines += [f"| {method} | {passes} | {ratio:.3f} |" for method, passes, ratio in found]
    return "\n".join(lines)


def table(rows: list[dict]) -> str:
    lines = ["| model | method | adaptive: samples (median, range) | passes | reliability (mean +- sd) | reached 0.9 "
             "| fixed: passes | reliability | seed-to-seed Spearman (mean +- sd) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        low, high = r["adaptive_samples_range"]
        lines.append(
            f"| {r['model']} | {r['method']} | {r['adaptive_samples_median']:g} ({low}-{high}) "
            f"| {r['adaptive_passes_mean']:.0f} | {r['adaptive_reliability_mean']:.3f} +- "
            f"{r['adaptive_reliability_sd']:.3f} | {r['reached_target']:.0%} | {r['fixed_passes']:.0f} "
            f"| {r['fixed_reliability_mean']:.3f} | {r['seed_agreement_mean']:.3f} +- {r['seed_agreement_sd']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="bundled models only, 3 seeds, 2 images each")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--images", type=int, default=3)
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--only-224", action="store_true", help="skip the bundled models")
    parser.add_argument("--overhead-only", action="store_true", help="only the overhead on the 224^2 resnet18")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    seeds, count = (3, 2) if args.quick else (args.seeds, args.images)
    methods = args.methods.split(",")
    rows = []
    if args.overhead_only:
        with tempfile.TemporaryDirectory() as folder:
            picture = samples(shapes_at_224(Path(folder)), "shapes", 1)
            print(overhead_table(overhead(load_resnet18(Path(folder)), picture[0], methods)), flush=True)
        return
    for name in () if args.only_224 else BUNDLED:
        model = bundled(name)
        pictures = samples(model, name, count)
        for method in methods:
            rows.append(run_case(model, name, method, pictures, seeds))
            print(table(rows[-1:]).splitlines()[-1], flush=True)
    if not args.quick:
        with tempfile.TemporaryDirectory() as folder:
            model = shapes_at_224(Path(folder))
            picture = samples(model, "shapes", 1)
            for method in methods:
                rows.append(run_case(model, "shapes CNN at 224", method, picture, 3))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
            print(overhead_table(overhead(load_resnet18(Path(folder)), picture[0], methods)), flush=True)
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
