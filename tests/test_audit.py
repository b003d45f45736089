"""Audits: a dataset from a manifest, results stored as they come, a killed audit resumed without loss or
duplication, and the summary computed from what was stored."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import MODELS, ROOT
from scenes import write_scene_dataset

from service.audit.dataset import load_dataset
from service.audit.store import ResultStore
from service.cli import main
from service.errors import FailedPrecondition, InvalidArgument, NotFound

ITEMS = 16


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """16 fresh shapes scenes (not the training ones) with masks, listed in a CSV manifest by class name."""
    return write_scene_dataset(tmp_path_factory.mktemp("scenes"), ITEMS, seed=123)


def audit_command(dataset, out) -> list[str]:
    return ["audit", str(dataset), "--model", str(MODELS / "shapes"), "--method", "rise:num_masks=1500",
            "--metric", "deletion:steps=8", "--metric", "localisation", "--seed", "7", "--out", str(out)]


def stored(out) -> list[tuple]:
    with sqlite3.connect(out / "results.sqlite") as connection:
        return connection.execute("SELECT model, method, item, label, predicted, score, correct, metrics, curves, "
                                  "details, map FROM results ORDER BY model, method, item").fetchall()


def test_a_killed_audit_resumes_with_every_image_once_and_the_same_results(dataset, tmp_path):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    process = subprocess.Popen([sys.executable, "-m", "service.cli", *audit_command(dataset, killed)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(killed / "results.sqlite") as connection:
                if connection.execute("SELECT COUNT(*) FROM results").fetchone()[0] >= 3:
                    break
        except sqlite3.OperationalError:
            pass  # the audit has not created its store yet
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = len(stored(killed))
    assert 3 <= partial < ITEMS, partial  # killed midway
    assert main(audit_command(dataset, killed)) == 0
    assert main(audit_command(dataset, whole)) == 0
    resumed, uninterrupted = stored(killed), stored(whole)
    assert len(resumed) == ITEMS and len({row[2] for row in resumed}) == ITEMS  # every image exactly once
    assert resumed == uninterrupted  # identical results, maps included
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["computed_now"] == ITEMS - partial
    group = summary["groups"][0]
    labels, predicted = np.array([r[3] for r in resumed]), np.array([r[4] for r in resumed])
    assert group["accuracy"] == pytest.approx(np.mean(labels == predicted))
    assert set(group["metrics"]) == {"deletion", "localisation"} and group["items"] == ITEMS


def test_another_plan_in_the_same_folder_is_refused(dataset, tmp_path):
    assert main(["audit", str(dataset), "--model", str(MODELS / "shapes"), "--out", str(tmp_path)]) == 0
    with pytest.raises(FailedPrecondition, match="another plan"):
        ResultStore(tmp_path / "results.sqlite", {"plan": "different"})
    assert main(["audit", str(dataset), "--model", str(MODELS / "shapes"), "--seed", "1", "--out", str(tmp_path)]) == 1


def test_datasets_from_folders_and_jsonl_and_their_refusals(dataset, tmp_path):
    folder_items = load_dataset(dataset.parent)
    assert len(folder_items) == ITEMS and all(not i.item_id.endswith(".mask.png") for i in folder_items)
    jsonl = dataset.parent / "manifest.jsonl"
    jsonl.write_text("\n".join(json.dumps({"path": i.item_id, "label": 0}) for i in folder_items[:3]))
    assert [i.label for i in load_dataset(jsonl)] == ["0", "0", "0"]
    broken = tmp_path / "broken.csv"
    broken.write_text("path,label\nmissing.png,1\n")
    with pytest.raises(NotFound, match="missing.png"):
        load_dataset(broken)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a dataset")
    with pytest.raises(InvalidArgument, match="manifest"):
        load_dataset(notes)


def test_a_local_ray_cluster_gives_the_embedded_engines_results(dataset, tmp_path):
    """Two Ray actors, each with its own onnxruntime session, against the in-process engine: same rows."""
    common = ["audit", str(dataset), "--model", str(MODELS / "shapes"), "--method", "occlusion:window=8,stride=4",
              "--method", "rise:num_masks=300", "--metric", "deletion:steps=8", "--seed", "3"]
    assert main([*common, "--out", str(tmp_path / "embedded")]) == 0
    assert main([*common, "--engine", "ray", "--workers", "2", "--out", str(tmp_path / "ray")]) == 0
    embedded, on_ray = stored(tmp_path / "embedded"), stored(tmp_path / "ray")
    assert len(embedded) == 2 * ITEMS and embedded == on_ray


def test_the_audit_rpc_streams_progress_resumes_and_refuses_paths_outside(client, data_dir):
    import grpc
    from test_server import assert_status, still_serving

    (data_dir / "scenes").mkdir(exist_ok=True)
    write_scene_dataset(data_dir / "scenes", 6, seed=9)
    events = []
    result = client.audit("scenes/manifest.csv", ["shapes", "shapes_run2"], "first",
                          methods={"occlusion": {"window": 8, "stride": 4}},
                          metrics={"deletion": {"steps": 8}, "localisation": {}}, seed=1, on_progress=events.append)
    assert result.computed == result.total == 12 and any(e.stage == "audit" for e in events)
    summary = json.loads(result.summary_json)
    assert [g["model"] for g in summary["groups"]] == ["shapes", "shapes_run2"]
    assert (data_dir / result.report_path).stat().st_size > 10_000
    again = client.audit("scenes/manifest.csv", ["shapes", "shapes_run2"], "first",
                         methods={"occlusion": {"window": 8, "stride": 4}},
                         metrics={"deletion": {"steps": 8}, "localisation": {}}, seed=1)
    assert again.computed == 0 and again.total == 12  # resumed: nothing left to do
    planned = client.audit("scenes/manifest.csv", ["shapes"], "planned", methods=[("occlusion", {"window": 16}),
                                                                               ("rise", {"num_masks": 200})],
                           measures=["entropy"], ensemble={"normalisation": "rank", "aggregator": "mean"},
                           scales={"corruptions": ["jpeg"], "severities": [5]}, seed=1)
    groups = {g["method"]: g for g in json.loads(planned.summary_json)["groups"]}
    assert planned.total == 4 * 6 and "ensemble rank/mean" in groups
    assert "entropy_spatial" in groups["occlusion window=[16]"]["measures"]
    assert any(m.startswith("scales jpeg") for m in groups)
    assert_status(lambda: client.audit("../outside", ["shapes"], "x"), grpc.StatusCode.INVALID_ARGUMENT, "dataset")
    escaping = data_dir / "escaping.jsonl"  # a manifest inside the data directory that points out of it
    escaping.write_text(json.dumps({"path": str(MODELS / "shapes" / "samples" / "sample_00.png")}))
    assert_status(lambda: client.audit("escaping.jsonl", ["shapes"], "x"), grpc.StatusCode.INVALID_ARGUMENT,
                  "dataset", "outside the data directory")
    (data_dir / "broken").mkdir(exist_ok=True)
    (data_dir / "broken" / "not_an_image.png").write_bytes(b"not a png")
    assert_status(lambda: client.audit("broken", ["shapes"], "broken"), grpc.StatusCode.INVALID_ARGUMENT,
                  "not_an_image.png")
    assert_status(lambda: client.audit("scenes", ["shapes"], "twice", methods=[("occlusion", {}), ("occlusion", {})]),
                  grpc.StatusCode.INVALID_ARGUMENT, "methods")
    assert_status(lambda: client.audit("scenes", ["nowhere"], "x"), grpc.StatusCode.NOT_FOUND, "models[0]")
    assert_status(lambda: client.audit("scenes", ["shapes"], "../up"), grpc.StatusCode.INVALID_ARGUMENT, "name")
    assert_status(lambda: client.audit("scenes/manifest.csv", ["shapes"], "first", seed=2),
                  grpc.StatusCode.FAILED_PRECONDITION, "name", "another plan")
    still_serving(client)


def test_audit_measures_and_stability_across_its_models(dataset, tmp_path):
    assert main(["audit", str(dataset), "--model", str(MODELS / "shapes"), "--model", str(MODELS / "shapes_run3"),
                 "--method", "occlusion:window=8,stride=4", "--measure", "entropy", "--measure", "degradation",
                 "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    stability = summary["stability"]["occlusion stride=4 window=8"]
    assert stability["models"] == ["shapes", "shapes_run3"] and stability["count"] == ITEMS
    assert 0 < stability["mean"] < 1  # independent runs agree in part
    with sqlite3.connect(tmp_path / "results.sqlite") as connection:
        details = [json.loads(d) for (d,) in connection.execute(
            "SELECT details FROM results WHERE model = 'shapes' ORDER BY item")]
    measures = summary["groups"][0]["measures"]
    assert set(measures) == {"entropy_histogram", "entropy_spatial", "degradation_background_drop",
                             "degradation_object_drop", "degradation_background_ssim", "degradation_object_ssim"}
    # SSIM of the degraded image's map with the clean map: the same map would give 1 (tests/test_measures.py,
    # and tests/test_common_random_numbers.py compares it with the Measure job's).
    assert all(-1 <= d[f"degradation_{mode}_ssim"] <= 1 for d in details for mode in ("background", "object"))
    assert measures["entropy_spatial"]["mean"] == pytest.approx(np.mean([d["entropy_spatial"] for d in details]))
    assert all(0 < d["entropy_histogram"] <= 1 for d in details)
    assert "Stability across the audited models" in (tmp_path / "report.html").read_text()


def test_an_audit_ensemble_is_its_members_aggregated_and_scored_like_them(dataset, tmp_path):
    """rank/mean: the mean of the members' percentile ranks (ties share their average), by its definition."""
    from references import average_ranks

    assert main(["audit", str(dataset), "--model", str(MODELS / "shapes"), "--method", "occlusion:window=8,stride=4",
                 "--method", "rise:num_masks=300", "--metric", "deletion:steps=8", "--ensemble", "rank/mean",
                 "--out", str(tmp_path)]) == 0
    store = ResultStore(tmp_path / "results.sqlite", json.loads(sqlite3.connect(tmp_path / "results.sqlite").execute(
        "SELECT plan FROM plan").fetchone()[0]))
    rows = list(store.rows())
    store.close()
    by_method = {}
    for row in rows:
        by_method.setdefault(row["method"], {})[row["item"]] = row
    ensemble, occlusion, rise = (by_method[m] for m in ("ensemble rank/mean", "occlusion stride=4 window=8",
                                                        "rise num_masks=300"))
    assert len(ensemble) == ITEMS and all("deletion" in row["metrics"] for row in ensemble.values())
    for item, row in ensemble.items():
        members = (occlusion[item]["map"], rise[item]["map"])
        expected = np.mean([average_ranks(m) / m.size for m in members], axis=0)
        # The store keeps maps in float16 (steps of 2.4e-4 near 1), and members rounded there tie more often.
        np.testing.assert_allclose(row["map"], expected, atol=1e-3)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert "ensemble rank/mean" in [g["method"] for g in summary["groups"]]


def test_an_audit_reports_prediction_flips_and_scale_shifts_under_corruption(dataset, tmp_path, capsys):
    """Per item, whether a heavy blur (severity 5) flips the prediction, checked against the model run directly on
    the blurred image, and the approximation share's shift, reported for every item with the maps' reliability.

    The shift's sign is not asserted: blur removes the fine scales, but at 2 designs the share's shift was
    measured as +0.03 +- 0.16 over seeds (its mean over these 16 items is the sampler's as much as the blur's),
    and WCAM's own share intervals, not this audit, say when a shift is resolved."""
    from service.audit.dataset import load_dataset
    from service.audit.engine import read_image
    from service.corruptions import Corruption, corrupt
    from service.runtime.repository import ModelRepository

    assert main(["audit", str(dataset), "--model", str(MODELS / "shapes"), "--method", "occlusion:window=16,stride=8",
                 "--corruption", "gaussian_blur", "--severity", "5", "--scale-designs", "2", "--out",
                 str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "summary.json").read_text())
    scales = next(g for g in summary["groups"] if g["method"].startswith("scales gaussian_blur"))
    assert scales["items"] == ITEMS
    with sqlite3.connect(tmp_path / "results.sqlite") as connection:
        details = {item: json.loads(d) for item, d in connection.execute(
            "SELECT item, details FROM results WHERE method LIKE 'scales%'")}
    model = ModelRepository(MODELS).load_path("shapes")
    flips = {}
    for item in load_dataset(dataset):
        image, _ = read_image(model, item)
        blurred = corrupt(image, Corruption.GAUSSIAN_BLUR, 5, np.random.default_rng(0))  # blur draws nothing
        clean, corrupted = np.argmax(model.predict(np.stack([image, blurred])), axis=1)
        flips[item.item_id] = float(clean != corrupted)
    assert {item: d["flipped gaussian_blur 5"] for item, d in details.items()} == flips
    assert scales["measures"]["flipped gaussian_blur 5"]["mean"] == pytest.approx(np.mean(list(flips.values())))
    shifted = [d["approximation share gaussian_blur 5"] - d["approximation_share"] for d in details.values()]
    assert len(shifted) == ITEMS and np.all(np.isfinite(shifted)), shifted
    # WCAM is randomized: each scale row keeps its clean map's reliability, the summary and the CLI report it.
    assert all(-1 <= d["reliability"] <= 1 and -1 <= d["variant_reliability_min"] <= 1 for d in details.values())
    assert scales["reliability"]["count"] == ITEMS
    assert f"reliability mean {scales['reliability']['mean']:.2f}" in printed
    assert "Corruptions and zoom" in (tmp_path / "report.html").read_text()


def test_a_deadline_stops_an_audit_rpc_between_results_and_the_same_call_resumes(server, client, data_dir):
    import grpc
    from test_server import _wait_idle, assert_status

    (data_dir / "slow").mkdir(exist_ok=True)
    write_scene_dataset(data_dir / "slow", 12, seed=11)
    call = dict(methods={"rise": {"num_masks": 3000}}, seed=0)
    assert_status(lambda: client.audit("slow/manifest.csv", ["shapes"], "slow", timeout=3.0, **call),
                  grpc.StatusCode.DEADLINE_EXCEEDED)
    _wait_idle(server, timeout=30)
    with sqlite3.connect(data_dir / "audits" / "slow" / "results.sqlite") as connection:
        kept = connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    assert 0 < kept < 12  # what was done before the deadline is kept
    resumed = client.audit("slow/manifest.csv", ["shapes"], "slow", **call)
    assert resumed.computed == 12 - kept and resumed.total == 12


def test_a_map_beyond_float16_is_stored_without_turning_into_infinity():
    from service.audit.store import compact_map, stored_map

    small = np.array([[0.5, -2.0], [1e-3, 7.0]], dtype=np.float32)
    large = np.array([[1e5, -3e6], [0.25, 1.0]], dtype=np.float32)  # logits maps of an unnormalised model
    assert compact_map(small).dtype == np.float16 and compact_map(large).dtype == np.float32
    np.testing.assert_allclose(stored_map(compact_map(small).tobytes(), [2, 2]), small, rtol=1e-3)
    np.testing.assert_array_equal(stored_map(compact_map(large).tobytes(), [2, 2]), large)
