"""``onnxplain demo``: an in-process server on the bundled models, a few samples of each explained by every
method; writes ``index.html`` (the page) and ``summary.json`` (the measurements) under ``out``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable

from service.api.server import EmbeddedServer
from service.config import Settings, bundled_models_dir
from service.demo.methods import BASELINE, METHODS, METRICS, SEED, eva_installed
from service.demo.page import write_page
from service.demo.sample import explain_sample


# The bundled models in the order a newcomer meets them; any other model that ships samples follows by name.
ORDER = ["shapes", "digits", "scale_texture", "scale_shape"]


def demo_models(models_dir: Path) -> list[str]:
    """The models that ship samples (shapes, digits, scale_texture, scale_shape; not the study's retrained runs)."""
    names = [path.parent.parent.name for path in models_dir.glob("*/samples/manifest.json")]
    return sorted(names, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name))


def run_demo(models_dir: Path | None, out: Path, *, samples_per_model: int = 2, methods: list[str] | None = None,
             models: list[str] | None = None, on_progress: Callable | None = None) -> dict:
    started = time.perf_counter()
    models_dir = models_dir or bundled_models_dir()
    models = models or demo_models(models_dir)
    asked = methods or list(METHODS)
    eva = "not requested" if "eva" not in asked else "installed" if eva_installed() else "not installed"
    methods = [method for method in asked if method != "eva" or eva == "installed"]
    plan = [(model, entry) for model in models
            for entry in json.loads((models_dir / model / "samples" / "manifest.json").read_text())["samples"]
            [:samples_per_model]]
    total, done = len(plan) * len(methods), 0

    def step() -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(_Progress(done, total))

    out.mkdir(parents=True, exist_ok=True)
    from onnxplain_client import OnnxplainClient

    results, pictures = [], []
    # Only the demo's models are loaded: the repository also holds the studies' retrained runs.
    settings = Settings(models_dir=models_dir, preload=False)
    with EmbeddedServer(settings) as address, OnnxplainClient(address) as client:
        provider = [client.load_model(model).provider for model in models][0]
        startup_seconds = time.perf_counter() - started
        for model, entry in plan:
            result, picture = explain_sample(client, model, models_dir / model / "samples", entry, methods, step)
            results.append(result)
            pictures.append(picture)
    summary = {
        "models": models, "methods": methods, "eva": eva, "samples_per_model": samples_per_model,
        "samples": len(results), "seed": SEED, "baseline": BASELINE, "provider": provider,
        "parameters": {method: METHODS[method] for method in methods}, "metrics": METRICS,
        "accuracy": sum(r["correct"] for r in results) / len(results) if results else 0.0,
        "forward_passes": sum(m.get("forward_passes", 0) for r in results for m in r["methods"].values()),
        "seconds_per_method": {method: round(sum(r["methods"][method].get("seconds", 0.0) for r in results), 2)
                               for method in methods},
        "startup_seconds": round(startup_seconds, 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "results": results,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    write_page(out / "index.html", summary, pictures)
    print(f"demo: {len(results)} samples x {len(methods)} methods in {summary['wall_seconds']:.0f} s"
          + ("; EVA needs the verify extra: `make install-verify`" if eva == "not installed" else "")
          + f" -> {out / 'index.html'}", file=sys.stderr)
    return summary


class _Progress:
    """What ``service.cli.common.progress_bar``'s callback reads: done of total (here, maps)."""

    def __init__(self, done: int, total: int):
        self.done, self.total, self.stage = done, total, ""
