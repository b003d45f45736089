"""The audit's HTML report: one self-contained page (pictures inlined) from the stored results.

Per model and method: a summary table; per-class accuracy and metrics; galleries of the cases worth a look
(confidently wrong predictions, worst maps by each metric) as overlays; the mean deletion/insertion curves;
the distribution of every metric; WCAM's scale profile and EVA's certification rate when those methods ran.
"""

from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from service import render

MEASURE_PREFIXES = ("entropy_", "noise_", "transforms_", "degradation_")
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; } th { background: #f4f4f6; }
td, th { padding: .35rem .7rem; border-bottom: 1px solid #ddd; text-align: left; font-variant-numeric: tabular-nums; }
.gallery { display: flex; flex-wrap: wrap; gap: .8rem; margin-bottom: 1.5rem; }
.case { width: 150px; font-size: .8rem; } .case img { width: 150px; image-rendering: pixelated; border-radius: 4px; }
.wrong { color: #b03a2e; } h2 { border-bottom: 2px solid #444; padding-bottom: .2rem; margin-top: 2.5rem; }
figure { margin: 0 0 1.5rem; } figure img { max-width: 100%; }
"""


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _png(array: np.ndarray, upscale: int = 2) -> str:
    image = Image.fromarray(array)
    if upscale > 1:
        image = image.resize((image.width * upscale, image.height * upscale), Image.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return _data_uri(buffer.getvalue())


def _figure(draw) -> str:
    from matplotlib import pyplot

    figure = pyplot.figure(figsize=(6.4, 3.2), constrained_layout=True)
    draw(figure.add_subplot(1, 1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90)
    pyplot.close(figure)
    return _data_uri(buffer.getvalue())


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3f}"
        return html.escape("n/a" if value is None else str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _gallery(cases: list[dict], results: dict[str, dict], images: dict[str, Path], labels: list[str],
             caption) -> str:
    tiles = []
    for case in cases:
        row = results[case["item"]]
        picture = np.asarray(Image.open(images[case["item"]]).convert("RGB").resize(row["map"].shape[::-1]))
        name = lambda index: labels[index] if index is not None and index < len(labels) else str(index)  # noqa: E731
        wrong = row["correct"] is False
        tiles.append(f'<div class="case"><img src="{_png(render.overlay(picture, row["map"]))}" '
                     f'alt="{html.escape(row["item"])}"><div>{html.escape(row["item"])}</div>'
                     f'<div class="{"wrong" if wrong else ""}">true {html.escape(name(row["label"]))}, predicted '
                     f'{html.escape(name(row["predicted"]))}</div><div>{html.escape(caption(row))}</div></div>')
    return f'<div class="gallery">{"".join(tiles)}</div>' if tiles else "<p>None.</p>"


def write_report(path: Path, summary: dict[str, Any], rows: list[dict], images: dict[str, Path],
                 labels: dict[str, list[str]], title: str = "onnxplain audit") -> Path:
    """The page for ``summary`` (``summary.summarise``) over ``rows`` (``ResultStore.rows``); ``images`` maps
    item ids to image files, ``labels`` model names to class names."""
    by_group: dict[tuple[str, str], dict[str, dict]] = defaultdict(dict)
    for row in rows:
        by_group[(row["model"], row["method"])][row["item"]] = row
    sections = [f"<h1>{html.escape(title)}</h1>",
                f"<p>{html.escape(str(summary.get('dataset', '')))}: {len({r['item'] for r in rows})} images, "
                f"{len(summary['groups'])} model × method pairs. Overlays: red is evidence for the explained "
                "class, blue against it.</p>"]
    metric_names = sorted({name for group in summary["groups"] for name in group["metrics"]})
    # Reliability: the expected Spearman of a map with another seed's (n/a for a deterministic method), mean and
    # least over the images, so a metric's mean is read knowing how noisy the maps it scored were.
    sections.append(_table(["model", "method", "images", "accuracy", *metric_names, "reliability",
                            "min reliability", "s / image"],
                           [[g["model"], g["method"], g["items"], g["accuracy"],
                             *(g["metrics"].get(m) for m in metric_names), *_reliability(g), g["seconds_per_item"]]
                            for g in summary["groups"]]))
    if summary.get("stability"):
        sections.append("<h2>Stability across the audited models</h2>" + _table(
            ["method", "models", "mean SSIM", "std", "min", "pairs"],
            [[method, ", ".join(s["models"]), s["mean"], s["std"], s["min"], s["count"]]
             for method, s in summary["stability"].items()]))
    for group in summary["groups"]:
        key = (group["model"], group["method"])
        results, names = by_group[key], labels.get(group["model"], [])
        sections.append(f"<h2>{html.escape(group['model'])} / {html.escape(group['method'])}</h2>")
        if group["per_class"]:
            sections.append("<h3>Per class</h3>" + _table(
                ["class", "images", "accuracy", *metric_names],
                [[names[int(c)] if int(c) < len(names) else c, s["items"], s["accuracy"],
                  *(s["metrics"].get(m) for m in metric_names)] for c, s in group["per_class"].items()]))
        sections.append("<h3>Confidently wrong</h3>" + _gallery(
            group["confidently_wrong"], results, images, names, lambda r: f"score {r['score']:.3f}"))
        for metric, cases in group["worst_by_metric"].items():
            sections.append(f"<h3>Worst by {html.escape(metric)}</h3>" + _gallery(
                cases, results, images, names, lambda r, m=metric: f"{m} {r['metrics'][m]:.3f}"))
        sections.extend(_plots(list(results.values()), metric_names))
    page = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{''.join(sections)}</body></html>")
    path.write_text(page)
    return path


def _reliability(group: dict[str, Any]) -> tuple[float | None, float | None]:
    found = group.get("reliability")
    return (None, None) if not found else (found["mean"], found["min"])


def _figure_tag(draw, alt: str, caption: str) -> str:
    return (f'<figure><img src="{_figure(draw)}" alt="{html.escape(alt)}"><figcaption>{html.escape(caption)}'
            "</figcaption></figure>")


def _histogram(values: list[float], label: str, caption: str) -> str:
    return _figure_tag(lambda axis: (axis.hist(values, bins=20), axis.set(xlabel=label, ylabel="images")), label,
                       caption)


def _plots(results: list[dict], metric_names: list[str]) -> list[str]:
    plots = []
    curves = sorted({name for r in results for name in r["curves"]})
    if curves:
        def draw_curves(axis):
            for name in curves:
                stacked = np.array([r["curves"][name] for r in results if name in r["curves"]])
                steps = np.linspace(0, 1, stacked.shape[1])
                axis.plot(steps, stacked.mean(axis=0), label=f"{name} (mean of {len(stacked)})")
                axis.fill_between(steps, np.percentile(stacked, 25, axis=0), np.percentile(stacked, 75, axis=0),
                                  alpha=0.2)
            axis.set(xlabel="share of pixels removed (deletion) or revealed (insertion)", ylabel="score")
            axis.legend(fontsize=8)
        plots.append(_figure_tag(draw_curves, "curves", "Mean curves, interquartile band."))
    for name in metric_names:
        values = [r["metrics"][name] for r in results if name in r["metrics"] and np.isfinite(r["metrics"][name])]
        if values:
            plots.append(_histogram(values, name, f"Distribution of {name}."))
    profiles = [r["details"]["level_importance"] for r in results if "level_importance" in r["details"]]
    if profiles:
        mean = np.mean(profiles, axis=0)
        plots.append(_figure_tag(lambda axis: (axis.bar(render.level_labels(len(mean) - 1), mean),
                                               axis.set(ylabel="share of importance")),
                                 "scales", "WCAM: mean importance per scale."))
    for name in sorted({k for r in results for k in r["details"] if k.startswith(MEASURE_PREFIXES)}):
        values = [r["details"][name] for r in results if name in r["details"]]
        plots.append(_histogram(values, name, f"Salience measure: {name}."))
    variants = sorted({k.removeprefix("flipped ") for r in results for k in r["details"] if k.startswith("flipped ")})
    if variants:
        plots.append("<h3>Corruptions and zoom</h3>" + _table(
            ["variant", "prediction flipped", "approximation share (clean: "
             f"{np.mean([r['details']['approximation_share'] for r in results]):.3f})"],
            [[v, float(np.mean([r["details"][f"flipped {v}"] for r in results])),
              float(np.mean([r["details"][f"approximation share {v}"] for r in results]))] for v in variants]))
    certified = [r["details"]["ball_certified"] for r in results if "ball_certified" in r["details"]]
    if certified:
        radii = sorted({r["details"]["epsilon"] * 255 for r in results if "ball_certified" in r["details"]})
        plots.append(f"<p>EVA: at radius {'/'.join(f'{r:.3g}' for r in radii)}/255 the verifier proved for "
                     f"{np.mean(certified):.0%} of the images that no perturbation in the ball changes the class "
                     "(whole-model bounds, adversarial overlap below 0).</p>")
    return plots
