"""(c) Following geometric transformations: does the map move with the image? For each transform T,
SSIM(S(T(x)), T(S(x))) on the region both images share (a shift brings in replicated border pixels, which are
left out). The reference's 12 transforms: both flips, 8 shifts of +-1/14 of the side (16 px at 224), and
rotations by 90 degrees either way."""

from __future__ import annotations

from typing import Callable

import numpy as np

from service.metrics.agreement import ssim

Explain = Callable[[np.ndarray], np.ndarray]


def _shift(array: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[y, x] = array[y - dy, x - dx], borders replicated."""
    h, w = array.shape[:2]
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return array[rows][:, cols]


def transforms(height: int, width: int) -> dict[str, tuple[Callable[[np.ndarray], np.ndarray], tuple[slice, slice]]]:
    """name -> (T, the valid region of T's output)."""
    step = max(1, round(min(height, width) / 14))
    full = (slice(None), slice(None))
    found = {"flip_horizontal": (lambda a: a[:, ::-1], full), "flip_vertical": (lambda a: a[::-1], full)}
    for dy in (-step, 0, step):
        for dx in (-step, 0, step):
            if dy or dx:
                region = (slice(max(dy, 0), height + min(dy, 0)), slice(max(dx, 0), width + min(dx, 0)))
                found[f"shift_{dy:+d}_{dx:+d}"] = (lambda a, dy=dy, dx=dx: _shift(a, dy, dx), region)
    if height == width:  # a quarter turn of a non-square image changes its size: the model would not take it
        found["rotate_clockwise"] = (lambda a: np.rot90(a, -1), full)
        found["rotate_counterclockwise"] = (lambda a: np.rot90(a, 1), full)
    return found


def follows_transforms(image: np.ndarray, explain: Explain, attribution: np.ndarray | None = None) -> dict[str, float]:
    """SSIM per transform of the map of the transformed image against the transformed map (1: it follows)."""
    clean = explain(image) if attribution is None else attribution
    results = {}
    for name, (transform, region) in transforms(*image.shape[:2]).items():
        moved = explain(np.ascontiguousarray(transform(image)))
        results[name] = ssim(moved[region], transform(clean)[region])
    return results
