"""Hybrid EVA on exports we did not design for it (torchvision, weights=None; CPU): which cut split_layer=auto
chooses, what the capability probe says per bound method, and the wall time of an 8 x 8-grid EVA.

    python bench/eva_hybrid.py                      # resnet18, mobilenet_v3_small, the tiny ViT
    python bench/eva_hybrid.py --models vit_tiny --samples 16 --attack-steps 2

Epsilon is fixed (1/255) so the time is the map's alone (a calibrated epsilon adds 32 bound calls); the mirror's
build and probe is timed apart (it happens once per loaded model).
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
sys.path.insert(0, str(ROOT / "tests"))


def export(name: str, folder: Path) -> Path:
    import torch
    import torchvision
    from onnx_builders import export_torch

    torch.manual_seed(0)
    if name == "vit_tiny":
        module, size = torchvision.models.VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2,
                                                            hidden_dim=32, mlp_dim=64, num_classes=10), 32
        torch.nn.init.normal_(module.heads.head.weight, std=0.5)  # torchvision zeroes it: every margin would be 0
    else:
        module, size = getattr(torchvision.models, name)(weights=None), 224
    return export_torch(module, folder / f"{name}.onnx", (1, 3, size, size))


def run(name: str, folder: Path, method: str, samples: int, attack_steps: int) -> dict:
    from service.explainers import eva
    from service.explainers.eva import EvaParams
    from service.runtime.loader import load_model
    from service.verify.bounds import METHODS, HybridBounds, MarginBounds
    from service.verify.mirror import mirror_for

    model = load_model(name, export(name, folder).read_bytes(), source="bench")
    start = time.perf_counter()
    mirror = mirror_for(model)
    build = time.perf_counter() - start
    row = {"model": name, "build_and_probe_s": round(build, 1), "whole_reason": mirror.whole_reason,
           "methods": {k: (v.runs, v.reason) for k, v in mirror.methods.items()}}
    for compat in ("IBP", "CROWN-IBP"):
        try:
            parts = mirror.resolve("", compat)
            row[f"auto_{compat}"] = "whole model" if parts is None else f"{parts.verified} ({parts.head_runtime})"
        except Exception as error:  # a bench reports every outcome
            row[f"auto_{compat}"] = f"refused: {error}"
    image = np.random.default_rng(0).random(model.info.image_shape, dtype=np.float32)
    scores = model.predict(image[None])[0]
    target = int(np.argmax(scores))
    params = EvaParams(bound_method=method, epsilon=1 / 255, grid_size=8, hybrid_samples=samples,
                       attack_steps=attack_steps)
    start = time.perf_counter()
    parts = mirror.resolve("", METHODS[method])
    bounds = (MarginBounds(model, mirror, method) if parts is None else
              HybridBounds(model, mirror, method, parts, samples=samples, attack_steps=attack_steps,
                           rng=np.random.default_rng(0)))
    output = eva.METHOD.attribute(None, image, params, baseline=None, batch_size=0, rng=np.random.default_rng(0),
                                  bound_margins=bounds, all_scores=scores, targets=[target])
    details = output.details[0]
    row.update({"eva_method": method, "eva_8x8_s": round(time.perf_counter() - start, 1),
                "split_layer": details["split_layer"], "verified": details["verified"],
                "head_runtime": details["head_runtime"], "certified": details["certified"],
                "adversarial_overlap": round(details["adversarial_overlap"], 4)})
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", nargs="+", default=["vit_tiny", "mobilenet_v3_small", "resnet18"])
    parser.add_argument("--method", default="crown_ibp")
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--attack-steps", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            print(json.dumps(run(name, Path(folder), args.method, args.samples, args.attack_steps)), flush=True)


if __name__ == "__main__":
    main()
