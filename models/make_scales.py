"""Train and export the ``texture`` and ``shape`` demo models, built to rely on different scales.

Both models see the same kind of 64x64 RGB scene. Each scene has two independent layers:

- coarse: a smooth background (colour and gentle gradient) with one large, soft-edged
  disc or bar (an ellipse of aspect 2.5 and the same area), 20-32 px across in equal-area
  diameter, at any angle, Gaussian edge blur sigma 2-3 px;
- fine: a zero-mean texture of period 2 px or 4 px (horizontal stripes, vertical
  stripes or a checkerboard) inside a random elliptical patch, plus a little grain.

The texture has a whole number of periods on even pixel boundaries, so under a Haar
wavelet transform (periodization) a period-2 texture lives only in the level-1 details
and a period-4 texture only in the level-2 details. Its mean is zero, so it does not
change the coarse picture.

``texture`` classifies the period (labels "fine" = 2 px, "coarse" = 4 px). The shape is
drawn at random, so coarse scales carry no class information. ``shape`` classifies the
shape (labels "disc", "bar"). The period is drawn at random, so fine scales carry no
class information. The two generators give the same distribution of images; only what
is called the label differs. Both models share the input contract (NCHW float32
[batch, 3, 64, 64], RGB in [0, 1], mean 0.5, std 0.25), the raw-logits output and the
architecture (``ScalesNet``). Writes models/scale_{texture,shape}/{model.onnx,
config.json, samples/}. It then prints scale-sensitivity checks: accuracy under a blur,
under a high-pass, on hybrids of two scenes and with Haar levels removed.

    python models/make_scales.py
"""

import time
from collections.abc import Callable

import numpy as np
import pywt
import torch
from torch import nn

from common import (
    PooledCNN,
    dihedral,
    REPO_ROOT,
    export_onnx,
    pick_samples,
    predict,
    report_sizes,
    set_deterministic,
    to_model_input,
    train,
    write_config,
    write_samples,
)

SEED = 0
SIZE = 64
PERIODS = (2, 4)  # texture period in pixels; index = texture class
TEXTURE_LABELS = ["fine", "coarse"]
SHAPE_LABELS = ["disc", "bar"]
TRAIN_SCENES, HELDOUT_SCENES, EPOCHS, BATCH, LR = 4000, 2000, 10, 64, 4e-3
PREPROCESSING = {
    "pixel_range": "0_1",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "channel_order": "RGB",
    "resize": "stretch",
}
MODELS_DIR = REPO_ROOT / "models"
SAMPLE_LABELS, SAMPLE_POOL = [0, 1, 0, 1], 100

# Scene parameters; ranges are drawn uniformly. Intensities are in [0, 1] units.
DIAMETER_RANGE = (20.0, 32.0)  # equal-area diameter of the disc or bar
BAR_ASPECT = 2.5  # the bar's major / minor axis
EDGE_SIGMA_RANGE = (2.0, 3.0)  # Gaussian blur of the shape's edge, px
SHAPE_CONTRAST_RANGE = (0.12, 0.22)  # shape minus background, either sign
PATCH_SEMI_AXES = (10.0, 20.0)  # texture patch: ellipse semi-axes, px
TEXTURE_AMPLITUDE = (0.05, 0.12)  # texture is +-amplitude
GRAIN_STD = 0.01

# Scale checks after training (Gaussian sigmas in px).
BLUR_SIGMA, HIGHPASS_SIGMA = 1.5, 2.0


# --- scenes (numpy only) -------------------------------------------------------------

def _blur_matrix(sigma: float, size: int = SIZE, renormalise: bool = False) -> np.ndarray:
    """G such that ``G @ image @ G.T`` is a Gaussian blur of a size×size image.

    By default the pixels outside the image count as zero, which suits a mask. With
    ``renormalise`` each row sums to one instead, so borders keep their brightness.
    """
    offsets = np.arange(size)[:, None] - np.arange(size)[None, :]
    g = np.exp(-0.5 * (offsets / sigma) ** 2)
    return g / (g.sum(1, keepdims=True) if renormalise else g[size // 2].sum())


def _shape_layer(rng: np.random.Generator, shape: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(soft coverage in [0, 1], hard mask) of one disc (0) or bar (1).

    The bar is an ellipse of aspect BAR_ASPECT with the disc's area, so size carries no
    class information; both share the centre, angle and blur distributions. What tells
    them apart is elongation over the whole shape: a coarse-scale property.
    """
    radius = rng.uniform(*DIAMETER_RANGE) / 2
    stretch = np.sqrt(BAR_ASPECT) if shape == 1 else 1.0
    semi_major, semi_minor = radius * stretch, radius / stretch
    margin = semi_major + 1
    centre = rng.uniform(margin, size - margin, 2)
    angle = rng.uniform(0, np.pi)
    sigma = rng.uniform(*EDGE_SIGMA_RANGE)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5 - centre[:, None, None]
    u = np.cos(angle) * xx + np.sin(angle) * yy
    v = -np.sin(angle) * xx + np.cos(angle) * yy
    # Distance inside the ellipse, in px along its minor axis (exact on the boundary, enough for antialiasing).
    inside = (1.0 - np.hypot(u / semi_major, v / semi_minor)) * semi_minor
    blur = _blur_matrix(sigma, size)
    soft = blur @ np.clip(inside + 0.5, 0.0, 1.0) @ blur.T  # antialiased, then blurred
    return soft, inside > 0


def _texture_layer(rng: np.random.Generator, period: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(zero-mean texture, patch mask): a +-1 square wave of ``period`` px in an ellipse."""
    wave = 1.0 - 2.0 * ((np.arange(size) // (period // 2)) % 2)  # starts on an even pixel
    kind = rng.integers(3)
    if kind == 0:
        pattern = np.repeat(wave[:, None], size, axis=1)  # horizontal stripes
    elif kind == 1:
        pattern = np.repeat(wave[None, :], size, axis=0)  # vertical stripes
    else:
        pattern = wave[:, None] * wave[None, :]  # checkerboard
    pattern *= rng.choice([-1.0, 1.0]) * rng.uniform(*TEXTURE_AMPLITUDE)
    a, b = rng.uniform(*PATCH_SEMI_AXES, 2)
    margin = max(a, b) + 1
    centre = rng.uniform(margin, size - margin, 2)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5 - centre[:, None, None]
    u = np.cos(angle) * xx + np.sin(angle) * yy
    v = -np.sin(angle) * xx + np.cos(angle) * yy
    patch = (u / a) ** 2 + (v / b) ** 2 <= 1.0
    return pattern * patch, patch


def render_scene(rng: np.random.Generator, shape: int, period_index: int,
                 size: int = SIZE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One scene: (RGB uint8 size×size×3, shape mask, texture-patch mask).

    ``shape`` is 0 for a disc and 1 for a bar. ``period_index`` picks the texture
    period from PERIODS.
    """
    ramp = np.linspace(-1.0, 1.0, size)
    base = rng.uniform(0.4, 0.6, 3)
    gradient = rng.uniform(-0.06, 0.06, (2, 3))
    image = base + ramp[:, None, None] * gradient[0] + ramp[None, :, None] * gradient[1]
    soft, shape_mask = _shape_layer(rng, shape, size)
    delta = rng.choice([-1.0, 1.0]) * rng.uniform(*SHAPE_CONTRAST_RANGE) + rng.uniform(-0.03, 0.03, 3)
    image += soft[..., None] * delta
    texture, patch = _texture_layer(rng, PERIODS[period_index], size)
    image += (texture + rng.normal(0.0, GRAIN_STD, (size, size)))[..., None]
    return np.clip(np.rint(image * 255), 0, 255).astype(np.uint8), shape_mask, patch


def texture_scene(rng: np.random.Generator, label: int) -> np.ndarray:
    """A scene of texture class ``label`` (0: period 2 px, 1: period 4 px) with a random shape."""
    return render_scene(rng, int(rng.integers(2)), label)[0]


def shape_scene(rng: np.random.Generator, label: int) -> np.ndarray:
    """A scene of shape class ``label`` (0: disc, 1: bar) with a random texture period."""
    return render_scene(rng, label, int(rng.integers(2)))[0]


def make_dataset(task: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``n`` class-balanced scenes for ``task`` ("texture" or "shape") in shuffled order.

    Returns (images N×H×W×3, labels N, masks N×H×W, other N). ``masks`` holds the region
    that carries the task's evidence: the texture patch or the shape. ``other`` is the
    nuisance factor drawn at random: the shape for "texture", the period for "shape".
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 2).astype(np.int64)
    other = np.empty(n, dtype=np.int64)
    images = np.empty((n, SIZE, SIZE, 3), dtype=np.uint8)
    masks = np.empty((n, SIZE, SIZE), dtype=bool)
    for i, label in enumerate(labels):
        other[i] = rng.integers(2)
        if task == "texture":
            images[i], _, masks[i] = render_scene(rng, int(other[i]), int(label))
        else:
            images[i], masks[i], _ = render_scene(rng, int(label), int(other[i]))
    return images, labels, masks, other


# --- model --------------------------------------------------------------------------

class ScalesNet(PooledCNN):
    """Small CNN shared by both models: four conv blocks (64 -> 8 px), global average pool, linear.

    The receptive field of the last block (about 36 px) spans most of the largest bar, so
    its elongation is visible to one unit. The architecture is the same for both models, so any
    difference in the scales they use comes from the data.
    """

    def __init__(self, n_classes: int = 2):
        super().__init__((16, 32, 48, 64), n_classes)



# --- scale checks -------------------------------------------------------------------

def _gaussian(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of N×H×W×C float images, borders renormalised."""
    blur = _blur_matrix(sigma, images.shape[1], renormalise=True)
    return np.einsum("ij,njkc,lk->nilc", blur, images, blur, optimize=True)


def _haar_keep(images: np.ndarray, keep: Callable[[int], bool], levels: int = 5) -> np.ndarray:
    """Reconstruct N×H×W×C images keeping only the Haar detail levels where ``keep(level)``.

    Level 1 is the finest. The approximation is kept when ``keep(levels + 1)``.
    """
    coeffs = pywt.wavedec2(images, "haar", mode="periodization", level=levels, axes=(1, 2))
    kept = [coeffs[0] if keep(levels + 1) else np.zeros_like(coeffs[0])]
    for position, details in enumerate(coeffs[1:]):
        level = levels - position
        kept.append(tuple(d if keep(level) else np.zeros_like(d) for d in details))
    return pywt.waverec2(kept, "haar", mode="periodization", axes=(1, 2))


def _classify(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """Predicted classes for float N×H×W×3 images in [0, 1] (not clipped or rounded)."""
    x = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2)
    mean = torch.tensor(PREPROCESSING["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(PREPROCESSING["std"]).view(1, -1, 1, 1)
    return predict(model, ((x - mean) / std).contiguous()).argmax(1)


def scale_checks(models: dict[str, nn.Module], n: int, seed: int) -> dict[str, dict[str, float]]:
    """How each model's accuracy moves when one range of scales is removed or swapped.

    All models see the same scenes. Each scene has both a shape and a texture class,
    so one set of scenes scores both models.
    - blur: Gaussian sigma BLUR_SIGMA (removes the fine scales);
    - highpass: image - Gaussian(HIGHPASS_SIGMA) + the image's mean colour (removes the
      coarse scales);
    - haar12: only Haar detail levels 1-2 plus the image mean (fine only);
    - haar3+: Haar levels 3+ and the approximation (coarse only);
    - hybrid: coarse of scene i + fine of scene i+1 (a random other scene). The
      "follows fine" score is the accuracy against scene i+1's labels.
    """
    images, texture_labels, _, shape_labels = make_dataset("texture", n, seed)
    truth = {"texture": texture_labels, "shape": shape_labels}
    x = images.astype(np.float64) / 255
    mean = x.mean(axis=(1, 2), keepdims=True)
    low = _gaussian(x, HIGHPASS_SIGMA)
    variants = {
        "clean": x,
        f"blur{BLUR_SIGMA}": _gaussian(x, BLUR_SIGMA),
        f"highpass{HIGHPASS_SIGMA}": x - low + mean,
        "haar12": _haar_keep(x - mean, lambda level: level <= 2) + mean,
        "haar3+": _haar_keep(x, lambda level: level >= 3),
        "hybrid": low + np.roll(x - low, -1, axis=0),
    }
    results = {}
    for name, model in models.items():
        results[name] = {}
        for variant, data in variants.items():
            predicted = _classify(model, data)
            results[name][variant] = float((predicted == truth[name]).mean())
            if variant == "hybrid":
                results[name]["hybrid_follows_fine"] = float((predicted == np.roll(truth[name], -1)).mean())
    return results


# --- main ---------------------------------------------------------------------------

def build(task: str, labels: list[str], description: str, seed_offset: int) -> nn.Module:
    """Train, check, export and document one model; returns it for the scale checks."""
    start = time.perf_counter()
    set_deterministic(SEED)
    train_seed, heldout_seed, sample_seed = (SEED + seed_offset + k for k in (1, 2, 3))
    images, y, _, _ = make_dataset(task, TRAIN_SCENES, train_seed)
    x, y = to_model_input(images, PREPROCESSING), torch.from_numpy(y)
    model = ScalesNet(len(labels))
    train_seconds = train(model, lambda epoch: (dihedral(x, epoch % 8), y), EPOCHS, lr=LR, batch_size=BATCH)

    images, y, _, _ = make_dataset(task, HELDOUT_SCENES, heldout_seed)
    heldout = to_model_input(images, PREPROCESSING)
    accuracy = float((predict(model, heldout).argmax(1) == y).mean())
    print(f"[{task}] held-out accuracy {accuracy:.4f} on {HELDOUT_SCENES} scenes, training {train_seconds:.1f} s")

    out_dir = MODELS_DIR / f"scale_{task}"
    sha256 = export_onnx(model, heldout[:4], out_dir / "model.onnx", "logits")
    write_config(
        out_dir,
        name=out_dir.name,
        description=description,
        preprocessing=PREPROCESSING,
        labels=labels,
        output_kind="logits",
        metrics={"heldout_accuracy": round(accuracy, 4), "train_seconds": round(train_seconds, 1)},
        script="models/make_scales.py",
        seed=SEED,
    )
    images, y, masks, _ = make_dataset(task, SAMPLE_POOL, sample_seed)
    predicted = predict(model, to_model_input(images, PREPROCESSING)).argmax(1)
    chosen = pick_samples(predicted, y, SAMPLE_LABELS)
    for entry in write_samples(out_dir / "samples", labels, images[chosen], y[chosen], masks[chosen]):
        print(f"[{task}] sample {entry['image']}: {entry['label_name']}")
    report_sizes(out_dir)
    print(f"[{task}] model.onnx sha256 {sha256}")
    print(f"[{task}] wall time {time.perf_counter() - start:.1f} s")
    return model


def main() -> None:
    start = time.perf_counter()
    models = {
        "texture": build("texture", TEXTURE_LABELS, "Is the fine texture in a 64x64 RGB scene of period 2 px "
                         "(fine) or 4 px (coarse)? The large soft shape is random: only fine scales matter.", 0),
        "shape": build("shape", SHAPE_LABELS, "Is the large soft-edged shape in a 64x64 RGB scene a disc "
                       "or a bar? The fine texture is random: only coarse scales matter.", 10),
    }
    set_deterministic(SEED)
    results = scale_checks(models, HELDOUT_SCENES, SEED + 20)
    print("scale checks (accuracy; chance = 0.5):")
    for name, scores in results.items():
        print(f"  {name:8s}" + "  ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    print(f"total wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
