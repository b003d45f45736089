"""An audit's dataset: a folder of images, or a manifest (CSV or JSONL) of path, label and an optional mask.

Paths in a manifest are relative to the manifest's folder. Labels are class names or class indices, matched
to each model when the audit runs (``class_index``): by name first, by index second. Exactly:

1. a label equal to exactly one of the model's class names is that class (names ["180", "0"]: "0" is class 1);
2. a label equal to two or more class names is ambiguous and refused;
3. a label equal to no class name that is a decimal integer ("7", "+7", " 7 ") is that index, refused when
   outside [0, classes);
4. anything else is refused.

A model without names takes indices only. Every refusal is INVALID_ARGUMENT on ``dataset`` naming the
manifest row (or the item) and the model. Items are identified by their path relative to the dataset's
root, which is what makes a resumed audit recognise what it already did.

Listing is bounded: at most ``MAX_ITEMS`` items, ``MAX_ENTRIES`` folder entries walked and a manifest of
at most ``MAX_MANIFEST_BYTES``, all refused with RESOURCE_EXHAUSTED beyond; ``checkpoint`` (a job's
``control.checkpoint``) runs every ``CHECK_EVERY`` entries, so a deadline stops a listing too.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from service.errors import InvalidArgument, NotFound, ResourceExhausted

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
# An audit's dataset: items, folder entries walked to find them, and manifest size.
MAX_ITEMS = 100_000
MAX_ENTRIES = 1_000_000
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
CHECK_EVERY = 1000
# A label read as a class index: ASCII digits, an optional sign, spaces around (a CSV's "0, 1").
_INTEGER = re.compile(r"\s*[+-]?[0-9]+\s*")


@dataclass(frozen=True)
class Item:
    item_id: str  # the image's path relative to the dataset root, "/"-separated
    path: Path
    label: str | None = None  # a class index or name, as written
    mask: Path | None = None
    # Where the item was listed ("labels.csv row 3"), for errors about its label; the item id otherwise.
    where: str = ""

    @property
    def origin(self) -> str:
        return self.where or self.item_id


def _inside(path: Path, root: Path | None, where: str) -> Path:
    try:
        resolved = path.resolve()
    except (OSError, ValueError) as error:  # a NUL byte, a loop of links, a name too long
        raise InvalidArgument(f"{where} names an unusable path ({error})", field="dataset") from error
    if root is not None and not resolved.is_relative_to(root):
        raise InvalidArgument(f"{where} points outside the data directory", field="dataset")
    return resolved


def _is_file(path: Path, where: str) -> bool:
    try:
        return path.is_file()
    except OSError as error:  # a name too long for the file system
        raise InvalidArgument(f"{where} names an unusable path ({error.strerror})", field="dataset") from error


def _item(base: Path, raw_path: str, label, mask, where: str, root: Path | None) -> Item:
    if not raw_path:
        raise InvalidArgument(f"{where} has no path", field="dataset")
    if mask is not None and not isinstance(mask, str):
        raise InvalidArgument(f"{where}: mask must be a path, not {type(mask).__name__}", field="dataset")
    path = _inside(base / raw_path, root, where)
    if not _is_file(path, where):
        raise NotFound(f"no image at {raw_path!r} ({where})", field="dataset")
    mask_path = _inside(base / mask, root, where) if mask else None
    if mask_path is not None and not _is_file(mask_path, where):
        raise NotFound(f"no mask at {mask!r} ({where})", field="dataset")
    label = None if label in (None, "") else str(label)
    base = base.resolve()
    return Item(path.relative_to(base).as_posix() if path.is_relative_to(base) else str(path), path, label, mask_path,
                where)


def class_index(label: str, names: tuple[str, ...], num_classes: int, where: str, model: str) -> int:
    """The class a dataset label names for one model: by class name first, by index second (module docstring)."""
    matches = [i for i, name in enumerate(names) if name == label]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise InvalidArgument(f"{where}: label {label!r} is the name of classes {matches} of {model}; rename them "
                              "in the model's labels, or label by index of a model without such duplicates",
                              field="dataset")
    if _INTEGER.fullmatch(label):
        index = int(label)
        if not 0 <= index < num_classes:
            named = f" and no class of it is named {label!r}" if names else ""
            raise InvalidArgument(f"{where}: label {label!r} is out of {model}'s {num_classes} classes{named}",
                                  field="dataset")
        return index
    if names:
        raise InvalidArgument(f"{where}: label {label!r} is neither one of {model}'s class names nor a class index",
                              field="dataset")
    raise InvalidArgument(f"{where}: label {label!r} is not a class index, and {model} has no class names to match "
                          "it (give labels in the model's sidecar)", field="dataset")


def _rows(location: Path) -> list[tuple[str, object]]:
    """(where, row) of a manifest; a malformed one is INVALID_ARGUMENT naming the row or the field."""
    size = location.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise ResourceExhausted(f"{location.name} holds {size} bytes, over this server's limit of "
                                f"{MAX_MANIFEST_BYTES} for a manifest; split the dataset", field="dataset")
    try:
        text = location.read_text()
        if location.suffix.lower() == ".csv":
            return [(f"{location.name} row {i + 2}", row) for i, row in enumerate(csv.DictReader(text.splitlines()))]
        if location.suffix.lower() == ".json":
            return _samples(location.name, json.loads(text))
        return [(f"{location.name} line {i + 1}", json.loads(line))
                for i, line in enumerate(text.splitlines()) if line.strip()]
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error, RecursionError) as error:
        raise InvalidArgument(f"{location.name} is not a readable manifest ({type(error).__name__}: {error})",
                              field="dataset") from error


def _samples(name: str, manifest: object) -> list[tuple[str, dict]]:
    """The bundled samples' manifest, {"samples": [{"image": path, "label": ..., "mask": ...}, ...]}."""
    samples = manifest.get("samples") if isinstance(manifest, dict) else None
    if not isinstance(samples, list):
        raise InvalidArgument(f"{name} must be an object whose \"samples\" is a list of objects with \"image\"",
                              field="dataset")
    rows = []
    for i, row in enumerate(samples):
        if not isinstance(row, dict):
            raise InvalidArgument(f"{name}: samples[{i}] is {type(row).__name__}, not an object with \"image\", "
                                  "\"label\" and \"mask\"", field="dataset")
        rows.append((f"{name} samples[{i}]", {**row, "path": row.get("path") or row.get("image") or ""}))
    return rows


def _image_files(location: Path, checkpoint: Callable[[], None]) -> list[Path]:
    """The images below ``location``, walking at most ``MAX_ENTRIES`` entries for at most ``MAX_ITEMS`` images."""
    files = []
    for walked, path in enumerate(location.rglob("*"), start=1):
        if walked % CHECK_EVERY == 0:
            checkpoint()
        if walked > MAX_ENTRIES:
            raise ResourceExhausted(f"the folder holds over {MAX_ENTRIES} entries, this server's limit for a "
                                    "dataset's folder; give a manifest", field="dataset")
        if path.suffix.lower() in IMAGE_SUFFIXES and not path.name.endswith(".mask.png"):
            files.append(path)
            _count(len(files))
    return sorted(files)


def _count(items: int) -> None:
    if items > MAX_ITEMS:
        raise ResourceExhausted(f"the dataset holds over {MAX_ITEMS} images, this server's limit for one audit; "
                                "split it", field="dataset")


def load_dataset(location: Path, root: Path | None = None,
                 checkpoint: Callable[[], None] = lambda: None) -> list[Item]:
    """The items of a folder (every image below it, masks named ``*.mask.png`` left out) or a manifest, in a
    stable order. With ``root`` (the server's data directory), every image and mask must resolve inside it,
    symbolic links and manifest entries included. ``checkpoint`` runs every ``CHECK_EVERY`` entries."""
    root = root.resolve() if root is not None else None
    if location.is_dir():
        files = _image_files(location, checkpoint)
        items = []
        for i, path in enumerate(files):
            if i % CHECK_EVERY == 0:
                checkpoint()
            items.append(Item(path.relative_to(location).as_posix(), _inside(path, root, path.name)))
    elif location.suffix.lower() in (".csv", ".json", ".jsonl", ".ndjson") and location.is_file():
        items = []
        for i, (where, row) in enumerate(_rows(location)):
            if i % CHECK_EVERY == 0:
                checkpoint()
            _count(i + 1)
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
