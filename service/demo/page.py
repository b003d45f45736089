"""The demo page's context: one section per model, one block per sample, one tile per method."""

from __future__ import annotations

from pathlib import Path

from service.demo.methods import EVA_NOTE, METHODS, METRICS, TITLES
from service.reports import render_page

SCORES = [("deletion", "deletion", "lower is better"), ("insertion", "insertion", "higher is better"),
          ("mu_fidelity", "μ-fidelity", "higher is better"),
          ("relevance_mass", "relevance mass", "share of the map on the object")]


def write_page(path: Path, summary: dict, pictures: list[dict]) -> None:
    render_page("demo.html.j2", path, **context(summary, pictures))


def context(summary: dict, pictures: list[dict]) -> dict:
    sections: dict[str, dict] = {}
    for result, picture in zip(summary["results"], pictures):
        section = sections.setdefault(result["model"], {"name": result["model"], "samples": []})
        section["samples"].append({**result, "input": picture.get("input"), "tiles": [
            _tile(method, result["methods"][method], picture["methods"].get(method, {}))
            for method in summary["methods"] if method in result["methods"]]})
    return {
        "title": "onnxplain demo: every method side by side",
        "sections": list(sections.values()),
        "summary": summary,
        "score_names": SCORES,
        "settings": [(TITLES[name], _parameters(METHODS[name])) for name in summary["methods"]],
        "metric_settings": "; ".join(f"{name} ({_parameters(values)})" for name, values in METRICS.items()),
        "eva_note": EVA_NOTE if summary["eva"] == "not installed" else None,
    }


def _tile(method: str, measurements: dict, picture: dict) -> dict:
    return {"method": method, "title": TITLES[method], "error": measurements.get("error"),
            "overlay": picture.get("overlay"), "scales": picture.get("scales"),
            "scores": [(key, label, measurements["scores"][key]) for key, label, _ in SCORES
                       if key in measurements.get("scores", {})],
            "precision": measurements.get("precision"), "forward_passes": measurements.get("forward_passes"),
            "seconds": measurements.get("seconds")}


def _parameters(values: dict) -> str:
    return ", ".join(f"{key}={value}" for key, value in values.items()) or "defaults"
