"""Train and export the ``shapes`` demo model: which shape is in a cluttered scene?

Writes models/shapes/{model.onnx, config.json, source.pt, samples/}. The model
takes NCHW float32 [batch, 3, 64, 64] RGB scaled to [0, 1] then normalised with
mean 0.5 / std 0.25, and returns raw logits (no softmax).

With ``--runs``, it also trains independent runs of the same recipe that differ
only in the training seed (weight initialisation and batch order; the scenes are
the same), as models/shapes_run{1..}/ with their config (no samples: they share
shapes'), so that the stability measure compares models out of the box.

With ``--family guided``, it trains the salience-guided family instead (and
not shapes): CYBORG's loss (Boyd et al., WACV 2023; reference note
precision_and_real_models.md §4), alpha * cross-entropy + (1 - alpha) * MSE
between the model's own class activation map of the true class and the
object mask, as models/shapes_guided_run{1..}/. Guided run k uses training
seed k - 1, the seed of the plain model it is paired with (run 1 with shapes,
run k with shapes_run{k-1}): the same initial weights, scenes, symmetries and
batch order, so the two families differ only in the loss.

    python models/make_shapes.py            # shapes
    python models/make_shapes.py --runs 4   # shapes and shapes_run1 .. shapes_run4
    python models/make_shapes.py --family guided --runs 5   # shapes_guided_run1 .. 5
"""

import argparse
import time

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
from scenes import SHAPES, make_dataset

SEED = 0
# Each data split has its own generator seed, derived from SEED, so held-out
# scenes and samples are drawn independently of the training scenes.
TRAIN_SEED, HELDOUT_SEED, SAMPLE_SEED = SEED + 1, SEED + 2, SEED + 3
SIZE = 64
TRAIN_SCENES, HELDOUT_SCENES, EPOCHS, BATCH = 8000, 2000, 7, 64
PREPROCESSING = {
    "pixel_range": "0_1",
    "mean": [0.5, 0.5, 0.5],
    "std": [0.25, 0.25, 0.25],
    "channel_order": "RGB",
    "resize": "stretch",
}
OUT_DIR = REPO_ROOT / "models" / "shapes"
# Sample labels: every class once, then three more, for 8 samples, picked
# from SAMPLE_POOL fresh scenes.
SAMPLE_LABELS, SAMPLE_POOL = [0, 1, 2, 3, 4, 0, 2, 3], 200
# CYBORG's split of the two loss terms: the reference re-implementation's 0.5 (equal weights).
GUIDED_ALPHA = 0.5
# Keeps the min-max normalisation of a flat map (a fresh network's CAM can be) finite.
NORMALISE_EPS = 1e-6


class ShapesNet(PooledCNN):
    """Small CNN: four conv blocks (64 -> 8 px), global average pool, linear.

    The strided first block halves the resolution cheaply; the last block keeps
    an 8×8 feature map, coarse enough to be fast and fine enough for
    CAM-style explanations.
    """

    def __init__(self, n_classes: int = len(SHAPES)):
        super().__init__((24, 32, 64, 96), n_classes)


def min_max(maps: torch.Tensor) -> torch.Tensor:
    """Each map of (N, H, W) scaled to [0, 1] by its own min and max (gradients flow through both)."""
    low = maps.amin(dim=(1, 2), keepdim=True)
    high = maps.amax(dim=(1, 2), keepdim=True)
    return (maps - low) / (high - low + NORMALISE_EPS)


def mask_grid(masks) -> torch.Tensor:
    """Object masks (N, 64, 64) bool -> the fraction of each CAM cell the object covers, (N, 1, 8, 8).

    Area averaging commutes with the dihedral symmetries (the 8 px cells tile
    the image), so the grid is made once and turned with the scenes.
    """
    cell = SIZE // 8
    return nn.functional.avg_pool2d(torch.from_numpy(masks).float()[:, None], cell)


def guided_loss(model: ShapesNet, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CYBORG: alpha * CE + (1 - alpha) * MSE(CAM of the true class, object mask), both min-max normalised.

    The network is conv -> global average pool -> linear, so the CAM (the true
    class's weight row applied to the last feature map, no bias, no ReLU) is
    exact: its mean is the class logit less the bias. Departures from the
    reference code (batch-global min-max, nearest-resized annotation): each
    map is normalised on its own, with an epsilon, and the mask is area-averaged
    to the grid, so a cell half covered by the object counts half.
    """
    features = model.features(x)
    logits = model.classifier(features.mean(dim=(2, 3)))
    cam = torch.einsum("nc,nchw->nhw", model.classifier.weight[y], features)
    salience = nn.functional.mse_loss(min_max(cam), min_max(target[:, 0]))
    return GUIDED_ALPHA * nn.functional.cross_entropy(logits, y) + (1 - GUIDED_ALPHA) * salience


def train_run(training_seed: int, images, labels, heldout, heldout_labels, masks=None):
    """One run of the recipe: (model, held-out accuracy, training seconds). With ``masks`` (the scenes'
    object masks) the loss is CYBORG's ``guided_loss``; everything else (seed, batches) is the same."""
    set_deterministic(training_seed)
    x, y = to_model_input(images, PREPROCESSING), torch.from_numpy(labels)
    model = ShapesNet()
    grid = None if masks is None else mask_grid(masks)
    # Rendering scenes costs more than training on them, so rather than fresh
    # scenes each epoch, every epoch sees the same scenes under another symmetry
    # of the square (the labels are invariant to all of them).
    if grid is None:
        train_seconds = train(model, lambda epoch: (dihedral(x, epoch % 8), y), EPOCHS, lr=4e-3,
                              batch_size=BATCH)
    else:
        train_seconds = train(model, lambda epoch: (dihedral(x, epoch % 8), y, dihedral(grid, epoch % 8)),
                              EPOCHS, lr=4e-3, batch_size=BATCH, loss_fn=guided_loss)
    accuracy = float((predict(model, heldout).argmax(1) == heldout_labels).mean())
    return model, accuracy, train_seconds


def export_run(model, out_dir, name: str, description: str, accuracy: float, train_seconds: float, seed: int,
               example) -> str:
    sha256 = export_onnx(model, example, out_dir / "model.onnx", "logits")
    write_config(
        out_dir,
        name=name,
        description=description,
        preprocessing=PREPROCESSING,
        labels=list(SHAPES),
        output_kind="logits",
        metrics={"heldout_accuracy": round(accuracy, 4), "train_seconds": round(train_seconds, 1)},
        script="models/make_shapes.py",
        seed=seed,
    )
    return sha256


def main() -> None:
    parser = argparse.ArgumentParser(description="Train the shapes demo model (and independent runs of it).")
    parser.add_argument("--runs", type=int, default=0, help="independent runs besides shapes (training seeds 1..)"
                        "; with --family guided, the guided runs (training seeds 0..)")
    parser.add_argument("--family", choices=("plain", "guided"), default="plain",
                        help="plain: cross-entropy (shapes, shapes_runK); guided: CYBORG loss (shapes_guided_runK)")
    args = parser.parse_args()
    start = time.perf_counter()
    images, labels, masks = make_dataset(TRAIN_SCENES, TRAIN_SEED, SIZE)
    heldout_images, heldout_labels, _ = make_dataset(HELDOUT_SCENES, HELDOUT_SEED, SIZE)
    heldout = to_model_input(heldout_images, PREPROCESSING)
    if args.family == "guided":
        train_guided(args.runs, images, labels, masks, heldout, heldout_labels)
        print(f"total wall time {time.perf_counter() - start:.1f} s")
        return

    model, accuracy, train_seconds = train_run(SEED, images, labels, heldout, heldout_labels)
    print(f"held-out accuracy {accuracy:.4f} on {HELDOUT_SCENES} scenes, training {train_seconds:.1f} s")
    sha256 = export_run(model, OUT_DIR, "shapes", "Which shape (circle, square, triangle, star, cross) is in a "
                        "cluttered 64x64 RGB scene.", accuracy, train_seconds, SEED, heldout[:4])
    torch.save(model.state_dict(), OUT_DIR / "source.pt")
    sample_images, sample_labels, masks = make_dataset(SAMPLE_POOL, SAMPLE_SEED, SIZE)
    predicted = predict(model, to_model_input(sample_images, PREPROCESSING)).argmax(1)
    chosen = pick_samples(predicted, sample_labels, SAMPLE_LABELS)
    entries = write_samples(OUT_DIR / "samples", list(SHAPES), sample_images[chosen], sample_labels[chosen],
                            masks[chosen])
    for entry in entries:
        print(f"sample {entry['image']}: {entry['label_name']}")
    report_sizes(OUT_DIR)
    print(f"model.onnx sha256 {sha256}")

    for run in range(1, args.runs + 1):
        model, accuracy, train_seconds = train_run(SEED + run, images, labels, heldout, heldout_labels)
        run_dir = OUT_DIR.parent / f"shapes_run{run}"
        sha256 = export_run(model, run_dir, run_dir.name, f"shapes, independent run {run}: the same recipe and "
                            f"scenes, training seed {SEED + run}.", accuracy, train_seconds, SEED + run, heldout[:4])
        print(f"[{run_dir.name}] held-out accuracy {accuracy:.4f}, training {train_seconds:.1f} s, sha256 {sha256}")
    print(f"total wall time {time.perf_counter() - start:.1f} s")


def train_guided(runs: int, images, labels, masks, heldout, heldout_labels) -> None:
    """shapes_guided_run1..``runs``: run k trained with CYBORG's loss from seed k - 1, paired with the plain
    model of that seed."""
    for run in range(1, runs + 1):
        seed = SEED + run - 1
        model, accuracy, train_seconds = train_run(seed, images, labels, heldout, heldout_labels, masks)
        run_dir = OUT_DIR.parent / f"shapes_guided_run{run}"
        paired = "shapes" if seed == SEED else f"shapes_run{seed - SEED}"
        sha256 = export_run(model, run_dir, run_dir.name, f"shapes trained with CYBORG's salience-guided loss "
                            f"(alpha {GUIDED_ALPHA}, object mask), run {run}: training seed {seed}, paired with "
                            f"{paired}.", accuracy, train_seconds, seed, heldout[:4])
        print(f"[{run_dir.name}] held-out accuracy {accuracy:.4f}, training {train_seconds:.1f} s, sha256 {sha256}")


if __name__ == "__main__":
    main()
