"""The GPU path, measured: each job against the same job on the CPU of the same machine.

    make .venv/.installed-test && .venv/bin/python bench/gpu.py --out gpu.json   # a fresh clone, < 10 min on a GPU
    python bench/gpu.py --smoke                # every measurement at tiny sizes, on whatever is here (CPU: ~1 min)

What it prints (and writes to ``--out`` as JSON), for the accelerated arm (the server's default execution
settings: TensorRT, then CUDA, then CPU, as available) and for the CPU arm (``device=cpu``):

- the provider each session really runs on (read back from the session), and each model's load time (on TensorRT
  it includes building the engine, unless ``$XDG_CACHE_HOME/onnxplain/tensorrt`` holds it);
- RISE, N = 4000, on a 224 x 224 torchvision ResNet-50 (``weights=None``, exported with a dynamic batch): goal
  <= 0.5 s; WCAM at g = 28, N = 8 (6,288 passes) reconstruction included: goal <= 1 s; occlusion, Sobol and
  HSIC; all through the job path the server runs (``bench/explainers.explain``), every sample drawn
  (``target_reliability`` 0);
- EVA with CROWN-IBP on a 16 x 16 grid (257 regions) of a CIFAR-size (32 x 32) ResNet: goal <= 2 s;
- forward passes per second through the session runner's I/O binding against a plain session run;
- fp16 against fp32: forward passes per second and accuracy (top-1 agreement, largest error over the scores'
  range on random images), and what the load decided (``ModelInfo.precision``, its reason);
- the serving benches of issue 13 on the default provider: a fixed-batch resnet18 export served freed against
  its dynamic-batch twin (``bench/fixed_batch.py``), and eight concurrent clients against one with the
  cross-request batcher on and off (``bench/batching.py``).

The CPU arm runs fewer passes (``cpu_scale``: fewer masks, designs or regions) and its times are extrapolated
linearly to the full count; such figures are marked ``extrapolated``. Each figure is the fastest of ``--repeat``
runs (the CPU arm: one run).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))  # onnx_builders.export_torch: the exporter settings the tests use

IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
GOALS_S = {"rise": 0.5, "wcam": 1.0, "eva": 2.0}
# Sampling methods draw every sample, so that a run's passes are the count asked for.
ALL_SAMPLES = {"target_reliability": 0}


@dataclass(frozen=True)
class Sizes:
    network: str  # a torchvision classifier, exported with weights=None
    side: int  # its input side
    batch: int  # images per session call on the accelerated arm
    cpu_batch: int
    rise_masks: int
    wcam: tuple[int, int]  # grid, designs: N (g^2 + 2) passes
    occlusion: tuple[int, int]  # window, stride
    sobol: tuple[int, int]  # grid, designs
    hsic_designs: int
    eva_grid: int
    eva_width: int  # channels of the CIFAR ResNet's first stage
    cpu_scale: float  # the CPU arm's share of the passes (then extrapolated)
    cpu_eva_grid: int
    repeat: int


FULL = Sizes("resnet50", 224, 128, 32, 4000, (28, 8), (16, 8), (8, 32), 2048, 16, 16, 0.1, 8, 3)
SMOKE = Sizes("resnet18", 32, 8, 8, 32, (4, 2), (16, 16), (4, 2), 16, 2, 4, 0.5, 2, 1)


def cifar_resnet(width: int):
    """A CIFAR-size ResNet (He et al. 2016, section 4.2 layout, one basic block per stage), 10 classes."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self, inputs: int, outputs: int, stride: int) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False), nn.BatchNorm2d(outputs),
                                      nn.ReLU(), nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(outputs))
            self.shortcut = (nn.Identity() if stride == 1 and inputs == outputs else
                             nn.Sequential(nn.Conv2d(inputs, outputs, 1, stride, bias=False), nn.BatchNorm2d(outputs)))

        def forward(self, x):
            return torch.relu(self.body(x) + self.shortcut(x))

    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
                         Block(width, width, 1), Block(width, 2 * width, 2), Block(2 * width, 4 * width, 2),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, 10)).eval()


def export_models(sizes: Sizes, folder: Path) -> dict[str, Path]:
    import torch
    import torchvision
    from onnx_builders import export_torch

    torch.manual_seed(0)
    network = getattr(torchvision.models, sizes.network)(weights=None).eval()
    return {"imagenet": export_torch(network, folder / f"{sizes.network}.onnx", (1, 3, sizes.side, sizes.side)),
            "cifar": export_torch(cifar_resnet(sizes.eva_width), folder / "cifar_resnet.onnx", (1, 3, 32, 32))}


def load(path: Path, execution, batch: int, **overrides):
    """A model through the server's loader, timed (a TensorRT engine is built here)."""
    from service.runtime.loader import load_model

    started = time.perf_counter()
    model = load_model(path.stem, path.read_bytes(), source=str(path), default_batch_size=batch, device=execution,
                       overrides={"preprocessing": IMAGENET, **overrides})
    return model, time.perf_counter() - started


def timed_job(model, method: str, params: dict, image: np.ndarray, batch: int, repeat: int) -> dict:
    """The fastest of ``repeat`` runs of one job through the job path, and its forward passes."""
    from explainers import explain

    runs = [explain(model, method, params, image, batch_size=batch) for _ in range(repeat)]
    seconds, passes = min(runs)
    return {"seconds": seconds, "passes": passes, "passes_per_s": passes / seconds}


def passes_per_second(model, image: np.ndarray, batch: int, passes: int, repeat: int) -> float:
    from explainers import bare

    return passes / min(bare(model, passes, image, batch_size=batch) for _ in range(repeat))


def job_cases(sizes: Sizes, scale: float, eva_grid: int) -> dict[str, tuple[str, dict, float]]:
    """Each measured job: (method, params, full passes over these passes). ``scale`` < 1: fewer samples."""
    masks = max(8, round(sizes.rise_masks * scale))
    grid, designs = sizes.wcam
    wcam_designs = fewer_designs(designs, scale)
    sobol_grid, sobol_designs = sizes.sobol
    sobol_scaled = fewer_designs(sobol_designs, scale)
    hsic = max(8, round(sizes.hsic_designs * scale))
    window, stride = sizes.occlusion
    full_regions, regions = sizes.eva_grid ** 2 + 1, eva_grid ** 2 + 1
    return {
        "rise": ("rise", {"num_masks": masks, **ALL_SAMPLES}, sizes.rise_masks / masks),
        # The design's N (g^2 + 2) passes only: the sufficient-image search (up to g^2 more) is not in the goal.
        "wcam": ("wcam", {"grid_size": grid, "num_designs": wcam_designs, "sufficient_image": False, **ALL_SAMPLES},
                 designs / wcam_designs),
        "occlusion": ("occlusion", {"window": [window], "stride": [stride]}, 1.0),
        "sobol": ("sobol", {"grid_size": sobol_grid, "num_designs": sobol_scaled, **ALL_SAMPLES},
                  sobol_designs / sobol_scaled),
        "hsic": ("hsic", {"num_designs": hsic, **ALL_SAMPLES}, sizes.hsic_designs / hsic),
        "eva": ("eva", {"grid_size": eva_grid, "bound_method": "crown_ibp"}, full_regions / regions),
    }


def fewer_designs(designs: int, scale: float) -> int:
    """Sobol' designs scaled down, still a power of 2 of at least 2 (what WCAM and Sobol take)."""
    return min(designs, max(2, 2 ** round(np.log2(max(designs * scale, 1)))))


def run_arm(name: str, execution, sizes: Sizes, paths: dict[str, Path], *, cpu: bool) -> dict:
    """Every measurement on one arm (the accelerated or the CPU one)."""
    from service.runtime.providers import CPU, cuda_device_count

    batch, repeat = (sizes.cpu_batch, 1) if cpu else (sizes.batch, sizes.repeat)
    scale, eva_grid = (sizes.cpu_scale, sizes.cpu_eva_grid) if cpu else (1.0, sizes.eva_grid)
    rng = np.random.default_rng(0)
    image = rng.random((sizes.side, sizes.side, 3), dtype=np.float32)
    small = rng.random((32, 32, 3), dtype=np.float32)
    model, load_s = load(paths["imagenet"], execution, batch)
    cifar, cifar_load_s = load(paths["cifar"], execution, batch)
    arm = {"provider": model.info.provider, "cifar_provider": cifar.info.provider, "batch": batch,
           "load_s": load_s, "cifar_load_s": cifar_load_s, "jobs": {}}
    say(f"[{name}] {sizes.network} on {arm['provider']} (loaded in {load_s:.1f} s), CIFAR ResNet on "
        f"{arm['cifar_provider']}, batch {batch}")
    if not cpu and cuda_device_count() and arm["provider"] == CPU:
        say(f"[{name}] WARNING: the driver sees {cuda_device_count()} CUDA device(s) but the session runs on the CPU: "
            "onnxruntime-gpu's CUDA provider needs the CUDA runtime and cuDNN 9 of its CUDA major version (e.g. "
            "pip install 'onnxruntime-gpu[cuda,cudnn]')")
    model.predict(np.repeat(image[None], batch, axis=0))  # warm-up: cuDNN's algorithm search, first allocations
    arm["eva_device"] = explain_warmup(cifar, small, batch)
    say(f"[{name}] EVA's mirror on {arm['eva_device']}")
    for case, (method, params, factor) in job_cases(sizes, scale, eva_grid).items():
        target_model, target_image = (cifar, small) if case == "eva" else (model, image)
        result = timed_job(target_model, method, params, target_image, batch, repeat)
        result.update(params=params, full_seconds=result["seconds"] * factor, extrapolated=factor != 1.0)
        arm["jobs"][case] = result
        goal = f" (goal <= {GOALS_S[case]} s)" if case in GOALS_S and not cpu else ""
        # EVA's work is its regions' bounds (its forward passes are the clean image's only).
        count, unit = (eva_grid ** 2 + 1, "regions") if case == "eva" else (result["passes"], "passes")
        result[unit] = count
        how = f"extrapolated x{factor:.3g} from {count} {unit}" if factor != 1.0 else f"{count} {unit}"
        say(f"[{name}] {case}: {result['full_seconds']:.3f} s{goal}, {how}, {count / result['seconds']:.0f} {unit}/s")
    arm["bare_passes_per_s"] = passes_per_second(model, image, batch, 4 * batch, repeat)
    arm["io_binding"] = binding_against_plain(model, image, batch, repeat)
    say(f"[{name}] forward passes/s at batch {batch}: {arm['bare_passes_per_s']:.0f}; I/O binding {arm['io_binding']}")
    arm["fp16"] = fp16_against_fp32(model, paths["imagenet"], execution, image, batch, repeat, arm["bare_passes_per_s"])
    say(f"[{name}] fp16: {arm['fp16']}")
    return arm


def binding_against_plain(model, image: np.ndarray, batch: int, repeat: int) -> dict:
    """Forward passes per second through the session runner's I/O binding and through a plain run, alternated
    (what decides ``ONNXPLAIN_IO_BINDING``'s default on CUDA; on the CPU provider the server runs plain)."""
    runner = model._session  # the SessionRunner: the bench flips its path, the server decides it at load
    chosen, rates = runner.bound, {True: [], False: []}
    try:
        for _ in range(max(2, repeat)):
            for bound in rates:
                runner.bound = bound
                rates[bound].append(passes_per_second(model, image, batch, 4 * batch, 1))
    finally:
        runner.bound = chosen
    bound, plain = max(rates[True]), max(rates[False])
    return {"served_bound": chosen, "bound_passes_per_s": bound, "plain_passes_per_s": plain,
            "bound_over_plain": bound / plain}


def explain_warmup(cifar, image: np.ndarray, batch: int) -> str:
    """Build EVA's mirror and run its capability probes outside the timings; the device the mirror is on."""
    from explainers import explain

    from service.verify.mirror import mirror_for

    explain(cifar, "eva", {"grid_size": 2, "bound_method": "crown_ibp"}, image, batch_size=batch)
    return mirror_for(cifar).device


def fp16_against_fp32(fp32, path: Path, execution, image: np.ndarray, batch: int, repeat: int,
                      fp32_rate: float) -> dict:
    """The same network loaded with precision fp16: what the load decided, its speed, and its accuracy on random
    images against the fp32 model's scores."""
    from service.runtime.half_precision import check

    half, load_s = load(path, execution, batch, precision="fp16")
    pixels = np.random.default_rng(1).random((batch, *fp32.info.image_shape), dtype=np.float32)
    accuracy = check(fp32.predict(pixels), half.predict(pixels))
    half.predict(pixels)  # warm-up
    rate = passes_per_second(half, image, batch, 4 * batch, repeat)
    return {"served": half.info.precision, "reason": half.info.precision_reason, "provider": half.info.provider,
            "load_s": load_s, "passes_per_s": rate, "speedup_over_fp32": rate / fp32_rate,
            "top1_agreement": accuracy.top1_agreement, "relative_error": accuracy.relative_error}


def serving_benches(paths: dict[str, Path], execution, smoke: bool) -> dict:
    """Issue 13's two serving benches on this machine's default provider: a torchvision resnet18 exported at a
    fixed batch of 1, freed, against its dynamic-batch twin (``bench/fixed_batch.py``), and eight concurrent
    clients against one with the batcher on and off (``bench/batching.py``)."""
    import fixed_batch
    from batching import concurrency_ratio

    results = {
        "fixed_batch": fixed_batch.compare("resnet18", device=execution, sizes=(1, 8, 16) if smoke else (3, 256, 8)),
        "batching": concurrency_ratio(paths["imagenet"], clients=8, repeats=1 if smoke else 3, device=execution),
    }
    fixed = results["fixed_batch"]
    say(f"fixed batch (resnet18 112, {fixed['fixed, on']['provider']}): freed / twin time "
        f"{fixed['freed_over_twin']:.2f}, one image a call / twin {fixed['one_at_a_time_over_twin']:.2f}")
    batching = results["batching"]
    say(f"batching ({batching['provider']}): 8 clients batched / unbatched {batching['on_over_off_concurrent']:.2f}, "
        f"mean merged batch {batching['mean_merged_batch']}")
    return results


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: a check that everything runs")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU arm")
    parser.add_argument("--no-tensorrt", action="store_true", help="CUDA without TensorRT on the accelerated arm")
    parser.add_argument("--repeat", type=int, default=None, help="runs per figure on the accelerated arm")
    args = parser.parse_args(argv)
    import tempfile

    from service.config import Settings
    from service.runtime.providers import DevicePreference

    sizes = SMOKE if args.smoke else FULL
    if args.repeat:
        sizes = replace(sizes, repeat=args.repeat)
    accelerated = replace(Settings.from_env().execution, tensorrt=not args.no_tensorrt)
    results = {"sizes": asdict(sizes), "machine": platform.node(), "smoke": args.smoke, "arms": {}}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        paths = export_models(sizes, Path(folder))
        results["arms"]["accelerated"] = run_arm("accelerated", accelerated, sizes, paths, cpu=False)
        if not args.no_cpu:
            on_cpu = replace(accelerated, device=DevicePreference.CPU, verify_device=DevicePreference.CPU)
            results["arms"]["cpu"] = run_arm("cpu", on_cpu, sizes, paths, cpu=True)
        results.update(serving_benches(paths, accelerated, args.smoke))
    results["ratios"] = cpu_over_accelerated(results["arms"])
    results["wall_s"] = time.perf_counter() - started
    say(f"CPU / accelerated (full counts): {results['ratios']}; {results['wall_s']:.0f} s in all")
    text = json.dumps(results, indent=2, default=str)
    if args.out:
        args.out.write_text(text)
    print(text)
    return results


def cpu_over_accelerated(arms: dict) -> dict:
    if "cpu" not in arms:
        return {}
    fast, slow = arms["accelerated"]["jobs"], arms["cpu"]["jobs"]
    return {case: slow[case]["full_seconds"] / fast[case]["full_seconds"] for case in fast}


if __name__ == "__main__":
    main()
