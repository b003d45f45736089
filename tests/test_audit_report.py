"""The audit's report as a person reads it: a real audit of two models opened in headless chromium, the numbers
on the page against summary.json and the stored results, one drill-down entry per image with its class and every
model's prediction, the models side by side, no sideways scroll at a laptop's width; and a page whose labels, model
names and item ids are markup shows them as text."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from browser import chromium, horizontal_overflow, screenshot_pixels
from conftest import MODELS
from PIL import Image
from scenes import write_scene_dataset

from service.audit import drilldown
from service.audit.pictures import Pictures
from service.audit.report import write_report
from service.audit.summary import summarise
from service.cli import main

ITEMS = 6
MODEL_NAMES = ["shapes", "shapes_run1"]
CLASSES = ["circle", "square", "triangle", "star", "cross"]  # the shapes models' labels (models/*/config.json)


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audit")
    manifest = write_scene_dataset(folder, ITEMS, seed=123)
    out = folder / "out"
    assert main(["audit", str(manifest), *(a for name in MODEL_NAMES for a in ("--model", str(MODELS / name))),
                 "--method", "occlusion:window=8,stride=4", "--metric", "deletion:steps=8", "--metric",
                 "localisation", "--out", str(out)]) == 0
    return manifest, out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("profile")) as session:
        yield session


def cells(session, selector: str) -> list[list[str]]:
    return session.execute_script(
        "return [...document.querySelectorAll(arguments[0] + ' tr')].map(r => [...r.cells].map(c => c.textContent))",
        selector)


def test_the_page_shows_the_summarys_numbers_every_image_and_the_models_side_by_side(audited, browser, tmp_path):
    manifest, out = audited
    summary = json.loads((out / "summary.json").read_text())
    with sqlite3.connect(out / "results.sqlite") as connection:
        stored = connection.execute("SELECT model, item, label, predicted, metrics FROM results").fetchall()
    truth = {row["path"]: row["label"] for row in
             (dict(zip(("path", "label", "mask"), line.split(","))) for line in manifest.read_text().splitlines()[1:])}
    browser.get((out / "report.html").resolve().as_uri())

    overview = cells(browser, "#overview")
    header, body = overview[0], overview[1:]
    assert len(body) == len(summary["groups"]) == 2
    for row, group in zip(body, summary["groups"]):
        shown = dict(zip(header, row))
        assert (shown["model"], shown["method"], int(shown["images"])) == (group["model"], group["method"], ITEMS)
        assert float(shown["accuracy"]) == pytest.approx(group["accuracy"], abs=5e-4)
        for metric in ("deletion", "localisation"):
            assert float(shown[metric]) == pytest.approx(group["metrics"][metric], abs=5e-4)
        assert shown["reliability"] == "n/a"  # occlusion is deterministic

    side = cells(browser, "#models")
    assert side[0] == ["figure", *MODEL_NAMES]  # a column per model
    rows = {row[0]: row[1:] for row in side[1:]}
    groups = {g["model"]: g for g in summary["groups"]}
    assert [float(v) for v in rows["accuracy"]] == pytest.approx([groups[m]["accuracy"] for m in MODEL_NAMES],
                                                                 abs=5e-4)
    method = summary["groups"][0]["method"]
    assert [float(v) for v in rows[f"{method}: deletion (mean)"]] == pytest.approx(
        [groups[m]["metrics"]["deletion"] for m in MODEL_NAMES], abs=5e-4)

    entries = browser.execute_script("""return [...document.querySelectorAll('details.entry')].map(e => ({
        item: e.dataset.item, label: e.querySelector('summary .label').textContent,
        models: [...e.querySelectorAll('.model')].map(m => [m.dataset.model, m.querySelector('.predicted').textContent,
                                                           m.querySelectorAll('.method img').length])}))""")
    assert sorted(e["item"] for e in entries) == sorted(truth)  # one entry per image
    predicted = {(model, item): CLASSES[index] for model, item, _, index, _ in stored}
    for entry in entries:
        assert entry["label"] == truth[entry["item"]]
        assert entry["models"] == [[m, predicted[(m, entry["item"])], 1] for m in MODEL_NAMES]  # side by side

    # Every value of every result, in its image's entry: the stored metrics.
    shown_values = browser.execute_script("""return [...document.querySelectorAll('.entry .model')].map(m => [
        m.closest('.entry').dataset.item, m.dataset.model,
        [...m.querySelectorAll('.method tbody tr')].map(r => [r.cells[0].textContent, r.cells[1].textContent])])""")
    metrics = {(model, item): json.loads(text) for model, item, _, _, text in stored}
    assert len(shown_values) == ITEMS * len(MODEL_NAMES)
    for item, model, pairs in shown_values:
        assert [name for name, _ in pairs] == sorted(metrics[(model, item)])
        assert [float(value) for _, value in pairs] == pytest.approx(
            [metrics[(model, item)][name] for name, _ in pairs], abs=5e-4)

    # The worst-maps tables list the summary's cases, in its order, with their values.
    for index, group in enumerate(summary["groups"]):
        tables = browser.execute_script("""return [...document.querySelectorAll('section.group')[arguments[0]]
            .querySelectorAll('table.cases')].map(t => [...t.tBodies[0].rows].map(r => [r.cells[1].textContent,
                                                                                     r.cells[4].textContent]))""",
                                        index)
        listed = [(None, group["confidently_wrong"]), *group["worst_by_metric"].items()]
        expected = [(metric, cases) for metric, cases in listed if cases]  # an empty list is "None.", no table
        assert len(tables) == len(expected)
        for table, (metric, cases) in zip(tables, expected):
            assert [item for item, _ in table] == [case["item"] for case in cases]
            values = [case["score"] if metric is None else case["metrics"][metric] for case in cases]
            assert [float(value) for _, value in table] == pytest.approx(values, abs=5e-4)

    # Every link of the worst-maps tables lands on a drill-down entry of the image it names.
    links = browser.execute_script("""return [...document.querySelectorAll('table.cases a')].map(a => [
        a.getAttribute('href').slice(1), a.closest('tr').cells[1].textContent])""")
    assert len(links) >= 2 * 2 * 5 * 2  # groups x metrics x worst cases x (picture + name)
    for target, item in links:
        assert browser.execute_script("return document.getElementById(arguments[0]).dataset.item", target) == item

    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert horizontal_overflow(browser) == 0
    pixels = screenshot_pixels(browser, tmp_path / "report.png")
    assert pixels.std() > 20 and (pixels < 80).mean() > 0.01  # text, tables and overlays, not a blank page


def synthetic_rows(folder, items: int, models: list[str], seed: int = 0) -> tuple[list[dict], dict]:
    """Stored-result rows of one method over ``items`` random pictures, and the pictures' files."""
    generator = np.random.default_rng(seed)
    rows, images = [], {}
    for index in range(items):
        item = f"img_{index:04d}.png"
        images[item] = folder / f"{index}.png"
        Image.fromarray(generator.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(images[item])
        label = index % 2
        for model in models:
            predicted = int(generator.integers(0, 2))
            rows.append({"model": model, "method": "occlusion", "item": item, "label": label, "predicted": predicted,
                         "score": float(generator.random()), "correct": label == predicted,
                         "metrics": {"deletion": float(generator.random())}, "curves": {"deletion": [1.0, 0.5, 0.0]},
                         "details": {}, "map": generator.normal(size=(32, 32)).astype(np.float32), "seconds": 0.1})
    return rows, images


def test_labels_model_names_and_item_ids_are_shown_as_text_never_run(browser, tmp_path):
    script = "<script>alert(1)</script>"
    long = "other_" + "x" * 200  # a name with no place to break: it must not widen the page
    rows, images = synthetic_rows(tmp_path, 4, ["<b>model</b>", long])
    for index, row in enumerate(rows):
        row["item"] = f'"><img src=x onerror=alert(2)>{row["item"]}'
        row["details"] = {"adversarial_overlap": -1.0 if index < 2 else 0.5, "ball_certified": index < 2,
                          "certified": True, "epsilon": 1 / 255}  # whole-model bounds: one image of four, per model
    images = {f'"><img src=x onerror=alert(2)>{item}': path for item, path in images.items()}
    page = write_report(tmp_path / "report.html", summarise(rows, {"deletion": False}), rows, images,
                        {"<b>model</b>": [script, "plain"], long: [script, "plain"]})
    text = page.read_text()
    assert script not in text and "<b>model</b>" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    browser.get(page.resolve().as_uri())
    assert browser.execute_script("return document.querySelectorAll('script, b, img[src=x]').length") == 0
    labels = browser.execute_script("return [...document.querySelectorAll('summary .label')].map(e => e.textContent)")
    assert labels == [script, "plain", script, "plain"]  # items 0..3, labels alternate
    overview = cells(browser, "#overview")
    assert [dict(zip(overview[0], row))["certified"] for row in overview[1:]] == ["25%", "25%"]
    assert cells(browser, "#models")[-1] == ["occlusion: certified", "25%", "25%"]
    assert text.count("at radius 1/255 the verifier proved for 1\nof 4 images (25%)") == 2
    browser.execute_script("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert horizontal_overflow(browser) == 0


def test_the_drilldown_shows_the_first_images_and_every_named_one(tmp_path):
    rows, images = synthetic_rows(tmp_path, 30, ["a", "b"], seed=4)
    summary = summarise(rows, {"deletion": True})
    named = drilldown.named_items(summary)
    chosen = drilldown.build(rows, summary, {}, Pictures(images), cap=5)
    first = {f"img_{index:04d}.png" for index in range(5)}
    assert {e["item"] for e in chosen.entries} == first | named
    assert chosen.named == len(named - first) > 0 and chosen.total == 30
    assert set(chosen.anchors) == first | named  # every named image has an entry to link to
    by_key = {(row["model"], row["item"]): row for row in rows}
    wrong = 0
    for entry in chosen.entries:
        assert entry["label"] == str(by_key[("a", entry["item"])]["label"])  # no class names: the index
        for shown in entry["models"]:
            row = by_key[(shown["model"], entry["item"])]
            assert (shown["predicted"], shown["correct"]) == (str(row["predicted"]), row["correct"])
            wrong += row["predicted"] != row["label"]
    assert wrong > 0  # the label and the prediction are told apart
