"""Pictures of explanations for people to look at: heatmap overlays and matplotlib figures (pages: service.reports)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: servers and CI have no display
import numpy as np
from matplotlib import colormaps
from PIL import Image


def heatmap(attribution: np.ndarray) -> np.ndarray:
    """RGB uint8 colouring of a map: red for positive, blue for negative, symmetric around zero."""
    scale = float(np.max(np.abs(attribution))) or 1.0
    colours = colormaps["RdBu_r"](0.5 + 0.5 * attribution / scale)[..., :3]
    return (colours * 255).round().astype(np.uint8)


def overlay(image: np.ndarray, attribution: np.ndarray, alpha: float = 0.75) -> np.ndarray:
    """The map over a grey version of the image, opaque where relevance is large.

    A map with no negative values (Sobol, HSIC, WCAM indices, RISE) is shown above its minimum: its
    floor is where the method found nothing, not evidence spread over the whole image.
    """
    if attribution.min() >= 0:
        attribution = attribution - attribution.min()
    grey = image.astype(np.float32).mean(axis=2, keepdims=True) if image.ndim == 3 else image[..., None]
    base = np.repeat(grey, 3, axis=2)
    scale = float(np.max(np.abs(attribution))) or 1.0
    weight = alpha * (np.abs(attribution) / scale)[..., None] ** 0.5
    blended = (1.0 - weight) * base + weight * heatmap(attribution).astype(np.float32)
    return blended.round().clip(0, 255).astype(np.uint8)


def save_png(array: np.ndarray, path: Path, upscale: int = 1) -> Path:
    picture = Image.fromarray(array.squeeze() if array.ndim == 3 and array.shape[2] == 1 else array)
    if upscale > 1:
        picture = picture.resize((picture.width * upscale, picture.height * upscale), Image.Resampling.NEAREST)
    picture.save(path)
    return path


def consistency_figure(labels: list[str], maps: list[np.ndarray], spearman: np.ndarray, path: Path) -> Path:
    """Every setting's map in a row, and the Spearman matrix between them."""
    from matplotlib import pyplot

    count = len(maps)
    figure = pyplot.figure(figsize=(2.0 * count + 5, 3.6), constrained_layout=True)
    grid = figure.add_gridspec(1, count + 2)
    for i, (label, attribution) in enumerate(zip(labels, maps)):
        axis = figure.add_subplot(grid[0, i])
        axis.imshow(heatmap(attribution))
        axis.set_title(label, fontsize=8)
        axis.axis("off")
    axis = figure.add_subplot(grid[0, count:])
    image = axis.imshow(spearman, vmin=-1, vmax=1, cmap="RdBu_r")
    axis.set_xticks(range(count), labels, rotation=60, ha="right", fontsize=7)
    axis.set_yticks(range(count), labels, fontsize=7)
    axis.set_title("Spearman between maps")
    figure.colorbar(image, ax=axis, shrink=0.7)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def level_labels(levels: int) -> list[str]:
    """Axis labels of a WCAM level profile: the approximation, then levels J (coarse) to 1 (fine)."""
    return ["approx."] + [f"level {j}" for j in range(levels, 0, -1)]


def scales_figure(names: list[str], pictures: list[np.ndarray], maps: list[np.ndarray],
                  profiles: list[list[float]], predictions: list[str], path: Path) -> Path:
    """Each variant over its spatial WCAM, and every variant's importance per scale on one chart."""
    from matplotlib import pyplot

    count = len(names)
    figure = pyplot.figure(figsize=(max(8.0, 2.0 * count), 6.2), constrained_layout=True)
    grid = figure.add_gridspec(2, count, height_ratios=[1, 1.3])
    for i, (name, picture, attribution, prediction) in enumerate(zip(names, pictures, maps, predictions)):
        axis = figure.add_subplot(grid[0, i])
        axis.imshow(overlay(picture, attribution))
        axis.set_title(f"{name}\n{prediction}", fontsize=8)
        axis.axis("off")
    axis = figure.add_subplot(grid[1, :])
    labels = level_labels(len(profiles[0]) - 1)
    for name, profile in zip(names, profiles):
        axis.plot(labels, profile, marker="o", label=name, linewidth=2.5 if name == "clean" else 1.2)
    axis.set_ylabel("share of WCAM importance")
    axis.set_ylim(0, 1)
    axis.legend(fontsize=8, ncol=max(1, count // 6))
    axis.grid(alpha=0.3)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def wcam_figure(picture: np.ndarray, transform_view: np.ndarray, wavelet_map: np.ndarray,
                spatial_map: np.ndarray, profile: list[float], bounds: list[tuple[int, int, int, int]],
                title: str, path: Path) -> Path:
    """The image, the WCAM over a grey view of the wavelet transform with the sub-bands outlined,
    the spatial WCAM over the image, and the importance per scale."""
    from matplotlib import pyplot
    from matplotlib.patches import Rectangle

    figure, axes = pyplot.subplots(1, 4, figsize=(14, 3.8), constrained_layout=True)
    axes[0].imshow(picture.squeeze())
    axes[0].set_title("input")
    axes[1].imshow(transform_view, cmap="gray")
    axes[1].imshow(wavelet_map, cmap="jet", alpha=0.5)
    for top, left, height, width in bounds:
        axes[1].add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor="white",
                                    linewidth=0.8))
    axes[1].set_title("WCAM (wavelet layout)")
    axes[2].imshow(overlay(picture, spatial_map))
    axes[2].set_title("spatial WCAM")
    for axis in axes[:3]:
        axis.axis("off")
    axes[3].bar(level_labels(len(profile) - 1), profile, color="#c0392b")
    axes[3].set_ylim(0, 1)
    axes[3].set_title("importance per scale")
    figure.suptitle(title)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def measures_figure(result, path: Path) -> Path:
    """The salience measures at a glance: the noise curves, SSIM per transform, stability and entropy
    distributions, and the degradation drops (``result`` an xai.v1.MeasureResult)."""
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(1, 4, figsize=(17, 3.8), constrained_layout=True)
    noise, transforms, spread, degradation = axes
    for curve in result.noise_curves:
        noise.plot(result.noise_levels, curve.ssim, color="tab:blue", alpha=0.6)
        noise.plot(result.noise_levels, np.asarray(curve.scores) / (abs(curve.scores[0]) or 1), color="tab:red",
                   alpha=0.6)
    noise.set(title="salt and pepper: map SSIM (blue), score / clean (red)", xlabel="amount")
    if result.transforms:
        names = [t.name.replace("shift_", "") for t in result.transforms]
        transforms.bar(range(len(names)), [t.summary.mean for t in result.transforms],
                       yerr=[t.summary.std for t in result.transforms], color="tab:green")
        transforms.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=7)
    transforms.set(title="SSIM(S(T(x)), T(S(x)))", ylim=(-0.2, 1.05))
    for series, color in [(s, "tab:purple") for s in result.stability] + [(s, "tab:orange") for s in result.entropy]:
        spread.hist(series.values, bins=20, range=(0, 1), alpha=0.6, color=color, label=series.name)
    if result.stability or result.entropy:
        spread.legend(fontsize=7)
    spread.set(title="stability pairs SSIM (purple), entropy (orange)", xlim=(0, 1))
    drops = [s for s in result.degradation if s.name.endswith("score_drop")]
    if drops:
        degradation.bar([s.name.replace("_score_drop", "") for s in drops], [s.summary.mean for s in drops],
                        yerr=[s.summary.std for s in drops], color=["tab:gray", "tab:red"][:len(drops)])
    degradation.set(title="score drop when the map guides a blur")
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def aggregate_figure(labels: list[str], members: list[np.ndarray], scores: list[float], aggregate: np.ndarray,
                     title: str, path: Path) -> Path:
    """The member maps with their scores, and the aggregate with its own."""
    from matplotlib import pyplot

    count = len(members) + 1
    figure, axes = pyplot.subplots(1, count, figsize=(2.4 * count, 2.9), constrained_layout=True)
    for axis, label, attribution, score in zip(axes, [*labels, "aggregate"], [*members, aggregate], scores):
        axis.imshow(heatmap(attribution))
        axis.set_title(f"{label}\n{score:.3f}", fontsize=8)
        axis.axis("off")
    figure.suptitle(title, fontsize=9)
    figure.savefig(path, dpi=110)
    pyplot.close(figure)
    return path


def wavelet_layout(picture: np.ndarray, levels: int, wavelet: str) -> tuple[np.ndarray, list]:
    """A grey view of ``picture``'s wavelet transform in WCAM's packed layout (log scale: details are orders
    of magnitude smaller than the approximation) and the layout's sub-bands (``wavelets.Subband``)."""
    from service.explainers import wavelets

    grey = picture.astype(np.float32).mean(axis=2) / 255.0 if picture.ndim == 3 else picture / 255.0
    layout = wavelets.make_layout(grey.shape[0], grey.shape[1], levels, wavelet)
    return np.log1p(np.abs(wavelets.forward(grey, layout)) * 50), wavelets.subbands(layout)


def wavelet_layout_figure(transform_view: np.ndarray, wavelet_map: np.ndarray, bands: list,
                          level_importance: list[float], title: str = "", size: tuple[float, float] = (4.4, 2.2)):
    """WCAM in the wavelet layout, each sub-band outlined and named by its level (A: the approximation, 1: the
    finest details), beside the share of the importance per level. Returns the matplotlib figure."""
    from matplotlib import pyplot
    from matplotlib.patches import Rectangle

    figure, (layout_axis, shares_axis) = pyplot.subplots(1, 2, figsize=size, constrained_layout=True,
                                                         gridspec_kw={"width_ratios": [1, 1.1]})
    layout_axis.imshow(transform_view, cmap="gray")
    # Square root: the approximation's few cells would otherwise take the whole colour range.
    layout_axis.imshow(np.sqrt(np.clip(wavelet_map, 0, None)), cmap="jet", alpha=0.55)
    for band in bands:
        top, left = band.rows.start, band.cols.start
        height, width = band.rows.stop - top, band.cols.stop - left
        layout_axis.add_patch(Rectangle((left - 0.5, top - 0.5), width, height, fill=False, edgecolor="white",
                                        linewidth=0.8))
        if band.name in ("approximation", "diagonal"):  # one label per level, in its diagonal block
            layout_axis.text(left + width / 2 - 0.5, top + height / 2 - 0.5,
                             "A" if band.name == "approximation" else str(band.level), color="white",
                             ha="center", va="center", fontsize=8, fontweight="bold")
    layout_axis.set_title(title or "wavelet layout", fontsize=9)
    layout_axis.axis("off")
    labels = ["A"] + [str(level) for level in range(len(level_importance) - 1, 0, -1)]
    shares_axis.bar(labels, level_importance, color="#c0392b")
    shares_axis.set_ylim(0, 1)
    shares_axis.set_title("share per level", fontsize=9)
    shares_axis.set_xlabel("coarse → fine", fontsize=8)
    shares_axis.tick_params(labelsize=8)
    return figure
