"""xai.v1 messages <-> the service's own types. Pure functions, no I/O beyond image decoding."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from google.protobuf.message import Message
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import methods_pb2, model_service_pb2 as ms, tensor_pb2
from onnxplain_client.tensors import TensorError, from_tensor, to_tensor

from service.errors import InvalidArgument
from service.explainers import get_method
from service.explainers.baselines import Baseline, BaselineKind
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
BASELINE_KINDS = {BaselineKind.CONSTANT: methods_pb2.Baseline.KIND_CONSTANT,
                  BaselineKind.BLACK: methods_pb2.Baseline.KIND_BLACK,
                  BaselineKind.WHITE: methods_pb2.Baseline.KIND_WHITE,
                  BaselineKind.DATASET_MEAN: methods_pb2.Baseline.KIND_DATASET_MEAN,
                  BaselineKind.IMAGE_MEAN: methods_pb2.Baseline.KIND_IMAGE_MEAN}


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
    """The fields a caller set, as plain Python values (nested messages as dicts)."""
    values = {}
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and not _is_repeated(descriptor):
            values[descriptor.name] = message_values(value)
        elif _is_repeated(descriptor):
            values[descriptor.name] = list(value)
        else:
            values[descriptor.name] = value
    return values


def _is_repeated(descriptor) -> bool:
    return getattr(descriptor, "is_repeated", None) or descriptor.label == descriptor.LABEL_REPEATED


def explain_job(request: ex.ExplainRequest, model: LoadedModel) -> ExplainJob:
    method_name = request.WhichOneof("method")
    if method_name is None:
        raise InvalidArgument("set one method field (see ListMethods), e.g. occlusion {}", field="method")
    method = get_method(method_name)
    params = method.make_params(message_values(getattr(request, method_name)))
    baseline = Baseline()
    if request.HasField("baseline"):
        baseline = Baseline(_from_enum(BASELINE_KINDS, request.baseline.kind, "baseline.kind",
                                      BaselineKind.DATASET_MEAN),
                            request.baseline.value)
    if request.target.class_indices and request.target.top_k:
        raise InvalidArgument("set class_indices or top_k, not both", field="target")
    if request.batch_size > MAX_BATCH_SIZE:
        raise InvalidArgument(f"{request.batch_size} exceeds {MAX_BATCH_SIZE}; memory grows with the batch",
                              field="batch_size")
    return ExplainJob(
        method=method,
        params=params,
        image=image_pixels(request.image, model),
        targets=Targets(tuple(request.target.class_indices), request.target.top_k),
        baseline=baseline,
        seed=request.seed if request.HasField("seed") else None,
        batch_size=request.batch_size or None,
        score_space=_from_enum(SCORE_SPACES, request.score_space, "score_space", ScoreSpace.RAW),
    )


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
                                     map=to_tensor(m.astype(np.float32)))
                      for t, m in zip(result.targets, result.maps)],
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
