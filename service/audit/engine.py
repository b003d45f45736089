"""The embedded audit engine: the plan over every item, in-process, each result stored as soon as it exists.

Every item gets its own seed, derived from the plan's seed and the item's name, so a result does not depend on
the order of the work, on what ran before, or on whether the audit was resumed. Items whose result is already
stored are skipped. Every result of an item (each model, each method, the ensemble, the scale analysis, the
measures) uses that one seed, whose streams (``service.jobs.streams``) make the audit's comparisons paired
(common random numbers): the models explain an item with the same draws of each method (stability across
models compares maps, not samplers), settings of one method share theirs, every map of an item is scored on
the same metric draws (mu-fidelity's subsets), and the measures' noise is the same for every model and method.
The methods' own draws stay independent of one another (the method stream is keyed by the method's name).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image

from service.audit.dataset import Item, class_index
from service.audit.store import ResultStore
from service.budget import Budget
from service.errors import InvalidArgument
from service.explainers import get_method
from service.explainers.precision import Precision
from service.jobs import costs
from service.jobs.costs import Cost
from service.jobs.control import JobControl
from service.jobs.evaluate import MetricRequest
from service.jobs.explain import ExplainJob, Targets, explain_costs, run_explain
from service.jobs.streams import Streams
from service.measures.image import IMAGE_MEASURES, explains_per_image, measure_image
from service.metrics import get_metric
from service.runtime import images
from service.runtime.model import LoadedModel


@dataclass(frozen=True)
class AuditPlan:
    methods: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]  # (name, sorted parameter items)
    metrics: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]
    seed: int = 0
    # Per-image salience measures (Crum et al. 2023) of every map; stability across the audit's models is
    # computed from the stored maps in the summary.
    measures: tuple[str, ...] = ()
    # (normalisation, aggregator, kappa): the methods' maps of each image aggregated and scored as one more row.
    ensemble: tuple[str, str, float] | None = None
    # (corruptions, severities, zooms, WCAM designs): each image explained by WCAM clean, corrupted and zoomed,
    # one more row per image with the prediction flips and scale shifts (Kasmi et al. 2023).
    scales: tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...], int] | None = None

    @property
    def scales_label(self) -> str | None:
        if self.scales is None:
            return None
        corruptions, severities, zooms, designs = self.scales
        parts = [*corruptions, *(f"zoom {z:g}x" for z in zooms)]
        return f"scales {','.join(parts)} severities={list(severities)} num_designs={designs}"

    @classmethod
    def build(cls, methods: list[tuple[str, dict]], metrics: list[tuple[str, dict]], seed: int = 0,
              measures: list[str] = (), ensemble: tuple[str, str, float] | None = None,
              scales: tuple[tuple[str, ...], tuple[int, ...], tuple[float, ...], int] | None = None) -> "AuditPlan":
        if not methods:
            raise InvalidArgument("name at least one method", field="methods")
        unknown = set(measures) - set(ITEM_MEASURES)
        if unknown:
            raise InvalidArgument(f"{sorted(unknown)}: per-image measures are {list(ITEM_MEASURES)} (stability comes "
                                  "from comparing the audit's models)", field="measures")
        for i, (name, params) in enumerate(methods):
            if name == "eva" and params.get("calibrate_radius"):
                # One radius per image would put the audit's EVA maps on different scales and make its certified
                # rate a rate at no stated radius.
                raise InvalidArgument("an audit's EVA maps share one radius so they compare across images; set "
                                      "eva.epsilon (0: the default 1/255) instead of calibrate_radius",
                                      field=f"methods[{i}].eva.calibrate_radius")
        freeze = lambda pairs: tuple((name, tuple(sorted(params.items()))) for name, params in pairs)  # noqa: E731
        labels = [cls.label(name, params) for name, params in freeze(methods)]
        if len(set(labels)) != len(labels):
            raise InvalidArgument("names the same method with the same parameters twice", field="methods")
        if ensemble is not None and len(methods) < 2:
            raise InvalidArgument("an ensemble needs at least two methods", field="ensemble")
        if scales is not None:
            from service.corruptions import Corruption
            from service.jobs.scales import variants

            corruptions, severities, zooms, _ = scales
            try:
                variants([Corruption(c) for c in corruptions], list(severities), list(zooms))
            except ValueError as error:
                raise InvalidArgument(f"{error}; corruptions are {[c.value for c in Corruption]}",
                                      field="corruptions") from error
        return cls(freeze(methods), freeze(metrics), seed, tuple(sorted(set(measures))), ensemble, scales)

    def describe(self, models: list[LoadedModel], items: list[Item]) -> dict[str, Any]:
        """What identifies the audit's results: the plan, the models (by content) and the dataset's items with
        their labels and masks, so a resumed audit never mixes results of another model or other labels."""
        digest = hashlib.sha256("\n".join(f"{i.item_id}\t{i.label}\t{i.mask.name if i.mask else ''}"
                                          for i in items).encode()).hexdigest()
        # A model is its graph and its configuration: a sidecar edited or a --set changed between runs changes
        # what the results mean as much as another graph does.
        configured = {m.info.name: {"preprocessing": m.info.preprocessing.to_mapping(), "labels": list(m.info.labels),
                                    "layout": m.info.layout.value, "output_kind": m.info.output_kind.value}
                      for m in models}
        return {**asdict(self), "models": {m.info.name: m.info.sha256 for m in models}, "model_configs": configured,
                "dataset_items": len(items), "dataset_sha256": digest}

    @staticmethod
    def label(name: str, params: tuple) -> str:
        return name + "".join(f" {k}={v}" for k, v in params)


ITEM_MEASURES = IMAGE_MEASURES


def item_measures(names: tuple[str, ...], image: np.ndarray, attribution: np.ndarray, clean_score: float,
                  explain: Callable[[np.ndarray], np.ndarray], score: Callable[[np.ndarray], np.ndarray],
                  rng: np.random.Generator, checkpoint: Callable[[], None] = lambda: None) -> dict[str, float]:
    """One number per measure and image, for the summary's distributions: the Measure job's values
    (``measure_image``), with the noise and transform curves reduced to their area and mean."""
    measured = measure_image(names, image, attribution, clean_score, explain, score, rng, checkpoint=checkpoint)
    values: dict[str, float] = {}
    if "entropy" in measured:
        values["entropy_histogram"], values["entropy_spatial"] = measured["entropy"]
    if "out_of_set" in measured:
        curves = measured["out_of_set"]
        values["noise_ssim_auc"], values["noise_score_auc"] = curves["ssim_auc"], curves["score_auc"]
    if "transforms" in measured:
        values["transforms_ssim"] = float(np.mean(list(measured["transforms"].values())))
    for mode, (drop, similarity) in measured.get("degradation", {}).items():
        values[f"degradation_{mode}_drop"], values[f"degradation_{mode}_ssim"] = drop, similarity
    return values


def read_image(model: LoadedModel, item: Item) -> tuple[np.ndarray, np.ndarray | None]:
    """The item's pixels at its model input size, and its mask placed and resized as the image was
    (``LoadedModel.fit_mask``), as bool; an unreadable file is INVALID_ARGUMENT naming the item."""
    decoded = images.decode(item.path.read_bytes(), field=item.item_id)
    image = model.fit_image(decoded, field=item.item_id)
    if item.mask is None:
        return image, None
    mask = images.decode(item.mask.read_bytes(), field=f"{item.item_id} mask")
    grey = (mask if mask.ndim == 2 else mask[..., 0]).astype(np.float32) / np.float32(255.0)
    return image, model.fit_mask(grey, decoded.shape[:2])


def item_placement(model: LoadedModel, item: Item) -> images.Placement | None:
    """Where a letterbox model puts the item's image in its input (from the file's header), else None."""
    with Image.open(item.path) as picture:
        return model.placement(picture.height, picture.width)


def stored_map(model: LoadedModel, item: Item, attribution: np.ndarray) -> np.ndarray:
    """A map as the audit stores it: in the image's own frame for a letterboxed image, as Explain returns it
    (the report draws it over the image, and stability compares models of other input sizes on it)."""
    box = item_placement(model, item)
    return attribution if box is None else images.to_image_frame(attribution, box)


def check_labels(models: list[LoadedModel], items: list[Item]) -> None:
    """Every label against every model, before any work."""
    for model in models:
        for item in items:
            label_index(item.label, model, item)


def item_seed(seed: int, item: str) -> int:
    """The seed of every result of ``item`` (the module's docstring says why one per item)."""
    return int.from_bytes(hashlib.sha256(f"{seed}/{item}".encode()).digest()[:8], "little")


def label_index(label: str | None, model: LoadedModel, item: Item) -> int | None:
    if label is None:
        return None
    return class_index(label, model.info.labels, model.info.num_classes, item.origin, model.info.name)


# The method details an audit keeps: numbers to aggregate over a dataset, not per-image pictures.
REPORTED_DETAILS = ("level_importance", "approximation_share", "certified", "adversarial_overlap", "epsilon",
                    "ball_certified")


def reported_details(details: dict[str, Any]) -> dict[str, Any]:
    return {key: details[key] for key in REPORTED_DETAILS if key in details}


# A randomized method's precision as a result's details keep it (none for a deterministic method): the summary
# and the report show its reliability, so a dataset-wide mean is read knowing how noisy its maps were. In the
# details (JSON) rather than in columns of their own, so a store written before them still resumes.
PRECISION_DETAILS = ("reliability", "samples", "stop_reason", "variant_reliability_min")


def precision_details(precision: Precision | None) -> dict[str, Any]:
    if precision is None:
        return {}
    return {"reliability": float(precision.reliability[0]), "samples": int(precision.samples),
            "stop_reason": precision.stop_reason.value}


@dataclass(frozen=True)
class Task:
    """One result to compute: a model (by name), a method of the plan (by label) and an item."""

    model: str
    method: str
    item: Item


def pending(models: list[str], plan: AuditPlan, items: list[Item], done: set[tuple[str, str, str]]) -> list[Task]:
    """Every (model, method, item) of the plan not in ``done``, in a fixed order."""
    labels = [AuditPlan.label(name, params) for name, params in plan.methods]
    if plan.scales_label is not None:
        labels.append(plan.scales_label)
    return [Task(model, label, item) for model in models for label in labels for item in items
            if (model, label, item.item_id) not in done]


class Worker:
    """Computes results for the plan on its own models: the embedded engine holds one, each Ray actor another."""

    def __init__(self, models: list[LoadedModel], plan: AuditPlan) -> None:
        self.models = {model.info.name: model for model in models}
        self.plan = plan
        self.methods = {}
        for name, params in plan.methods:
            method = get_method(name)
            self.methods[AuditPlan.label(name, params)] = (method, method.make_params(dict(params)))
        self.metrics = tuple(MetricRequest(get_metric(name), get_metric(name).make_params(dict(params)))
                             for name, params in plan.metrics)

    def compute_scales(self, task: Task, control: JobControl | None = None) -> dict[str, Any]:
        return _compute_scales(self, task, control)

    def compute(self, task: Task, control: JobControl | None = None) -> dict[str, Any]:
        """The result of ``task`` as ``ResultStore.add``'s arguments."""
        if task.method == self.plan.scales_label:
            return self.compute_scales(task, control)
        started = time.perf_counter()
        model, item = self.models[task.model], task.item
        method, params = self.methods[task.method]
        image, mask = read_image(model, item)
        wanted = tuple(m for m in self.metrics if mask is not None or not m.metric.needs_mask)
        seed = item_seed(self.plan.seed, item.item_id)
        result = run_explain(model, ExplainJob(method, params, image, metrics=wanted, mask=mask, seed=seed), control)
        target, scored = result.targets[0], (result.metrics or [[]])[0]
        details = {**reported_details((result.details or [{}])[0]), **precision_details(result.precision)}
        control = control or JobControl()
        if self.plan.measures:
            def explain(x: np.ndarray) -> np.ndarray:
                return run_explain(model, ExplainJob(method, params, x, Targets((target.class_index,)), seed=seed),
                                   control).maps[0]

            def score(xs: np.ndarray) -> np.ndarray:
                control.checkpoint()
                # In the explanation's space, as target.score, which degradation's score drop starts from.
                return model.predict(xs, score_space=result.score_space)[:, target.class_index]

            details.update(item_measures(self.plan.measures, image, result.maps[0], target.score, explain, score,
                                         Streams(seed).job(), control.checkpoint))
        return {"model": task.model, "method": task.method, "item": item.item_id,
                "label": label_index(item.label, model, item), "predicted": target.class_index, "score": target.score,
                "metrics": {s.result.name: s.result.score for s in scored},
                "curves": {s.result.name: s.result.curve.tolist() for s in scored if s.result.curve is not None},
                "details": details, "attribution": stored_map(model, item, result.maps[0]),
                "seconds": time.perf_counter() - started}


def _compute_scales(worker: "Worker", task: Task, control: JobControl | None) -> dict[str, Any]:
    """WCAM on the clean image and its variants: the clean map and profile, and per variant whether the
    prediction flipped and where the importance went."""
    from service.corruptions import Corruption
    from service.jobs.scales import ScaleJob, run_scales, variants

    started = time.perf_counter()
    model, item = worker.models[task.model], task.item
    corruptions, severities, zooms, designs = worker.plan.scales
    image, _ = read_image(model, item)
    wcam = get_method("wcam")
    result = run_scales(model, ScaleJob(image, wcam.make_params({"num_designs": designs}),
                                        tuple(variants([Corruption(c) for c in corruptions], list(severities),
                                                       list(zooms))),
                                        seed=item_seed(worker.plan.seed, item.item_id)),
                        control)
    clean, *changed = result.rows
    details = {"level_importance": clean.details["level_importance"],
               "approximation_share": clean.details["approximation_share"],
               **precision_details(clean.explanation.precision),
               # The least reliable variant's: a shift is only as trustworthy as the noisier of its two maps.
               "variant_reliability_min": min(float(row.explanation.precision.reliability[0]) for row in changed)}
    for row in changed:
        details[f"flipped {row.variant.name}"] = float(row.predicted.class_index != clean.predicted.class_index)
        details[f"approximation share {row.variant.name}"] = float(row.details["approximation_share"])
    return {"model": task.model, "method": task.method, "item": item.item_id,
            "label": label_index(item.label, model, item), "predicted": clean.predicted.class_index,
            "score": clean.target_score, "metrics": {}, "curves": {}, "details": details,
            "attribution": stored_map(model, item, clean.map),
            "seconds": time.perf_counter() - started}


def measure_counts(names: tuple[str, ...], image_shape: tuple[int, int, int]) -> tuple[int, int]:
    """The explanations and the scored images ``item_measures`` adds to an item (``explains_per_image``)."""
    return explains_per_image(names, image_shape)


def check_plan(models: list[LoadedModel], worker: "Worker", budget: Budget) -> None:
    """Each result of the plan against the budget, on each model, before the first one is computed: an audit
    that cannot fit is refused at once, not after its first items. An audit's budget is per result (model,
    method, item): a dataset may hold any number of items, and a deadline stops it between them."""
    for model in models:
        shape = model.info.image_shape
        batch = costs.batch_size(None, model, budget)
        for request in worker.metrics:  # parameters checked before any estimate divides by them
            request.metric.check(request.params, shape)
        for method, params in worker.methods.values():
            method.check(params, shape)
            parts = explain_costs(method, params, shape, 1, worker.metrics, batch, model, budget)
            extra, scored = measure_counts(worker.plan.measures, shape)
            explains = 1 + extra
            run = parts[0]
            parts[0] = Cost(run.what, run.passes * explains, run.memory, run.passes_field, run.memory_field)
            costs.require(budget, parts, passes=2 * explains + scored, what=f"each result of {method.name}")
        if worker.plan.scales is not None:
            wcam = get_method("wcam")
            params = wcam.make_params({"num_designs": worker.plan.scales[3]})
            wcam.check(params, shape)
            run = costs.method_cost(wcam, params, shape, 1, batch, model, budget)
            variants = 1 + len(worker.plan.scales[0]) * len(worker.plan.scales[1]) + len(worker.plan.scales[2])
            costs.require(budget, [run] * variants, passes=variants, what="each scale analysis")


def run_audit(models: list[LoadedModel], items: list[Item], plan: AuditPlan, store: ResultStore,
              control: JobControl | None = None, on_result: Callable[[int, int], None] | None = None) -> int:
    """Compute and store every missing result in-process; returns how many were computed. ``on_result(done,
    total)`` follows the progress over all results, the ones found in the store included."""
    control = control or JobControl()
    done = store.done()
    tasks = pending([m.info.name for m in models], plan, items, done)
    worker = Worker(models, plan)
    check_plan(models, worker, control.budget)
    total = len(done) + len(tasks)
    for finished, task in enumerate(tasks, start=len(done) + 1):
        control.checkpoint()
        store.add(**worker.compute(task, control))
        if on_result is not None:
            on_result(finished, total)
    return len(tasks)
