"""Precision in every study's response (issue 12): Consistency per setting, AnalyzeScales per variant (with
WCAM's share intervals), Aggregate per image and member, Measure per clean map and over every map it made,
the audit per result (details, summary, report, a store written before them), the client's view of an entry.
Each reported precision is checked against Explain's own for the same map (same image, method and seed)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import MODELS, load_samples
from onnxplain_client import from_tensor, precision, to_tensor
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex

from service.api import responses
from service.audit.dataset import Item
from service.audit.engine import AuditPlan, Task, Worker, item_seed
from service.audit.report import write_report
from service.audit.store import ResultStore
from service.audit.summary import summarise
from service.corruptions import Corruption
from service.explainers import get_method
from service.explainers.baselines import Baseline, BaselineKind
from service.jobs.aggregate import AggregateJob, run_aggregate
from service.jobs.consistency import ConsistencyJob, Setting, run_consistency
from service.jobs.evaluate import MetricRequest
from service.jobs.explain import ExplainJob, Targets, run_explain
from service.jobs.measure import MeasureJob, run_measure
from service.jobs.scales import ScaleJob, Variant, run_scales
from service.measures.transforms import transforms
from service.metrics import get_metric
from service.runtime.repository import ModelRepository

TIMINGS = ex.Timings()


@pytest.fixture(scope="module")
def model():
    return ModelRepository(MODELS).load_path("shapes")


@pytest.fixture(scope="module")
def image(model):
    return model.fit_image(load_samples("shapes")[0]["pixels"])


def made(name: str, **values):
    method = get_method(name)
    return method, method.make_params(values)


def deletion() -> MetricRequest:
    return MetricRequest(get_metric("deletion"), get_metric("deletion").make_params({"steps": 8}))


def assert_same_precision(message: ex.Precision, alone, target: float) -> None:
    """``message`` reports the precision of Explain's map ``alone`` (target 0)."""
    known = alone.precision
    assert message.reliability == pytest.approx(float(known.reliability[0]), abs=1e-12)
    assert (message.samples, message.max_samples, message.forward_passes, message.rounds, message.stop_reason) == \
        (known.samples, known.max_samples, known.forward_passes, known.rounds,
         ex.StopReason.Value(f"STOP_REASON_{known.stop_reason.name}"))
    assert message.target_reliability == pytest.approx(target)


def test_consistency_reports_each_settings_precision_aligned_with_its_label(model, image):
    rise, rise_params = made("rise", num_masks=256, grid_size=4, target_reliability=0.0)
    occlusion, occlusion_params = made("occlusion", window=16, stride=8)
    settings = (Setting("rise mean", rise, rise_params, Baseline()),
                Setting("occlusion", occlusion, occlusion_params, Baseline()),
                Setting("rise black", rise, rise_params, Baseline(BaselineKind.BLACK)))
    result = run_consistency(model, ConsistencyJob(image, settings, deletion(), (Baseline(),), seed=4))
    numbers = responses.consistency_result(model, result, TIMINGS, return_maps=False)
    with_maps = responses.consistency_result(model, result, TIMINGS, return_maps=True)
    assert len(numbers.setting_precision) == len(numbers.settings) == 3
    for index in (0, 2):
        alone = run_explain(model, ExplainJob(rise, rise_params, image, Targets((result.class_index,)),
                                              settings[index].baseline, seed=4))
        assert_same_precision(numbers.setting_precision[index], alone, 0.0)
        assert numbers.setting_precision[index].samples == 256  # target 0: the whole cap
        assert not numbers.setting_precision[index].HasField("standard_error")  # numbers only without the maps
        np.testing.assert_array_equal(from_tensor(with_maps.setting_precision[index].standard_error),
                                      alone.precision.standard_error[0])
    # The deterministic setting's entry is empty, and the client reads it as no precision.
    assert numbers.setting_precision[1] == ex.Precision() and precision(numbers.setting_precision[1]) is None
    read = precision(numbers.setting_precision[0])
    assert read.standard_error is None and read.stop_reason == "samples" and read.samples == 256


def test_every_scale_variant_carries_wcams_precision_and_share_intervals(model, image):
    wcam, params = made("wcam", num_designs=8, grid_size=4, levels=2, sufficient_image=False)
    blur = Variant("gaussian_blur 5", Corruption.GAUSSIAN_BLUR, 5)
    result = run_scales(model, ScaleJob(image, params, (Variant("clean"), blur), seed=5))
    numbers = responses.scales_result(model, result, TIMINGS, return_maps=False)
    for row, variant in zip(result.rows, numbers.variants):
        alone = run_explain(model, ExplainJob(wcam, params, row.image, Targets((result.class_index,)), seed=5))
        assert_same_precision(variant.precision, alone, params.target_reliability)
        assert not variant.precision.HasField("standard_error")
        details = alone.details[0]
        # The intervals and the resolved flags travel without return_maps; the pictures do not.
        assert variant.HasField("wcam") and not variant.wcam.HasField("wavelet_map")
        np.testing.assert_allclose(variant.wcam.level_importance_lower, details["level_importance_lower"])
        np.testing.assert_allclose(variant.wcam.level_importance_upper, details["level_importance_upper"])
        np.testing.assert_allclose(variant.wcam.subband_importance_lower, details["subband_importance_lower"])
        assert variant.wcam.confidence == pytest.approx(details["confidence"])
        assert variant.wcam.dominant_level_resolved == details["dominant_level_resolved"]
        assert variant.wcam.sufficient_depth_resolved == details["sufficient_depth_resolved"]
    with_maps = responses.scales_result(model, result, TIMINGS, return_maps=True)
    assert with_maps.variants[1].wcam.HasField("wavelet_map")
    np.testing.assert_array_equal(from_tensor(with_maps.variants[1].precision.standard_error),
                                  result.rows[1].explanation.precision.standard_error[0])


def test_aggregate_shows_which_member_was_noisy(model, image):
    """Two RISE members that differ only in their sample count: the one with 16 times fewer masks is the less
    reliable one (Spearman-Brown: error variance in 1/N), and the response says so per member. Measured on this
    image over seeds 0-5: 64 masks 0.64-0.96, 1024 masks 0.98-0.99 (on images whose map is nearly flat the two
    overlap: a 32-mask half is too small to rank pixels)."""
    few = made("rise", num_masks=64, grid_size=4, target_reliability=0.0)
    many = made("rise", num_masks=1024, grid_size=4, target_reliability=0.0)
    occlusion = made("occlusion", window=16, stride=8)
    given = np.random.default_rng(0).random(image.shape[:2]).astype(np.float32)
    result = run_aggregate(model, AggregateJob((image,), deletion(), maps=(given,), methods=(few, many, occlusion),
                                               seed=6))
    message = responses.aggregate_result(model, result, TIMINGS, return_members=False)
    assert list(message.members) == ["map 0", "rise #1", "rise #2", "occlusion"]
    entries = list(message.member_precision)
    assert len(entries) == 4  # [images, members], one image
    assert entries[0] == ex.Precision() and entries[3] == ex.Precision()  # a given map, a deterministic method
    assert (entries[1].samples, entries[2].samples) == (64, 1024)
    assert entries[1].stop_reason == entries[2].stop_reason == ex.STOP_REASON_SAMPLES
    assert not any(e.HasField("standard_error") for e in entries)
    assert entries[1].reliability < entries[2].reliability, (entries[1].reliability, entries[2].reliability)


def test_measure_reports_the_clean_maps_precision_and_every_maps_reliability(model, image):
    rise, params = made("rise", num_masks=128, grid_size=4, target_reliability=0.0)
    result = run_measure(model, MeasureJob((image,), rise, params, measures=("transforms",), seed=8))
    message = responses.measure_result(model, result, TIMINGS, "rise")
    # The clean map is Explain's with the image's seed (the job's first stream).
    explain_seed = int(np.random.SeedSequence(8).spawn(1)[0].generate_state(1)[0])
    alone = run_explain(model, ExplainJob(rise, params, image, Targets(()), seed=explain_seed))
    (clean,) = message.clean_precision
    assert_same_precision(clean, alone, 0.0)
    # Every map the measure made: the clean one and one per transform.
    made_maps = 1 + len(transforms(*image.shape[:2]))
    assert message.reliability.count == made_maps
    assert message.reliability.min <= float(alone.precision.reliability[0]) <= message.reliability.max

    occlusion, occlusion_params = made("occlusion", window=16, stride=8)
    deterministic = run_measure(model, MeasureJob((image,), occlusion, occlusion_params, measures=("entropy",),
                                                  seed=8))
    message = responses.measure_result(model, deterministic, TIMINGS, "occlusion")
    assert list(message.clean_precision) == [ex.Precision()] and message.reliability == ex.Summary()


def test_an_audit_keeps_each_results_precision_summarises_and_reports_it(model, tmp_path):
    picture = tmp_path / "a.png"
    from PIL import Image
    Image.fromarray(load_samples("shapes")[1]["pixels"]).save(picture)
    plan = AuditPlan.build([("rise", {"num_masks": 256, "grid_size": 4, "target_reliability": 0.0}),
                            ("occlusion", {"window": 16, "stride": 8})], [], seed=3)
    worker = Worker([model], plan)
    item = Item("a.png", picture)
    rise_label, occlusion_label = (AuditPlan.label(name, params) for name, params in plan.methods)
    computed = worker.compute(Task("shapes", rise_label, item))
    alone = run_explain(model, ExplainJob(*worker.methods[rise_label], model.fit_image(
        np.asarray(Image.open(picture).convert("RGB"))), seed=item_seed(3, "a.png")))
    assert computed["details"]["reliability"] == pytest.approx(float(alone.precision.reliability[0]), abs=1e-12)
    assert (computed["details"]["samples"], computed["details"]["stop_reason"]) == (256, "samples")
    deterministic = worker.compute(Task("shapes", occlusion_label, item))
    assert not {"reliability", "samples", "stop_reason"} & set(deterministic["details"])

    store = ResultStore(tmp_path / "results.sqlite", plan.describe([model], [item]))
    store.add(**computed)
    store.add(**deterministic)
    # A result stored before results kept their precision (a resumed audit's older rows): no reliability.
    store.add(**{**computed, "method": "rise (older)", "details": {}})
    rows = list(store.rows())
    summary = summarise(rows, {})
    groups = {g["method"]: g for g in summary["groups"]}
    assert groups[rise_label]["reliability"]["mean"] == pytest.approx(computed["details"]["reliability"])
    assert groups[rise_label]["reliability"]["count"] == 1 and groups[rise_label]["stop_reasons"] == {"samples": 1}
    assert groups[occlusion_label]["reliability"] is None and groups["rise (older)"]["reliability"] is None
    assert "reliability" not in groups[rise_label]["measures"]  # a precision, not a salience measure
    page = write_report(tmp_path / "report.html", summary, rows, {"a.png": picture}, {}).read_text()
    assert "<th>reliability</th>" in page and "<th>min reliability</th>" in page
    assert f"<td class=\"num\">{computed['details']['reliability']:.3f}</td>" in page
    store.close()


def test_the_client_reads_an_entry_with_and_without_its_standard_error():
    full = ex.Precision(reliability=0.8, samples=10, max_samples=20, stop_reason=ex.STOP_REASON_TIME,
                        standard_error=to_tensor(np.ones((2, 3), np.float32)))
    read = precision(full)
    assert read.stop_reason == "time" and read.standard_error.shape == (2, 3)
    stripped = ex.Precision()
    stripped.CopyFrom(full)
    stripped.ClearField("standard_error")
    assert dataclasses.replace(precision(stripped), standard_error=None) == precision(stripped)
    assert precision(stripped).standard_error is None and precision(ex.Precision()) is None


def test_the_study_commands_print_each_randomized_maps_reliability(tmp_path, capsys):
    from service.cli import main

    sample = str(load_samples("shapes")[0]["path"])
    assert main(["consistency", str(MODELS / "shapes"), sample, "--method", "rise", "-p", "num_masks=128",
                 "-p", "grid_size=4", "--baseline", "black", "--baseline", "image_mean", "--metric-baseline", "black",
                 "--seed", "0", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "sample_00.consistency.json").read_text())
    for label, entry in zip(summary["settings"], summary["setting_precision"]):
        assert "standard_error" not in entry  # the JSON keeps the numbers
        reliability = entry.get("reliability", 0.0)  # proto3 JSON leaves a 0 out
        assert f"  {label}: reliability {reliability:.2f} (target 0.90); {entry['samples']}/128 samples" in printed
    assert main(["measure", str(MODELS / "shapes"), sample, "--method", "rise", "-p", "num_masks=128",
                 "-p", "grid_size=4", "--measure", "entropy", "--seed", "0", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    measured = json.loads((tmp_path / "shapes.rise.measures.json").read_text())
    (clean,) = measured["clean_precision"]
    assert f"clean maps: reliability {clean.get('reliability', 0.0):.2f}; every map measured: reliability mean " \
           f"{clean.get('reliability', 0.0):.2f}, min {clean.get('reliability', 0.0):.2f} over 1 maps" in printed


def test_the_precision_travels_through_grpc(client):
    """The servicers only translate: the fields reach the client (a deterministic setting's entry empty)."""
    sample = load_samples("shapes")[0]["path"]
    scales = client.analyze_scales("shapes", sample, zooms=[2.0], wcam={"num_designs": 2, "grid_size": 4}, seed=0)
    for variant in scales.variants:
        read = precision(variant.precision)
        assert read.max_samples == 2 and read.standard_error is None and variant.wcam.confidence > 0
    settings = [{"method": "occlusion", "params": {"window": 16, "stride": 8}},
                {"method": "rise", "params": {"num_masks": 64, "grid_size": 4}}]
    compared = client.consistency("shapes", sample, settings, metric=("deletion", {"steps": 4}), seed=0)
    assert compared.setting_precision[0] == ex.Precision()
    assert precision(compared.setting_precision[1]).max_samples == 64
