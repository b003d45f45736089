"""Train and export the ``shapes`` demo model: which shape is in a cluttered scene?

Writes models/shapes/{model.onnx, config.json, source.pt, samples/}. The model
takes NCHW float32 [batch, 3, 64, 64] RGB scaled to [0, 1] then normalised with
mean 0.5 / std 0.25, and returns raw logits (no softmax).

With ``--runs``, it also trains independent runs of the same recipe that differ
only in the training seed (weight initialisation and batch order; the scenes are
the same), as models/shapes_run{1..}/ with their config (no samples: they share
shapes'), so that the stability measure compares models out of the box.

    python models/make_shapes.py            # shapes
    python models/make_shapes.py --runs 4   # shapes and shapes_run1 .. shapes_run4
"""

import argparse
import time

import torch

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


class ShapesNet(PooledCNN):
    """Small CNN: four conv blocks (64 -> 8 px), global average pool, linear.

    The strided first block halves the resolution cheaply; the last block keeps
    an 8×8 feature map, coarse enough to be fast and fine enough for
    CAM-style explanations.
    """

    def __init__(self, n_classes: int = len(SHAPES)):
        super().__init__((24, 32, 64, 96), n_classes)


def train_run(training_seed: int, images, labels, heldout, heldout_labels):
    """One run of the recipe: (model, held-out accuracy, training seconds)."""
    set_deterministic(training_seed)
    x, y = to_model_input(images, PREPROCESSING), torch.from_numpy(labels)
    model = ShapesNet()
    # Rendering scenes costs more than training on them, so rather than fresh
    # scenes each epoch, every epoch sees the same scenes under another symmetry
    # of the square (the labels are invariant to all of them).
    train_seconds = train(model, lambda epoch: (dihedral(x, epoch % 8), y), EPOCHS, lr=4e-3, batch_size=BATCH)
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
    parser.add_argument("--runs", type=int, default=0, help="independent runs besides shapes (training seeds 1..)")
    args = parser.parse_args()
    start = time.perf_counter()
    images, labels, _ = make_dataset(TRAIN_SCENES, TRAIN_SEED, SIZE)
    heldout_images, heldout_labels, _ = make_dataset(HELDOUT_SCENES, HELDOUT_SEED, SIZE)
    heldout = to_model_input(heldout_images, PREPROCESSING)

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


if __name__ == "__main__":
    main()
