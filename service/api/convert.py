"""xai.v1 messages <-> the service's own types. Pure functions, no I/O beyond image decoding."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import Message
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import methods_pb2, metrics_pb2, tensor_pb2
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms
from onnxplain_client.tensors import TensorError, from_tensor, to_tensor

from service.errors import InvalidArgument
from service.explainers import get_method
from service.metrics import get_metric
from service.explainers.base import Method
from service.explainers.baselines import Baseline, BaselineKind
from service.jobs.consistency import (DEFAULT_METRIC_BASELINES, ConsistencyJob, ConsistencyResult, Setting,
                                      baseline_label)
from service.jobs.evaluate import EvaluateJob, EvaluateResult, MetricRequest, Scored
from service.jobs.explain import ExplainJob, ExplainResult, Targets
from service.jobs.predict import ClassScore, PredictResult
from service.runtime import images
from service.runtime.model import LoadedModel, ModelInfo
from service.runtime.preprocessing import ChannelOrder, PixelRange, ResizePolicy
from service.runtime.scores import ScoreSpace
from service.runtime.signature import Layout, OutputKind

LAYOUTS = {Layout.NCHW: ms.LAYOUT_NCHW, Layout.NHWC: ms.LAYOUT_NHWC}
OUTPUT_KINDS = {OutputKind.LOGITS: ms.OUTPUT_KIND_LOGITS, OutputKind.PROBABILITIES: ms.OUTPUT_KIND_PROBABILITIES,
                OutputKind.LOG_PROBABILITIES: ms.OUTPUT_KIND_LOG_PROBABILITIES}
PIXEL_RANGES = {PixelRange.ZERO_ONE: ms.PIXEL_RANGE_0_1, PixelRange.ZERO_255: ms.PIXEL_RANGE_0_255,
                PixelRange.MINUS_ONE_ONE: ms.PIXEL_RANGE_MINUS_1_1}
CHANNEL_ORDERS = {ChannelOrder.RGB: ms.CHANNEL_ORDER_RGB, ChannelOrder.BGR: ms.CHANNEL_ORDER_BGR,
                  ChannelOrder.GRAY: ms.CHANNEL_ORDER_GRAY}
RESIZE_POLICIES = {ResizePolicy.REJECT: ms.RESIZE_POLICY_REJECT, ResizePolicy.STRETCH: ms.RESIZE_POLICY_STRETCH,
                   ResizePolicy.CENTER_CROP: ms.RESIZE_POLICY_CENTER_CROP}
SCORE_SPACES = {ScoreSpace.RAW: ex.SCORE_SPACE_RAW, ScoreSpace.PROBABILITY: ex.SCORE_SPACE_PROBABILITY}
# Baseline kinds share their names: KIND_BLUR <-> BaselineKind.BLUR.
BASELINE_KINDS = {kind: methods_pb2.Baseline.Kind.Value(f"KIND_{kind.name}") for kind in BaselineKind}


# Perturbed images per session call: beyond this, memory grows with no speed to gain.
MAX_BATCH_SIZE = 4096


def _inverse(mapping: dict) -> dict:
    return {v: k for k, v in mapping.items()}


def _from_enum(mapping: dict, value: int, field: str, default: Any = None) -> Any:
    """A proto enum value as the domain enum; UNSPECIFIED (0) gives ``default``."""
    if value == 0:
        return default
    inverse = _inverse(mapping)
    if value not in inverse:
        raise InvalidArgument(f"unknown enum value {value}", field=field)
    return inverse[value]


# --- requests -------------------------------------------------------------------------------------------------

def image_pixels(image: tensor_pb2.Image, model: LoadedModel, field: str = "image") -> np.ndarray:
    """An Image message as float32 pixels at the model's input size."""
    kind = image.WhichOneof("source")
    if kind == "encoded":
        array = images.decode(image.encoded, field=f"{field}.encoded")
    elif kind == "pixels":
        try:
            array = from_tensor(image.pixels)
        except TensorError as error:
            raise InvalidArgument(str(error), field=f"{field}.pixels") from error
    else:
        raise InvalidArgument("set encoded (PNG/JPEG bytes) or pixels (an H x W x C tensor)", field=field)
    return model.fit_image(array, field=f"{field}.{kind}")


def overrides(message: ms.ModelOverrides) -> dict[str, Any]:
    """ModelOverrides as the sidecar-shaped mapping the runtime merges; unset fields are left out."""
    spec: dict[str, Any] = {}
    if message.layout:
        spec["layout"] = _from_enum(LAYOUTS, message.layout, "overrides.layout").value
    if message.output_kind:
        spec["output_kind"] = _from_enum(OUTPUT_KINDS, message.output_kind, "overrides.output_kind").value
    for key in ("batch_size", "height", "width"):
        if getattr(message, key):
            spec[key] = getattr(message, key)
    if message.labels:
        spec["labels"] = list(message.labels)
    if message.HasField("preprocessing"):
        p = message.preprocessing
        pre: dict[str, Any] = {}
        for key, mapping in (("pixel_range", PIXEL_RANGES), ("channel_order", CHANNEL_ORDERS),
                             ("resize", RESIZE_POLICIES)):
            if getattr(p, key):
                pre[key] = _from_enum(mapping, getattr(p, key), f"overrides.preprocessing.{key}").value
        if p.mean:
            pre["mean"] = list(p.mean)
        if p.std:
            pre["std"] = list(p.std)
        spec["preprocessing"] = pre
    return spec


def message_values(message: Message) -> dict[str, Any]:
    """The fields a caller set, as plain Python values: nested messages as dicts, enums as the lower-case
    name without the type's prefix (SOBOL_PERTURBATION_BLUR -> "blur"); UNSPECIFIED enums are left out."""
    values = {}
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and not _is_repeated(descriptor):
            values[descriptor.name] = message_values(value)
        elif _is_repeated(descriptor):
            values[descriptor.name] = list(value)
        elif descriptor.enum_type is not None:
            prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", descriptor.enum_type.name).upper() + "_"
            values[descriptor.name] = descriptor.enum_type.values_by_number[value].name.removeprefix(prefix).lower()
        else:
            values[descriptor.name] = value
    return values


def _is_repeated(descriptor) -> bool:
    # protobuf >= 6 has `is_repeated` (and upb drops `label`); older releases only have `label`.
    flag = getattr(descriptor, "is_repeated", None)
    return flag if flag is not None else descriptor.label == descriptor.LABEL_REPEATED


def method(spec: methods_pb2.MethodSpec, field: str = "method") -> tuple[Method, Any]:
    name = spec.WhichOneof("params")
    if name is None:
        raise InvalidArgument(f"set one method (see ListMethods), e.g. {{occlusion: {{}}}}", field=field)
    chosen = get_method(name)
    return chosen, chosen.make_params(message_values(getattr(spec, name)))


def metric(spec: metrics_pb2.MetricSpec, field: str = "metrics") -> MetricRequest:
    name = spec.WhichOneof("params")
    if name is None:
        raise InvalidArgument("set one metric (see ListMethods), e.g. {deletion: {}}", field=field)
    chosen = get_metric(name)
    return MetricRequest(chosen, chosen.make_params(message_values(getattr(spec, name))))


def baseline(message: methods_pb2.Baseline, model: LoadedModel, field: str = "baseline") -> Baseline:
    kind = _from_enum(BASELINE_KINDS, message.kind, f"{field}.kind", BaselineKind.DATASET_MEAN)
    image = None
    if kind is BaselineKind.IMAGE:
        if not message.HasField("image"):
            raise InvalidArgument("KIND_IMAGE needs the baseline image", field=f"{field}.image")
        image = image_pixels(message.image, model, field=f"{field}.image")
    return Baseline(kind, message.value, message.sigma, image)


def mask(image: tensor_pb2.Image, model: LoadedModel, field: str = "mask") -> np.ndarray | None:
    """A ground-truth mask at the model's input size (nearest resizing keeps it binary), or None if unset."""
    kind = image.WhichOneof("source")
    if kind is None:
        return None
    if kind == "encoded":
        array = images.decode(image.encoded, field=f"{field}.encoded").astype(np.float32) / 255.0
    else:
        try:
            array = from_tensor(image.pixels).astype(np.float32)
        except TensorError as error:
            raise InvalidArgument(str(error), field=f"{field}.pixels") from error
        array = array / 255.0 if image.pixels.datatype == tensor_pb2.DATA_TYPE_UINT8 else array
    if array.ndim == 3:
        array = array.mean(axis=2)
    if array.ndim != 2:
        raise InvalidArgument(f"has shape {list(array.shape)}; send an H x W mask", field=field)
    return images.resize_nearest(array, model.info.height, model.info.width) > 0.5


def explain_job(request: ex.ExplainRequest, model: LoadedModel) -> ExplainJob:
    chosen, params = method(request.method)
    if request.target.class_indices and request.target.top_k:
        raise InvalidArgument("set class_indices or top_k, not both", field="target")
    _check_batch_size(request.batch_size)
    return ExplainJob(
        method=chosen,
        params=params,
        image=image_pixels(request.image, model),
        targets=Targets(tuple(request.target.class_indices), request.target.top_k),
        baseline=baseline(request.baseline, model),
        seed=request.seed if request.HasField("seed") else None,
        batch_size=request.batch_size or None,
        score_space=score_space(request.score_space),
        metrics=tuple(metric(m, f"metrics[{i}]") for i, m in enumerate(request.metrics)),
        mask=mask(request.mask, model),
    )


def evaluate_job(request: ex.EvaluateRequest, model: LoadedModel) -> EvaluateJob:
    _check_batch_size(request.batch_size)
    if not request.HasField("attribution"):
        raise InvalidArgument("send the map to score, FLOAT32 [height, width]", field="attribution")
    try:
        attribution = from_tensor(request.attribution).astype(np.float32)
    except TensorError as error:
        raise InvalidArgument(str(error), field="attribution") from error
    return EvaluateJob(
        image=image_pixels(request.image, model),
        attribution=attribution,
        metrics=tuple(metric(m, f"metrics[{i}]") for i, m in enumerate(request.metrics)),
        class_index=request.class_index if request.HasField("class_index") else None,
        mask=mask(request.mask, model),
        baseline=baseline(request.baseline, model),
        seed=request.seed if request.HasField("seed") else None,
        score_space=score_space(request.score_space),
        batch_size=request.batch_size or None,
    )


def consistency_job(request: ex.ConsistencyRequest, model: LoadedModel) -> ConsistencyJob:
    _check_batch_size(request.batch_size)
    settings = []
    for i, setting in enumerate(request.settings):
        chosen, params = method(setting.method, f"settings[{i}].method")
        chosen_baseline = baseline(setting.baseline, model, f"settings[{i}].baseline")
        label = setting.label or f"{chosen.name} {baseline_label(chosen_baseline)} {_short(params)}"
        settings.append(Setting(label, chosen, params, chosen_baseline))
    metric_baselines = tuple(baseline(b, model, f"metric_baselines[{i}]")
                             for i, b in enumerate(request.metric_baselines)) or DEFAULT_METRIC_BASELINES
    return ConsistencyJob(
        image=image_pixels(request.image, model),
        settings=tuple(settings),
        metric=metric(request.metric, "metric") if request.HasField("metric") else _default_metric(),
        metric_baselines=metric_baselines,
        class_index=request.class_index if request.HasField("class_index") else None,
        top_fraction=request.top_fraction or 0.1,
        seed=request.seed if request.HasField("seed") else None,
        score_space=score_space(request.score_space),
        batch_size=request.batch_size or None,
    )


def _default_metric() -> MetricRequest:
    deletion = get_metric("deletion")
    return MetricRequest(deletion, deletion.make_params({}))


def _short(params: Any) -> str:
    return ",".join(f"{k}={v}" for k, v in asdict(params).items() if v is not None)


def _check_batch_size(batch_size: int) -> None:
    if batch_size > MAX_BATCH_SIZE:
        raise InvalidArgument(f"{batch_size} exceeds {MAX_BATCH_SIZE}; memory grows with the batch",
                              field="batch_size")


def score_space(value: int) -> ScoreSpace:
    return _from_enum(SCORE_SPACES, value, "score_space", ScoreSpace.RAW)


# --- responses ------------------------------------------------------------------------------------------------

def model_info(info: ModelInfo) -> ms.ModelInfo:
    signature = info.signature
    p = info.preprocessing
    return ms.ModelInfo(
        name=info.name, source=info.source, sha256=info.sha256,
        input=ms.TensorInfo(name=signature.input_name, datatype=_onnx_type(signature.input_elem_type),
                            shape=[d or -1 for d in signature.input_dims]),
        output=ms.TensorInfo(name=signature.output_name, datatype="tensor(float)",
                             shape=[d or -1 for d in signature.output_dims]),
        layout=LAYOUTS[info.layout], height=info.height, width=info.width, channels=info.channels,
        fixed_batch=info.fixed_batch, max_batch=info.max_batch,
        output_kind=OUTPUT_KINDS[info.output_kind], output_kind_source=info.output_kind_source,
        preprocessing=ms.Preprocessing(pixel_range=PIXEL_RANGES[p.pixel_range], mean=p.mean, std=p.std,
                                       channel_order=CHANNEL_ORDERS[p.channel_order],
                                       resize=RESIZE_POLICIES[p.resize]),
        preprocessing_source=info.preprocessing_source, num_classes=info.num_classes, labels=info.labels,
        provider=info.provider, description=info.description,
    )


def _onnx_type(elem_type: int) -> str:
    return f"tensor({onnx.helper.tensor_dtype_to_np_dtype(elem_type).name})"


def class_score(score: ClassScore) -> ex.ClassScore:
    return ex.ClassScore(class_index=score.class_index, label=score.label, score=score.score)


def predict_response(model: LoadedModel, result: PredictResult, timings: ex.Timings) -> ex.PredictResponse:
    return ex.PredictResponse(
        model_name=model.info.name,
        predictions=[ex.Prediction(top=[class_score(s) for s in top], scores=to_tensor(row[None].astype(np.float32)))
                     for top, row in zip(result.top, result.scores)],
        forward_passes=len(result.scores), provider=model.info.provider, timings=timings,
    )


def explain_response(model: LoadedModel, result: ExplainResult, timings: ex.Timings) -> ex.ExplainResponse:
    return ex.ExplainResponse(
        model_name=model.info.name,
        method=result.method,
        attributions=[ex.Attribution(class_index=t.class_index, label=t.label, score=t.score,
                                     map=to_tensor(m.astype(np.float32)),
                                     metrics=[metric_result(s) for s in (result.metrics[i] if result.metrics else [])])
                      for i, (t, m) in enumerate(zip(result.targets, result.maps))],
        seed=result.seed,
        forward_passes=result.forward_passes,
        provider=model.info.provider,
        timings=timings,
        baseline=ex.BaselineReport(target_scores=result.baseline_scores,
                                   predicted=class_score(result.baseline_predicted)),
        score_space=SCORE_SPACES[result.score_space],
        model_input_image=to_tensor(np.rint(result.image * 255).astype(np.uint8)),
        parameters_json=result.parameters_json,
    )


def metric_result(scored: Scored) -> metrics_pb2.MetricResult:
    result = scored.result
    return metrics_pb2.MetricResult(
        name=result.name, score=result.score, forward_passes=scored.forward_passes,
        fractions=[] if result.fractions is None else result.fractions.tolist(),
        curve=[] if result.curve is None else result.curve.tolist(),
        values={k: float(v) for k, v in result.values.items()},
    )


def evaluate_response(model: LoadedModel, result: EvaluateResult, timings: ex.Timings) -> ex.EvaluateResponse:
    return ex.EvaluateResponse(
        model_name=model.info.name, class_index=result.class_index, label=result.label,
        results=[metric_result(s) for s in result.scored], seed=result.seed,
        forward_passes=result.forward_passes, provider=model.info.provider, timings=timings,
    )


def _matrix(values: np.ndarray) -> ex.Matrix:
    return ex.Matrix(size=len(values), values=np.asarray(values, dtype=np.float64).ravel().tolist())


def consistency_result(model: LoadedModel, result: ConsistencyResult, timings: ex.Timings,
                       return_maps: bool) -> ex.ConsistencyResult:
    return ex.ConsistencyResult(
        model_name=model.info.name, class_index=result.class_index, label=model.info.label(result.class_index),
        settings=result.labels, spearman=_matrix(result.spearman), ssim=_matrix(result.ssim),
        top_iou=_matrix(result.top_iou), metric=result.metric,
        rankings=[ex.MetricRanking(baseline=label, scores=scores.tolist(), ranks=ranks.tolist())
                  for label, scores, ranks in zip(result.baseline_labels, result.scores, result.ranks)],
        kendall_tau=_matrix(result.kendall_tau),
        maps=[to_tensor(m.astype(np.float32)) for m in result.maps] if return_maps else [],
        seed=result.seed, forward_passes=result.forward_passes, timings=timings,
    )


def method_info(declared, cost: str = "") -> ex.MethodInfo:
    """A method or a metric for ListMethods."""
    return ex.MethodInfo(name=declared.name, description=declared.summary, reference=declared.reference, cost=cost,
                         parameters=[ex.ParameterInfo(**p) for p in declared.describe_parameters()])
