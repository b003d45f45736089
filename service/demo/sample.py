"""One sample explained by every method through the Python client, each map scored inline (deletion, insertion,
mu-fidelity, and relevance mass where a ground-truth mask exists) with its precision."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import grpc
import numpy as np

from service import render
from service.demo.methods import BASELINE, LOCALISATION, METHODS, METRICS, SEED
from service.reports import figure_uri, png_uri

UPSCALE = 3  # 64 x 64 inputs shown at about a tile's width


def explain_sample(client, model: str, samples_dir: Path, entry: dict, methods: list[str],
                   done: Callable[[], None] = lambda: None) -> tuple[dict, dict]:
    """The sample's measurements (for summary.json) and its pictures (data URIs, for the page), by method.
    A method the server refuses (a model EVA cannot verify) is recorded with the refusal, not raised."""
    image_path = samples_dir / entry["image"]
    metrics = dict(METRICS)
    mask = None
    if entry.get("mask"):
        metrics.update(LOCALISATION)
        mask = samples_dir / entry["mask"]
    prediction = client.predict(model, image_path, top_k=1, probabilities=True)[0].top[0]
    result = {"model": model, "sample": entry["image"], "true_label": entry.get("label_name", str(entry["label"])),
              "predicted_label": prediction[1], "probability": prediction[2],
              "correct": prediction[0] == entry["label"], "object_share": object_share(samples_dir, entry),
              "methods": {}}
    pictures: dict = {"methods": {}}
    for method in methods:
        started = time.perf_counter()
        try:
            explanation = client.explain(model, image_path, method, METHODS[method], metrics=metrics, mask=mask,
                                         seed=SEED, baseline=BASELINE, classes=[prediction[0]])
        except grpc.RpcError as error:
            result["methods"][method] = {"error": f"{error.code().name}: {error.details()}"}
            done()
            continue
        attribution = explanation.attributions[0]
        result["methods"][method] = _measurements(explanation, attribution, time.perf_counter() - started)
        pictures.setdefault("input", png_uri(_rgb(explanation.image), upscale=UPSCALE))
        pictures["methods"][method] = {"overlay": png_uri(render.overlay(explanation.image, attribution.map),
                                                          upscale=UPSCALE)}
        if method == "wcam":
            pictures["methods"][method]["scales"] = _wcam_scales(explanation, attribution, result["methods"][method])
        done()
    return result, pictures


def _measurements(explanation, attribution, seconds: float) -> dict:
    # localisation's score is the relevance mass on the object (its other values are not shown)
    scores = {("relevance_mass" if name == "localisation" else name): metric.score
              for name, metric in attribution.metrics.items()}
    precision = attribution.precision
    return {
        "explained": attribution.label,
        "scores": scores,
        "precision": None if precision is None else {
            "reliability": precision.reliability, "samples": precision.samples, "max_samples": precision.max_samples,
            "stop_reason": precision.stop_reason, "target_reliability": precision.target_reliability},
        "forward_passes": explanation.forward_passes,
        "seconds": round(seconds, 3),
    }


def _wcam_scales(explanation, attribution, measurements: dict) -> str:
    """WCAM's scale figure (the map in the wavelet layout and the share per level) as a data URI; the shares
    go into the measurements."""
    from onnxplain_client.tensors import from_tensor

    wcam = explanation.response.attributions[0].wcam
    shares = [float(share) for share in wcam.level_importance]
    measurements["level_importance"] = shares
    view, bands = render.wavelet_layout(explanation.image, wcam.levels, wcam.wavelet)
    figure = render.wavelet_layout_figure(view, from_tensor(wcam.wavelet_map), bands, shares,
                                          title=f"{100 * wcam.approximation_share:.0f}% in the approximation")
    return figure_uri(figure)


def object_share(samples_dir: Path, entry: dict) -> float | None:
    """The fraction of the image the object covers: the relevance mass a map spread evenly would get."""
    if not entry.get("mask"):
        return None
    from PIL import Image

    with Image.open(samples_dir / entry["mask"]) as mask:
        return float((np.asarray(mask) > 127).mean())


def _rgb(image: np.ndarray) -> np.ndarray:
    """A greyscale model input (H, W, 1) as RGB, for a PNG."""
    return np.repeat(image, 3, axis=2) if image.ndim == 3 and image.shape[2] == 1 else image
