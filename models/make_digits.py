"""Train and export the ``digits`` demo model: handwritten digits 0-9, greyscale.

Deliberately unlike the shapes model, to exercise the service's other code
paths: one grey channel, 32×32 input, pixel range 0-255 normalised with
mean 127.5 / std 127.5, and a graph that ends in Softmax ("probabilities").
Data: scikit-learn's bundled ``load_digits`` (8×8, values 0-16), upscaled ×4.

    python models/make_digits.py
"""

import time

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from common import (
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
SIZE = 32
EPOCHS, BATCH = 40, 64
PREPROCESSING = {
    "pixel_range": "0_255",
    "mean": [127.5],
    "std": [127.5],
    "channel_order": "GRAY",
    "resize": "stretch",
}
LABELS = [str(d) for d in range(10)]
OUT_DIR = REPO_ROOT / "models" / "digits"
SAMPLE_LABELS = list(range(8))  # eight different digits


class DigitsNet(nn.Module):
    """Tiny CNN: three conv/pool stages (32 -> 4 px), flatten, linear; returns logits.

    Unlike ShapesNet it has no BatchNorm and no global pooling, so the service
    also meets a flatten + dense head.
    """

    def __init__(self, n_classes: int = len(LABELS)):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(32 * 4 * 4, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def load_images() -> tuple[np.ndarray, np.ndarray]:
    """The digits as uint8 32×32 images (bright digit on dark) and their labels.

    Bilinear upscaling gives smoother strokes than nearest, which makes
    saliency maps easier to read; rounding to uint8 before training means the
    model sees exactly what the sample PNGs hold.
    """
    digits = load_digits()
    images = [
        np.asarray(Image.fromarray(d.astype(np.float32) * (255 / 16)).resize((SIZE, SIZE), Image.BILINEAR))
        for d in digits.images
    ]
    return np.clip(np.rint(images), 0, 255).astype(np.uint8), digits.target.astype(np.int64)


def main() -> None:
    start = time.perf_counter()
    set_deterministic(SEED)
    images, labels = load_images()
    train_images, test_images, train_labels, test_labels = train_test_split(
        images, labels, test_size=0.25, stratify=labels, random_state=SEED
    )
    x, y = to_model_input(train_images, PREPROCESSING), torch.from_numpy(train_labels)
    net = DigitsNet()
    train_seconds = train(net, lambda epoch: (x, y), EPOCHS, lr=3e-3, batch_size=BATCH)
    model = nn.Sequential(net, nn.Softmax(dim=1))  # exported graph ends in Softmax

    heldout = to_model_input(test_images, PREPROCESSING)
    predicted = predict(model, heldout).argmax(1)
    accuracy = float((predicted == test_labels).mean())
    print(f"held-out accuracy {accuracy:.4f} on {len(test_labels)} digits, training {train_seconds:.1f} s")

    sha256 = export_onnx(model, heldout[:4], OUT_DIR / "model.onnx", "probabilities")
    write_config(
        OUT_DIR,
        name="digits",
        description="Handwritten digit 0-9 in a 32x32 greyscale image (scikit-learn digits, bright on dark).",
        preprocessing=PREPROCESSING,
        labels=LABELS,
        output_kind="probabilities",
        metrics={"heldout_accuracy": round(accuracy, 4), "train_seconds": round(train_seconds, 1)},
        script="models/make_digits.py",
        seed=SEED,
    )
    chosen = pick_samples(predicted, test_labels, SAMPLE_LABELS)
    for entry in write_samples(OUT_DIR / "samples", LABELS, test_images[chosen], test_labels[chosen]):
        print(f"sample {entry['image']}: {entry['label_name']}")
    report_sizes(OUT_DIR)
    print(f"model.onnx sha256 {sha256}")
    print(f"total wall time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
