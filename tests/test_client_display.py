"""The Python client's results in a notebook: explanations draw the overlay this module works out by hand, at a
known size; audit results load into pandas with the values the audit stored and summarised."""

from __future__ import annotations

import csv
import struct
import sys

import numpy as np
import pytest
from conftest import load_samples

from onnxplain_client import Attribution, Explanation

GREY = 102  # uint8: 0.4
SIDE = 20  # map pixels per side; each covers 15 x 15 figure pixels (300 / 20)
TITLE_ROWS = 60  # figure rows above the map (0.6 inch at 100 dpi)


def quadrant_map() -> np.ndarray:
    """Top-left +2 (the peak: v = 1), top-right 0, bottom-left -2 (v = -1), bottom-right +1 (v = 0.5)."""
    values = np.zeros((SIDE, SIDE), np.float32)
    half = SIDE // 2
    values[:half, :half], values[half:, :half], values[half:, half:] = 2.0, -2.0, 1.0
    return values


# The overlay by hand, alpha 0.6 over grey 0.4: (1 - 0.6 |v|) 0.4 + 0.6 |v| bwr(v), with bwr pure red at v = 1,
# pure blue at v = -1, and (1, 0.5, 0.5) halfway up from white at v = 0.5.
EXPECTED = {
    "top-left": (0.4 * 0.4 + 0.6, 0.4 * 0.4, 0.4 * 0.4),
    "top-right": (0.4, 0.4, 0.4),
    "bottom-left": (0.4 * 0.4, 0.4 * 0.4, 0.4 * 0.4 + 0.6),
    "bottom-right": (0.7 * 0.4 + 0.3, 0.7 * 0.4 + 0.3 * 0.5, 0.7 * 0.4 + 0.3 * 0.5),
}
CENTRES = {"top-left": (5, 5), "top-right": (5, 15), "bottom-left": (15, 5), "bottom-right": (15, 15)}


def explanation(attributions: list[Attribution]) -> Explanation:
    from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex

    image = np.full((SIDE, SIDE, 3), GREY, np.uint8)
    return Explanation(method="occlusion", attributions=attributions, seed=0, forward_passes=0, provider="",
                       timings={}, baseline={}, image=image, parameters={}, response=ex.ExplainResponse())


def figure_pixels(fig) -> np.ndarray:
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3] / 255.0


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_explanation_plot_draws_the_known_overlay_with_scores_in_the_titles():
    from onnxplain_client._proto.xai.v1 import metrics_pb2

    deletion = metrics_pb2.MetricResult(name="deletion", score=0.125)
    first = Attribution(0, "circle", 0.875, quadrant_map(), {"deletion": deletion})
    second = Attribution(2, "triangle", 0.0625, -quadrant_map())  # the colours swap
    fig = explanation([first, second]).plot()
    pixels = figure_pixels(fig)
    assert pixels.shape == (360, 600, 3)
    for panel, sign in ((0, 1), (1, -1)):
        for name, (row, col) in CENTRES.items():
            expected = EXPECTED[name]
            if sign < 0:  # the negated map: red and blue trade places, v = 0.5 becomes -0.5 = (0.5, 0.5, 1)
                expected = {"top-left": EXPECTED["bottom-left"], "bottom-left": EXPECTED["top-left"],
                            "top-right": EXPECTED["top-right"],
                            "bottom-right": tuple(reversed(EXPECTED["bottom-right"]))}[name]
            y, x = TITLE_ROWS + row * 15 + 7, panel * 300 + col * 15 + 7
            np.testing.assert_allclose(pixels[y, x], expected, atol=2 / 255, err_msg=f"panel {panel}, {name}")
    titles = [text.get_text() for text in fig.texts]
    assert titles == ["circle (0): score 0.875\ndeletion 0.125", "triangle (2): score 0.062"]


def test_attribution_plot_and_notebook_pngs_have_the_figure_size():
    attribution = Attribution(1, "square", 0.5, quadrant_map())
    pixels = figure_pixels(attribution.plot(np.full((SIDE, SIDE, 3), GREY, np.uint8)))
    row, col = CENTRES["top-left"]
    np.testing.assert_allclose(pixels[TITLE_ROWS + row * 15 + 7, col * 15 + 7], EXPECTED["top-left"], atol=2 / 255)
    assert png_size(attribution._repr_png_()) == (300, 360)
    assert png_size(explanation([attribution, attribution, attribution])._repr_png_()) == (900, 360)


def test_a_served_explanation_draws_itself(client):
    sample = load_samples("shapes")[0]
    result = client.explain("shapes", sample["path"], "occlusion", {"window": 16}, seed=1,
                            metrics={"deletion": {"steps": 4}})
    [attribution] = result.attributions
    assert png_size(result._repr_png_()) == (300, 360)
    [text] = result.plot().texts
    assert text.get_text() == (f"{attribution.label} ({attribution.class_index}): score {attribution.score:.3f}\n"
                               f"deletion {attribution.metrics['deletion'].score:.3f}")


def test_missing_extras_name_themselves(monkeypatch, tmp_path):
    from onnxplain_client.frames import summary_dataframe

    attribution = Attribution(1, "square", 0.5, quadrant_map())
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"onnxplain-client\[plot\]"):
        attribution.plot()
    assert attribution._repr_png_() is None  # the notebook falls back to the text repr
    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match=r"onnxplain-client\[dataframe\]"):
        summary_dataframe({"groups": []})


def test_audit_results_load_into_dataframes_with_the_stored_values(client, data_dir, tmp_path):
    import pandas as pd
    from scenes import write_scene_dataset

    folder = data_dir / "display_scenes"
    folder.mkdir(exist_ok=True)
    manifest = write_scene_dataset(folder, 4, seed=77)
    with manifest.open() as handle:
        truth = {row["path"]: row["label"] for row in csv.DictReader(handle)}
    report = client.audit(str(manifest.relative_to(data_dir)), ["shapes", "shapes_run2"], "display",
                          methods={"occlusion": {"window": 16}}, metrics={"deletion": {"steps": 4}, "localisation": {}},
                          seed=3)
    with pytest.raises(FileNotFoundError, match="data_dir="):
        report.to_dataframe()  # the path is inside the server's data directory
    frame = report.to_dataframe(data_dir)
    summary = report.summary
    assert len(frame) == 4 * 2 == sum(group["items"] for group in summary["groups"]) == report.total
    assert sorted(set(frame["item"])) == sorted(truth)
    assert set(frame["model"]) == {"shapes", "shapes_run2"}
    labels = load_samples("shapes")  # class index -> name, from the bundled manifest
    names = {s["label"]: s["label_name"] for s in labels}
    assert all(names[label] == truth[item] for item, label in zip(frame["item"], frame["label"]))
    assert (frame["correct"] == (frame["label"] == frame["predicted"])).all()
    metric_names = sorted(summary["groups"][0]["metrics"])
    assert "deletion" in metric_names and set(metric_names) <= set(frame.columns)
    for group in summary["groups"]:
        rows = frame[(frame["model"] == group["model"]) & (frame["method"] == group["method"])]
        assert len(rows) == group["items"]
        assert rows["correct"].mean() == pytest.approx(group["accuracy"])
        assert rows["seconds"].mean() == pytest.approx(group["seconds_per_item"])
        for name in metric_names:
            assert rows[name].mean() == pytest.approx(group["metrics"][name]), (group["model"], name)

    table = report.summary_dataframe()
    assert list(table[["model", "method", "items"]].itertuples(index=False, name=None)) == [
        (g["model"], g["method"], g["items"]) for g in summary["groups"]]
    for group, (_, row) in zip(summary["groups"], table.iterrows()):
        assert row["accuracy"] == pytest.approx(group["accuracy"])
        assert [row[name] for name in metric_names] == pytest.approx([group["metrics"][n] for n in metric_names])
    assert table["reliability"].isna().all()  # occlusion is deterministic

    frame.to_parquet(tmp_path / "results.parquet")  # pyarrow, the dataframe extra
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), frame)


def test_a_letterbox_explanation_is_drawn_over_the_image_not_its_padding():
    """Map frame "image": the map covers the image's place in the model input (rows 5-14 of 20 here), so the
    picture shows the image's pixels (0.4 grey) where the map is 0, never the padding (0.8 grey)."""
    from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex

    model_input = np.full((SIDE, SIDE, 3), 204, np.uint8)
    model_input[5:15] = GREY
    values = np.zeros((10, SIDE), np.float32)
    values[:, :10] = 1.0  # left half at the peak: red over the image's grey
    response = ex.ExplainResponse(map_frame=ex.MAP_FRAME_IMAGE, placement=ex.ImagePlacement(
        image_height=10, image_width=SIDE, top=5, left=0, height=10, width=SIDE))
    letterboxed = Explanation(method="occlusion", attributions=[Attribution(0, "circle", 0.5, values)], seed=0,
                              forward_passes=0, provider="", timings={}, baseline={}, image=model_input,
                              parameters={}, response=response, map_frame="image")
    pixels = figure_pixels(letterboxed.plot())
    for row in (1, 9):  # map rows are 30 figure rows tall, columns 15 wide
        y = TITLE_ROWS + row * 30 + 15
        np.testing.assert_allclose(pixels[y, 15 * 15 + 7], (0.4, 0.4, 0.4), atol=2 / 255)
        np.testing.assert_allclose(pixels[y, 5 * 15 + 7], EXPECTED["top-left"], atol=2 / 255)


def test_a_colour_image_is_greyed_under_the_map():
    """Red evidence must stay visible on a red object: where the map is 0 the pixel is the mean of the image's
    channels, and at the map's peak it is pure red whatever the image."""
    from onnxplain_client.display import overlay

    image = np.zeros((4, 4, 3), np.uint8)
    image[..., 0] = 240  # a red object everywhere
    image[..., 2] = 30
    attribution = np.zeros((4, 4))
    attribution[0, 0] = 1.0
    drawn = overlay(image, attribution, alpha=1.0)
    np.testing.assert_allclose(drawn[1:, 1:], (240 + 30) / 3 / 255, atol=1e-12)
    np.testing.assert_allclose(drawn[0, 0], [1.0, 0.0, 0.0], atol=2 / 255)
