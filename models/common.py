"""Helpers shared by the demo-model training scripts (make_shapes.py, make_digits.py, make_scales.py).

Everything here serves two goals: the scripts must be reproducible (same seed,
same predictions, ideally the same ONNX bytes) and every exported model must be
checked end to end, so a broken artefact never reaches the service.
"""

import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from PIL import Image
from torch import nn

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_FILE_BYTES = 2_000_000  # every committed artefact stays below this

# How the service maps uint8 pixels to each ``pixel_range`` before mean/std.
_PIXEL_SCALE = {"0_1": (1 / 255, 0.0), "0_255": (1.0, 0.0), "-1_1": (2 / 255, -1.0)}


def conv_block(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """3×3 conv (no bias: BatchNorm supplies it) + BatchNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class PooledCNN(nn.Module):
    """Four conv blocks of the given widths (64 -> 8 px: a strided first block, two max-pools), global average
    pool, linear. The shapes and scale models are this network at different widths."""

    def __init__(self, widths: tuple[int, int, int, int], n_classes: int):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.features = nn.Sequential(
            conv_block(3, w1, stride=2),
            conv_block(w1, w2),
            nn.MaxPool2d(2),
            conv_block(w2, w3),
            nn.MaxPool2d(2),
            conv_block(w3, w4),
        )
        self.classifier = nn.Linear(w4, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))


def dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th (0..7) symmetry of the square applied to NCHW images (training augmentation)."""
    x = torch.rot90(x, k % 4, dims=(2, 3))
    return x.flip(3) if k >= 4 else x


def set_deterministic(seed: int) -> None:
    """Seed torch and forbid non-deterministic kernels.

    Two threads everywhere: the build machine has two cores, and a fixed thread
    count keeps floating-point reduction order (hence the weights) stable.
    """
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(2)


def to_model_input(images: np.ndarray, preprocessing: dict) -> torch.Tensor:
    """uint8 images (N×H×W×C, or N×H×W for grey) -> normalised float32 NCHW tensor.

    This is the pixel_range/mean/std step the service applies from a
    config.json ``preprocessing`` block, so training and serving agree.
    """
    x = torch.from_numpy(images).float()
    x = x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2)
    scale, offset = _PIXEL_SCALE[preprocessing["pixel_range"]]
    mean = torch.tensor(preprocessing["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(preprocessing["std"]).view(1, -1, 1, 1)
    return ((x * scale + offset - mean) / std).contiguous()


def train(
    model: nn.Module,
    epoch_data: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    epochs: int,
    lr: float,
    batch_size: int = 64,
    loss_fn: Callable[..., torch.Tensor] | None = None,
) -> float:
    """Train with AdamW and a one-cycle schedule; returns the wall time in seconds.

    ``epoch_data(epoch)`` returns that epoch's (inputs, labels, *extras), so a
    script can vary the data per epoch (make_shapes.py turns or flips its scenes).
    ``loss_fn(model, inputs, labels, *extras)`` is the batch loss, cross-entropy
    when None; it must not draw random numbers, so that two losses trained from
    one seed see the same initial weights and the same batch order.
    Training runs channels-last: on CPU that makes the convolutions two to
    three times faster; the model is handed back in the default layout.
    """
    start = time.perf_counter()
    x, y, *extras = epoch_data(0)
    loss_fn = loss_fn or (lambda net, inputs, labels: nn.functional.cross_entropy(net(inputs), labels))
    steps_per_epoch = -(-len(y) // batch_size)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    model.to(memory_format=torch.channels_last)
    for epoch in range(epochs):
        if epoch > 0:
            x, y, *extras = epoch_data(epoch)
        model.train()
        order = torch.randperm(len(y))
        total_loss = 0.0
        for i in range(0, len(y), batch_size):
            idx = order[i : i + batch_size]
            loss = loss_fn(model, x[idx].contiguous(memory_format=torch.channels_last), y[idx],
                           *(extra[idx] for extra in extras))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += loss.item() * len(idx)
        print(f"epoch {epoch + 1}/{epochs}  loss {total_loss / len(y):.4f}", flush=True)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    return time.perf_counter() - start


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """Model outputs (whatever they are) for ``x``, in eval mode, as numpy."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).numpy()


def export_onnx(model: nn.Module, example: torch.Tensor, path: Path, output_name: str) -> str:
    """Export with the legacy TorchScript exporter, check it, and return its sha256.

    The legacy exporter (``dynamo=False``) gives a small, plain opset-17 graph
    with a dynamic batch axis; the dynamo exporter does not handle this setup
    well. The file is then validated by onnx.checker and by comparing
    onnxruntime (CPU) against torch on ``example``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    model.eval()
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=False,
        opset_version=17,
        input_names=["image"],
        output_names=[output_name],
        dynamic_axes={"image": {0: "batch"}, output_name: {0: "batch"}},
    )
    onnx.checker.check_model(str(path), full_check=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run([output_name], {"image": example.numpy()})
    np.testing.assert_allclose(got, predict(model, example), rtol=1e-4, atol=1e-4)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pick_samples(predicted: np.ndarray, labels: np.ndarray, wanted: list[int]) -> list[int]:
    """Indices of correctly classified examples, one per entry of ``wanted``, no repeats.

    Samples ship with the service as demo inputs, so each must be one the
    model gets right; taking the first match keeps the choice deterministic.
    """
    chosen: list[int] = []
    for label in wanted:
        candidates = np.flatnonzero((predicted == labels) & (labels == label))
        chosen.append(int(next(i for i in candidates if i not in chosen)))
    return chosen


def report_sizes(model_dir: Path) -> None:
    """Print the size of each artefact and enforce the repository's 2 MB limit."""
    for path in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        size = path.stat().st_size
        print(f"{path.relative_to(REPO_ROOT)}  {size / 1024:.1f} KiB")
        assert size < MAX_FILE_BYTES, f"{path} is {size} bytes, over the limit"


def write_json(path: Path, data: dict) -> None:
    """Write stable, human-readable JSON (fixed key order, trailing newline)."""
    path.write_text(json.dumps(data, indent=2) + "\n")


def write_config(
    model_dir: Path,
    *,
    name: str,
    description: str,
    preprocessing: dict,
    labels: list[str],
    output_kind: str,
    metrics: dict,
    script: str,
    seed: int,
) -> None:
    """Write the sidecar ``config.json`` the service reads next to model.onnx."""
    write_json(
        model_dir / "config.json",
        {
            "name": name,
            "description": description,
            "preprocessing": preprocessing,
            "labels": labels,
            "output_kind": output_kind,
            "metrics": metrics,
            "source": {"script": script, "seed": seed},
        },
    )


def write_samples(
    sample_dir: Path,
    label_names: list[str],
    images: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray | None = None,
) -> list[dict]:
    """Save sample PNGs (+ optional 0/255 object masks) and ``manifest.json``.

    Returns the manifest entries so the caller can print them.
    """
    sample_dir.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, (image, label) in enumerate(zip(images, labels)):
        entry = {"image": f"sample_{i:02d}.png", "mask": None,
                 "label": int(label), "label_name": label_names[label]}
        Image.fromarray(image).save(sample_dir / entry["image"], optimize=True)
        if masks is not None:
            entry["mask"] = f"sample_{i:02d}.mask.png"
            Image.fromarray(masks[i].astype(np.uint8) * 255).save(
                sample_dir / entry["mask"], optimize=True
            )
        entries.append(entry)
    write_json(sample_dir / "manifest.json", {"samples": entries})
    return entries
