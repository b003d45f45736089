"""Explainer overhead, memory and a captum comparison on a 224 x 224 torchvision resnet18 (CPU).

    python bench/explainers.py            # all measurements (about 6 minutes on 2 cores)
    python bench/explainers.py --quick    # fewer passes, for a smoke run

Speed is reported as ratios measured in one run, since absolute times on shared machines
are noise: each explainer's wall time over the wall time of the same number of bare
forward passes at the same batch size (goal <= 1.10), and our occlusion (onnxruntime)
over captum's Occlusion on the PyTorch model with the same windows; WCAM's reconstruction time
for g = 28, N = 8 (6288 images) over the forward time of as many images (goal <= 0.25). Peak RSS of RISE at
N = 1000 and 8000 is measured in fresh processes (goal: flat).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
BATCH = 32


def export_resnet18(path: Path) -> Path:
    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, 3, 224, 224), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    return path


def load(path: Path):
    from service.runtime.loader import load_model

    return load_model("resnet18", path.read_bytes(), source=str(path), overrides={"preprocessing": IMAGENET},
                      default_batch_size=BATCH)


def explain(model, method_name: str, params: dict, image: np.ndarray, batch_size: int = BATCH) -> tuple[float, int]:
    from service.explainers import get_method
    from service.jobs.explain import ExplainJob, run_explain

    method = get_method(method_name)
    job = ExplainJob(method, method.make_params(params), image, seed=0, batch_size=batch_size)
    started = time.perf_counter()
    result = run_explain(model, job)
    return time.perf_counter() - started, result.forward_passes


def bare(model, passes: int, image: np.ndarray, batch_size: int = BATCH) -> float:
    """The same number of forward passes, same batch size, on copies of the image: the floor."""
    batch = np.repeat(image[None], batch_size, axis=0)
    started = time.perf_counter()
    for start in range(0, passes, batch_size):
        model.predict(batch[:min(batch_size, passes - start)], batch_size=batch_size)
    return time.perf_counter() - started


def captum_ratio(model, image: np.ndarray, window: int, stride: int) -> dict:
    import torch
    import torchvision
    from captum.attr import Occlusion

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    mean, std = np.array(IMAGENET["mean"], np.float32), np.array(IMAGENET["std"], np.float32)
    tensor = torch.from_numpy(((image - mean) / std).transpose(2, 0, 1)[None].copy())
    baseline = torch.from_numpy(((np.broadcast_to(mean, image.shape) - mean) / std).transpose(2, 0, 1)[None].copy())
    target = int(model.predict(image[None])[0].argmax())
    started = time.perf_counter()
    with torch.no_grad():
        Occlusion(net).attribute(tensor, sliding_window_shapes=(3, window, window), strides=(3, stride, stride),
                                 baselines=baseline, target=target, perturbations_per_eval=BATCH)
    captum_s = time.perf_counter() - started
    ours_s, passes = explain(model, "occlusion", {"window": [window], "stride": [stride]}, image)
    return {"window": window, "stride": stride, "passes": passes, "ours_s": round(ours_s, 2),
            "captum_s": round(captum_s, 2), "ours_over_captum": round(ours_s / captum_s, 3)}


def wcam_reconstruction(model, image: np.ndarray, grid: int, designs: int) -> dict:
    """WCAM's reconstruction (masks over the wavelet layout, batched inverse, clip) for all N(g^2 + 2) design
    rows, against the bare forward passes of as many images, at the same batch size."""
    from service.explainers import wavelets, wcam
    from service.explainers.sensitivity import design_rows, design_size, sobol_design, upsample_nearest

    params = wcam.WcamParams(grid_size=grid, num_designs=designs)
    layout = wavelets.make_layout(224, 224, params.levels, params.wavelet)
    images = wcam.reconstruction(image, layout, params)
    a, b = sobol_design(grid * grid, designs, np.random.default_rng(0))
    rows = design_size(grid * grid, designs)
    started = time.perf_counter()
    for start in range(0, rows, BATCH):
        masks = design_rows(a, b, start, min(start + BATCH, rows)).reshape(-1, grid, grid)
        images(upsample_nearest(masks, (224, 224)))
    reconstruction_s = time.perf_counter() - started
    forward_s = bare(model, rows, image)
    return {"grid_size": grid, "num_designs": designs, "passes": rows, "reconstruction_s": round(reconstruction_s, 2),
            "forward_s": round(forward_s, 2), "reconstruction_over_forward": round(reconstruction_s / forward_s, 3)}


def rss_child(model_path: str, masks: int) -> None:
    """Run in a fresh process: RISE with ``masks`` masks, then print the peak RSS in MiB."""
    model = load(Path(model_path))
    image = np.random.default_rng(0).random((224, 224, 3), dtype=np.float32)
    explain(model, "rise", {"num_masks": masks}, image)
    # VmHWM, not getrusage: Linux carries ru_maxrss across exec, so a child would report its parent's peak.
    status = Path("/proc/self/status").read_text()
    print(int(next(line for line in status.splitlines() if line.startswith("VmHWM:")).split()[1]) / 1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each measurement; the fastest counts")
    parser.add_argument("--rss-child", nargs=2, metavar=("MODEL", "MASKS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        return rss_child(args.rss_child[0], int(args.rss_child[1]))
    sys.path.insert(0, str(ROOT))
    with tempfile.TemporaryDirectory() as tmp:
        path = export_resnet18(Path(tmp) / "resnet18.onnx")
        model = load(path)
        image = np.random.default_rng(0).random((224, 224, 3), dtype=np.float32)
        model.predict(image[None])  # warm-up: first-run allocations are not the explainer's cost
        cases = {
            "occlusion": {"window": [32], "stride": [16]},
            "rise": {"num_masks": 256 if args.quick else 1024},
            "sobol": {"grid_size": 8, "num_designs": 2 if args.quick else 8},
        }
        overhead = {}
        for name, params in cases.items():
            # Alternate the two and keep each one's best: a noisy neighbour slows one run, not the minimum.
            explain_times, bare_times = [], []
            for _ in range(args.repeat):
                seconds, passes = explain(model, name, params, image)
                explain_times.append(seconds)
                bare_times.append(bare(model, passes, image))
            explain_s, bare_s = min(explain_times), min(bare_times)
            overhead[name] = {"params": params, "passes": passes, "explain_s": round(explain_s, 2),
                              "bare_s": round(bare_s, 2), "ratio": round(explain_s / bare_s, 3)}
            print(name, overhead[name], file=sys.stderr, flush=True)
        captum = captum_ratio(model, image, 32 if args.quick else 15, 16 if args.quick else 8)
        print("captum", captum, file=sys.stderr, flush=True)
        reconstruction = wcam_reconstruction(model, image, 28, 1 if args.quick else 8)
        print("wcam", reconstruction, file=sys.stderr, flush=True)
        peaks = {}
        for masks in ((100, 800) if args.quick else (1000, 8000)):
            run = subprocess.run([sys.executable, __file__, "--rss-child", str(path), str(masks)], check=True,
                                 capture_output=True, text=True, cwd=ROOT)
            peaks[masks] = round(float(run.stdout.strip().splitlines()[-1]), 1)
            print("rise peak RSS MiB", masks, peaks[masks], file=sys.stderr, flush=True)
    print(json.dumps({"batch_size": BATCH, "overhead": overhead, "occlusion_vs_captum": captum,
                      "wcam_reconstruction": reconstruction, "rise_peak_rss_mib": peaks}, indent=2))


if __name__ == "__main__":
    main()
