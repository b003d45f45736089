"""An audit's dataset: a folder of images, or a manifest (CSV or JSONL) of path, label and an optional mask.

Paths in a manifest are relative to the manifest's folder. Labels are class indices or class names (matched
to the model's labels when the audit runs). Items are identified by their path relative to the dataset's
root, which is what makes a resumed audit recognise what it already did.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from service.errors import InvalidArgument, NotFound

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}


@dataclass(frozen=True)
class Item:
    item_id: str  # the image's path relative to the dataset root, "/"-separated
    path: Path
    label: str | None = None  # a class index or name, as written
    mask: Path | None = None


def _item(root: Path, raw_path: str, label, mask, where: str) -> Item:
    path = (root / raw_path).resolve()
    if not path.is_file():
        raise NotFound(f"no image at {raw_path!r} ({where})", field="dataset")
    mask_path = (root / mask).resolve() if mask else None
    if mask_path is not None and not mask_path.is_file():
        raise NotFound(f"no mask at {mask!r} ({where})", field="dataset")
    label = None if label in (None, "") else str(label)
    return Item(path.relative_to(root.resolve()).as_posix() if path.is_relative_to(root.resolve()) else raw_path,
                path, label, mask_path)


def load_dataset(location: Path) -> list[Item]:
    """The items of a folder (every image below it, masks named ``*.mask.png`` left out) or a manifest, in a
    stable order."""
    if location.is_dir():
        files = sorted(p for p in location.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.endswith(".mask.png"))
        items = [Item(p.relative_to(location).as_posix(), p.resolve()) for p in files]
    elif location.suffix.lower() == ".csv":
        with location.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        items = [_item(location.parent, row.get("path", ""), row.get("label"), row.get("mask"),
                       f"{location.name} row {i + 2}") for i, row in enumerate(rows)]
    elif location.suffix.lower() == ".json":  # the bundled samples' manifest: {"samples": [{"image", ...}]}
        rows = json.loads(location.read_text()).get("samples", [])
        items = [_item(location.parent, row.get("path") or row.get("image", ""), row.get("label"), row.get("mask"),
                       f"{location.name} sample {i}") for i, row in enumerate(rows)]
    elif location.suffix.lower() in (".jsonl", ".ndjson"):
        items = []
        for i, line in enumerate(location.read_text().splitlines()):
            if line.strip():
                row = json.loads(line)
                items.append(_item(location.parent, row.get("path", ""), row.get("label"), row.get("mask"),
                                   f"{location.name} line {i + 1}"))
    elif not location.exists():
        raise NotFound(f"no dataset at {str(location)!r}", field="dataset")
    else:
        raise InvalidArgument("give a folder of images or a manifest (.csv or .jsonl with path, label, mask; or a samples manifest.json)",
                              field="dataset")
    if not items:
        raise InvalidArgument(f"{str(location)!r} holds no images", field="dataset")
    ids = [item.item_id for item in items]
    if len(set(ids)) != len(ids):
        raise InvalidArgument("lists an image twice", field="dataset")
    return items
