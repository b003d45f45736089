"""Regenerate the README's pictures into docs/: ``python docs/make_figures.py`` from the repository root.

- ``methods_side_by_side.png``: one shapes sample explained by every method, each overlay with its scores;
- ``wcam_layout.png``: WCAM on a scale_texture sample: where and at which scale the model looks;
- ``demo_page.png``: the top of the demo page (``onnxplain demo``) in headless chromium, 1366 px wide;
- ``audit_report.png``: the top of an audit report (``onnxplain audit`` on a few bundled samples), likewise.

Everything runs in-process on the bundled models with fixed seeds; chromium and chromium-driver are Debian's.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MODELS = ROOT / "models"
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the service, and tests/browser.py's chromium session

from service import render  # noqa: E402
from service.demo.methods import BASELINE, METHODS, METRICS, SEED, TITLES, eva_installed  # noqa: E402

MAX_BYTES = 400_000  # a README picture stays small in the repository


FIGURES = ("methods_side_by_side", "wcam_layout", "demo_page", "audit_report")


def main(names: list[str]) -> None:
    """Every figure, or those named on the command line (``python docs/make_figures.py audit_report``)."""
    from onnxplain_client import OnnxplainClient

    from service.api.server import EmbeddedServer
    from service.config import Settings

    names = names or list(FIGURES)
    unknown = set(names) - set(FIGURES)
    if unknown:
        raise SystemExit(f"unknown figure(s) {', '.join(sorted(unknown))}; choose from {', '.join(FIGURES)}")
    with EmbeddedServer(Settings(models_dir=MODELS, preload=False)) as address, OnnxplainClient(address) as client:
        for model in ("shapes", "scale_texture"):
            client.load_model(model)
        if "methods_side_by_side" in names:
            methods_side_by_side(client, DOCS / "methods_side_by_side.png")
        if "wcam_layout" in names:
            wcam_layout(client, DOCS / "wcam_layout.png")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        if "demo_page" in names:
            demo_page(scratch, DOCS / "demo_page.png")
        if "audit_report" in names:
            audit_report(scratch, DOCS / "audit_report.png")
    for name in names:
        path = DOCS / f"{name}.png"
        print(f"{path.relative_to(ROOT)}: {path.stat().st_size // 1000} kB", file=sys.stderr)


def methods_side_by_side(client, path: Path) -> None:
    """The input and every method's map of one shapes sample, each titled with its deletion and insertion."""
    from matplotlib import pyplot

    sample = MODELS / "shapes" / "samples"
    image, mask = sample / "sample_02.png", sample / "sample_02.mask.png"
    methods = [m for m in METHODS if m != "eva" or eva_installed()]
    columns = (len(methods) + 2) // 2  # two rows: the input, then the methods in the demo's order
    figure, axes = pyplot.subplots(2, columns, figsize=(2.1 * columns, 5.0), constrained_layout=True)
    axes = axes.ravel()
    for axis, method in zip(axes[1:], methods):
        explanation = client.explain("shapes", image, method, METHODS[method], seed=SEED, baseline=BASELINE,
                                     metrics={**METRICS, "localisation": {}}, mask=mask)
        attribution = explanation.attributions[0]
        scores = {name: metric.score for name, metric in attribution.metrics.items()}
        axis.imshow(render.overlay(explanation.image, attribution.map))
        axis.set_title(f"{TITLES[method]}\ndel {scores['deletion']:.2f} · ins {scores['insertion']:.2f}\n"
                       f"mass {scores['localisation']:.2f}", fontsize=8)
    axes[0].imshow(explanation.image)
    axes[0].set_title(f"input\npredicted {attribution.label}\n({attribution.score:.2f} logit)", fontsize=8)
    for axis in axes:
        axis.axis("off")
    figure.suptitle("one shapes image, every method: deletion (lower is better), insertion (higher), "
                    "relevance mass on the triangle", fontsize=9)
    _save(figure, path, dpi=110)


def wcam_layout(client, path: Path) -> None:
    """WCAM's four panels (input, the map over the wavelet transform with the levels outlined, the spatial map,
    the share per level) on a scale_texture sample, whose class is decided at one scale."""
    from onnxplain_client import from_tensor

    image = MODELS / "scale_texture" / "samples" / "sample_01.png"
    explanation = client.explain("scale_texture", image, "wcam", {**METHODS["wcam"], "num_designs": 64},
                                 seed=SEED, baseline=BASELINE)
    attribution = explanation.attributions[0]
    wcam = explanation.response.attributions[0].wcam
    view, bands = render.wavelet_layout(explanation.image, wcam.levels, wcam.wavelet)
    bounds = [(b.rows.start, b.cols.start, b.rows.stop - b.rows.start, b.cols.stop - b.cols.start) for b in bands]
    with tempfile.TemporaryDirectory() as scratch:
        drawn = render.wcam_figure(explanation.image, view, from_tensor(wcam.wavelet_map), attribution.map,
                                   list(wcam.level_importance), bounds,
                                   f"scale_texture, predicted {attribution.label}: "
                                   f"{100 * wcam.approximation_share:.0f}% of the importance in the approximation",
                                   Path(scratch) / "wcam.png")
        _shrink(Image.open(drawn), path)


def demo_page(scratch: Path, path: Path) -> None:
    from service.cli import main as onnxplain

    out = scratch / "demo"
    assert onnxplain(["demo", "--out", str(out), "--samples-per-model", "1"]) == 0
    _screenshot(out / "index.html", scratch / "profile-demo", path)


def audit_report(scratch: Path, path: Path) -> None:
    """A small audit: six shapes samples (with their masks), two models, two methods."""
    from service.cli import main as onnxplain

    dataset = scratch / "dataset"
    dataset.mkdir()
    samples = MODELS / "shapes" / "samples"
    with (dataset / "manifest.csv").open("w", newline="") as manifest:
        rows = csv.writer(manifest)
        rows.writerow(["path", "label", "mask"])
        for entry in json.loads((samples / "manifest.json").read_text())["samples"][:6]:
            for name in (entry["image"], entry["mask"]):
                shutil.copy(samples / name, dataset)
            rows.writerow([entry["image"], entry["label_name"], entry["mask"]])
    out = scratch / "audit"
    with contextlib.chdir(scratch):  # the report names the dataset as given: a relative path, not a temporary one
        assert onnxplain(["audit", "dataset/manifest.csv", "--model", str(MODELS / "shapes"),
                          "--model", str(MODELS / "shapes_run1"), "--method", "occlusion:window=4,stride=2",
                          "--method", "rise:num_masks=500", "--metric", "deletion:steps=8", "--metric",
                          "localisation", "--seed", "0", "--out", str(out)]) == 0
    _screenshot(next(out.glob("*.html")), scratch / "profile-audit", path)


def _screenshot(page: Path, profile: Path, path: Path) -> None:
    from browser import chromium, horizontal_overflow

    with chromium(profile) as session:
        session.get(page.as_uri())
        assert horizontal_overflow(session) == 0, f"{page} scrolls sideways at 1366 px"
        _shrink(Image.open(io.BytesIO(session.get_screenshot_as_png())), path)


def _save(figure, path: Path, dpi: int) -> None:
    from matplotlib import pyplot

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot.close(figure)
    _shrink(Image.open(buffer), path)


def _shrink(picture: Image.Image, path: Path) -> None:
    """Save as PNG; above MAX_BYTES, as a 256-colour palette PNG (screenshots of overlays compress poorly)."""
    picture = picture.convert("RGB")
    picture.save(path, optimize=True)
    if path.stat().st_size > MAX_BYTES:
        picture.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(path,
                                                                                                    optimize=True)
    assert path.stat().st_size <= MAX_BYTES, f"{path} is {path.stat().st_size} bytes"


if __name__ == "__main__":
    main(sys.argv[1:])
