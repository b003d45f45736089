from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Layout(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LAYOUT_UNSPECIFIED: _ClassVar[Layout]
    LAYOUT_NCHW: _ClassVar[Layout]
    LAYOUT_NHWC: _ClassVar[Layout]

class OutputKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_KIND_UNSPECIFIED: _ClassVar[OutputKind]
    OUTPUT_KIND_LOGITS: _ClassVar[OutputKind]
    OUTPUT_KIND_PROBABILITIES: _ClassVar[OutputKind]
    OUTPUT_KIND_LOG_PROBABILITIES: _ClassVar[OutputKind]
    OUTPUT_KIND_SIGMOID: _ClassVar[OutputKind]

class PixelRange(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PIXEL_RANGE_UNSPECIFIED: _ClassVar[PixelRange]
    PIXEL_RANGE_0_1: _ClassVar[PixelRange]
    PIXEL_RANGE_0_255: _ClassVar[PixelRange]
    PIXEL_RANGE_MINUS_1_1: _ClassVar[PixelRange]

class ChannelOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANNEL_ORDER_UNSPECIFIED: _ClassVar[ChannelOrder]
    CHANNEL_ORDER_RGB: _ClassVar[ChannelOrder]
    CHANNEL_ORDER_BGR: _ClassVar[ChannelOrder]
    CHANNEL_ORDER_GRAY: _ClassVar[ChannelOrder]

class ResizePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESIZE_POLICY_UNSPECIFIED: _ClassVar[ResizePolicy]
    RESIZE_POLICY_REJECT: _ClassVar[ResizePolicy]
    RESIZE_POLICY_STRETCH: _ClassVar[ResizePolicy]
    RESIZE_POLICY_CENTER_CROP: _ClassVar[ResizePolicy]
    RESIZE_POLICY_LETTERBOX: _ClassVar[ResizePolicy]
LAYOUT_UNSPECIFIED: Layout
LAYOUT_NCHW: Layout
LAYOUT_NHWC: Layout
OUTPUT_KIND_UNSPECIFIED: OutputKind
OUTPUT_KIND_LOGITS: OutputKind
OUTPUT_KIND_PROBABILITIES: OutputKind
OUTPUT_KIND_LOG_PROBABILITIES: OutputKind
OUTPUT_KIND_SIGMOID: OutputKind
PIXEL_RANGE_UNSPECIFIED: PixelRange
PIXEL_RANGE_0_1: PixelRange
PIXEL_RANGE_0_255: PixelRange
PIXEL_RANGE_MINUS_1_1: PixelRange
CHANNEL_ORDER_UNSPECIFIED: ChannelOrder
CHANNEL_ORDER_RGB: ChannelOrder
CHANNEL_ORDER_BGR: ChannelOrder
CHANNEL_ORDER_GRAY: ChannelOrder
RESIZE_POLICY_UNSPECIFIED: ResizePolicy
RESIZE_POLICY_REJECT: ResizePolicy
RESIZE_POLICY_STRETCH: ResizePolicy
RESIZE_POLICY_CENTER_CROP: ResizePolicy
RESIZE_POLICY_LETTERBOX: ResizePolicy

class Preprocessing(_message.Message):
    __slots__ = ("pixel_range", "mean", "std", "channel_order", "resize", "pad_value")
    PIXEL_RANGE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_ORDER_FIELD_NUMBER: _ClassVar[int]
    RESIZE_FIELD_NUMBER: _ClassVar[int]
    PAD_VALUE_FIELD_NUMBER: _ClassVar[int]
    pixel_range: PixelRange
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    channel_order: ChannelOrder
    resize: ResizePolicy
    pad_value: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, pixel_range: _Optional[_Union[PixelRange, str]] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ..., channel_order: _Optional[_Union[ChannelOrder, str]] = ..., resize: _Optional[_Union[ResizePolicy, str]] = ..., pad_value: _Optional[_Iterable[float]] = ...) -> None: ...

class ModelOverrides(_message.Message):
    __slots__ = ("layout", "output_kind", "preprocessing", "labels", "batch_size", "height", "width", "output", "threshold", "free_batch", "precision", "dynamic_batching")
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_KIND_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    FREE_BATCH_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_BATCHING_FIELD_NUMBER: _ClassVar[int]
    layout: Layout
    output_kind: OutputKind
    preprocessing: Preprocessing
    labels: _containers.RepeatedScalarFieldContainer[str]
    batch_size: int
    height: int
    width: int
    output: str
    threshold: float
    free_batch: bool
    precision: str
    dynamic_batching: DynamicBatching
    def __init__(self, layout: _Optional[_Union[Layout, str]] = ..., output_kind: _Optional[_Union[OutputKind, str]] = ..., preprocessing: _Optional[_Union[Preprocessing, _Mapping]] = ..., labels: _Optional[_Iterable[str]] = ..., batch_size: _Optional[int] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., output: _Optional[str] = ..., threshold: _Optional[float] = ..., free_batch: _Optional[bool] = ..., precision: _Optional[str] = ..., dynamic_batching: _Optional[_Union[DynamicBatching, _Mapping]] = ...) -> None: ...

class DynamicBatching(_message.Message):
    __slots__ = ("enabled", "preferred_batch_size", "max_queue_delay_ms")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    PREFERRED_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUE_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    preferred_batch_size: int
    max_queue_delay_ms: float
    def __init__(self, enabled: _Optional[bool] = ..., preferred_batch_size: _Optional[int] = ..., max_queue_delay_ms: _Optional[float] = ...) -> None: ...

class LoadModelRequest(_message.Message):
    __slots__ = ("name", "path", "onnx_model", "overrides", "replace")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    ONNX_MODEL_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    name: str
    path: str
    onnx_model: bytes
    overrides: ModelOverrides
    replace: bool
    def __init__(self, name: _Optional[str] = ..., path: _Optional[str] = ..., onnx_model: _Optional[bytes] = ..., overrides: _Optional[_Union[ModelOverrides, _Mapping]] = ..., replace: _Optional[bool] = ...) -> None: ...

class LoadModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...

class UnloadModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class UnloadModelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...

class GetModelRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ...) -> None: ...

class InspectModelRequest(_message.Message):
    __slots__ = ("name", "skip_verification", "repeats")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SKIP_VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    name: str
    skip_verification: bool
    repeats: int
    def __init__(self, name: _Optional[str] = ..., skip_verification: _Optional[bool] = ..., repeats: _Optional[int] = ...) -> None: ...

class ForwardTiming(_message.Message):
    __slots__ = ("batch_size", "median_ms", "repeats")
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    MEDIAN_MS_FIELD_NUMBER: _ClassVar[int]
    REPEATS_FIELD_NUMBER: _ClassVar[int]
    batch_size: int
    median_ms: float
    repeats: int
    def __init__(self, batch_size: _Optional[int] = ..., median_ms: _Optional[float] = ..., repeats: _Optional[int] = ...) -> None: ...

class InspectModelResponse(_message.Message):
    __slots__ = ("model", "forward_timings", "warnings")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FORWARD_TIMINGS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    model: ModelInfo
    forward_timings: _containers.RepeatedCompositeFieldContainer[ForwardTiming]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, model: _Optional[_Union[ModelInfo, _Mapping]] = ..., forward_timings: _Optional[_Iterable[_Union[ForwardTiming, _Mapping]]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class GetModelStatisticsRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetModelStatisticsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelStatistics]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelStatistics, _Mapping]]] = ...) -> None: ...

class StatisticDuration(_message.Message):
    __slots__ = ("count", "total_ms")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    count: int
    total_ms: float
    def __init__(self, count: _Optional[int] = ..., total_ms: _Optional[float] = ...) -> None: ...

class ModelStatistics(_message.Message):
    __slots__ = ("name", "success", "failure", "queue", "forward_passes", "model_ms", "last_forward_unix_ms", "methods", "execution_count", "inference_count", "batch_queue")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUCCESS_FIELD_NUMBER: _ClassVar[int]
    FAILURE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    MODEL_MS_FIELD_NUMBER: _ClassVar[int]
    LAST_FORWARD_UNIX_MS_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_COUNT_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_COUNT_FIELD_NUMBER: _ClassVar[int]
    BATCH_QUEUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    success: StatisticDuration
    failure: StatisticDuration
    queue: StatisticDuration
    forward_passes: int
    model_ms: float
    last_forward_unix_ms: int
    methods: _containers.RepeatedCompositeFieldContainer[MethodStatistics]
    execution_count: int
    inference_count: int
    batch_queue: StatisticDuration
    def __init__(self, name: _Optional[str] = ..., success: _Optional[_Union[StatisticDuration, _Mapping]] = ..., failure: _Optional[_Union[StatisticDuration, _Mapping]] = ..., queue: _Optional[_Union[StatisticDuration, _Mapping]] = ..., forward_passes: _Optional[int] = ..., model_ms: _Optional[float] = ..., last_forward_unix_ms: _Optional[int] = ..., methods: _Optional[_Iterable[_Union[MethodStatistics, _Mapping]]] = ..., execution_count: _Optional[int] = ..., inference_count: _Optional[int] = ..., batch_queue: _Optional[_Union[StatisticDuration, _Mapping]] = ...) -> None: ...

class MethodStatistics(_message.Message):
    __slots__ = ("method", "request_count", "forward_passes", "model_ms", "queue_ms")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_COUNT_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    MODEL_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    method: str
    request_count: int
    forward_passes: int
    model_ms: float
    queue_ms: float
    def __init__(self, method: _Optional[str] = ..., request_count: _Optional[int] = ..., forward_passes: _Optional[int] = ..., model_ms: _Optional[float] = ..., queue_ms: _Optional[float] = ...) -> None: ...

class TensorInfo(_message.Message):
    __slots__ = ("name", "datatype", "shape")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    datatype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, name: _Optional[str] = ..., datatype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "source", "sha256", "input", "output", "layout", "height", "width", "channels", "fixed_batch", "max_batch", "output_kind", "output_kind_source", "preprocessing", "preprocessing_source", "num_classes", "labels", "provider", "description", "verification", "dynamic_height", "dynamic_width", "logit_source", "logits_tensor", "threshold", "graph_outputs", "batch_axis", "batch_axis_reason", "batch_axis_rewrites", "precision", "precision_reason", "layout_source", "preprocessing_sources")
    class PreprocessingSourcesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    FIXED_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_KIND_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_KIND_SOURCE_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_SOURCE_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    VERIFICATION_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_WIDTH_FIELD_NUMBER: _ClassVar[int]
    LOGIT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    LOGITS_TENSOR_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    GRAPH_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    BATCH_AXIS_FIELD_NUMBER: _ClassVar[int]
    BATCH_AXIS_REASON_FIELD_NUMBER: _ClassVar[int]
    BATCH_AXIS_REWRITES_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_REASON_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_SOURCE_FIELD_NUMBER: _ClassVar[int]
    PREPROCESSING_SOURCES_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    sha256: str
    input: TensorInfo
    output: TensorInfo
    layout: Layout
    height: int
    width: int
    channels: int
    fixed_batch: bool
    max_batch: int
    output_kind: OutputKind
    output_kind_source: str
    preprocessing: Preprocessing
    preprocessing_source: str
    num_classes: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    provider: str
    description: str
    verification: Verification
    dynamic_height: bool
    dynamic_width: bool
    logit_source: str
    logits_tensor: str
    threshold: float
    graph_outputs: _containers.RepeatedScalarFieldContainer[str]
    batch_axis: str
    batch_axis_reason: str
    batch_axis_rewrites: _containers.RepeatedScalarFieldContainer[str]
    precision: str
    precision_reason: str
    layout_source: str
    preprocessing_sources: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., sha256: _Optional[str] = ..., input: _Optional[_Union[TensorInfo, _Mapping]] = ..., output: _Optional[_Union[TensorInfo, _Mapping]] = ..., layout: _Optional[_Union[Layout, str]] = ..., height: _Optional[int] = ..., width: _Optional[int] = ..., channels: _Optional[int] = ..., fixed_batch: _Optional[bool] = ..., max_batch: _Optional[int] = ..., output_kind: _Optional[_Union[OutputKind, str]] = ..., output_kind_source: _Optional[str] = ..., preprocessing: _Optional[_Union[Preprocessing, _Mapping]] = ..., preprocessing_source: _Optional[str] = ..., num_classes: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., provider: _Optional[str] = ..., description: _Optional[str] = ..., verification: _Optional[_Union[Verification, _Mapping]] = ..., dynamic_height: _Optional[bool] = ..., dynamic_width: _Optional[bool] = ..., logit_source: _Optional[str] = ..., logits_tensor: _Optional[str] = ..., threshold: _Optional[float] = ..., graph_outputs: _Optional[_Iterable[str]] = ..., batch_axis: _Optional[str] = ..., batch_axis_reason: _Optional[str] = ..., batch_axis_rewrites: _Optional[_Iterable[str]] = ..., precision: _Optional[str] = ..., precision_reason: _Optional[str] = ..., layout_source: _Optional[str] = ..., preprocessing_sources: _Optional[_Mapping[str, str]] = ...) -> None: ...

class BoundMethodCheck(_message.Message):
    __slots__ = ("name", "runs", "reason", "split_layer", "verified", "head_runtime")
    NAME_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SPLIT_LAYER_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    HEAD_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    runs: bool
    reason: str
    split_layer: str
    verified: str
    head_runtime: str
    def __init__(self, name: _Optional[str] = ..., runs: _Optional[bool] = ..., reason: _Optional[str] = ..., split_layer: _Optional[str] = ..., verified: _Optional[str] = ..., head_runtime: _Optional[str] = ...) -> None: ...

class Verification(_message.Message):
    __slots__ = ("verifiable", "reason", "rewrites", "device", "max_error", "bound_methods", "auto_lirpa_version", "method_checks", "whole_model_reason")
    VERIFIABLE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REWRITES_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    MAX_ERROR_FIELD_NUMBER: _ClassVar[int]
    BOUND_METHODS_FIELD_NUMBER: _ClassVar[int]
    AUTO_LIRPA_VERSION_FIELD_NUMBER: _ClassVar[int]
    METHOD_CHECKS_FIELD_NUMBER: _ClassVar[int]
    WHOLE_MODEL_REASON_FIELD_NUMBER: _ClassVar[int]
    verifiable: bool
    reason: str
    rewrites: _containers.RepeatedScalarFieldContainer[str]
    device: str
    max_error: float
    bound_methods: _containers.RepeatedScalarFieldContainer[str]
    auto_lirpa_version: str
    method_checks: _containers.RepeatedCompositeFieldContainer[BoundMethodCheck]
    whole_model_reason: str
    def __init__(self, verifiable: _Optional[bool] = ..., reason: _Optional[str] = ..., rewrites: _Optional[_Iterable[str]] = ..., device: _Optional[str] = ..., max_error: _Optional[float] = ..., bound_methods: _Optional[_Iterable[str]] = ..., auto_lirpa_version: _Optional[str] = ..., method_checks: _Optional[_Iterable[_Union[BoundMethodCheck, _Mapping]]] = ..., whole_model_reason: _Optional[str] = ...) -> None: ...
