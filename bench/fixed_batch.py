"""Fixed-batch exports served freed, against their dynamic-batch twins (issue 13).

    python bench/fixed_batch.py            # 5 repeats, 128 images, occlusion window 16 stride 8 (169 windows)
    python bench/fixed_batch.py --quick    # 3 repeats, 64 images, occlusion stride 16 (36 windows)

Two torchvision architectures (``weights=None``, seed 0, 1000 classes) at 112 x 112, each exported twice with
the TorchScript exporter: without ``dynamic_axes`` (the batch fixed at 1) and with a dynamic batch (the twin).
Three arms per architecture:

- **twin**: the dynamic-batch export, batches of 32;
- **fixed, off**: the fixed export with ``free_batch`` false, as served before issue 13: one image a call;
- **fixed, on**: the fixed export served freed (``service.runtime.batch_serving``), batches of 32.

Per arm, the best of the repeats (arms alternate inside each repeat, their order rotated, so contention hits them
alike) of: forward
passes per second (``LoadedModel.predict`` on a batch of random images) and the wall time of one occlusion
explain (``run_explain``, as a job runs it). Ratios are wall-time ratios to the twin within the same run; the
load time (once, not repeated) includes, for the freed arm, the rewrite, a second session and the proof.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ARCHITECTURES = ("resnet18", "shufflenet_v2_x1_0")
SIZE = 112
ARMS = ("twin", "fixed, off", "fixed, on")


def export(architecture: str, folder: Path) -> tuple[bytes, bytes]:
    """(the batch-1 export, its dynamic-batch twin): the same weights."""
    import torch
    import torchvision

    torch.manual_seed(0)
    net = getattr(torchvision.models, architecture)(weights=None).eval()
    exports = []
    for dynamic in (False, True):
        path = folder / f"{architecture}_{'dynamic' if dynamic else 'fixed'}.onnx"
        axes = {"image": {0: "batch"}, "scores": {0: "batch"}} if dynamic else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, torch.zeros(1, 3, SIZE, SIZE), str(path), dynamo=False, opset_version=17,
                              input_names=["image"], output_names=["scores"], dynamic_axes=axes)
        exports.append(path.read_bytes())
    return exports[0], exports[1]


def load_arms(architecture: str, fixed: bytes, twin: bytes, device=None) -> tuple[dict, dict]:
    """The three arms' models, and each one's load time (the freed arm's includes the rewrite and its proof).
    ``device``: a DevicePreference or ExecutionSettings (default: the server's default, auto)."""
    from service.runtime.loader import load_model
    from service.runtime.providers import DevicePreference

    sources = {"twin": (twin, {}), "fixed, off": (fixed, {"free_batch": False}), "fixed, on": (fixed, {})}
    arms, load_seconds = {}, {}
    for arm, (graph, overrides) in sources.items():
        start = time.perf_counter()
        arms[arm] = load_model(f"{architecture} {arm}", graph, source="bench", overrides=overrides,
                               device=device or DevicePreference.AUTO)
        load_seconds[arm] = time.perf_counter() - start
    assert [arms[arm].info.batch_axis.value for arm in ARMS] == ["dynamic", "fixed", "freed"], \
        {arm: arms[arm].info.batch_axis_reason for arm in ARMS}
    return arms, load_seconds


def passes_per_second(model, images: np.ndarray) -> float:
    start = time.perf_counter()
    model.predict(images)
    return len(images) / (time.perf_counter() - start)


def occlusion_seconds(model, image: np.ndarray, stride: int) -> tuple[float, int]:
    from service.explainers import get_method
    from service.jobs.explain import ExplainJob, run_explain

    occlusion = get_method("occlusion")
    job = ExplainJob(occlusion, occlusion.make_params({"window": [16], "stride": [stride]}), image, seed=0)
    start = time.perf_counter()
    result = run_explain(model, job)
    return time.perf_counter() - start, result.forward_passes


def measure(architecture: str, arms: dict, repeats: int, count: int, stride: int) -> dict:
    rng = np.random.default_rng(0)
    images = rng.random((count, SIZE, SIZE, 3), dtype=np.float32)
    image = images[0]
    for model in arms.values():  # warm-up: the first call allocates
        model.predict(images[:32])
    rates = {arm: [] for arm in ARMS}
    explains = {arm: [] for arm in ARMS}
    passes = {}
    for repeat in range(repeats):
        # Alternated, and the order rotated each repeat: every arm sees the same contention, none always first.
        for arm in ARMS[repeat % len(ARMS):] + ARMS[:repeat % len(ARMS)]:
            rates[arm].append(passes_per_second(arms[arm], images))
            seconds, passes[arm] = occlusion_seconds(arms[arm], image, stride)
            explains[arm].append(seconds)
    return {arm: {"passes_per_s": max(rates[arm]), "occlusion_s": min(explains[arm]), "passes": passes[arm],
                  "raw_passes_per_s": rates[arm], "raw_occlusion_s": explains[arm],
                  "max_batch": arms[arm].info.max_batch} for arm in ARMS}


def compare(architecture: str, *, quick: bool = False, device=None, sizes: tuple[int, int, int] | None = None) -> dict:
    """One architecture's three arms (see ``measure``), with their load times and providers; ``bench/gpu.py``
    calls it per device. ``sizes``: (repeats, images per predict, occlusion stride), else by ``quick``."""
    repeats, count, stride = sizes or ((3, 64, 16) if quick else (5, 128, 8))
    with tempfile.TemporaryDirectory() as folder:
        fixed, twin = export(architecture, Path(folder))
        arms, load_seconds = load_arms(architecture, fixed, twin, device)
        results = measure(architecture, arms, repeats, count, stride)
    for arm in ARMS:
        results[arm].update(load_s=load_seconds[arm], provider=arms[arm].info.provider)
    results["freed_over_twin"] = results["twin"]["passes_per_s"] / results["fixed, on"]["passes_per_s"]
    results["one_at_a_time_over_twin"] = results["twin"]["passes_per_s"] / results["fixed, off"]["passes_per_s"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats, 64 images, occlusion stride 16")
    args = parser.parse_args()
    repeats, count, stride = (3, 64, 16) if args.quick else (5, 128, 8)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for architecture in ARCHITECTURES:
            fixed, twin = export(architecture, Path(folder))
            arms, load_seconds = load_arms(architecture, fixed, twin)
            print(f"{architecture}: freed: {arms['fixed, on'].info.batch_axis_reason}", file=sys.stderr)
            results = measure(architecture, arms, repeats, count, stride)
            for arm in ARMS:
                results[arm]["load_s"] = load_seconds[arm]
            for arm in ARMS:
                print(f"  {arm:11} passes/s {results[arm]['raw_passes_per_s']}  occlusion s "
                      f"{results[arm]['raw_occlusion_s']}", file=sys.stderr)
            rows.append((architecture, results))
    print(f"\n{SIZE} x {SIZE}, {count} images per predict, occlusion window 16 stride {stride}; best of {repeats}, "
          "arms alternated\n")
    print("| model | arm | batch | passes/s | time x twin | occlusion passes | occlusion s | time x twin | load s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for architecture, results in rows:
        twin = results["twin"]
        for arm in ARMS:
            r = results[arm]
            print(f"| {architecture} | {arm} | {r['max_batch']} | {r['passes_per_s']:.0f} | "
                  f"{twin['passes_per_s'] / r['passes_per_s']:.2f} | {r['passes']} | {r['occlusion_s']:.2f} | "
                  f"{r['occlusion_s'] / twin['occlusion_s']:.2f} | {r['load_s']:.2f} |")


if __name__ == "__main__":
    main()
