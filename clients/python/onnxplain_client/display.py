"""Explanations that draw themselves: ``Explanation.plot()``, ``Attribution.plot(image)`` and, in a notebook,
``_repr_png_``.

The overlay is defined here, in closed form, so a picture can be checked pixel by pixel: with the map scaled to
[-1, 1] by its largest magnitude (v = map / max|map|), each pixel is

    (1 - alpha |v|) * grey(image) + alpha |v| * colour(v)

where colour is matplotlib's ``bwr`` colormap at (v + 1) / 2: pure red (1, 0, 0) where the map is at its most
positive, pure blue (0, 0, 1) at its most negative, and grey(image), the mean of its channels, where the map is
0 (a colour image would hide red evidence on a red object).

matplotlib is the ``plot`` extra (``pip install 'onnxplain-client[plot]'``), imported only when a picture is
drawn; the figures are plain ``matplotlib.figure.Figure`` objects, never pyplot's global state.
"""

from __future__ import annotations

import io
from typing import Any, Sequence

import numpy as np

ALPHA = 0.6  # the overlay's opacity where |v| = 1
PANEL_INCHES = 3.0  # each map's width and height
TITLE_INCHES = 0.6  # room above each map for its title
DPI = 100  # so a figure of n maps is exactly (300 n) x 360 pixels
COLORMAP = "bwr"


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError("drawing explanations needs matplotlib: pip install 'onnxplain-client[plot]'") from error
    return matplotlib, Figure, FigureCanvasAgg


def overlay(image: np.ndarray | None, attribution: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """The map over the image, greyed, as float RGB in [0, 1], (H, W, 3), by the formula of this module's docstring.
    ``image``: (H, W, 3) or (H, W) uint8 (or float in [0, 1]) at the map's size; None for a mid-grey canvas."""
    matplotlib, _, _ = _matplotlib()
    attribution = np.asarray(attribution, dtype=np.float64)
    if image is None:
        base = np.full((*attribution.shape, 3), 0.5)
    else:
        base = np.asarray(image, dtype=np.float64)
        if np.asarray(image).dtype == np.uint8:
            base = base / 255.0
        # Drawn over a grey version of the image, as the CLI and the pages do: red evidence on a red object
        # would otherwise vanish into it.
        grey = base if base.ndim == 2 else base[..., :3].mean(axis=2)
        base = np.repeat(grey[..., None], 3, axis=2)
        if base.shape[:2] != attribution.shape:
            raise ValueError(f"the image is {base.shape[0]} x {base.shape[1]}, the map {attribution.shape[0]} x "
                             f"{attribution.shape[1]}: draw them at one size")
    peak = np.max(np.abs(attribution)) if attribution.size else 0.0
    scaled = attribution / peak if peak > 0 and np.isfinite(peak) else np.zeros_like(attribution)
    scaled = np.nan_to_num(scaled)
    colour = matplotlib.colormaps[COLORMAP]((scaled + 1) / 2)[..., :3]
    weight = alpha * np.abs(scaled)[..., None]
    return (1 - weight) * base + weight * colour


def title(class_index: int, label: str, score: float, metrics: dict[str, Any] | None = None,
          reliability: float | None = None) -> str:
    """``label (class i): score s`` and, on a second line, each metric's score and the map's reliability."""
    first = f"{label or 'class'} ({class_index}): score {score:.3f}"
    extras = [f"{name} {_score(value):.3f}" for name, value in (metrics or {}).items()]
    if reliability is not None:
        extras.append(f"reliability {reliability:.2f}")
    return first + ("\n" + ", ".join(extras) if extras else "")


def _score(metric: Any) -> float:
    return float(getattr(metric, "score", metric))


def figure(panels: Sequence[tuple[np.ndarray | None, np.ndarray, str]], alpha: float = ALPHA):
    """A figure of one overlay per (image, map, title), side by side, exactly (300 n) x 360 pixels."""
    _, Figure, FigureCanvasAgg = _matplotlib()
    count = max(1, len(panels))
    height = PANEL_INCHES + TITLE_INCHES
    fig = Figure(figsize=(PANEL_INCHES * count, height), dpi=DPI)
    FigureCanvasAgg(fig)
    for i, (image, attribution, text) in enumerate(panels):
        # Each map fills its panel's square exactly, so its pixels land on known figure pixels.
        ax = fig.add_axes((i / count, 0.0, 1 / count, PANEL_INCHES / height))
        ax.imshow(overlay(image, attribution, alpha), interpolation="nearest", aspect="auto")
        ax.set_axis_off()
        fig.text((i + 0.5) / count, 1 - TITLE_INCHES / height / 2, text, ha="center", va="center", fontsize=8)
    return fig


def png(fig) -> bytes:
    """The figure as PNG bytes, at its own size."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def explanation_image(explanation) -> np.ndarray:
    """What the maps are drawn over: the model input, or for a letterbox model (map frame "image") the image's
    place in it, resized to the maps' size."""
    image = explanation.image
    if explanation.map_frame != "image" or not explanation.attributions:
        return image
    from PIL import Image

    placement = explanation.response.placement
    crop = image[placement.top:placement.top + placement.height, placement.left:placement.left + placement.width]
    height, width = explanation.attributions[0].map.shape
    return np.asarray(Image.fromarray(crop).resize((width, height), Image.BILINEAR))


def plot_explanation(explanation, alpha: float = ALPHA):
    image = explanation_image(explanation)
    return figure([(image, a.map, title(a.class_index, a.label, a.score, a.metrics,
                                        a.precision.reliability if a.precision else None))
                   for a in explanation.attributions], alpha)


def plot_attribution(attribution, image: np.ndarray | None = None, alpha: float = ALPHA):
    return figure([(image, attribution.map, title(attribution.class_index, attribution.label, attribution.score,
                                                   attribution.metrics,
                                                   attribution.precision.reliability if attribution.precision
                                                   else None))], alpha)


def repr_png(make_figure) -> bytes | None:
    """For IPython: the PNG, or None (the text repr) where matplotlib is not installed."""
    try:
        return png(make_figure())
    except ImportError:
        return None
