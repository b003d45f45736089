"""Deadlines stop everything within a second: every job kind, and every loop that runs without calling predict,
ends (the worker idle again) within MAX_LAG of a DEADLINE set on work that would take far longer.

The jobs run on a model whose forward pass sleeps (cheap for the machine, slow for the job), through a
JobRunner with one worker; the loops run on their own with a JobControl's checkpoint. Each test takes about
DEADLINE + its setup."""

from __future__ import annotations

import asyncio
import json
import pathlib
import threading
import time

import numpy as np
import pytest
from onnx_builders import image_classifier
from PIL import Image
from scipy import stats

from service.audit import dataset as datasets
from service.audit.engine import AuditPlan, run_audit
from service.audit.store import ResultStore
from service.errors import DeadlineExceeded, InvalidArgument, ResourceExhausted
from service.explainers import get_method, hsic, kernel_shap, lime
from service.explainers.baselines import Baseline, BaselineKind
from service.explainers.sensitivity import upsample_bicubic
from service.jobs.aggregate import AggregateJob, run_aggregate
from service.jobs.consistency import ConsistencyJob, Setting, run_consistency
from service.jobs.control import JobControl
from service.jobs.evaluate import EvaluateJob, MetricRequest, run_evaluate
from service.jobs.explain import ExplainJob, run_explain
from service.jobs.measure import MeasureJob, run_measure
from service.jobs.predict import run_predict
from service.jobs.runner import JobRunner
from service.jobs.scales import ScaleJob, Variant, run_scales
from service.measures.degradation import degrade
from service.metrics import agreement, get_metric
from service.runtime.loader import load_model

DEADLINE = 0.5
MAX_LAG = 1.5
SHAPE = (64, 64, 3)
SLEEP = 0.02  # per forward pass call: a job of a few hundred calls outlasts any deadline here


def time_to_idle(work) -> float:
    """Seconds from the deadline until ``work(control)``, run by a JobRunner, has stopped and its worker is idle."""
    runner = JobRunner(workers=1, max_queue=0)

    async def run() -> float:
        deadline = time.monotonic() + DEADLINE
        with pytest.raises(DeadlineExceeded):
            await runner.run(work, deadline=deadline)
        idle = time.monotonic()
        await asyncio.sleep(0)  # the runner's bookkeeping callback
        assert runner.in_flight == 0
        return idle - deadline

    try:
        return asyncio.run(run())
    finally:
        runner.shutdown()


def loop_lag(work) -> tuple[float, int]:
    """Seconds from the deadline until ``work(checkpoint)`` raised, and how many checkpoints it passed."""
    control = JobControl(deadline=time.monotonic() + DEADLINE)
    calls = [0]

    def checkpoint() -> None:
        calls[0] += 1
        control.checkpoint()

    with pytest.raises(DeadlineExceeded):
        work(checkpoint)
    return time.monotonic() - control.deadline, calls[0]


@pytest.fixture(scope="module")
def slow_model():
    """A linear 5-class model on 64 x 64 RGB whose every forward pass call sleeps SLEEP seconds."""
    weights = np.random.default_rng(0).normal(size=(int(np.prod(SHAPE)), 5)).astype(np.float32) / 100
    model = load_model("slow", image_classifier(weights, SHAPE).SerializeToString(), source="test")
    outputs = model.outputs  # every score (predict's too) comes from one call of it

    def slow(*args, **kwargs):
        time.sleep(SLEEP)
        return outputs(*args, **kwargs)

    model.outputs = slow
    return model


def image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random(SHAPE, dtype=np.float32)


def method(name: str, **params):
    chosen = get_method(name)
    return chosen, chosen.make_params(params)


def metric(name: str, **params) -> MetricRequest:
    chosen = get_metric(name)
    return MetricRequest(chosen, chosen.make_params(params))


# --- every job kind -----------------------------------------------------------------------------------------------


def test_predict(slow_model):
    images = np.stack([image(i % 4) for i in range(2000)])  # 250 calls of 8
    assert time_to_idle(lambda control: run_predict(slow_model, images, batch_size=8, control=control)) < MAX_LAG


def test_explain(slow_model):
    # Every mask drawn (target_reliability 0): the job must still be running at the deadline, whatever its map.
    rise, params = method("rise", num_masks=20_000, target_reliability=0)  # 2500 calls of 8
    job = ExplainJob(rise, params, image(), batch_size=8)
    assert time_to_idle(lambda control: run_explain(slow_model, job, control)) < MAX_LAG


def test_evaluate(slow_model):
    job = EvaluateJob(image(), np.random.default_rng(1).random(SHAPE[:2]), (metric("mu_fidelity", num_samples=20_000),),
                      batch_size=8)
    assert time_to_idle(lambda control: run_evaluate(slow_model, job, control)) < MAX_LAG


def test_consistency_with_300_metric_baselines(slow_model):
    """The issue's attack: 300 metric baselines kept workers busy 71 s past a 5 s deadline. Their scorings
    call predict, which checkpoints; the Kendall matrix after them (300 x 300 scipy calls, 47 s here, with no
    checkpoint) was the loop that ignored the deadline. It is one product now (``kendall_matrix``)."""
    occlusion = get_method("occlusion")
    settings = tuple(Setting(f"{i}", occlusion, occlusion.make_params({"window": 32, "stride": 32}), Baseline())
                     for i in range(3))
    job = ConsistencyJob(image(), settings, metric("deletion", steps=8),
                         tuple(Baseline(BaselineKind.CONSTANT, i / 300) for i in range(300)))
    assert time_to_idle(lambda control: run_consistency(slow_model, job, control)) < MAX_LAG


def test_scales(slow_model):
    wcam, params = method("wcam", num_designs=64, grid_size=16, target_reliability=0)
    job = ScaleJob(image(), params, (Variant("clean"), Variant("zoom 2x", zoom=2.0)), batch_size=8)
    assert time_to_idle(lambda control: run_scales(slow_model, job, control)) < MAX_LAG


def test_aggregate(slow_model):
    job = AggregateJob((image(),), metric("deletion"), methods=(method("rise", num_masks=5000, target_reliability=0),
                                                                method("occlusion")), search=True, batch_size=8)
    assert time_to_idle(lambda control: run_aggregate(slow_model, job, control)) < MAX_LAG


def test_measure(slow_model):
    chosen, params = method("occlusion", window=16, stride=8)
    job = MeasureJob(tuple(image(i) for i in range(4)), chosen, params, measures=("out_of_set", "transforms",
                                                                                  "degradation"), batch_size=8)
    assert time_to_idle(lambda control: run_measure(slow_model, job, control)) < MAX_LAG


def test_audit_engine(slow_model, tmp_path):
    for i in range(20):
        Image.fromarray((image(i) * 255).astype(np.uint8)).save(tmp_path / f"{i:02d}.png")
    items = datasets.load_dataset(tmp_path)
    plan = AuditPlan.build([("rise", {"num_masks": 2000})], [("deletion", {})])
    store = ResultStore(tmp_path / "out" / "results.sqlite", plan.describe([slow_model], items))
    try:
        assert time_to_idle(lambda control: run_audit([slow_model], items, plan, store, control)) < MAX_LAG
    finally:
        store.close()


# --- loops that do not call predict -------------------------------------------------------------------------------


def test_hsic_kernels_check_between_classes():
    """One 2048 x 2048 kernel per class: 200 classes are about 20 s of work."""
    rng = np.random.default_rng(0)
    masks = (rng.random((2048, 49)) < 0.5).astype(np.float32)
    lag, calls = loop_lag(lambda checkpoint: hsic.hsic_binary(masks, rng.normal(size=(2048, 200)), checkpoint))
    assert lag < MAX_LAG and calls < 200


def test_lime_regression_checks_between_chunks():
    """100,000 coalitions of 1200 superpixels: 1.4e11 multiplications in 460 chunks."""
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, size=(100_000, 1200), dtype=np.int8)
    lag, calls = loop_lag(lambda checkpoint: lime.weighted_ridge(z, rng.normal(size=(100_000, 2)), rng.random(100_000),
                                                                 1.0, checkpoint))
    assert lag < MAX_LAG and calls < 400


def test_kernel_shap_regression_checks_between_chunks():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, size=(100_000, 1200), dtype=np.int8)
    lag, calls = loop_lag(lambda checkpoint: kernel_shap.shapley_regression(
        z, rng.normal(size=(100_000, 2)), np.ones(100_000), np.ones(2), checkpoint))
    assert lag < MAX_LAG and calls < 400


def test_agreement_matrices_check_between_pairs():
    """SSIM of every pair of 64 maps of 256 x 256: 2016 pairs, about 20 s."""
    maps = np.random.default_rng(0).random((64, 256, 256))
    lag, calls = loop_lag(lambda checkpoint: agreement.pairwise(maps, agreement.ssim, checkpoint))
    assert lag < MAX_LAG and calls < 2016


def test_degradation_checks_between_blurs():
    """About a thousand distinct blur strengths over a 512 x 512 image: one Gaussian filter each."""
    picture = np.random.default_rng(0).random((512, 512, 3), dtype=np.float32)
    y, x = np.mgrid[:512, :512]
    attribution = np.sin(x / 40.0) * np.cos(y / 55.0) + x / 512.0
    lag, calls = loop_lag(lambda checkpoint: degrade(picture, attribution, "background", checkpoint=checkpoint))
    assert lag < MAX_LAG and calls < 900


def test_bicubic_maps_check_between_classes():
    indices = np.random.default_rng(0).random((3000, 8, 8))
    lag, calls = loop_lag(lambda checkpoint: upsample_bicubic(indices, (512, 512), checkpoint))
    assert lag < MAX_LAG and calls < 3000


def test_kendall_matrix_is_scipys_tau_b_for_every_pair():
    """Ground truth for the one product that replaced 90,000 scipy calls: ties and constant rows included."""
    rng = np.random.default_rng(3)
    for settings in (2, 3, 7):
        scores = rng.integers(0, 3, size=(9, settings)).astype(np.float64)
        scores[0] = 1.0  # constant: NaN, as scipy
        expected = np.array([[stats.kendalltau(a, b).statistic for b in scores] for a in scores])
        np.testing.assert_allclose(agreement.kendall_matrix(scores), expected, atol=1e-12, equal_nan=True)


# --- listing a dataset, building a mirror -------------------------------------------------------------------------


def endless(names: str):
    def rglob(self, pattern):
        i = 0
        while True:
            yield self / f"{i}.{names}"
            i += 1
    return rglob


def test_listing_a_huge_folder_checks_the_deadline(tmp_path, monkeypatch):
    monkeypatch.setattr(pathlib.Path, "rglob", endless("txt"))  # entries without end, none an image
    lag, _ = loop_lag(lambda checkpoint: datasets.load_dataset(tmp_path, checkpoint=checkpoint))
    assert lag < MAX_LAG


def test_listing_is_bounded_in_items_and_entries(tmp_path, monkeypatch):
    monkeypatch.setattr(pathlib.Path, "rglob", endless("png"))
    with pytest.raises(ResourceExhausted, match=f"over {datasets.MAX_ITEMS} images"):
        datasets.load_dataset(tmp_path)
    monkeypatch.setattr(datasets, "MAX_ENTRIES", 5000)
    monkeypatch.setattr(pathlib.Path, "rglob", endless("txt"))
    with pytest.raises(ResourceExhausted, match="over 5000 entries"):
        datasets.load_dataset(tmp_path)


@pytest.mark.parametrize("manifest, words", [({"samples": [1]}, "samples[0] is int"), ([1], '"samples" is a list'),
                                             ({"samples": {"image": "a.png"}}, '"samples" is a list'),
                                             ({"samples": [{"image": "a.png", "mask": 3}]}, "mask must be a path")])
def test_a_malformed_samples_manifest_names_what_is_wrong(tmp_path, manifest, words):
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InvalidArgument, match=words.replace("[", r"\[").replace("]", r"\]")) as caught:
        datasets.load_dataset(tmp_path / "manifest.json", root=tmp_path)
    assert caught.value.field == "dataset"


def test_waiting_for_another_jobs_mirror_build_checks_the_deadline():
    from service.verify import mirror

    class Model:  # what mirror_for keys its lock by: the build itself is never reached
        pass

    model = Model()
    with mirror._locks_guard:
        lock = mirror._locks.setdefault(model, threading.Lock())
    with lock:  # another job is building this model's mirror
        lag, calls = loop_lag(lambda checkpoint: mirror.mirror_for(model, checkpoint))
    assert lag < MAX_LAG and calls >= 1 and mirror.cached_mirror(model) is None


def test_a_crown_bound_stops_inside_auto_lirpas_call():
    """One CROWN call on the shapes CNN takes seconds (7 s a region on 2 cores): the deadline stops it between
    auto_LiRPA's backward walks, not at the end of the call. The mirror is built first, outside the clock."""
    from conftest import MODELS

    from service.runtime.repository import ModelRepository
    from service.verify.mirror import mirror_for

    model = ModelRepository(MODELS).load_path("shapes")
    mirror_for(model)
    eva = get_method("eva")
    image = np.random.default_rng(0).random(model.info.image_shape, dtype=np.float32)
    job = ExplainJob(method=eva, params=eva.make_params({"bound_method": "crown", "grid_size": 4,
                                                         "epsilon": 0.01}), image=image)
    lag = time_to_idle(lambda control: run_explain(model, job, control))
    assert lag < MAX_LAG, lag


def test_kernel_shaps_coalition_draw_takes_the_checkpoint():
    """Sorting 100,000 x 1,000 random keys takes seconds before the first forward pass."""
    lag, calls = loop_lag(lambda checkpoint: kernel_shap.sample_coalitions(
        400_000, 1000, np.random.default_rng(0), checkpoint))
    assert lag < MAX_LAG and calls > 1, (lag, calls)


def test_a_job_waiting_for_another_jobs_bounds_stops_at_its_deadline():
    """Bounds of one model are computed one call at a time (the mirror's lock): a job waiting its turn behind a
    long CROWN call still stops at its own deadline."""
    from conftest import MODELS

    from service.runtime.repository import ModelRepository
    from service.verify.mirror import mirror_for

    model = ModelRepository(MODELS).load_path("shapes")
    mirror = mirror_for(model)
    eva = get_method("eva")
    image = np.random.default_rng(0).random(model.info.image_shape, dtype=np.float32)
    job = ExplainJob(method=eva, params=eva.make_params({"bound_method": "ibp", "grid_size": 4, "epsilon": 0.01}),
                     image=image)
    with mirror.lock:  # another job's bound computation, for longer than the deadline
        lag = time_to_idle(lambda control: run_explain(model, job, control))
    assert lag < MAX_LAG, lag
