"""The demo: an in-process server on the bundled models, every sample explained through the Python client.

Writes ``out/demo/``: overlays per sample, ``index.html`` to look at, and
``summary.json`` with the measurements (prediction, relevance mass on the
object where a ground-truth mask exists, forward passes, timings).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from service import render
from service.api.server import EmbeddedServer
from service.config import Settings, bundled_models_dir
from service.metrics.localisation import pointing_game, relevance_mass

# Small windows localise; the image's own mean colour keeps occluded patches in distribution on these
# textured scenes (a black patch is evidence of its own, which the baseline report shows).
OCCLUSION = {"window": [4], "stride": [2]}
BASELINE = {"kind": "KIND_IMAGE_MEAN"}


def run_demo(models_dir: Path | None, out: Path) -> dict:
    started = time.perf_counter()
    models_dir = models_dir or bundled_models_dir()
    out.mkdir(parents=True, exist_ok=True)
    from onnxplain_client import OnnxplainClient

    rows, samples = [], []
    with EmbeddedServer(Settings(models_dir=models_dir)) as address, OnnxplainClient(address) as client:
        models = client.list_models()
        if not models:
            raise SystemExit(f"no models in {models_dir}")
        name_width = max(len(model.name) for model in models)
        for model in models:
            manifest_path = models_dir / model.name / "samples" / "manifest.json"
            if not manifest_path.is_file():
                continue
            (out / model.name).mkdir(exist_ok=True)
            for entry in json.loads(manifest_path.read_text())["samples"]:
                sample = _explain_sample(client, model, manifest_path.parent, entry, out)
                samples.append(sample)
                rows.append(sample)
                print(f"{model.name:{name_width}} {entry['image']:16} true {sample['true_label']:10} "
                      f"predicted {sample['predicted_label']:10} ({sample['score']:.3f})"
                      + (f"  relevance on object {sample['relevance_mass']:.2f}" if "relevance_mass" in sample
                         else ""), file=sys.stderr)
        provider = models[0].provider
    summary = _summarise(samples, provider, time.perf_counter() - started)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    columns = ["model", "sample", "input", "overlay", "true_label", "predicted_label", "score", "baseline_score",
               "baseline_predicted", "relevance_mass", "object_share", "pointing_game", "forward_passes", "explain_ms"]
    (out / "index.html").write_text(render.index_page("onnxplain demo: occlusion (4x4 windows, image-mean baseline)", rows,
                                                      columns, image_columns=["input", "overlay"]))
    print(f"demo: {len(samples)} samples, accuracy {summary['accuracy']:.2f}, mean relevance mass on the object "
          f"{summary['mean_relevance_mass']:.2f}, {summary['wall_seconds']:.1f} s -> {out / 'index.html'}",
          file=sys.stderr)
    return summary


def _explain_sample(client, model, samples_dir: Path, entry: dict, out: Path) -> dict:
    image_path = samples_dir / entry["image"]
    explanation = client.explain(model.name, image_path, "occlusion", OCCLUSION, baseline=BASELINE)
    attribution = explanation.attributions[0]
    stem = Path(entry["image"]).stem
    input_png = render.save_png(explanation.image, out / model.name / f"{stem}.input.png", upscale=4)
    overlay_png = render.save_png(render.overlay(explanation.image, attribution.map),
                                  out / model.name / f"{stem}.overlay.png", upscale=4)
    np.save(out / model.name / f"{stem}.occlusion.npy", attribution.map)
    row = {
        "model": model.name, "sample": entry["image"],
        "input": str(input_png.relative_to(out)), "overlay": str(overlay_png.relative_to(out)),
        "true_label": entry.get("label_name", str(entry["label"])), "predicted_label": attribution.label,
        "correct": attribution.class_index == entry["label"], "score": attribution.score,
        "baseline_predicted": explanation.baseline["predicted"][1],
        "baseline_score": explanation.baseline["target_scores"][0],
        "forward_passes": explanation.forward_passes, "explain_ms": round(explanation.timings["total_ms"], 1),
    }
    if entry.get("mask"):
        mask = np.asarray(Image.open(samples_dir / entry["mask"])) > 127
        row["relevance_mass"] = relevance_mass(attribution.map, mask)
        row["object_share"] = float(mask.mean())
        row["pointing_game"] = pointing_game(attribution.map, mask)
    return row


def _summarise(samples: list[dict], provider: str, wall_seconds: float) -> dict:
    masses = [s["relevance_mass"] for s in samples if "relevance_mass" in s]
    return {
        "samples": len(samples),
        "accuracy": float(np.mean([s["correct"] for s in samples])) if samples else 0.0,
        "mean_relevance_mass": float(np.nanmean(masses)) if masses else float("nan"),
        "min_relevance_mass": float(np.nanmin(masses)) if masses else float("nan"),
        "mean_object_share": float(np.mean([s["object_share"] for s in samples if "object_share" in s] or [0])),
        "provider": provider,
        "wall_seconds": round(wall_seconds, 2),
        "results": samples,
    }
