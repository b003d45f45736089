"""The audit's HTML report: one self-contained page (pictures inlined) from the stored results.

This module only builds the page's context; ``templates/audit.html.j2`` lays it out (autoescaped: model names,
labels and item ids come from users), ``pictures`` draws and ``drilldown`` chooses and packs the images.

The page: an overview per model and method (accuracy, every metric's mean, reliability, certification); with
several models, the models side by side; the stability of each method across the models; per model and method,
per-class figures, the measures, the cases worth a look (confidently wrong, worst by each metric, each linked to
its drill-down entry), the mean deletion/insertion curves, the distributions, WCAM's scale profile, the
corruption variants and EVA's certification rate; then the drill-down: each shown image with every model's
prediction and, per method, its overlay and every value.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from service.audit import drilldown, pictures
from service.reports import Share, render_page

MEASURE_PREFIXES = ("entropy_", "noise_", "transforms_", "degradation_")


def write_report(path: Path, summary: dict[str, Any], rows: list[dict], images: dict[str, Path],
                 labels: dict[str, list[str]], title: str = "onnxplain audit") -> Path:
    """The page for ``summary`` (``summary.summarise``) over ``rows`` (``ResultStore.rows``); ``images`` maps
    item ids to image files, ``labels`` model names to class names."""
    render_page("audit.html.j2", path, **report_context(summary, rows, images, labels, title))
    return path


def report_context(summary: dict[str, Any], rows: list[dict], images: dict[str, Path],
                   labels: dict[str, list[str]], title: str) -> dict[str, Any]:
    by_group: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for row in rows:
        by_group[(row["model"], row["method"])][row["item"]] = row
    drawn = pictures.Pictures(images)
    drill = drilldown.build(rows, summary, labels, drawn)
    metric_names = sorted({name for group in summary["groups"] for name in group["metrics"]})
    certified = {(g["model"], g["method"]): _certified(g) for g in summary["groups"]}
    models = sorted({group["model"] for group in summary["groups"]})
    return {
        "title": title, "dataset": str(summary.get("dataset", "")), "images": drill.total,
        "group_count": len(summary["groups"]), "metric_names": metric_names,
        "overview_header": ["model", "method", "images", "accuracy", *metric_names, "reliability",
                            "min reliability", "certified", "s / image"],
        "overview": [[g["model"], g["method"], g["items"], g["accuracy"],
                      *(g["metrics"].get(m) for m in metric_names), *_reliability(g),
                      certified[(g["model"], g["method"])], g["seconds_per_item"]] for g in summary["groups"]],
        "side_by_side": _side_by_side(summary, models, metric_names, certified) if len(models) > 1 else None,
        "models": models,
        "stability": [[method, ", ".join(s["models"]), s["mean"], s["std"], s["min"], s["count"]]
                      for method, s in summary.get("stability", {}).items()],
        "groups": [_group(g, by_group[(g["model"], g["method"])], labels.get(g["model"], []), metric_names, drawn,
                          drill.anchors, certified[(g["model"], g["method"])]) for g in summary["groups"]],
        "drilldown": drill, "cap": drilldown.CAP,
    }


def _reliability(group: dict[str, Any]) -> tuple[float | None, float | None]:
    found = group.get("reliability")
    return (None, None) if not found else (found["mean"], found["min"])


def _certified(group: dict[str, Any]) -> Share | None:
    """EVA's certified rate at the audit's one radius (the summary's ``certification``); None for other methods."""
    certification = group.get("certification")
    return None if certification is None else Share(certification["rate"])


def _radius_text(certification: dict[str, Any]) -> str:
    """The ball's radius in grey levels, as a user states it ("1/255")."""
    radii = certification["radius"] if isinstance(certification["radius"], list) else [certification["radius"]]
    return " and ".join(f"{255 * radius:.3g}/255" for radius in radii)


def _side_by_side(summary: dict[str, Any], models: list[str], metric_names: list[str],
                  certified: dict[tuple[str, str], float | None]) -> list[list[Any]]:
    """One row per figure, one column per model: accuracy, then per method each metric's mean, the maps'
    reliability and EVA's certification rate (rows nobody has are left out)."""
    groups = {(g["model"], g["method"]): g for g in summary["groups"]}
    methods = sorted({method for _, method in groups})
    accuracy = {model: next(g["accuracy"] for (m, _), g in groups.items() if m == model) for model in models}
    table = [["accuracy", *(accuracy[model] for model in models)]]

    def cell(model: str, method: str, read) -> Any:
        group = groups.get((model, method))
        return None if group is None else read(group)

    for method in methods:
        candidates = [[f"{method}: {name} (mean)", *(cell(m, method, lambda g, n=name: g["metrics"].get(n))
                                                     for m in models)] for name in metric_names]
        candidates.append([f"{method}: reliability (mean)", *(cell(m, method, lambda g: _reliability(g)[0])
                                                              for m in models)])
        candidates.append([f"{method}: certified", *(certified.get((m, method)) for m in models)])
        table.extend(row for row in candidates if any(value is not None for value in row[1:]))
    return table


def _group(group: dict[str, Any], results: dict[str, dict], names: list[str], metric_names: list[str],
           drawn: pictures.Pictures, anchors: dict[str, str], certified: float | None) -> dict[str, Any]:
    listed = list(results.values())

    def case(found: dict, caption: str, value: float | None) -> dict[str, Any]:
        row = results[found["item"]]
        return {"item": row["item"], "anchor": anchors[row["item"]], "overlay": drawn.overlay(row),
                "label": drilldown.class_name(names, row["label"]),
                "predicted": drilldown.class_name(names, row["predicted"]), "correct": row["correct"],
                "caption": caption, "value": value}

    figures = []
    curves = pictures.curves_figure(listed)
    if curves:
        figures.append((curves, "curves", "Mean curves, interquartile band."))
    for name in metric_names:
        values = [r["metrics"][name] for r in listed if name in r["metrics"] and np.isfinite(r["metrics"][name])]
        if values:
            figures.append((pictures.histogram_figure(values, name), name, f"Distribution of {name}."))
    profiles = [r["details"]["level_importance"] for r in listed if "level_importance" in r["details"]]
    if profiles:
        figures.append((pictures.scales_figure(profiles), "scales", "WCAM: mean importance per scale."))
    for name in sorted({k for r in listed for k in r["details"] if k.startswith(MEASURE_PREFIXES)}):
        values = [r["details"][name] for r in listed if name in r["details"]]
        figures.append((pictures.histogram_figure(values, name), name, f"Salience measure: {name}."))
    return {
        "model": group["model"], "method": group["method"],
        "per_class": [[drilldown.class_name(names, int(c)), s["items"], s["accuracy"],
                       *(s["metrics"].get(m) for m in metric_names)] for c, s in group["per_class"].items()],
        "measures": [[name, s["mean"], s["std"], s["min"], s["max"], s["count"]]
                     for name, s in group.get("measures", {}).items()],
        "reliability": group.get("reliability"), "stop_reasons": group.get("stop_reasons", {}),
        "confidently_wrong": [case(c, "score", c["score"]) for c in group["confidently_wrong"]],
        "worst": [(metric, [case(c, metric, c["metrics"][metric]) for c in cases])
                  for metric, cases in group["worst_by_metric"].items()],
        "figures": figures, "variants": _variants(listed), "certified": certified,
        "certification": None if group.get("certification") is None else {
            **group["certification"], "radius_text": _radius_text(group["certification"])},
    }


def _variants(results: list[dict]) -> dict[str, Any] | None:
    """Corruptions and zoom: per variant, how often the prediction flipped and WCAM's approximation share."""
    variants = sorted({k.removeprefix("flipped ") for r in results for k in r["details"] if k.startswith("flipped ")})
    if not variants:
        return None
    return {"clean_share": float(np.mean([r["details"]["approximation_share"] for r in results])),
            "rows": [[v, float(np.mean([r["details"][f"flipped {v}"] for r in results])),
                      float(np.mean([r["details"][f"approximation share {v}"] for r in results]))] for v in variants]}
