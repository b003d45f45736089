"""Dynamic batching (issue 13): does merging concurrent jobs' session calls buy throughput?

    python bench/batching.py            # 224 x 224 resnet18, 8 clients, 3 repeats (about 3 minutes on 2 cores)
    python bench/batching.py --quick    # 112 x 112, 2 repeats (under a minute)

Eight clients each run one occlusion explanation with a small batch (8 images per call) at the same time; one
client runs the same eight explanations one after another. Both arms run with the model's batcher off and on
(service.runtime.batcher), alternating, best of the repeats. Reported: images per second of each arm, and the
ratios 8 clients / 1 client (batcher off, on) and batcher on / off (8 clients). Also the session calls the
batched 8-client arm made against the chunks the jobs sent, and its mean merged batch.

``concurrency_ratio(model_path, ...)`` is the measurement as a function, for bench/gpu.py: give it an exported
model and a provider preference.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.explainers import IMAGENET  # noqa: E402

CLIENT_BATCH = 8


def export_resnet18(path: Path, size: int) -> Path:
    import warnings

    import torch
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, torch.zeros(1, 3, size, size), str(path), dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    return path


def _load(path: Path, batching: bool, device, max_queue_delay_ms: float):
    """``device``: "cpu", "cuda", "auto", or the server's whole ExecutionSettings (``bench/gpu.py``)."""
    from service.runtime.loader import load_model
    from service.runtime.providers import DevicePreference

    overrides = {"preprocessing": IMAGENET,
                 "dynamic_batching": {"enabled": batching, "max_queue_delay_ms": max_queue_delay_ms}}
    return load_model(f"bench-{'on' if batching else 'off'}", path.read_bytes(), source=str(path),
                      overrides=overrides,
                      device=DevicePreference(device) if isinstance(device, str) else device)


def _explain(model, image: np.ndarray, window: int) -> int:
    from service.explainers import get_method
    from service.jobs.explain import ExplainJob, run_explain

    method = get_method("occlusion")
    params = method.make_params({"window": [window, window], "stride": [window, window]})
    job = ExplainJob(method, params, image, seed=0, batch_size=CLIENT_BATCH)
    return run_explain(model, job).forward_passes


def _arm(model, images: list[np.ndarray], window: int, concurrent: bool) -> tuple[float, int]:
    """Seconds and images for all the explanations: from one thread each, or one after another."""
    passes = [0] * len(images)

    def client(index: int) -> None:
        passes[index] = _explain(model, images[index], window)

    started = time.perf_counter()
    if concurrent:
        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(images))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:
        for index in range(len(images)):
            client(index)
    return time.perf_counter() - started, sum(passes)


def concurrency_ratio(model_path: Path, clients: int = 8, repeats: int = 3, device="cpu",
                      max_queue_delay_ms: float = 2.0, window: int | None = None) -> dict:
    """Throughput of ``clients`` concurrent occlusion jobs against one client doing the same jobs in turn, with
    the batcher off and on: alternating arms, best of ``repeats``. Images per second, and their ratios."""
    models = {False: _load(model_path, False, device, max_queue_delay_ms),
              True: _load(model_path, True, device, max_queue_delay_ms)}
    info = models[False].info
    window = window or max(1, info.height // 7)  # 7 x 7 windows: 50 passes per job
    rng = np.random.default_rng(0)
    images = [rng.random(info.image_shape, dtype=np.float32) for _ in range(clients)]
    best: dict[tuple[bool, bool], float] = {}
    calls = {}
    _arm(models[False], images[:1], window, False)  # warm-up: first-call allocations
    _arm(models[True], images[:1], window, False)
    for _ in range(repeats):
        for batching in (False, True):
            for concurrent in (False, True):
                before = models[batching].batch_stats.snapshot()
                seconds, passes = _arm(models[batching], images, window, concurrent)
                after = models[batching].batch_stats.snapshot()
                rate = passes / seconds
                if rate > best.get((batching, concurrent), 0.0):
                    best[(batching, concurrent)] = rate
                    calls[(batching, concurrent)] = (after.executions - before.executions,
                                                     after.images - before.images)
    for model in models.values():
        model.close()
    executions, merged_images = calls[(True, True)]
    chunks = -(-merged_images // clients // CLIENT_BATCH) * clients
    return {
        "model": Path(model_path).stem, "input": f"{info.height}x{info.width}", "provider": info.provider,
        "clients": clients,
        "client_batch": CLIENT_BATCH, "max_queue_delay_ms": max_queue_delay_ms,
        "images_per_s": {f"{'on' if b else 'off'}_{'concurrent' if c else 'single'}": round(rate, 1)
                         for (b, c), rate in sorted(best.items())},
        "concurrent_over_single_off": round(best[(False, True)] / best[(False, False)], 3),
        "concurrent_over_single_on": round(best[(True, True)] / best[(True, False)], 3),
        "on_over_off_concurrent": round(best[(True, True)] / best[(False, True)], 3),
        "on_over_off_single": round(best[(True, False)] / best[(False, False)], 3),
        "batched_concurrent_calls": executions, "batched_concurrent_chunks": chunks,
        "mean_merged_batch": round(merged_images / max(1, executions), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="112 x 112 input, 2 repeats")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=2.0)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    size, repeats = (112, 2) if args.quick else (224, 3)
    with tempfile.TemporaryDirectory() as tmp:
        path = export_resnet18(Path(tmp) / "resnet18.onnx", size)
        result = concurrency_ratio(path, clients=args.clients, repeats=repeats, device=args.device,
                                   max_queue_delay_ms=args.delay_ms)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
