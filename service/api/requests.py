"""xai.v1 requests -> jobs: validation of every field, with the field's name in each refusal."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
from google.protobuf.message import Message
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import methods_pb2, metrics_pb2, tensor_pb2
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms
from onnxplain_client.enums import short_name
from onnxplain_client.tensors import TensorError, from_tensor

from service.api.enums import (AGGREGATORS, BASELINE_KINDS, CHANNEL_ORDERS, CORRUPTIONS, LAYOUTS, MAP_DOMAINS,
                               NORMALISATIONS, OUTPUT_KINDS, PIXEL_RANGES, RESIZE_POLICIES, SALIENCE_MEASURES,
                               SCORE_SPACES, from_enum)
from service.audit.dataset import load_dataset
from service.audit.engine import AuditPlan
from service.budget import DEFAULT_BUDGET, Budget
from service.errors import FailedPrecondition, InvalidArgument
from service.explainers import get_method
from service.explainers.base import Method
from service.explainers.baselines import Baseline, BaselineKind
from service.ensembles.aggregate import REFERENCE_QUANTILE
from service.ensembles.validation import SplitSpec
from service.jobs.aggregate import KAPPAS, AggregateJob
from service.jobs.audit import AuditJob
from service.jobs.consistency import DEFAULT_METRIC_BASELINES, ConsistencyJob, Setting, baseline_label
from service.jobs.evaluate import EvaluateJob, MetricRequest
from service.jobs.explain import ExplainJob, Targets
from service.jobs.measure import MEASURES, MeasureJob
from service.measures.out_of_set import LEVELS
from service.jobs.scales import ScaleJob, variants
from service.metrics import get_metric
from service.runtime import images
from service.runtime.preprocessing import ResizePolicy
from service.runtime.model import LoadedModel
from service.runtime.scores import EXPLANATION_SPACE, METRIC_SPACE, ScoreSpace

# Stability compares every pair of models: their count is bounded like Consistency's settings.
MAX_STABILITY_MODELS = 16
# A path inside the models or data directory: no NUL (the OS cannot take it), no name the filesystem refuses.
MAX_PATH_CHARS = 1024
MAX_NAME_CHARS = 255


class ImageReader:
    """Reads one request's images within the server's budget.

    Each image's size is checked before it is decoded (from the PNG/JPEG header, or the tensor's shape), and
    the pixels of all the request's images are added up, so no request makes the server allocate more than
    ``budget.request_pixels`` images' worth, however few bytes it sent.
    """

    def __init__(self, budget: Budget = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self.pixels = 0

    def array(self, image: tensor_pb2.Image, field: str) -> tuple[str, np.ndarray]:
        """The image's source kind and its H x W (x C) array, decoded as sent."""
        kind = image.WhichOneof("source")
        if kind == "encoded":
            array = images.decode(image.encoded, field=f"{field}.encoded", max_pixels=self.budget.image_pixels)
        elif kind == "pixels":
            try:  # raw bytes are bounded by the message limit, and must match the shape before anything else
                array = from_tensor(image.pixels)
            except TensorError as error:
                raise InvalidArgument(str(error), field=f"{field}.pixels") from error
            if array.ndim not in (2, 3):
                raise InvalidArgument(f"has shape {list(array.shape)}; send H x W x C", field=f"{field}.pixels")
            images.check_size(*array.shape[:2], field=f"{field}.pixels", max_pixels=self.budget.image_pixels)
        else:
            raise InvalidArgument("set encoded (PNG/JPEG bytes) or pixels (an H x W x C tensor)", field=field)
        self.pixels += array.shape[0] * array.shape[1]
        self.budget.require_pixels(self.pixels, field=field, total=True)
        return kind, array


def image_pixels(image: tensor_pb2.Image, model: LoadedModel, field: str = "image",
                 reader: ImageReader | None = None) -> np.ndarray:
    """An Image message as float32 pixels at its model input size (``LoadedModel.input_size``)."""
    return fitted_image(image, model, field, reader)[0]


def fitted_image(image: tensor_pb2.Image, model: LoadedModel, field: str = "image",
                 reader: ImageReader | None = None) -> tuple[np.ndarray, tuple[int, int]]:
    """The image's pixels at its model input size, and its own (height, width) as sent."""
    kind, array = (reader or ImageReader()).array(image, field)
    return model.fit_image(array, field=f"{field}.{kind}"), (array.shape[0], array.shape[1])


def relative_path(text: str, field: str) -> str:
    """A client's path string, refused early when no filesystem could take it."""
    if "\x00" in text:
        raise InvalidArgument("holds a NUL character; give a plain relative path", field=field)
    if len(text) > MAX_PATH_CHARS or any(len(part.encode()) > MAX_NAME_CHARS for part in text.split("/")):
        raise InvalidArgument(f"is longer than the filesystem allows ({MAX_PATH_CHARS} characters, "
                              f"{MAX_NAME_CHARS} bytes a name); give a shorter path", field=field)
    return text


def overrides(message: ms.ModelOverrides) -> dict[str, Any]:
    """ModelOverrides as the sidecar-shaped mapping the runtime merges; unset fields are left out."""
    spec: dict[str, Any] = {}
    if message.layout:
        spec["layout"] = from_enum(LAYOUTS, message.layout, "overrides.layout").value
    if message.output_kind:
        spec["output_kind"] = from_enum(OUTPUT_KINDS, message.output_kind, "overrides.output_kind").value
    for key in ("batch_size", "height", "width", "output", "precision"):
        if getattr(message, key):
            spec[key] = getattr(message, key)
    if message.HasField("threshold"):
        spec["threshold"] = message.threshold
    if message.HasField("free_batch"):
        spec["free_batch"] = message.free_batch
    if message.labels:
        spec["labels"] = list(message.labels)
    if message.HasField("preprocessing"):
        p = message.preprocessing
        pre: dict[str, Any] = {}
        for key, mapping in (("pixel_range", PIXEL_RANGES), ("channel_order", CHANNEL_ORDERS),
                             ("resize", RESIZE_POLICIES)):
            if getattr(p, key):
                pre[key] = from_enum(mapping, getattr(p, key), f"overrides.preprocessing.{key}").value
        if p.mean:
            pre["mean"] = list(p.mean)
        if p.std:
            pre["std"] = list(p.std)
        if p.pad_value:
            pre["pad_value"] = list(p.pad_value)
        spec["preprocessing"] = pre
    if message.HasField("dynamic_batching"):
        batching = message.dynamic_batching
        given: dict[str, Any] = {}
        if batching.HasField("enabled"):
            given["enabled"] = batching.enabled
        if batching.preferred_batch_size:
            given["preferred_batch_size"] = batching.preferred_batch_size
        if batching.HasField("max_queue_delay_ms"):
            given["max_queue_delay_ms"] = batching.max_queue_delay_ms
        spec["dynamic_batching"] = given
    return spec


def message_values(message: Message, field: str = "") -> dict[str, Any]:
    """The fields a caller set, as plain Python values: nested messages as dicts, enums as the lower-case
    name without the type's prefix (SOBOL_PERTURBATION_BLUR -> "blur"); UNSPECIFIED enums are left out.
    Enum numbers this server does not know (proto3 keeps them) are refused, naming ``field.<name>``."""
    values = {}
    for descriptor, value in message.ListFields():
        path = f"{field}.{descriptor.name}" if field else descriptor.name
        if descriptor.message_type is not None and not _is_repeated(descriptor):
            values[descriptor.name] = message_values(value, path)
        elif _is_repeated(descriptor):
            if descriptor.enum_type is not None:
                values[descriptor.name] = [_enum_name(descriptor, v, f"{path}[{i}]") for i, v in enumerate(value)]
            else:
                values[descriptor.name] = list(value)
        elif descriptor.enum_type is not None:
            values[descriptor.name] = _enum_name(descriptor, value, path)
        else:
            values[descriptor.name] = value
    return values


def _enum_name(descriptor, value: int, field: str) -> str:
    known = descriptor.enum_type.values_by_number.get(value)
    if known is None:
        names = ", ".join(v.name for v in descriptor.enum_type.values if v.number)
        raise InvalidArgument(f"unknown {descriptor.enum_type.name} value {value}; use one of {names}", field=field)
    return short_name(descriptor.enum_type.name, known.name)


def _is_repeated(descriptor) -> bool:
    # protobuf >= 6 has `is_repeated` (and upb drops `label`); older releases only have `label`.
    flag = getattr(descriptor, "is_repeated", None)
    return flag if flag is not None else descriptor.label == descriptor.LABEL_REPEATED


def method(spec: methods_pb2.MethodSpec, field: str = "method") -> tuple[Method, Any]:
    name = spec.WhichOneof("params")
    if name is None:
        raise InvalidArgument("set one method (see ListMethods), e.g. {occlusion: {}}", field=field)
    chosen = get_method(name)
    return chosen, chosen.make_params(message_values(getattr(spec, name), name))


def metric(spec: metrics_pb2.MetricSpec, field: str = "metrics") -> MetricRequest:
    name = spec.WhichOneof("params")
    if name is None:
        raise InvalidArgument("set one metric (see ListMethods), e.g. {deletion: {}}", field=field)
    chosen = get_metric(name)
    return MetricRequest(chosen, chosen.make_params(message_values(getattr(spec, name), name)))


def baseline(message: methods_pb2.Baseline, model: LoadedModel, field: str = "baseline",
             reader: ImageReader | None = None, like: tuple[np.ndarray, ...] = ()) -> Baseline:
    """The baseline; a baseline image is fitted like the images it stands in for (``like``): on a dynamic
    model it is stretched to their size, which must then be one size."""
    kind = from_enum(BASELINE_KINDS, message.kind, f"{field}.kind", BaselineKind.DATASET_MEAN)
    image = None
    if kind is BaselineKind.IMAGE:
        if not message.HasField("image"):
            raise InvalidArgument("KIND_IMAGE needs the baseline image", field=f"{field}.image")
        image = image_pixels(message.image, model, field=f"{field}.image", reader=reader)
        sizes = sorted({pixels.shape[:2] for pixels in like})
        if len(sizes) > 1:
            raise InvalidArgument(f"one baseline image stands in for images of {len(sizes)} sizes on this dynamic-size "
                                  "model; send images of one size, or another baseline kind", field=f"{field}.image")
        if sizes and image.shape[:2] != sizes[0]:
            image = images.fit(image, *sizes[0], ResizePolicy.STRETCH)
    return Baseline(kind, message.value, message.sigma, image)


def mask(image: tensor_pb2.Image, model: LoadedModel, field: str = "mask",
         reader: ImageReader | None = None, image_size: tuple[int, int] | None = None) -> np.ndarray | None:
    """A ground-truth mask of an image of ``image_size`` (as sent), placed and resized as that image was
    (``LoadedModel.fit_mask``), or None if unset."""
    if image.WhichOneof("source") is None:
        return None
    kind, array = (reader or ImageReader()).array(image, field)
    array = array.astype(np.float32)
    if kind == "encoded" or image.pixels.datatype == tensor_pb2.DATA_TYPE_UINT8:
        array = array / 255.0
    if array.ndim == 3:
        array = array.mean(axis=2)
    if array.ndim != 2:
        raise InvalidArgument(f"has shape {list(array.shape)}; send an H x W mask", field=field)
    if not np.all(np.isfinite(array)):
        raise InvalidArgument("holds NaN or infinite values; send 0 (background) and 1 (object)", field=field)
    return model.fit_mask(array, image_size or array.shape[:2])


def explain_job(request: ex.ExplainRequest, model: LoadedModel, budget: Budget = DEFAULT_BUDGET) -> ExplainJob:
    reader = ImageReader(budget)
    chosen, params = method(request.method)
    if request.target.class_indices and request.target.top_k:
        raise InvalidArgument("set class_indices or top_k, not both", field="target")
    image, size = fitted_image(request.image, model, reader=reader)
    return ExplainJob(
        method=chosen,
        params=params,
        image=image,
        targets=Targets(tuple(request.target.class_indices), request.target.top_k),
        baseline=baseline(request.baseline, model, reader=reader, like=(image,)),
        seed=request.seed if request.HasField("seed") else None,
        batch_size=request.batch_size or None,
        score_space=score_space(request.score_space),
        metric_score_space=metric_score_space(request.metric_score_space),
        metrics=tuple(metric(m, f"metrics[{i}]") for i, m in enumerate(request.metrics)),
        mask=mask(request.mask, model, reader=reader, image_size=size),
        placement=model.placement(*size),
    )


def evaluate_job(request: ex.EvaluateRequest, model: LoadedModel, budget: Budget = DEFAULT_BUDGET) -> EvaluateJob:
    reader = ImageReader(budget)
    if not request.HasField("attribution"):
        raise InvalidArgument("send the map to score, FLOAT32 [height, width]", field="attribution")
    try:
        attribution = from_tensor(request.attribution).astype(np.float32)
    except TensorError as error:
        raise InvalidArgument(str(error), field="attribution") from error
    image, size = fitted_image(request.image, model, reader=reader)
    return EvaluateJob(
        image=image,
        attribution=attribution,
        metrics=tuple(metric(m, f"metrics[{i}]") for i, m in enumerate(request.metrics)),
        class_index=request.class_index if request.HasField("class_index") else None,
        mask=mask(request.mask, model, reader=reader, image_size=size),
        baseline=baseline(request.baseline, model, reader=reader, like=(image,)),
        seed=request.seed if request.HasField("seed") else None,
        score_space=metric_score_space(request.score_space, "score_space"),
        batch_size=request.batch_size or None,
        domain=from_enum(MAP_DOMAINS, request.attribution_domain, "attribution_domain", "pixel"),
        placement=model.placement(*size),
    )


def consistency_job(request: ex.ConsistencyRequest, model: LoadedModel,
                    budget: Budget = DEFAULT_BUDGET) -> ConsistencyJob:
    reader = ImageReader(budget)
    image = image_pixels(request.image, model, reader=reader)
    settings = []
    for i, setting in enumerate(request.settings):
        chosen, params = method(setting.method, f"settings[{i}].method")
        chosen_baseline = baseline(setting.baseline, model, f"settings[{i}].baseline", reader, like=(image,))
        label = setting.label or f"{chosen.name} {baseline_label(chosen_baseline)} {_short(params)}"
        settings.append(Setting(label, chosen, params, chosen_baseline))
    metric_baselines = tuple(baseline(b, model, f"metric_baselines[{i}]", reader, like=(image,))
                             for i, b in enumerate(request.metric_baselines)) or DEFAULT_METRIC_BASELINES
    return ConsistencyJob(
        image=image,
        settings=tuple(settings),
        metric=metric(request.metric, "metric") if request.HasField("metric") else _default_metric(),
        metric_baselines=metric_baselines,
        class_index=request.class_index if request.HasField("class_index") else None,
        top_fraction=request.top_fraction or 0.1,
        seed=request.seed if request.HasField("seed") else None,
        score_space=score_space(request.score_space),
        metric_score_space=metric_score_space(request.metric_score_space),
        batch_size=request.batch_size or None,
    )


def aggregate_job(request: ex.AggregateRequest, model: LoadedModel, budget: Budget = DEFAULT_BUDGET) -> AggregateJob:
    reader = ImageReader(budget)
    maps = []
    for i, tensor in enumerate(request.maps):
        try:
            maps.append(from_tensor(tensor).astype(np.float64))
        except TensorError as error:
            raise InvalidArgument(str(error), field=f"maps[{i}]") from error
    pictures = tuple(image_pixels(image, model, f"images[{i}]", reader) for i, image in enumerate(request.images))
    return AggregateJob(
        images=pictures,
        metric=metric(request.metric, "metric") if request.HasField("metric") else _default_metric(),
        maps=tuple(maps),
        methods=tuple(method(spec, f"methods[{i}]") for i, spec in enumerate(request.methods)),
        normalisation=from_enum(NORMALISATIONS, request.normalisation, "normalisation", "max_abs"),
        absolute=request.absolute,
        aggregator=from_enum(AGGREGATORS, request.aggregator, "aggregator", "mean"),
        kappa=request.kappa if request.HasField("kappa") else 1.0,
        reference_quantile=request.reference_quantile if request.HasField("reference_quantile") else REFERENCE_QUANTILE,
        search=request.search,
        kappas=tuple(request.kappas) or KAPPAS,
        class_index=request.class_index if request.HasField("class_index") else None,
        baseline=baseline(request.baseline, model, reader=reader, like=pictures),
        seed=request.seed if request.HasField("seed") else None,
        score_space=score_space(request.score_space),
        metric_score_space=metric_score_space(request.metric_score_space),
        batch_size=request.batch_size or None,
        split=SplitSpec(
            validation_fraction=request.validation_fraction if request.HasField("validation_fraction") else None,
            selection=tuple(request.selection), held_out=tuple(request.held_out), num_splits=request.num_splits,
            seed=request.split_seed if request.HasField("split_seed") else None),
    )


def stability_models(request: ex.MeasureRequest, repository) -> tuple[LoadedModel, ...]:
    names = list(request.stability_models)
    if len(names) > MAX_STABILITY_MODELS:
        raise InvalidArgument(f"{len(names)} models; stability compares every pair, give at most "
                              f"{MAX_STABILITY_MODELS}", field="stability_models")
    for i, name in enumerate(names):
        if name == request.model_name or name in names[:i]:
            raise InvalidArgument(f"{name!r} is named twice (the measured model is compared with each one)",
                                  field=f"stability_models[{i}]")
    return tuple(repository.get(name, field=f"stability_models[{i}]") for i, name in enumerate(names))


def measure_job(request: ex.MeasureRequest, model: LoadedModel, repository,
                budget: Budget = DEFAULT_BUDGET) -> MeasureJob:
    reader = ImageReader(budget)
    if not request.HasField("method"):
        raise InvalidArgument("name the method whose maps are measured, e.g. {occlusion: {}}", field="method")
    chosen, params = method(request.method)
    names = [from_enum(SALIENCE_MEASURES, value, f"measures[{i}]", required=True)
             for i, value in enumerate(request.measures)]
    if not names:  # all of them, stability where there is something to compare with
        names = [m for m in MEASURES if m != "stability" or request.stability_models]
    pictures = tuple(image_pixels(image, model, f"images[{i}]", reader) for i, image in enumerate(request.images))
    return MeasureJob(
        images=pictures,
        method=chosen, params=params, measures=tuple(names),
        others=stability_models(request, repository),
        noise_levels=tuple(request.noise_levels) or LEVELS,
        baseline=baseline(request.baseline, model, reader=reader, like=pictures),
        seed=request.seed if request.HasField("seed") else None,
        score_space=score_space(request.score_space),
        batch_size=request.batch_size or None,
    )


AUDIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def audit_job(request: ex.AuditRequest, repository, data_dir: Path | None,
              checkpoint: Callable[[], None] = lambda: None) -> AuditJob:
    """The dataset and the output folder stay inside the data directory, as models stay in theirs.
    ``checkpoint`` runs while the dataset is listed (a large folder takes a while)."""
    if data_dir is None:
        raise FailedPrecondition("the server has no data directory; start it with ONNXPLAIN_DATA_DIR",
                                 field="dataset")
    if not request.dataset:
        raise InvalidArgument("name the dataset: a folder or manifest inside the server's data directory",
                              field="dataset")
    dataset = (data_dir / relative_path(request.dataset, "dataset")).resolve()
    if not dataset.is_relative_to(data_dir):
        raise InvalidArgument(f"{request.dataset!r} is not inside the server's data directory; give a path in it",
                              field="dataset")
    if not AUDIT_NAME.match(request.name):
        raise InvalidArgument("name the audit's folder: letters, digits, '_', '.', '-'", field="name")
    output = data_dir / "audits" / request.name
    # A link planted in the data directory would send the audit's writes elsewhere.
    for folder in (output.parent, output):
        if folder.is_symlink():
            raise InvalidArgument(f"{folder.relative_to(data_dir)} is a symbolic link; audits write only to real "
                                  "folders inside the data directory", field="name")
    if not request.models:
        raise InvalidArgument("name the loaded models to audit (see ListModels)", field="models")
    models = tuple(repository.get(name, field=f"models[{i}]") for i, name in enumerate(request.models))
    for i, spec in enumerate(request.methods):
        method(spec, f"methods[{i}]")  # the same checks as Explain: unknown methods, parameters and enums
    for i, spec in enumerate(request.metrics):
        metric(spec, f"metrics[{i}]")
    methods = [(spec.WhichOneof("params"), message_values(getattr(spec, spec.WhichOneof("params"))))
               for spec in request.methods if spec.WhichOneof("params")] or [("occlusion", {})]
    metrics = [(spec.WhichOneof("params"), message_values(getattr(spec, spec.WhichOneof("params"))))
               for spec in request.metrics if spec.WhichOneof("params")]
    measures = [from_enum(SALIENCE_MEASURES, value, f"measures[{i}]", required=True)
                for i, value in enumerate(request.measures)]
    ensemble = None
    if request.HasField("ensemble"):
        ensemble = (from_enum(NORMALISATIONS, request.ensemble.normalisation, "ensemble.normalisation", "max_abs"),
                    from_enum(AGGREGATORS, request.ensemble.aggregator, "ensemble.aggregator", "mean"),
                    request.ensemble.kappa if request.ensemble.HasField("kappa") else 1.0)
    scales = None
    if request.HasField("scales"):
        scales = (tuple(from_enum(CORRUPTIONS, c, f"scales.corruptions[{i}]", required=True).value
                        for i, c in enumerate(request.scales.corruptions)),
                  tuple(request.scales.severities) or (3,), tuple(request.scales.zooms),
                  request.scales.num_designs or 2)
    plan = AuditPlan.build(methods, metrics, request.seed if request.HasField("seed") else 0, measures, ensemble,
                           scales)
    items = tuple(load_dataset(dataset, root=data_dir, checkpoint=checkpoint))
    return AuditJob(models, items, plan, output, request.dataset)


def _default_metric() -> MetricRequest:
    deletion = get_metric("deletion")
    return MetricRequest(deletion, deletion.make_params({}))


def _short(params: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in asdict(params).items() if v is not None)


def score_space(value: int, field: str = "score_space", default: ScoreSpace = EXPLANATION_SPACE) -> ScoreSpace:
    """An explanation's space: UNSPECIFIED is LOGIT (probabilities saturate; see service.runtime.scores)."""
    return from_enum(SCORE_SPACES, value, field, default)


def metric_score_space(value: int, field: str = "metric_score_space") -> ScoreSpace:
    """A fidelity metric's space: UNSPECIFIED is PROBABILITY (RISE's definition, so scores compare with papers)."""
    return from_enum(SCORE_SPACES, value, field, METRIC_SPACE)


def scales_job(request: ex.AnalyzeScalesRequest, model: LoadedModel, budget: Budget = DEFAULT_BUDGET) -> ScaleJob:
    reader = ImageReader(budget)
    wcam = get_method("wcam")
    corruptions = [from_enum(CORRUPTIONS, c, f"corruptions[{i}]", required=True)
                   for i, c in enumerate(request.corruptions)]
    return ScaleJob(
        image=image_pixels(request.image, model, reader=reader),
        params=wcam.make_params(message_values(request.wcam)),
        variants=tuple(variants(corruptions, list(request.severities), list(request.zooms))),
        class_index=request.class_index if request.HasField("class_index") else None,
        seed=request.seed if request.HasField("seed") else None,
        score_space=score_space(request.score_space),
        batch_size=request.batch_size or None,
    )
