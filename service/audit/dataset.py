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


def _inside(path: Path, root: Path | None, where: str) -> Path:
    resolved = path.resolve()
    if root is not None and not resolved.is_relative_to(root):
        raise InvalidArgument(f"{where} points outside the data directory", field="dataset")
    return resolved


def _item(base: Path, raw_path: str, label, mask, where: str, root: Path | None) -> Item:
    if not raw_path:
        raise InvalidArgument(f"{where} has no path", field="dataset")
    path = _inside(base / raw_path, root, where)
    if not path.is_file():
        raise NotFound(f"no image at {raw_path!r} ({where})", field="dataset")
    mask_path = _inside(base / mask, root, where) if mask else None
    if mask_path is not None and not mask_path.is_file():
        raise NotFound(f"no mask at {mask!r} ({where})", field="dataset")
    label = None if label in (None, "") else str(label)
    base = base.resolve()
    return Item(path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path), path, label, mask_path)


def _rows(location: Path) -> list[tuple[str, dict]]:
    """(where, row) of a manifest; a malformed one is INVALID_ARGUMENT naming the row."""
    try:
        text = location.read_text()
        if location.suffix.lower() == ".csv":
            return [(f"{location.name} row {i + 2}", row) for i, row in enumerate(csv.DictReader(text.splitlines()))]
        if location.suffix.lower() == ".json":  # the bundled samples' manifest: {"samples": [{"image", ...}]}
            return [(f"{location.name} sample {i}", {**row, "path": row.get("path") or row.get("image", "")})
                    for i, row in enumerate(json.loads(text).get("samples", []))]
        return [(f"{location.name} line {i + 1}", json.loads(line))
                for i, line in enumerate(text.splitlines()) if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error, AttributeError) as error:
        raise InvalidArgument(f"{location.name} is not a readable manifest ({error})", field="dataset") from error


def load_dataset(location: Path, root: Path | None = None) -> list[Item]:
    """The items of a folder (every image below it, masks named ``*.mask.png`` left out) or a manifest, in a
    stable order. With ``root`` (the server's data directory), every image and mask must resolve inside it,
    symbolic links and manifest entries included."""
    root = root.resolve() if root is not None else None
    if location.is_dir():
        files = sorted(p for p in location.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                       and not p.name.endswith(".mask.png"))
        items = [Item(p.relative_to(location).as_posix(), _inside(p, root, p.name)) for p in files]
    elif location.suffix.lower() in (".csv", ".json", ".jsonl", ".ndjson") and location.is_file():
        items = []
        for where, row in _rows(location):
            if not isinstance(row, dict):
                raise InvalidArgument(f"{where} is not an object with path, label, mask", field="dataset")
            items.append(_item(location.parent, str(row.get("path") or ""), row.get("label"), row.get("mask"),
                               where, root))
    elif not location.exists():
        raise NotFound(f"no dataset at {str(location)!r}", field="dataset")
    else:
        raise InvalidArgument("give a folder of images or a manifest (.csv or .jsonl with path, label, mask; or a "
                              "samples manifest.json)", field="dataset")
    if not items:
        raise InvalidArgument(f"{str(location)!r} holds no images", field="dataset")
    ids = [item.item_id for item in items]
    if len(set(ids)) != len(ids):
        raise InvalidArgument("lists an image twice", field="dataset")
    return items
