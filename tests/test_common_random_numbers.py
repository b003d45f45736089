"""Common random numbers and the one explain pipeline (issue 12): the draws of an explanation depend on its seed
and method only, so settings compared under one seed differ by the setting, not by the sampler; Consistency
and AnalyzeScales make exactly Explain's maps; audits measure an image exactly as the Measure job does.

The perturbed images a method sends to the model are recorded where they enter onnxruntime
(``LoadedModel.outputs``). On a uniform grey image g, a perturbation with a constant baseline b is
x = keep * g + (1 - keep) * b, so keep = (x - b) / (g - b): the masks a method drew are read back from what
the model saw, under any two constant baselines.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import MODELS, load_samples

from service.audit.dataset import Item
from service.audit.engine import AuditPlan, Task, Worker
from service.explainers import get_method
from service.explainers.baselines import Baseline, BaselineKind
from service.jobs.consistency import ConsistencyJob, Setting, run_consistency
from service.jobs.control import JobControl
from service.jobs.evaluate import EvaluateJob, MetricRequest, run_evaluate
from service.jobs.explain import ExplainJob, Targets, run_explain
from service.jobs.measure import MeasureJob, run_measure
from service.jobs.scales import ScaleJob, Variant, run_scales
from service.measures.degradation import degrade
from service.metrics import get_metric
from service.runtime.repository import ModelRepository
from service.runtime.scores import ScoreSpace

GREY = 0.5
MASKS = 48
MU_SAMPLES = 12


@pytest.fixture(scope="module")
def model():
    return ModelRepository(MODELS).load_path("shapes")


def recorded(model, monkeypatch) -> list[np.ndarray]:
    """Every batch ``model`` runs from now on, in order (the pixels as the job sent them)."""
    batches = []
    real = model.outputs

    def recording(pixels, **kwargs):
        batches.append(np.array(pixels, copy=True))
        return real(pixels, **kwargs)

    monkeypatch.setattr(model, "outputs", recording, raising=False)
    return batches


@pytest.fixture
def seen(model, monkeypatch):
    return recorded(model, monkeypatch)


def whole_cap(method_name: str, values: dict):
    """A randomized method's parameters that use their whole sample count: with a target reliability the
    number of rounds would depend on the maps, and the masks of two settings would share a prefix only."""
    method = get_method(method_name)
    names = {f.name for f in dataclasses.fields(method.make_params({}))}
    return method, method.make_params({**values, **({"target_reliability": 0.0} if "target_reliability" in names
                                                    else {})})


def keeps(images: np.ndarray, fill: float) -> np.ndarray:
    """The keep masks (N, H, W) of perturbations of the grey image with a constant ``fill``."""
    return ((images - fill) / (GREY - fill)).mean(axis=-1)


def grey(model) -> np.ndarray:
    return np.full(model.info.image_shape, GREY, np.float32)


def test_two_consistency_settings_that_differ_only_in_baseline_perturb_with_the_same_masks(model, seen):
    """Black and white baselines, RISE: the masks read back from the two settings' perturbed images are the
    same masks; so are mu-fidelity's removed subsets under the two metric baselines and for the two maps."""
    rise, params = whole_cap("rise", {"num_masks": MASKS, "grid_size": 4})
    mu = get_metric("mu_fidelity")
    settings = (Setting("black", rise, params, Baseline(BaselineKind.BLACK)),
                Setting("white", rise, params, Baseline(BaselineKind.WHITE)))
    result = run_consistency(model, ConsistencyJob(
        grey(model), settings, MetricRequest(mu, mu.make_params({"num_samples": MU_SAMPLES})),
        metric_baselines=(Baseline(BaselineKind.BLACK), Baseline(BaselineKind.WHITE)), class_index=1, seed=11))
    images = np.concatenate(seen)
    # The clean image; per setting its pure baseline and its masks; then per metric baseline, per map, the
    # clean image and the subsets.
    assert len(images) == result.forward_passes == 1 + 2 * (1 + MASKS) + 2 * 2 * (MU_SAMPLES + 1)
    black = keeps(images[2:2 + MASKS], 0.0)
    white = keeps(images[3 + MASKS:3 + 2 * MASKS], 1.0)
    assert np.ptp(black) > 0.5  # soft masks that do vary
    np.testing.assert_allclose(black, white, atol=2e-6)
    assert not np.allclose(result.maps[0], result.maps[1])  # the baseline matters: the maps are not copies

    scored = images[3 + 2 * MASKS:].reshape(2, 2, MU_SAMPLES + 1, *images.shape[1:])  # (baseline, map, ...)
    subsets = [[keeps(scored[b, s, 1:], float(b)) for s in range(2)] for b in range(2)]
    assert set(np.unique(np.round(subsets[0][0], 5))) == {0.0, 1.0}  # cells removed whole
    for b in range(2):
        for s in range(2):
            np.testing.assert_allclose(subsets[b][s], subsets[0][0], atol=2e-6)


def test_explain_draws_the_same_masks_whatever_the_baseline_the_metrics_or_the_image(model, seen):
    """Measure explains a noisy or transformed image with the clean one's seed: the same masks."""
    rise, params = whole_cap("rise", {"num_masks": MASKS, "grid_size": 4})
    mu = get_metric("mu_fidelity")
    run_explain(model, ExplainJob(rise, params, grey(model), Targets((0,)), Baseline(BaselineKind.BLACK), seed=5))
    plain = keeps(np.concatenate(seen)[2:], 0.0)
    seen.clear()
    # A white baseline, a metric asked for, and the image shifted by a constant (perturbations of g + d with a
    # black fill give keep = x / (g + d)).
    shifted = grey(model) + np.float32(0.25)
    run_explain(model, ExplainJob(rise, params, shifted, Targets((0,)), Baseline(BaselineKind.BLACK), seed=5,
                                  metrics=(MetricRequest(mu, mu.make_params({"num_samples": MU_SAMPLES})),)))
    other = np.concatenate(seen)[2:2 + MASKS].mean(axis=-1) / (GREY + 0.25)
    np.testing.assert_allclose(other, plain, atol=2e-6)
    seen.clear()
    run_explain(model, ExplainJob(rise, params, grey(model), Targets((0,)), Baseline(BaselineKind.WHITE), seed=5))
    np.testing.assert_allclose(keeps(np.concatenate(seen)[2:], 1.0), plain, atol=2e-6)
    seen.clear()
    run_explain(model, ExplainJob(rise, params, grey(model), Targets((0,)), Baseline(BaselineKind.BLACK), seed=6))
    assert not np.allclose(keeps(np.concatenate(seen)[2:], 0.0), plain, atol=0.05)  # another seed, other masks


def test_measure_explains_every_transformed_image_with_the_clean_ones_masks(model, seen):
    """The grey image is its own flip, shift and quarter turn: Measure's 12 transformed explanations perturb
    it with the clean explanation's masks, as one run_explain with the image's seed does."""
    rise, params = whole_cap("rise", {"num_masks": MASKS, "grid_size": 4})
    run_measure(model, MeasureJob((grey(model),), rise, params, measures=("transforms",), baseline=Baseline(
        BaselineKind.BLACK), seed=2))
    explanations = np.concatenate(seen).reshape(13, 2 + MASKS, *model.info.image_shape)  # clean, 12 transforms
    masks = keeps(explanations[:, 2:], 0.0)
    assert np.ptp(masks[0]) > 0.5
    for transformed in masks[1:]:
        np.testing.assert_allclose(transformed, masks[0], atol=2e-6)


def test_an_audit_explains_an_item_with_the_same_masks_on_every_model(model, seen, monkeypatch, tmp_path):
    """Two models audited on one grey item: the same RISE masks, from the item's seed (stability across models
    then compares the models' maps, not two samplers)."""
    from PIL import Image

    path = tmp_path / "grey.png"
    Image.fromarray(np.full(model.info.image_shape, 128, np.uint8)).save(path)
    other = ModelRepository(MODELS).load_path("shapes_run3")
    other_seen = recorded(other, monkeypatch)
    _, params = whole_cap("rise", {"num_masks": MASKS, "grid_size": 4})
    values = {f.name: getattr(params, f.name) for f in dataclasses.fields(params)}
    worker = Worker([model, other], AuditPlan.build([("rise", values)], [], seed=9))
    label = AuditPlan.label("rise", tuple(sorted(values.items())))
    for name in ("shapes", "shapes_run3"):
        worker.compute(Task(name, label, Item("grey.png", path)))
    # The default baseline is the dataset mean, a constant colour: keep = (x - m) / (g - m) on the channel where
    # g - m is largest (the others divide rounding errors by less).
    fill, level = model.info.preprocessing.dataset_mean_pixel(), np.float32(128 / 255)
    channel = int(np.argmax(np.abs(level - fill)))
    masks = [(np.concatenate(batches)[2:, ..., channel] - fill[channel]) / (level - fill[channel])
             for batches in (seen, other_seen)]
    assert masks[0].shape == (MASKS, *model.info.image_shape[:2]) and np.ptp(masks[0]) > 0.5
    np.testing.assert_allclose(masks[1], masks[0], atol=1e-5)


def test_consistency_makes_exactly_explains_maps_and_scores_them_as_evaluate_does(model):
    """A randomized method under a noise baseline, and a deterministic one: each setting's map is Explain's
    with the job's seed (masks, noise and the baseline report included), and each score is Evaluate's with
    that seed and the metric baseline."""
    image = model.fit_image(load_samples("shapes")[0]["pixels"])
    rise, rise_params = whole_cap("rise", {"num_masks": MASKS, "grid_size": 4})
    occlusion = get_method("occlusion")
    mu = MetricRequest(get_metric("mu_fidelity"), get_metric("mu_fidelity").make_params({"num_samples": MU_SAMPLES}))
    settings = (Setting("rise noise", rise, rise_params, Baseline(BaselineKind.UNIFORM_NOISE)),
                Setting("rise mean", rise, rise_params, Baseline()),
                Setting("occlusion", occlusion, occlusion.make_params({"window": 16, "stride": 8}), Baseline()))
    metric_baselines = (Baseline(BaselineKind.UNIFORM_NOISE), Baseline(BaselineKind.BLUR))
    events = []
    control = JobControl(on_progress=lambda progress: events.append((progress.done, progress.total)))
    result = run_consistency(model, ConsistencyJob(image, settings, mu, metric_baselines, seed=21), control)
    assert events[-1] == (result.forward_passes, result.forward_passes) and all(d <= t for d, t in events)
    for setting, attribution, explanation in zip(settings, result.maps, result.explanations):
        alone = run_explain(model, ExplainJob(setting.method, setting.params, image, Targets((result.class_index,)),
                                              setting.baseline, seed=21))
        np.testing.assert_array_equal(attribution, alone.maps[0])
        assert explanation.baseline_scores == alone.baseline_scores
        assert explanation.forward_passes == alone.forward_passes - 1  # the clean pass is the job's, once
        for b, baseline in enumerate(metric_baselines):
            evaluated = run_evaluate(model, EvaluateJob(image, attribution, (mu,), result.class_index,
                                                        baseline=baseline, seed=21))
            assert result.scores[b, settings.index(setting)] == evaluated.scored[0].result.score
    assert result.forward_passes == 1 + sum(e.forward_passes for e in result.explanations) \
        + len(metric_baselines) * len(settings) * (MU_SAMPLES + 1)


def test_explains_inline_metrics_are_evaluate_with_the_explanations_seed(model):
    """RISE under a noise baseline with mu-fidelity inline: Evaluate, given the map and the seed, scores it on
    the same noise and subsets."""
    image = model.fit_image(load_samples("shapes")[1]["pixels"])
    rise, params = whole_cap("rise", {"num_masks": MASKS, "grid_size": 4})
    mu = MetricRequest(get_metric("mu_fidelity"), get_metric("mu_fidelity").make_params({"num_samples": MU_SAMPLES}))
    noise = Baseline(BaselineKind.GAUSSIAN_NOISE, sigma=0.2)
    explained = run_explain(model, ExplainJob(rise, params, image, baseline=noise, seed=8, metrics=(mu,)))
    evaluated = run_evaluate(model, EvaluateJob(image, explained.maps[0], (mu,), explained.targets[0].class_index,
                                                baseline=noise, seed=8))
    assert evaluated.scored[0].result.score == explained.metrics[0][0].result.score


def test_analyze_scales_makes_exactly_explains_wcam_maps_with_one_design(model):
    image = model.fit_image(load_samples("shapes")[2]["pixels"])
    wcam = get_method("wcam")
    params = wcam.make_params({"num_designs": 2})
    result = run_scales(model, ScaleJob(image, params, (Variant("clean"), Variant("zoom 2x", zoom=2.0)), seed=4))
    for row in result.rows:
        alone = run_explain(model, ExplainJob(wcam, params, row.image, Targets((result.class_index,)), seed=4))
        np.testing.assert_array_equal(row.map, alone.maps[0])
        assert row.details["level_importance"] == alone.details[0]["level_importance"]
    assert result.forward_passes == sum(1 + row.explanation.forward_passes for row in result.rows)


def test_an_audit_measures_degradation_as_the_measure_job_does_ssim_and_score_space_included(model, tmp_path):
    """One image, occlusion (deterministic, so the audit's and the job's seeds do not matter): the audit's
    degradation drops and SSIMs are the Measure job's, in the explanation's space (logits)."""
    sample = load_samples("shapes")[0]
    item = Item("sample_00", sample["path"])
    occlusion = get_method("occlusion")
    window = {"window": 16, "stride": 8}
    plan = AuditPlan.build([("occlusion", window)], [], seed=3, measures=["degradation", "entropy"])
    worker = Worker([model], plan)
    label = AuditPlan.label("occlusion", tuple(sorted(window.items())))
    details = worker.compute(Task(model.info.name, label, item))["details"]
    image = model.fit_image(sample["pixels"])
    measured = run_measure(model, MeasureJob((image,), occlusion, occlusion.make_params(window),
                                             measures=("degradation", "entropy"), seed=0)).values
    assert measured["degradation"]["background"]["score_drop"][0] != 0.0
    for mode in ("background", "object"):
        assert details[f"degradation_{mode}_drop"] == pytest.approx(measured["degradation"][mode]["score_drop"][0],
                                                                    abs=1e-6)
        assert details[f"degradation_{mode}_ssim"] == pytest.approx(measured["degradation"][mode]["ssim"][0],
                                                                    abs=1e-9)
    assert details["entropy_spatial"] == measured["entropy"]["spatial"][0]
    # The drop by hand, in logits: the explanation's space, not the metrics' probabilities.
    attribution = run_explain(model, ExplainJob(occlusion, occlusion.make_params(window), image, seed=0))
    target = attribution.targets[0].class_index
    degraded = degrade(image, attribution.maps[0], "object")
    logits = model.predict(np.stack([image, degraded]), score_space=ScoreSpace.LOGIT)[:, target]
    assert details["degradation_object_drop"] == pytest.approx(logits[0] - logits[1], abs=1e-5)
