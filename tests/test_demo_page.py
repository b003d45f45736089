"""The demo page, opened in headless chromium: one tile per method per sample, the scores it shows are the
ones summary.json records, EVA's tile where the verify extra is installed and the note saying how to get it
where not, WCAM's scale figure, no sideways scrolling at a laptop's width, and a screenshot that is a page."""

from __future__ import annotations

import importlib.util
import json

import pytest
from browser import chromium, horizontal_overflow, screenshot_pixels
from conftest import MODELS

from service.cli import main

# Two models, one with ground-truth masks (relevance mass) and one without; one sample each; every method.
MODELS_SHOWN = ["digits", "scale_texture"]
ALL_METHODS = ["occlusion", "rise", "sobol", "hsic", "lime", "kernel_shap", "wcam", "eva"]


def verify_extra_importable() -> bool:
    """Whether EVA can run here: torch and auto_LiRPA installed (the service's shims make auto_LiRPA import)."""
    if importlib.util.find_spec("torch") is None or importlib.util.find_spec("auto_LiRPA") is None:
        return False
    from service.verify.lirpa_compat import auto_lirpa

    auto_lirpa()  # raises where the installation is broken: that is a failure to see, not a skipped EVA
    return True


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    code = main(["demo", "--out", str(out), "--samples-per-model", "1", "--models", ",".join(MODELS_SHOWN)])
    assert code == 0
    return out, json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="module")
def page(demo, tmp_path_factory):
    out, _ = demo
    with chromium(tmp_path_factory.mktemp("profile")) as session:
        session.get((out / "index.html").as_uri())
        yield session


def manifest_first(model: str) -> dict:
    return json.loads((MODELS / model / "samples" / "manifest.json").read_text())["samples"][0]


def test_the_summary_covers_every_model_sample_and_method(demo):
    _, summary = demo
    eva = verify_extra_importable()
    assert summary["eva"] == ("installed" if eva else "not installed")
    assert summary["methods"] == (ALL_METHODS if eva else ALL_METHODS[:-1])
    assert [(r["model"], r["sample"], r["true_label"]) for r in summary["results"]] == [
        (model, manifest_first(model)["image"], manifest_first(model)["label_name"]) for model in MODELS_SHOWN]
    for result in summary["results"]:
        assert list(result["methods"]) == summary["methods"]
        assert not [m for m in result["methods"].values() if "error" in m]
        # relevance mass exactly where the model ships a mask (scale_texture does, digits does not)
        assert [("relevance_mass" in m["scores"]) for m in result["methods"].values()] == \
            [bool(manifest_first(result["model"])["mask"])] * len(summary["methods"])


def test_one_tile_per_method_per_sample_with_the_summary_scores(demo, page):
    from selenium.webdriver.common.by import By

    _, summary = demo
    for result in summary["results"]:
        sample = page.find_element(By.CSS_SELECTOR, f'section[data-model="{result["model"]}"] '
                                                    f'.sample[data-sample="{result["sample"]}"]')
        tiles = {t.get_attribute("data-method"): t for t in sample.find_elements(By.CSS_SELECTOR, ".tile.method")}
        assert list(tiles) == ALL_METHODS  # EVA's tile is its map, or the note without the verify extra
        for method in summary["methods"]:
            tile = tiles[method]
            shown = {dd.get_attribute("data-metric"): dd.text
                     for dd in tile.find_elements(By.CSS_SELECTOR, "dd.score")}
            recorded = result["methods"][method]
            precision = recorded["precision"]
            expected = {name: f"{value:.3f}" for name, value in recorded["scores"].items()}
            expected.update({"reliability": f"{precision['reliability']:.2f}"} if precision else {})
            assert shown == expected, method
            assert set(expected) >= {"deletion", "insertion", "mu_fidelity"}
            # the randomized methods report their precision; occlusion is deterministic
            assert (precision is None) == (method == "occlusion") or method == "eva", method
            assert tile.find_element(By.TAG_NAME, "img").get_property("naturalWidth") > 0


def test_eva_shows_its_map_or_how_to_install_it(demo, page):
    from selenium.webdriver.common.by import By

    _, summary = demo
    maps = page.find_elements(By.CSS_SELECTOR, '.tile.method[data-method="eva"] img')
    notes = page.find_elements(By.CSS_SELECTOR, ".eva-missing, #eva-note")
    installed = verify_extra_importable()
    assert (len(maps), len(notes)) == ((len(summary["results"]), 0) if installed else (0, len(summary["results"]) + 1))
    assert all("EVA needs the verify extra: `make install-verify`" in note.text for note in notes)


def test_wcam_scale_figure_for_every_sample(demo, page):
    from selenium.webdriver.common.by import By

    _, summary = demo
    figures = page.find_elements(By.CSS_SELECTOR, ".wcam-scales img")
    assert len(figures) == len(summary["results"])
    assert all(figure.get_property("naturalWidth") >= 300 for figure in figures)
    for result in summary["results"]:  # the level shares it draws are shares: they sum to one
        assert sum(result["methods"]["wcam"]["level_importance"]) == pytest.approx(1.0, abs=1e-6)


def test_reads_at_a_laptops_width_and_is_not_blank(page, tmp_path):
    assert horizontal_overflow(page) == 0
    pixels = screenshot_pixels(page, tmp_path / "demo.png")
    assert pixels.shape[1] == page.execute_script("return window.innerWidth") and pixels.std() > 30


@pytest.mark.parametrize("flags, option", [
    (["--samples-per-model", "0"], "--samples-per-model"),
    (["--methods", "occlusion,gradcam"], "--methods"),
    (["--models", "shapes_run1"], "--models"),
])
def test_a_bad_flag_is_one_line_naming_it(flags, option, tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), *flags]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"error: {option}: ") and "\n" not in error


def test_without_the_verify_extra_the_page_says_how_to_get_eva(monkeypatch, tmp_path):
    """The other side of EVA's tile, whatever this machine has installed: the note, and no EVA run."""
    from selenium.webdriver.common.by import By

    monkeypatch.setattr("service.demo.run.eva_installed", lambda: False)
    assert main(["demo", "--out", str(tmp_path), "--samples-per-model", "1", "--models", "digits",
                 "--methods", "occlusion,eva"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert (summary["eva"], summary["methods"]) == ("not installed", ["occlusion"])
    with chromium(tmp_path / "profile") as session:
        session.get((tmp_path / "index.html").as_uri())
        notes = [n.text for n in session.find_elements(By.CSS_SELECTOR, "#eva-note, .eva-missing")]
        assert session.find_elements(By.CSS_SELECTOR, '.tile.method[data-method="eva"] img') == []
    assert len(notes) == 2 and all("EVA needs the verify extra: `make install-verify`" in n for n in notes)
