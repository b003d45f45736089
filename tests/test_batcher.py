"""Dynamic batching across jobs (service.runtime.batcher): every job gets exactly its own rows, calls really merge,
a lone job never waits, a small job is not starved by a large one, a cancelled job leaves at once without stopping
the others, a failing merged call fails only the job that broke it, accounting sums, config errors name the field,
and unloading ends the worker thread.

Call-structure tests drive a ``Batcher`` over a fake session call that records each call and can be held at a
gate, so that which calls merge is decided, not raced; the rest run the bundled ``shapes`` model."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from onnx_builders import image_classifier
from test_telemetry import free_port, scrape

from service.errors import Cancelled, FailedPrecondition, InvalidArgument
from service.jobs.control import JobControl
from service.jobs.counting import CountingPredict
from service.runtime import batcher as batcher_module
from service.runtime.batcher import Batcher, BatchingSettings, SessionMeter, meter
from service.runtime.loader import load_model
from service.runtime.model_config import ModelConfig
from service.runtime.repository import ModelRepository
from service.runtime.scores import ScoreSpace

MODELS = Path(__file__).resolve().parent.parent / "models"
SHAPES = MODELS / "shapes" / "model.onnx"
LONG_DELAY_MS = 60_000  # a delay no test could sit out: a call that waited for it would time the test out
CANCEL_BOUND_S = 1.0  # the contract: a cancelled caller returns within a second


class FakeSession:
    """A session call that doubles its input, records each call's rows (the first pixel of each row tags it),
    can be held at a gate, and fails on any row tagged negative."""

    def __init__(self) -> None:
        self.calls: list[list[float]] = []
        self.gate = threading.Event()  # what the first call waits for
        self.gate.set()
        self.second_gate = threading.Event()  # what the second call waits for
        self.second_gate.set()
        self.entered = threading.Event()
        self.second_entered = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, names, feed, run_options):
        values = feed["x"]
        with self.lock:
            self.calls.append([float(v) for v in values[:, 0]])
            index = len(self.calls) - 1
        gate = self.second_gate if index == 1 else self.gate
        (self.second_entered if index == 1 else self.entered).set()
        while not gate.wait(0.01):
            if run_options is not None and run_options.terminate:
                raise RuntimeError("terminated")
        if (values[:, 0] < 0).any():
            raise RuntimeError("a negative tag breaks this model")
        return [values * 2.0]


def tagged(tag: float, rows: int) -> dict:
    """A feed of ``rows`` rows, each row's first value ``tag`` + its index / 1000 (so rows are traceable)."""
    values = np.zeros((rows, 3), np.float32)
    values[:, 0] = tag + np.arange(rows) / 1000.0
    values[:, 1:] = np.arange(rows)[:, None]
    return {"x": values}


def call_in_thread(batcher: Batcher, feed: dict, run_options: ort.RunOptions | None = None):
    """Start ``batcher.run`` in a thread; returns (thread, outcome dict with 'value' or 'error')."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = batcher.run(["y"], feed, run_options)
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcome["error"] = error

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


def wait_queued(batcher: Batcher, rows: int) -> None:
    """Until ``rows`` rows wait in the batcher's queues (the worker is held at the gate meanwhile)."""
    for _ in range(500):
        with batcher._cond:
            if sum(r.rows - r.next_row for q in batcher._queues.values() for r in q) >= rows:
                return
        threading.Event().wait(0.01)
    raise AssertionError("the calls never queued")


@pytest.fixture
def fake():
    return FakeSession()


def make_batcher(fake: FakeSession, preferred: int = 8, delay_ms: float = 100) -> Batcher:
    """A call that is not full waits up to ``delay_ms`` while another job submitted within the batcher's
    ACTIVE_WINDOW_S: in these tests, the jobs that just finished."""
    return Batcher("fake", fake, preferred_batch_size=preferred, max_queue_delay_ms=delay_ms)


# --- call structure ------------------------------------------------------------------------------------------------

def test_a_lone_job_never_waits_for_the_delay(fake):
    """A lone job's partial chunks run at once, one call each, although the delay is a minute."""
    batcher = make_batcher(fake, preferred=8, delay_ms=LONG_DELAY_MS)
    job = ort.RunOptions()
    for index, rows in enumerate((3, 5, 1)):
        thread, outcome = call_in_thread(batcher, tagged(index, rows), job)
        thread.join(timeout=10)
        assert not thread.is_alive()
        np.testing.assert_array_equal(outcome["value"][0], tagged(index, rows)["x"] * 2.0)
    assert [len(call) for call in fake.calls] == [3, 5, 1]
    batcher.stop()
    assert batcher.join(5)


def test_concurrent_jobs_merge_and_a_full_batch_goes_at_once(fake):
    """Three jobs' calls (4, 4 and 8 rows) queued behind a held call merge into two full calls of the preferred
    size, which go at once although the delay is a minute and the first job may still send work."""
    batcher = make_batcher(fake, preferred=8, delay_ms=LONG_DELAY_MS)
    fake.gate.clear()
    first, first_outcome = call_in_thread(batcher, tagged(100, 2), ort.RunOptions())
    assert fake.entered.wait(5)
    jobs = [call_in_thread(batcher, tagged(tag, rows), ort.RunOptions()) for tag, rows in ((1, 4), (2, 4), (3, 8))]
    wait_queued(batcher, 16)
    fake.gate.set()
    for thread, _ in [(first, first_outcome), *jobs]:
        thread.join(timeout=10)
        assert not thread.is_alive()
    for (tag, rows), (_, outcome) in zip(((1, 4), (2, 4), (3, 8)), jobs):
        np.testing.assert_array_equal(outcome["value"][0], tagged(tag, rows)["x"] * 2.0)
    # The held call, then two full merged calls filled round-robin: 3 + 3 + 2 rows, then the 1 + 1 + 6 left.
    assert [len(call) for call in fake.calls] == [2, 8, 8]
    assert sorted(int(tag) for tag in fake.calls[1]) == [1, 1, 1, 2, 2, 2, 3, 3]
    assert sorted(int(tag) for tag in fake.calls[2]) == [1, 2, 3, 3, 3, 3, 3, 3]
    stats = batcher.stats.snapshot()
    assert (stats.executions, stats.images, stats.queued) == (3, 18, 4)
    batcher.stop()


def test_a_small_job_is_not_starved_by_a_large_one(fake):
    """A 64-row call and a 4-row call share each merged call: the small job finishes in the first call it is
    queued for, while the large one still has most of its rows to run (its last, partial call waits up to the
    delay for the jobs that just finished)."""
    batcher = make_batcher(fake, preferred=8)
    fake.gate.clear()
    blocker, _ = call_in_thread(batcher, tagged(100, 1), ort.RunOptions())
    assert fake.entered.wait(5)
    large, large_outcome = call_in_thread(batcher, tagged(1, 64), ort.RunOptions())
    wait_queued(batcher, 64)
    small, small_outcome = call_in_thread(batcher, tagged(2, 4), ort.RunOptions())
    wait_queued(batcher, 68)
    fake.gate.set()
    for thread in (blocker, large, small):
        thread.join(timeout=10)
    # The small job's four rows ride in the first merged call, beside four of the large job's.
    assert sorted(int(tag) for tag in fake.calls[1]) == [1, 1, 1, 1, 2, 2, 2, 2]
    assert all(int(tag) == 1 for call in fake.calls[2:] for tag in call)
    np.testing.assert_array_equal(large_outcome["value"][0], tagged(1, 64)["x"] * 2.0)
    np.testing.assert_array_equal(small_outcome["value"][0], tagged(2, 4)["x"] * 2.0)
    batcher.stop()


def test_calls_of_another_shape_do_not_merge(fake):
    batcher = make_batcher(fake, preferred=8)
    fake.gate.clear()
    blocker, _ = call_in_thread(batcher, tagged(100, 1), ort.RunOptions())
    assert fake.entered.wait(5)
    wide = {"x": np.concatenate([tagged(1, 2)["x"], np.ones((2, 2), np.float32)], axis=1)}
    jobs = [call_in_thread(batcher, tagged(2, 2), ort.RunOptions()), call_in_thread(batcher, wide, ort.RunOptions())]
    wait_queued(batcher, 4)
    fake.gate.set()
    for thread, _ in jobs:
        thread.join(timeout=10)
    np.testing.assert_array_equal(jobs[1][1]["value"][0], wide["x"] * 2.0)
    assert sorted(len(call) for call in fake.calls[1:]) == [2, 2]
    batcher.stop()


# --- cancellation and errors ---------------------------------------------------------------------------------------

def test_a_cancelled_job_returns_at_once_and_the_merged_call_finishes_for_the_other(fake):
    batcher = make_batcher(fake, preferred=8)
    fake.gate.clear()
    blocker, _ = call_in_thread(batcher, tagged(100, 1), ort.RunOptions())
    assert fake.entered.wait(5)
    leaving, staying = ort.RunOptions(), ort.RunOptions()
    left, left_outcome = call_in_thread(batcher, tagged(1, 3), leaving)
    kept, kept_outcome = call_in_thread(batcher, tagged(2, 3), staying)
    wait_queued(batcher, 6)
    fake.second_gate.clear()  # hold the merged call in flight
    fake.gate.set()
    assert fake.second_entered.wait(5)
    assert sorted(int(tag) for tag in fake.calls[-1]) == [1, 1, 1, 2, 2, 2]
    leaving.terminate = True
    left.join(timeout=CANCEL_BOUND_S)
    assert not left.is_alive()
    assert isinstance(left_outcome["error"], Cancelled)
    assert not batcher._in_flight.run_options.terminate  # the other job still needs it
    fake.second_gate.set()
    kept.join(timeout=10)
    np.testing.assert_array_equal(kept_outcome["value"][0], tagged(2, 3)["x"] * 2.0)
    batcher.stop()


def test_a_call_in_flight_is_terminated_when_every_job_in_it_is_cancelled(fake):
    batcher = make_batcher(fake, preferred=8)
    fake.gate.clear()
    job = ort.RunOptions()
    thread, outcome = call_in_thread(batcher, tagged(1, 2), job)
    assert fake.entered.wait(5)
    call = batcher._in_flight
    job.terminate = True
    thread.join(timeout=CANCEL_BOUND_S)
    assert isinstance(outcome["error"], Cancelled)
    assert call.run_options.terminate
    batcher.stop()
    assert batcher.join(5)  # the fake session saw the terminate and returned


def test_a_cancelled_jobs_queued_work_is_dropped(fake):
    batcher = make_batcher(fake, preferred=8)
    fake.gate.clear()
    blocker, _ = call_in_thread(batcher, tagged(100, 1), ort.RunOptions())
    assert fake.entered.wait(5)
    job = ort.RunOptions()
    thread, outcome = call_in_thread(batcher, tagged(1, 5), job)
    wait_queued(batcher, 5)
    job.terminate = True
    thread.join(timeout=CANCEL_BOUND_S)
    assert isinstance(outcome["error"], Cancelled)
    fake.gate.set()
    blocker.join(timeout=10)
    batcher.stop()
    assert batcher.join(5)
    assert [len(call) for call in fake.calls] == [1]  # the cancelled job's rows never ran


def test_a_failing_merged_call_fails_only_the_job_that_broke_it(fake):
    batcher = make_batcher(fake, preferred=8)
    fake.gate.clear()
    blocker, _ = call_in_thread(batcher, tagged(100, 1), ort.RunOptions())
    assert fake.entered.wait(5)
    bad, bad_outcome = call_in_thread(batcher, tagged(-5, 2), ort.RunOptions())
    good, good_outcome = call_in_thread(batcher, tagged(3, 3), ort.RunOptions())
    wait_queued(batcher, 5)
    fake.gate.set()
    for thread in (bad, good):
        thread.join(timeout=10)
    assert isinstance(bad_outcome["error"], RuntimeError)
    np.testing.assert_array_equal(good_outcome["value"][0], tagged(3, 3)["x"] * 2.0)
    # The merged call failed; each part then ran alone.
    assert [len(call) for call in fake.calls] == [1, 5, 2, 3]
    batcher.stop()


# --- a real model ------------------------------------------------------------------------------------------------

def load_shapes(batching: bool, **config):
    overrides = {"dynamic_batching": {"enabled": batching, **config}}
    return load_model("shapes", SHAPES.read_bytes(), source="test", model_path=SHAPES, overrides=overrides)


@pytest.fixture(scope="module")
def shapes_pair():
    alone, batched = load_shapes(False), load_shapes(True, max_queue_delay_ms=5)
    yield alone, batched
    batched.close()


def run_jobs(model, batches: list[np.ndarray], batch_size: int) -> list[CountingPredict]:
    """One CountingPredict job per thread, all at once; each scores its images in chunks of ``batch_size``."""
    counters = [CountingPredict(model, JobControl(), total=len(b), score_space=ScoreSpace.RAW,
                                batch_size=batch_size, method="test") for b in batches]
    results: list = [None] * len(batches)

    def work(index: int) -> None:
        results[index] = counters[index].all_classes(batches[index])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for counter, result in zip(counters, results):
        counter.result = result
    return counters


def test_concurrent_jobs_get_exactly_their_own_scores_with_fewer_calls_and_exact_accounting(shapes_pair):
    alone, batched = shapes_pair
    rng = np.random.default_rng(0)
    batches = [rng.random((int(rows), 64, 64, 3), dtype=np.float32) for rows in rng.integers(9, 30, size=8)]
    expected = [alone.predict(b, batch_size=4) for b in batches]
    before = batched.batch_stats.snapshot()
    counters = run_jobs(batched, batches, batch_size=4)
    after = batched.batch_stats.snapshot()
    for counter, want, images in zip(counters, expected, batches):
        np.testing.assert_array_equal(counter.result, want)
        assert counter.passes == len(images)  # each job's own images, however merged
    chunks = sum(-(-len(b) // 4) for b in batches)
    executions = after.executions - before.executions
    assert after.images - before.images == sum(len(b) for b in batches)
    assert executions < chunks  # calls merged across jobs
    # Each merged call's session time is shared among its jobs by images: the shares sum to the session's time.
    assert sum(c.model_ms for c in counters) == pytest.approx(
        (after.session_seconds - before.session_seconds) * 1000.0, rel=1e-9)
    assert after.queued - before.queued == chunks


def test_a_job_alone_charges_its_whole_session_time():
    model = load_shapes(False)
    pixels = np.random.default_rng(1).random((5, 64, 64, 3), dtype=np.float32)
    before = model.batch_stats.snapshot()  # the load's probe calls
    session = SessionMeter()
    token = meter.set(session)
    try:
        model.predict(pixels, batch_size=2)
    finally:
        meter.reset(token)
    after = model.batch_stats.snapshot()
    assert (after.executions - before.executions, after.images - before.images) == (3, 5)
    assert session.seconds > 0
    assert session.seconds == pytest.approx(after.session_seconds - before.session_seconds, rel=1e-9)
    assert after.queued == 0  # no batcher: nothing waits


def test_a_cancelled_model_job_stops_within_a_second_while_the_other_completes(shapes_pair):
    """Through the real model and JobControl: the cancelled job's caller raises Cancelled at once; the other
    job's scores are exact."""
    alone, batched = shapes_pair
    rng = np.random.default_rng(2)
    staying_images = rng.random((200, 64, 64, 3), dtype=np.float32)
    leaving_images = rng.random((4000, 64, 64, 3), dtype=np.float32)
    leaving_control = JobControl()
    leaving = CountingPredict(batched, leaving_control, total=4000, score_space=ScoreSpace.RAW, batch_size=4,
                              method="test")
    staying = CountingPredict(batched, JobControl(), total=200, score_space=ScoreSpace.RAW, batch_size=4,
                              method="test")
    outcome: dict = {}

    def leave() -> None:
        try:
            leaving.all_classes(leaving_images)
        except Cancelled as error:
            outcome["error"] = error

    def stay() -> None:
        outcome["scores"] = staying.all_classes(staying_images)

    threads = [threading.Thread(target=leave), threading.Thread(target=stay)]
    for thread in threads:
        thread.start()
    threading.Event().wait(0.2)
    leaving_control.cancel()
    threads[0].join(timeout=CANCEL_BOUND_S)
    assert not threads[0].is_alive()
    assert isinstance(outcome["error"], Cancelled)
    threads[1].join(timeout=60)
    np.testing.assert_array_equal(outcome["scores"], alone.predict(staying_images, batch_size=4))


def test_a_failing_job_gets_its_own_failed_precondition(shapes_pair):
    """A session call that fails on one job's images (here: any all-black image) fails that job alone."""
    alone, _ = shapes_pair
    model = load_shapes(False)

    def fussy(names, feed, run_options):
        values = next(iter(feed.values()))
        if (values.reshape(len(values), -1).max(axis=1) == values.reshape(len(values), -1).min(axis=1)).any():
            raise RuntimeError("constant image")
        return model._run_feed(names, feed, run_options)

    model.batcher = Batcher("shapes", fussy, preferred_batch_size=32, max_queue_delay_ms=50,
                            capacity=model.input_capacity, stats=model.batch_stats)
    rng = np.random.default_rng(3)
    good = [rng.random((40, 64, 64, 3), dtype=np.float32) for _ in range(3)]
    bad = rng.random((40, 64, 64, 3), dtype=np.float32)
    bad[17] = 0.0
    outcome: dict = {}

    def work(name: str, images: np.ndarray) -> None:
        try:
            outcome[name] = model.predict(images, batch_size=4, run_options=ort.RunOptions())
        except FailedPrecondition as error:
            outcome[name] = error

    threads = [threading.Thread(target=work, args=(f"good{i}", g)) for i, g in enumerate(good)]
    threads.append(threading.Thread(target=work, args=("bad", bad)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert isinstance(outcome["bad"], FailedPrecondition) and "constant image" in str(outcome["bad"])
    for index, images in enumerate(good):
        np.testing.assert_array_equal(outcome[f"good{index}"], alone.predict(images, batch_size=4))
    model.close()


# --- configuration and lifecycle ---------------------------------------------------------------------------------

@pytest.mark.parametrize("value, field", [
    ({"preferred_batch_size": 0}, "overrides.dynamic_batching.preferred_batch_size"),
    ({"preferred_batch_size": True}, "overrides.dynamic_batching.preferred_batch_size"),
    ({"max_queue_delay_ms": -1}, "overrides.dynamic_batching.max_queue_delay_ms"),
    ({"max_queue_delay_ms": 5000}, "overrides.dynamic_batching.max_queue_delay_ms"),
    ({"enabled": "yes"}, "overrides.dynamic_batching.enabled"),
    ({"max_delay": 1}, "overrides.dynamic_batching"),
    ("on", "overrides.dynamic_batching"),
])
def test_bad_batching_configuration_names_the_field(value, field):
    with pytest.raises(InvalidArgument) as caught:
        ModelConfig().merge({"dynamic_batching": value}, "overrides", "overrides")
    assert caught.value.field == field


def test_a_preferred_batch_over_the_models_batch_is_refused_at_load():
    with pytest.raises(InvalidArgument) as caught:
        load_model("shapes", SHAPES.read_bytes(), source="test", model_path=SHAPES,
                   overrides={"batch_size": 8, "dynamic_batching": {"preferred_batch_size": 16}})
    assert caught.value.field == "overrides.dynamic_batching.preferred_batch_size"


def test_configuration_and_server_default_decide_and_a_fixed_batch_is_never_batched():
    on = BatchingSettings(enabled=True, max_queue_delay_ms=7.0)
    model = load_model("shapes", SHAPES.read_bytes(), source="test", model_path=SHAPES, batching=on)
    assert (model.batcher.preferred_batch_size, model.batcher.max_queue_delay_s) == (model.info.max_batch, 0.007)
    model.close()
    off = BatchingSettings(enabled=False)
    configured = load_model("shapes", SHAPES.read_bytes(), source="test", model_path=SHAPES, batching=off,
                            overrides={"dynamic_batching": {"preferred_batch_size": 4}})
    assert configured.batcher.preferred_batch_size == 4  # an object turns it on over a server default of off
    assert load_model("shapes", SHAPES.read_bytes(), source="test", model_path=SHAPES, batching=off).batcher is None
    assert load_model("shapes", SHAPES.read_bytes(), source="test", model_path=SHAPES, batching=on,
                      overrides={"dynamic_batching": False}).batcher is None
    default = load_model("shapes", SHAPES.read_bytes(), source="test", model_path=SHAPES)
    assert (default.batcher.preferred_batch_size, default.batcher.max_queue_delay_s) == (32, 0.002)
    weights = np.random.default_rng(0).standard_normal((8 * 8 * 3, 4)).astype(np.float32)
    fixed = image_classifier(weights, (8, 8, 3), batch=4).SerializeToString()
    assert load_model("fixed", fixed, source="test", batching=on).batcher is None


def test_unloading_ends_the_worker_thread(tmp_path):
    (tmp_path / "shapes").mkdir()
    (tmp_path / "shapes" / "model.onnx").write_bytes(SHAPES.read_bytes())
    repository = ModelRepository(tmp_path, batching=BatchingSettings(enabled=True))
    pixels = np.random.default_rng(4).random((3, 64, 64, 3), dtype=np.float32)
    first = repository.load_path("shapes", name="unloaded")
    expected = first.predict(pixels)
    assert first.batcher.running  # started by the call, idle until IDLE_EXIT_S
    second = repository.load_path("shapes", name="unloaded", replace=True)  # the replaced model's worker ends
    assert first.batcher.join(5)
    np.testing.assert_array_equal(second.predict(pixels), expected)
    assert second.batcher.running
    repository.unload("unloaded")
    assert second.batcher.join(5)
    assert not any(t.name == "onnxplain-batcher-unloaded" for t in threading.enumerate())
    # A job still holding the unloaded model finishes unbatched.
    np.testing.assert_array_equal(second.predict(pixels), expected)
    assert not second.batcher.running


def test_unloading_does_not_wait_for_a_call_in_flight(fake, tmp_path):
    """UnloadModel runs on the event loop: stopping a batcher whose call is still running returns at once, the
    call finishes for its job, and then the worker ends."""
    (tmp_path / "held.onnx").write_bytes(SHAPES.read_bytes())
    repository = ModelRepository(tmp_path)
    model = repository.load_path("held.onnx")
    model.batcher = make_batcher(fake)
    fake.gate.clear()
    thread, outcome = call_in_thread(model.batcher, tagged(1, 3), ort.RunOptions())
    assert fake.entered.wait(5)
    unloading = threading.Thread(target=repository.unload, args=("held",))
    unloading.start()
    unloading.join(timeout=CANCEL_BOUND_S)
    assert not unloading.is_alive()
    assert model.batcher.running  # still running the held call
    fake.gate.set()
    thread.join(timeout=10)
    np.testing.assert_array_equal(outcome["value"][0], tagged(1, 3)["x"] * 2.0)
    assert model.batcher.join(5)


def test_an_idle_worker_ends_and_the_next_call_starts_another(fake, monkeypatch):
    monkeypatch.setattr(batcher_module, "IDLE_EXIT_S", 0.05)
    batcher = make_batcher(fake)
    assert not batcher.running  # no thread before the first call
    for tag in (1, 2):
        np.testing.assert_array_equal(batcher.run(["y"], tagged(tag, 2), ort.RunOptions())[0],
                                      tagged(tag, 2)["x"] * 2.0)
        assert batcher.join(5)  # ended on its own, without stop


def test_model_statistics_report_session_calls_images_and_batcher_waits(tmp_path):
    """GetModelStatistics: execution_count and inference_count count the model's session calls and their images
    since its load (the load's two probe calls of 3 images included); batch_queue the calls that went through its
    batcher."""
    from onnxplain_client import OnnxplainClient

    from service.api.server import EmbeddedServer
    from service.config import Settings

    (tmp_path / "shapes").mkdir()
    (tmp_path / "shapes" / "model.onnx").write_bytes(SHAPES.read_bytes())
    image = MODELS / "shapes" / "samples" / "sample_00.png"
    port = free_port()
    settings = Settings(models_dir=tmp_path, preload=False, dynamic_batching=True, metrics_port=port)
    with EmbeddedServer(settings) as address, OnnxplainClient(address) as client:
        client.load_model("shapes", name="served")
        client.predict("served", [image, image, image])
        explanation = client.explain("served", image, "occlusion", {"window": [32], "stride": [32]}, seed=0,
                                     batch_size=2)
        (statistics,) = client.get_model_statistics("served")
        samples = scrape(port)
    # Shutdown stopped the model's batcher: its worker ends at once (nothing is queued), before its idle exit.
    workers = [t for t in threading.enumerate() if t.name == "onnxplain-batcher-served"]
    for worker in workers:
        worker.join(timeout=batcher_module.IDLE_EXIT_S / 2)
    assert not any(worker.is_alive() for worker in workers)
    # The metrics endpoint reads the same counters.
    model = frozenset({"model": "served"}.items())
    assert samples[("onnxplain_session_calls_total", model)] == statistics.execution_count
    assert samples[("onnxplain_session_images_total", model)] == statistics.inference_count
    assert samples[("onnxplain_batch_queue_seconds_total", model)] * 1000.0 == pytest.approx(
        statistics.batch_queue.total_ms)
    passes = 3 + explanation.forward_passes
    assert statistics.forward_passes == passes
    assert statistics.inference_count == 3 + passes
    # Alone on the server, every call after the probes went through the batcher unmerged and unsplit: one
    # predict call, then the explanation's calls of at most two images.
    assert statistics.batch_queue.count == statistics.execution_count - 2
    assert statistics.execution_count >= 2 + 1 + -(-explanation.forward_passes // 2)
    assert statistics.batch_queue.total_ms >= 0


def test_load_model_overrides_and_the_command_line_carry_the_batching_keys():
    from google.protobuf import json_format
    from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

    from service.api.requests import overrides
    from service.cli.overrides import parse_overrides, to_model_overrides

    message = ms.ModelOverrides(dynamic_batching=ms.DynamicBatching(preferred_batch_size=4, max_queue_delay_ms=3))
    assert overrides(message) == {"dynamic_batching": {"preferred_batch_size": 4, "max_queue_delay_ms": 3.0}}
    assert overrides(ms.ModelOverrides(dynamic_batching=ms.DynamicBatching(enabled=False))) == {
        "dynamic_batching": {"enabled": False}}
    spec = parse_overrides(["dynamic_batching.enabled=true", "dynamic_batching.preferred_batch_size=8"])
    assert spec == {"dynamic_batching": {"enabled": True, "preferred_batch_size": 8}}
    assert overrides(json_format.ParseDict(to_model_overrides(spec), ms.ModelOverrides())) == spec
    with pytest.raises(InvalidArgument) as caught:
        parse_overrides(["dynamic_batching.max_queue_delay_ms=-1"])
    assert caught.value.field == "--set dynamic_batching.max_queue_delay_ms"
