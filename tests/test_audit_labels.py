"""Audit labels: matched to each model by class name first, by index second, ambiguity refused (see
service/audit/dataset.py). Names that are numbers are the case that matters: rotation classes "180", "0"."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import onnx
import pytest
from onnx_builders import pooled_classifier
from PIL import Image

from service.audit.dataset import class_index, load_dataset
from service.cli import main
from service.errors import InvalidArgument

# Class 0 scores the red channel, class 1 the blue one: a red image is class 0, a blue one class 1.
WEIGHTS = np.array([[4.0, 0.0], [0.0, 0.0], [0.0, 4.0]])


def test_a_label_is_a_class_name_first_and_an_index_second():
    rotations = ("180", "0")
    assert class_index("0", rotations, 2, "row 2", "m") == 1  # the name "0", not index 0
    assert class_index("180", rotations, 2, "row 2", "m") == 0  # a name, though out of range as an index
    assert class_index("1", rotations, 2, "row 2", "m") == 1  # no class named "1": index 1
    assert class_index(" 1 ", (), 2, "row 2", "m") == 1 and class_index("cat", ("cat", "dog"), 2, "row 2", "m") == 0
    with pytest.raises(InvalidArgument, match=r"labels.csv row 3: label '180' is out of m's 2 classes") as refused:
        class_index("180", (), 2, "labels.csv row 3", "m")
    assert refused.value.field == "dataset"
    with pytest.raises(InvalidArgument, match=r"row 4: label 'cat' is the name of classes \[0, 2\] of m"):
        class_index("cat", ("cat", "dog", "cat"), 3, "row 4", "m")
    with pytest.raises(InvalidArgument, match="neither one of m's class names nor a class index"):
        class_index("dog", rotations, 2, "row 5", "m")
    with pytest.raises(InvalidArgument, match="no class names"):
        class_index("cat", (), 2, "row 6", "m")


def _model(folder, labels):
    folder.mkdir()
    onnx.save(pooled_classifier(WEIGHTS, (8, 8, 3)), folder / "model.onnx")
    (folder / "config.json").write_text(json.dumps({"labels": labels} if labels else {}))
    return folder


def _dataset(folder, rows):
    """Red and blue 8 x 8 images listed in a CSV with the given labels."""
    folder.mkdir()
    lines = ["path,label"]
    for i, (colour, label) in enumerate(rows):
        pixels = np.zeros((8, 8, 3), np.uint8)
        pixels[..., 0 if colour == "red" else 2] = 255
        Image.fromarray(pixels).save(folder / f"{i}.png")
        lines.append(f"{i}.png,{label}")
    (folder / "labels.csv").write_text("\n".join(lines) + "\n")
    return folder / "labels.csv"


def _stored_labels(out):
    with sqlite3.connect(out / "results.sqlite") as connection:
        return connection.execute("SELECT item, label, predicted FROM results ORDER BY item").fetchall()


def test_numeric_class_names_through_an_audit(tmp_path, capsys):
    model = _model(tmp_path / "rotations", ["180", "0"])
    manifest = _dataset(tmp_path / "data", [("red", "180"), ("blue", "0")])
    assert main(["audit", str(manifest), "--model", str(model), "--method", "occlusion:window=4,stride=4",
                 "--out", str(tmp_path / "out")]) == 0
    # Red is class 0 named "180", blue class 1 named "0": both labels right, accuracy 1.
    assert _stored_labels(tmp_path / "out") == [("0.png", 0, 0), ("1.png", 1, 1)]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["groups"][0]["accuracy"] == 1.0


def test_numeric_labels_without_names_are_indices_and_out_of_range_is_refused(tmp_path, capsys):
    model = _model(tmp_path / "plain", None)
    manifest = _dataset(tmp_path / "data", [("red", "0"), ("blue", "1")])
    assert main(["audit", str(manifest), "--model", str(model), "--method", "occlusion:window=4,stride=4",
                 "--out", str(tmp_path / "out")]) == 0
    assert _stored_labels(tmp_path / "out") == [("0.png", 0, 0), ("1.png", 1, 1)]
    capsys.readouterr()
    bad = _dataset(tmp_path / "bad", [("red", "0"), ("blue", "180")])
    assert main(["audit", str(bad), "--model", str(model), "--out", str(tmp_path / "out2")]) == 1
    assert capsys.readouterr().err.strip() == ("error: INVALID_ARGUMENT: dataset: labels.csv row 3: label '180' is "
                                               "out of plain's 2 classes")


def test_duplicate_class_names_are_refused_naming_the_row(tmp_path, capsys):
    model = _model(tmp_path / "twins", ["cat", "cat"])
    manifest = _dataset(tmp_path / "data", [("red", "1"), ("blue", "cat")])
    assert main(["audit", str(manifest), "--model", str(model), "--out", str(tmp_path / "out")]) == 1
    assert "labels.csv row 3: label 'cat' is the name of classes [0, 1] of twins" in capsys.readouterr().err
    assert [item.where for item in load_dataset(manifest)] == ["labels.csv row 2", "labels.csv row 3"]
