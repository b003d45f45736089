"""``bench/gpu.py --smoke``: the GPU bench runs end to end here (on the CPU), so it cannot rot before a GPU is
lent; what it reports is checked against what was asked for and what this machine is."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from service.runtime.half_precision import RELATIVE_TOLERANCE
from service.runtime.providers import CPU, ExecutionSettings, InputProfile, provider_options
from service.verify.device import torch_device

ROOT = Path(__file__).resolve().parent.parent
# Any profile: which providers this machine offers does not depend on it.
PROFILE = InputProfile("image", (1, 3, 32, 32), (8, 3, 32, 32))


def test_smoke_run_reports_every_measurement(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import gpu

    out = tmp_path / "gpu.json"
    results = gpu.main(["--smoke", "--out", str(out)])
    assert json.loads(out.read_text())["arms"].keys() == {"accelerated", "cpu"}
    sizes = gpu.SMOKE
    cpu_arm = results["arms"]["cpu"]
    assert cpu_arm["provider"] == cpu_arm["cifar_provider"] == CPU and cpu_arm["eva_device"] == "cpu"
    accelerated = results["arms"]["accelerated"]
    assert accelerated["provider"] in [name for name, _ in provider_options(ExecutionSettings(), PROFILE)]
    assert accelerated["eva_device"] == torch_device("auto")
    for name, arm in results["arms"].items():
        jobs = arm["jobs"]
        scale = 1.0 if name == "accelerated" else sizes.cpu_scale
        masks = round(sizes.rise_masks * scale)
        # RISE: N masks plus the clean image and the baseline; WCAM: N (g^2 + 2) designs, plus the same two.
        assert jobs["rise"]["passes"] == masks + 2
        assert jobs["rise"]["full_seconds"] == jobs["rise"]["seconds"] * sizes.rise_masks / masks
        grid, designs = sizes.wcam
        assert jobs["wcam"]["passes"] == designs * (grid * grid + 2) + 2
        assert jobs["eva"]["regions"] == (sizes.eva_grid if name == "accelerated" else sizes.cpu_eva_grid) ** 2 + 1
        fp16 = arm["fp16"]
        assert (fp16["served"], fp16["reason"]) == ("fp16", "")
        assert fp16["relative_error"] <= RELATIVE_TOLERANCE  # on other images than the load's probe
    fixed = results["fixed_batch"]  # the freed graph served with the twin's batch, the exported one a call at a time
    assert (fixed["fixed, on"]["max_batch"], fixed["fixed, off"]["max_batch"]) == (fixed["twin"]["max_batch"], 1)
    batching = results["batching"]  # eight clients' chunks merged into fewer session calls
    assert batching["batched_concurrent_calls"] < batching["batched_concurrent_chunks"]
    assert results["ratios"].keys() == {"rise", "wcam", "occlusion", "sobol", "hsic", "eva"}
