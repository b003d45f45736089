"""The audit report's pictures, as inlined PNG data URIs: small overlays and thumbnails for the drill-down and
the galleries, and the matplotlib figures (mean curves, distributions, WCAM's scale profile).

Every picture is inlined so the report stays one file; a 1,000-image audit draws hundreds of them, so each is
downscaled to at most ``TILE`` pixels a side and reduced to a small palette, which keeps one to a few kB.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from service import render
from service.reports import data_uri, figure_uri

TILE = 96  # pixels a side at most: an overlay is read at a glance, zoom is not what a report is for
COLOURS = 64  # palette size: a heatmap over a grey image needs few colours, and PNG compresses them well


def picture_uri(array: np.ndarray, side: int = TILE) -> str:
    """``array`` (H, W, 3 uint8) as a PNG data URI, at most ``side`` pixels a side, palette-reduced."""
    picture = Image.fromarray(array)
    if max(picture.size) > side:
        scale = side / max(picture.size)
        picture = picture.resize((max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                                 Image.Resampling.LANCZOS)
    picture = picture.quantize(COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return data_uri(buffer.getvalue())


class Pictures:
    """The image of every item, read once and resized to the map of each result, and the overlays drawn from it,
    each drawn once however many sections show it."""

    def __init__(self, images: dict[str, Path]) -> None:
        self.images = images
        self._opened: dict[str, Image.Image] = {}
        self._overlays: dict[tuple[str, str, str], str] = {}

    def _image(self, item: str) -> Image.Image:
        if item not in self._opened:
            self._opened[item] = Image.open(self.images[item]).convert("RGB")
        return self._opened[item]

    def thumbnail(self, item: str) -> str:
        return picture_uri(np.asarray(self._image(item)))

    def overlay(self, row: dict) -> str:
        key = (row["model"], row["method"], row["item"])
        if key not in self._overlays:
            attribution = row["map"]
            picture = np.asarray(self._image(row["item"]).resize(attribution.shape[::-1]))
            self._overlays[key] = picture_uri(render.overlay(picture, attribution))
        return self._overlays[key]


def _new_figure():
    from matplotlib import pyplot

    figure = pyplot.figure(figsize=(6.4, 3.2), constrained_layout=True)
    return figure, figure.add_subplot(1, 1, 1)


def curves_figure(results: list[dict]) -> str | None:
    """The mean of every curve metric's curve over the results, with its interquartile band."""
    names = sorted({name for r in results for name in r["curves"]})
    if not names:
        return None
    figure, axis = _new_figure()
    for name in names:
        stacked = np.array([r["curves"][name] for r in results if name in r["curves"]])
        steps = np.linspace(0, 1, stacked.shape[1])
        axis.plot(steps, stacked.mean(axis=0), label=f"{name} (mean of {len(stacked)})")
        axis.fill_between(steps, np.percentile(stacked, 25, axis=0), np.percentile(stacked, 75, axis=0), alpha=0.2)
    axis.set(xlabel="share of pixels removed (deletion) or revealed (insertion)", ylabel="score")
    axis.legend(fontsize=8)
    return figure_uri(figure)


def histogram_figure(values: list[float], label: str) -> str:
    figure, axis = _new_figure()
    axis.hist(values, bins=20)
    axis.set(xlabel=label, ylabel="images")
    return figure_uri(figure)


def scales_figure(profiles: list[list[float]]) -> str:
    """WCAM's mean share of importance per scale (approximation, then coarse to fine levels)."""
    mean = np.mean(profiles, axis=0)
    figure, axis = _new_figure()
    axis.bar(render.level_labels(len(mean) - 1), mean)
    axis.set(ylabel="share of importance")
    return figure_uri(figure)
