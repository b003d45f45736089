"""Deterministic synthetic scenes: one geometric shape on a cluttered background.

The scenes feed the bundled ``shapes`` demo model. Every scene comes with the
exact pixel mask of its object, so explanations (saliency maps) produced by the
service can be scored against ground truth. The clutter (smooth colour noise,
irregular blobs, curved strokes) deliberately contains no straight-edged or
round compact shapes, so a classifier can only succeed by looking at the object.

Only numpy and pillow are used, so the generator can be imported without torch.
"""

import numpy as np
from PIL import Image, ImageDraw

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")

# Fraction of the image the object covers, drawn uniformly per scene. The
# radius is derived from it per shape, so object area carries no class signal.
AREA_RANGE = (0.08, 0.22)
# Grey-level noise added to every pixel (object included) so the object is not
# a perfectly flat patch; small enough to keep sample PNGs a few KB.
GRAIN_STD = 3.0


def _polygon(n: int, radii: tuple[float, ...], phase: float = 0.0) -> np.ndarray:
    """Vertices (n*len(radii), 2) of a polygon cycling through ``radii``."""
    count = n * len(radii)
    angles = phase + 2 * np.pi * np.arange(count) / count
    r = np.resize(np.asarray(radii, dtype=float), count)
    return np.stack([r * np.cos(angles), r * np.sin(angles)], axis=1)


def _cross(half_width: float = 0.3) -> np.ndarray:
    """Vertices of a plus sign whose arms reach 1 from the centre."""
    w = half_width
    arm = np.array([[w, w], [w, 1.0], [-w, 1.0]])
    quarter_turn = np.array([[0.0, -1.0], [1.0, 0.0]])
    return np.concatenate([arm @ np.linalg.matrix_power(quarter_turn, k).T for k in range(4)])


def _area(vertices: np.ndarray) -> float:
    """Shoelace area of a simple polygon."""
    x, y = vertices[:, 0], vertices[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


# Unit-size outlines (centred on the origin); the circle is a fine polygon so
# all classes share one rasteriser and masks are exact by construction.
_OUTLINES = {
    "circle": _polygon(64, (1.0,)),
    "square": _polygon(4, (1.0,), phase=np.pi / 4),
    "triangle": _polygon(3, (1.0,), phase=np.pi / 2),
    "star": _polygon(5, (1.0, 0.45), phase=np.pi / 2),
    "cross": _cross(),
}
_UNIT_AREA = {name: _area(v) for name, v in _OUTLINES.items()}
_UNIT_REACH = {name: float(np.linalg.norm(v, axis=1).max()) for name, v in _OUTLINES.items()}


def _smooth_field(rng: np.random.Generator, cells: int, size: int) -> np.ndarray:
    """Random ``cells``×``cells`` RGB grid upsampled bicubically: smooth noise in [0, 1]."""
    grid = Image.fromarray(rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8))
    return np.asarray(grid.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Textured clutter: colour gradients, irregular blobs and curved strokes."""
    base = rng.random(3) * 255
    image = base + (_smooth_field(rng, 4, size) - 0.5) * rng.uniform(60, 200)
    image += (_smooth_field(rng, 12, size) - 0.5) * 40  # medium-scale texture

    canvas = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    # Blobs: chains of overlapping discs along a short random walk. The steps
    # are longer than the radii, so a chain is lumpy and elongated, never a disc.
    for _ in range(rng.integers(2, 5)):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = rng.uniform(0, size, 2)
        heading = rng.uniform(0, 2 * np.pi)
        for _ in range(rng.integers(3, 7)):
            r = rng.uniform(2.0, 4.5)
            draw.ellipse([*(centre - r), *(centre + r)], fill=colour)
            heading += rng.normal(0, 0.6)
            centre = centre + rng.uniform(1.0, 1.6) * r * np.array([np.cos(heading), np.sin(heading)])
    # Strokes: quadratic Bezier curves running well past the borders, so they
    # never close into outlines or form short-armed crossings.
    t = np.linspace(0.0, 1.0, 24)[:, None]
    for _ in range(rng.integers(2, 5)):
        p0, p1, p2 = rng.uniform(-0.3 * size, 1.3 * size, (3, 2))
        curve = (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2
        draw.line([tuple(p) for p in curve], fill=tuple(int(c) for c in rng.integers(0, 256, 3)),
                  width=int(rng.integers(2, 6)), joint="curve")
    return np.asarray(canvas)


def _object_mask(rng: np.random.Generator, shape: str, size: int) -> np.ndarray:
    """Exact boolean mask of one randomly sized, rotated and placed shape."""
    radius = np.sqrt(rng.uniform(*AREA_RANGE) * size * size / _UNIT_AREA[shape])
    angle = rng.uniform(0, 2 * np.pi)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    margin = radius * _UNIT_REACH[shape] + 1  # keep the whole object in frame
    centre = rng.uniform(margin, size - margin, 2)
    vertices = _OUTLINES[shape] @ rotation.T * radius + centre
    mask = Image.new("1", (size, size))
    ImageDraw.Draw(mask).polygon([tuple(v) for v in vertices], fill=1)
    return np.asarray(mask)


def _contrasting_colour(rng: np.random.Generator, surround: np.ndarray) -> np.ndarray:
    """Pick, among random candidates, the colour most distinct from ``surround``.

    Scored by the 10th percentile of RGB distance to the background pixels in
    the object's (padded) bounding box, so its outline stays visible even when
    the clutter around it is multicoloured.
    """
    candidates = rng.integers(0, 256, (16, 3)).astype(np.float32)
    # Squared distances via |a|² - 2a·b + |b|²: a matmul is far faster than broadcasting.
    sq_dist = (candidates**2).sum(1)[:, None] - 2 * candidates @ surround.T + (surround**2).sum(1)
    k = len(surround) // 10
    return candidates[np.argmax(np.partition(sq_dist, k, axis=1)[:, k])]


def render_scene(rng: np.random.Generator, shape: str, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Render one scene; returns (RGB uint8 image size×size×3, bool object mask size×size)."""
    image = _background(rng, size).astype(np.float32)
    mask = _object_mask(rng, shape, size)
    rows, cols = np.nonzero(mask)
    box = np.s_[max(rows.min() - 2, 0):rows.max() + 3, max(cols.min() - 2, 0):cols.max() + 3]
    image[mask] = _contrasting_colour(rng, image[box][~mask[box]])
    image += rng.normal(0.0, GRAIN_STD, image.shape[:2])[..., None]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), mask


def make_dataset(n: int, seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` class-balanced scenes in shuffled order: (images N×H×W×3, labels N, masks N×H×W)."""
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % len(SHAPES)).astype(np.int64)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    masks = np.empty((n, size, size), dtype=bool)
    for i, label in enumerate(labels):
        images[i], masks[i] = render_scene(rng, SHAPES[label], size)
    return images, labels, masks


def write_scene_dataset(folder, items: int, seed: int):
    """``items`` fresh scenes as PNGs with their object masks and a CSV manifest (path, label name, mask), for
    audits; returns the manifest's path."""
    import csv
    from pathlib import Path

    from PIL import Image

    folder = Path(folder)
    images, labels, masks = make_dataset(items, seed)
    rows = []
    for i, (image, label, mask) in enumerate(zip(images, labels, masks)):
        Image.fromarray(image).save(folder / f"scene_{i:04d}.png")
        Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"scene_{i:04d}.mask.png")
        rows.append({"path": f"scene_{i:04d}.png", "label": SHAPES[label], "mask": f"scene_{i:04d}.mask.png"})
    manifest = folder / "manifest.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "label", "mask"])
        writer.writeheader()
        writer.writerows(rows)
    return manifest
