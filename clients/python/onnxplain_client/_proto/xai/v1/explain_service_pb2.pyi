from onnxplain_client._proto.xai.v1 import methods_pb2 as _methods_pb2
from onnxplain_client._proto.xai.v1 import metrics_pb2 as _metrics_pb2
from onnxplain_client._proto.xai.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreSpace(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORE_SPACE_UNSPECIFIED: _ClassVar[ScoreSpace]
    SCORE_SPACE_RAW: _ClassVar[ScoreSpace]
    SCORE_SPACE_PROBABILITY: _ClassVar[ScoreSpace]
    SCORE_SPACE_LOGIT: _ClassVar[ScoreSpace]
    SCORE_SPACE_LOG_PROBABILITY: _ClassVar[ScoreSpace]

class StopReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STOP_REASON_UNSPECIFIED: _ClassVar[StopReason]
    STOP_REASON_RELIABILITY: _ClassVar[StopReason]
    STOP_REASON_SAMPLES: _ClassVar[StopReason]
    STOP_REASON_TIME: _ClassVar[StopReason]
    STOP_REASON_EXACT: _ClassVar[StopReason]

class MapFrame(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MAP_FRAME_UNSPECIFIED: _ClassVar[MapFrame]
    MAP_FRAME_MODEL_INPUT: _ClassVar[MapFrame]
    MAP_FRAME_IMAGE: _ClassVar[MapFrame]

class MapDomain(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MAP_DOMAIN_UNSPECIFIED: _ClassVar[MapDomain]
    MAP_DOMAIN_PIXEL: _ClassVar[MapDomain]
    MAP_DOMAIN_WAVELET: _ClassVar[MapDomain]

class Corruption(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CORRUPTION_UNSPECIFIED: _ClassVar[Corruption]
    CORRUPTION_GAUSSIAN_NOISE: _ClassVar[Corruption]
    CORRUPTION_GAUSSIAN_BLUR: _ClassVar[Corruption]
    CORRUPTION_JPEG: _ClassVar[Corruption]
    CORRUPTION_CONTRAST: _ClassVar[Corruption]

class Normalisation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NORMALISATION_UNSPECIFIED: _ClassVar[Normalisation]
    NORMALISATION_MAX_ABS: _ClassVar[Normalisation]
    NORMALISATION_MIN_MAX: _ClassVar[Normalisation]
    NORMALISATION_Z_SCORE: _ClassVar[Normalisation]
    NORMALISATION_PERCENTILE: _ClassVar[Normalisation]
    NORMALISATION_SUM_TO_ONE: _ClassVar[Normalisation]
    NORMALISATION_RANK: _ClassVar[Normalisation]
    NORMALISATION_SECOND_MOMENT: _ClassVar[Normalisation]

class Aggregator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATOR_UNSPECIFIED: _ClassVar[Aggregator]
    AGGREGATOR_MEAN: _ClassVar[Aggregator]
    AGGREGATOR_MEDIAN: _ClassVar[Aggregator]
    AGGREGATOR_MAX: _ClassVar[Aggregator]
    AGGREGATOR_MIN: _ClassVar[Aggregator]
    AGGREGATOR_RANK_MEAN: _ClassVar[Aggregator]
    AGGREGATOR_UCB: _ClassVar[Aggregator]
    AGGREGATOR_LCB: _ClassVar[Aggregator]
    AGGREGATOR_PI: _ClassVar[Aggregator]
    AGGREGATOR_EI: _ClassVar[Aggregator]

class SalienceMeasure(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SALIENCE_MEASURE_UNSPECIFIED: _ClassVar[SalienceMeasure]
    SALIENCE_MEASURE_ENTROPY: _ClassVar[SalienceMeasure]
    SALIENCE_MEASURE_OUT_OF_SET: _ClassVar[SalienceMeasure]
    SALIENCE_MEASURE_TRANSFORMS: _ClassVar[SalienceMeasure]
    SALIENCE_MEASURE_STABILITY: _ClassVar[SalienceMeasure]
    SALIENCE_MEASURE_DEGRADATION: _ClassVar[SalienceMeasure]
SCORE_SPACE_UNSPECIFIED: ScoreSpace
SCORE_SPACE_RAW: ScoreSpace
SCORE_SPACE_PROBABILITY: ScoreSpace
SCORE_SPACE_LOGIT: ScoreSpace
SCORE_SPACE_LOG_PROBABILITY: ScoreSpace
STOP_REASON_UNSPECIFIED: StopReason
STOP_REASON_RELIABILITY: StopReason
STOP_REASON_SAMPLES: StopReason
STOP_REASON_TIME: StopReason
STOP_REASON_EXACT: StopReason
MAP_FRAME_UNSPECIFIED: MapFrame
MAP_FRAME_MODEL_INPUT: MapFrame
MAP_FRAME_IMAGE: MapFrame
MAP_DOMAIN_UNSPECIFIED: MapDomain
MAP_DOMAIN_PIXEL: MapDomain
MAP_DOMAIN_WAVELET: MapDomain
CORRUPTION_UNSPECIFIED: Corruption
CORRUPTION_GAUSSIAN_NOISE: Corruption
CORRUPTION_GAUSSIAN_BLUR: Corruption
CORRUPTION_JPEG: Corruption
CORRUPTION_CONTRAST: Corruption
NORMALISATION_UNSPECIFIED: Normalisation
NORMALISATION_MAX_ABS: Normalisation
NORMALISATION_MIN_MAX: Normalisation
NORMALISATION_Z_SCORE: Normalisation
NORMALISATION_PERCENTILE: Normalisation
NORMALISATION_SUM_TO_ONE: Normalisation
NORMALISATION_RANK: Normalisation
NORMALISATION_SECOND_MOMENT: Normalisation
AGGREGATOR_UNSPECIFIED: Aggregator
AGGREGATOR_MEAN: Aggregator
AGGREGATOR_MEDIAN: Aggregator
AGGREGATOR_MAX: Aggregator
AGGREGATOR_MIN: Aggregator
AGGREGATOR_RANK_MEAN: Aggregator
AGGREGATOR_UCB: Aggregator
AGGREGATOR_LCB: Aggregator
AGGREGATOR_PI: Aggregator
AGGREGATOR_EI: Aggregator
SALIENCE_MEASURE_UNSPECIFIED: SalienceMeasure
SALIENCE_MEASURE_ENTROPY: SalienceMeasure
SALIENCE_MEASURE_OUT_OF_SET: SalienceMeasure
SALIENCE_MEASURE_TRANSFORMS: SalienceMeasure
SALIENCE_MEASURE_STABILITY: SalienceMeasure
SALIENCE_MEASURE_DEGRADATION: SalienceMeasure

class Target(_message.Message):
    __slots__ = ("class_indices", "top_k")
    CLASS_INDICES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    class_indices: _containers.RepeatedScalarFieldContainer[int]
    top_k: int
    def __init__(self, class_indices: _Optional[_Iterable[int]] = ..., top_k: _Optional[int] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("total_ms", "model_ms", "prepare_ms", "queue_ms")
    TOTAL_MS_FIELD_NUMBER: _ClassVar[int]
    MODEL_MS_FIELD_NUMBER: _ClassVar[int]
    PREPARE_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    total_ms: float
    model_ms: float
    prepare_ms: float
    queue_ms: float
    def __init__(self, total_ms: _Optional[float] = ..., model_ms: _Optional[float] = ..., prepare_ms: _Optional[float] = ..., queue_ms: _Optional[float] = ...) -> None: ...

class ClassScore(_message.Message):
    __slots__ = ("class_index", "label", "score")
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    class_index: int
    label: str
    score: float
    def __init__(self, class_index: _Optional[int] = ..., label: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("model_name", "images", "top_k", "score_space", "batch_size")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    images: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Image]
    top_k: int
    score_space: ScoreSpace
    batch_size: int
    def __init__(self, model_name: _Optional[str] = ..., images: _Optional[_Iterable[_Union[_tensor_pb2.Image, _Mapping]]] = ..., top_k: _Optional[int] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., batch_size: _Optional[int] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("top", "scores", "above_threshold")
    TOP_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    ABOVE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    top: _containers.RepeatedCompositeFieldContainer[ClassScore]
    scores: _tensor_pb2.Tensor
    above_threshold: _containers.RepeatedCompositeFieldContainer[ClassScore]
    def __init__(self, top: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ..., scores: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., above_threshold: _Optional[_Iterable[_Union[ClassScore, _Mapping]]] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("model_name", "predictions", "forward_passes", "provider", "timings", "score_space")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    forward_passes: int
    provider: str
    timings: Timings
    score_space: ScoreSpace
    def __init__(self, model_name: _Optional[str] = ..., predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ..., forward_passes: _Optional[int] = ..., provider: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ...) -> None: ...

class ExplainRequest(_message.Message):
    __slots__ = ("model_name", "image", "target", "seed", "batch_size", "score_space", "baseline", "method", "metrics", "mask", "metric_score_space")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    METRIC_SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    image: _tensor_pb2.Image
    target: Target
    seed: int
    batch_size: int
    score_space: ScoreSpace
    baseline: _methods_pb2.Baseline
    method: _methods_pb2.MethodSpec
    metrics: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.MetricSpec]
    mask: _tensor_pb2.Image
    metric_score_space: ScoreSpace
    def __init__(self, model_name: _Optional[str] = ..., image: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ..., target: _Optional[_Union[Target, _Mapping]] = ..., seed: _Optional[int] = ..., batch_size: _Optional[int] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., baseline: _Optional[_Union[_methods_pb2.Baseline, _Mapping]] = ..., method: _Optional[_Union[_methods_pb2.MethodSpec, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[_metrics_pb2.MetricSpec, _Mapping]]] = ..., mask: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ..., metric_score_space: _Optional[_Union[ScoreSpace, str]] = ...) -> None: ...

class ExplainStreamRequest(_message.Message):
    __slots__ = ("request",)
    REQUEST_FIELD_NUMBER: _ClassVar[int]
    request: ExplainRequest
    def __init__(self, request: _Optional[_Union[ExplainRequest, _Mapping]] = ...) -> None: ...

class BaselineReport(_message.Message):
    __slots__ = ("target_scores", "predicted")
    TARGET_SCORES_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    target_scores: _containers.RepeatedScalarFieldContainer[float]
    predicted: ClassScore
    def __init__(self, target_scores: _Optional[_Iterable[float]] = ..., predicted: _Optional[_Union[ClassScore, _Mapping]] = ...) -> None: ...

class Attribution(_message.Message):
    __slots__ = ("class_index", "label", "score", "map", "metrics", "wcam", "eva", "precision")
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    WCAM_FIELD_NUMBER: _ClassVar[int]
    EVA_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    class_index: int
    label: str
    score: float
    map: _tensor_pb2.Tensor
    metrics: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.MetricResult]
    wcam: WcamDetails
    eva: EvaDetails
    precision: Precision
    def __init__(self, class_index: _Optional[int] = ..., label: _Optional[str] = ..., score: _Optional[float] = ..., map: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., metrics: _Optional[_Iterable[_Union[_metrics_pb2.MetricResult, _Mapping]]] = ..., wcam: _Optional[_Union[WcamDetails, _Mapping]] = ..., eva: _Optional[_Union[EvaDetails, _Mapping]] = ..., precision: _Optional[_Union[Precision, _Mapping]] = ...) -> None: ...

class Precision(_message.Message):
    __slots__ = ("standard_error", "reliability", "samples", "max_samples", "forward_passes", "rounds", "stop_reason", "samples_for_target", "target_reliability")
    STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MAX_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    ROUNDS_FIELD_NUMBER: _ClassVar[int]
    STOP_REASON_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FOR_TARGET_FIELD_NUMBER: _ClassVar[int]
    TARGET_RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    standard_error: _tensor_pb2.Tensor
    reliability: float
    samples: int
    max_samples: int
    forward_passes: int
    rounds: int
    stop_reason: StopReason
    samples_for_target: int
    target_reliability: float
    def __init__(self, standard_error: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., reliability: _Optional[float] = ..., samples: _Optional[int] = ..., max_samples: _Optional[int] = ..., forward_passes: _Optional[int] = ..., rounds: _Optional[int] = ..., stop_reason: _Optional[_Union[StopReason, str]] = ..., samples_for_target: _Optional[int] = ..., target_reliability: _Optional[float] = ...) -> None: ...

class EvaDetails(_message.Message):
    __slots__ = ("adversarial_overlap", "group_overlaps", "group_importance", "competitors", "segments", "certified", "bound_method", "epsilon", "certified_radius", "split_layer", "verified", "head_runtime", "group_standard_error", "hybrid_samples_used", "ball_certified", "radius_source")
    ADVERSARIAL_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    GROUP_OVERLAPS_FIELD_NUMBER: _ClassVar[int]
    GROUP_IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    COMPETITORS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    CERTIFIED_FIELD_NUMBER: _ClassVar[int]
    BOUND_METHOD_FIELD_NUMBER: _ClassVar[int]
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    CERTIFIED_RADIUS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_LAYER_FIELD_NUMBER: _ClassVar[int]
    VERIFIED_FIELD_NUMBER: _ClassVar[int]
    HEAD_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    GROUP_STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    HYBRID_SAMPLES_USED_FIELD_NUMBER: _ClassVar[int]
    BALL_CERTIFIED_FIELD_NUMBER: _ClassVar[int]
    RADIUS_SOURCE_FIELD_NUMBER: _ClassVar[int]
    adversarial_overlap: float
    group_overlaps: _containers.RepeatedScalarFieldContainer[float]
    group_importance: _containers.RepeatedScalarFieldContainer[float]
    competitors: _containers.RepeatedScalarFieldContainer[int]
    segments: _tensor_pb2.Tensor
    certified: bool
    bound_method: _methods_pb2.BoundMethod
    epsilon: float
    certified_radius: float
    split_layer: str
    verified: str
    head_runtime: str
    group_standard_error: _containers.RepeatedScalarFieldContainer[float]
    hybrid_samples_used: int
    ball_certified: bool
    radius_source: str
    def __init__(self, adversarial_overlap: _Optional[float] = ..., group_overlaps: _Optional[_Iterable[float]] = ..., group_importance: _Optional[_Iterable[float]] = ..., competitors: _Optional[_Iterable[int]] = ..., segments: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., certified: _Optional[bool] = ..., bound_method: _Optional[_Union[_methods_pb2.BoundMethod, str]] = ..., epsilon: _Optional[float] = ..., certified_radius: _Optional[float] = ..., split_layer: _Optional[str] = ..., verified: _Optional[str] = ..., head_runtime: _Optional[str] = ..., group_standard_error: _Optional[_Iterable[float]] = ..., hybrid_samples_used: _Optional[int] = ..., ball_certified: _Optional[bool] = ..., radius_source: _Optional[str] = ...) -> None: ...

class SubbandImportance(_message.Message):
    __slots__ = ("name", "level", "importance")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    level: int
    importance: float
    def __init__(self, name: _Optional[str] = ..., level: _Optional[int] = ..., importance: _Optional[float] = ...) -> None: ...

class WcamDetails(_message.Message):
    __slots__ = ("wavelet_map", "level_importance", "subbands", "approximation_share", "sufficient_image", "sufficient_depth", "levels", "wavelet", "grid_size", "uninformative", "level_importance_lower", "level_importance_upper", "subband_importance_lower", "subband_importance_upper", "confidence", "dominant_level_resolved", "sufficient_depth_resolved")
    WAVELET_MAP_FIELD_NUMBER: _ClassVar[int]
    LEVEL_IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    SUBBANDS_FIELD_NUMBER: _ClassVar[int]
    APPROXIMATION_SHARE_FIELD_NUMBER: _ClassVar[int]
    SUFFICIENT_IMAGE_FIELD_NUMBER: _ClassVar[int]
    SUFFICIENT_DEPTH_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    WAVELET_FIELD_NUMBER: _ClassVar[int]
    GRID_SIZE_FIELD_NUMBER: _ClassVar[int]
    UNINFORMATIVE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_IMPORTANCE_LOWER_FIELD_NUMBER: _ClassVar[int]
    LEVEL_IMPORTANCE_UPPER_FIELD_NUMBER: _ClassVar[int]
    SUBBAND_IMPORTANCE_LOWER_FIELD_NUMBER: _ClassVar[int]
    SUBBAND_IMPORTANCE_UPPER_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    DOMINANT_LEVEL_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    SUFFICIENT_DEPTH_RESOLVED_FIELD_NUMBER: _ClassVar[int]
    wavelet_map: _tensor_pb2.Tensor
    level_importance: _containers.RepeatedScalarFieldContainer[float]
    subbands: _containers.RepeatedCompositeFieldContainer[SubbandImportance]
    approximation_share: float
    sufficient_image: _tensor_pb2.Tensor
    sufficient_depth: int
    levels: int
    wavelet: str
    grid_size: int
    uninformative: bool
    level_importance_lower: _containers.RepeatedScalarFieldContainer[float]
    level_importance_upper: _containers.RepeatedScalarFieldContainer[float]
    subband_importance_lower: _containers.RepeatedScalarFieldContainer[float]
    subband_importance_upper: _containers.RepeatedScalarFieldContainer[float]
    confidence: float
    dominant_level_resolved: bool
    sufficient_depth_resolved: bool
    def __init__(self, wavelet_map: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., level_importance: _Optional[_Iterable[float]] = ..., subbands: _Optional[_Iterable[_Union[SubbandImportance, _Mapping]]] = ..., approximation_share: _Optional[float] = ..., sufficient_image: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., sufficient_depth: _Optional[int] = ..., levels: _Optional[int] = ..., wavelet: _Optional[str] = ..., grid_size: _Optional[int] = ..., uninformative: _Optional[bool] = ..., level_importance_lower: _Optional[_Iterable[float]] = ..., level_importance_upper: _Optional[_Iterable[float]] = ..., subband_importance_lower: _Optional[_Iterable[float]] = ..., subband_importance_upper: _Optional[_Iterable[float]] = ..., confidence: _Optional[float] = ..., dominant_level_resolved: _Optional[bool] = ..., sufficient_depth_resolved: _Optional[bool] = ...) -> None: ...

class ExplainResponse(_message.Message):
    __slots__ = ("model_name", "method", "attributions", "seed", "forward_passes", "provider", "timings", "baseline", "score_space", "model_input_image", "parameters_json", "map_frame", "placement", "metric_score_space")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTIONS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    MODEL_INPUT_IMAGE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_JSON_FIELD_NUMBER: _ClassVar[int]
    MAP_FRAME_FIELD_NUMBER: _ClassVar[int]
    PLACEMENT_FIELD_NUMBER: _ClassVar[int]
    METRIC_SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    method: str
    attributions: _containers.RepeatedCompositeFieldContainer[Attribution]
    seed: int
    forward_passes: int
    provider: str
    timings: Timings
    baseline: BaselineReport
    score_space: ScoreSpace
    model_input_image: _tensor_pb2.Tensor
    parameters_json: str
    map_frame: MapFrame
    placement: ImagePlacement
    metric_score_space: ScoreSpace
    def __init__(self, model_name: _Optional[str] = ..., method: _Optional[str] = ..., attributions: _Optional[_Iterable[_Union[Attribution, _Mapping]]] = ..., seed: _Optional[int] = ..., forward_passes: _Optional[int] = ..., provider: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., baseline: _Optional[_Union[BaselineReport, _Mapping]] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., model_input_image: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., parameters_json: _Optional[str] = ..., map_frame: _Optional[_Union[MapFrame, str]] = ..., placement: _Optional[_Union[ImagePlacement, _Mapping]] = ..., metric_score_space: _Optional[_Union[ScoreSpace, str]] = ...) -> None: ...

class ImagePlacement(_message.Message):
    __slots__ = ("image_height", "image_width", "top", "left", "height", "width")
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    LEFT_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    image_height: int
    image_width: int
    top: int
    left: int
    height: int
    width: int
    def __init__(self, image_height: _Optional[int] = ..., image_width: _Optional[int] = ..., top: _Optional[int] = ..., left: _Optional[int] = ..., height: _Optional[int] = ..., width: _Optional[int] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("stage", "done", "total", "elapsed_ms")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    done: int
    total: int
    elapsed_ms: float
    def __init__(self, stage: _Optional[str] = ..., done: _Optional[int] = ..., total: _Optional[int] = ..., elapsed_ms: _Optional[float] = ...) -> None: ...

class ExplainStreamResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: ExplainResponse
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[ExplainResponse, _Mapping]] = ...) -> None: ...

class ListMethodsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ParameterInfo(_message.Message):
    __slots__ = ("name", "type", "default_value", "description")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    default_value: str
    description: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., default_value: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class MethodInfo(_message.Message):
    __slots__ = ("name", "description", "reference", "parameters", "cost")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    COST_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    reference: str
    parameters: _containers.RepeatedCompositeFieldContainer[ParameterInfo]
    cost: str
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., reference: _Optional[str] = ..., parameters: _Optional[_Iterable[_Union[ParameterInfo, _Mapping]]] = ..., cost: _Optional[str] = ...) -> None: ...

class ListMethodsResponse(_message.Message):
    __slots__ = ("methods", "metrics")
    METHODS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    methods: _containers.RepeatedCompositeFieldContainer[MethodInfo]
    metrics: _containers.RepeatedCompositeFieldContainer[MethodInfo]
    def __init__(self, methods: _Optional[_Iterable[_Union[MethodInfo, _Mapping]]] = ..., metrics: _Optional[_Iterable[_Union[MethodInfo, _Mapping]]] = ...) -> None: ...

class EvaluateRequest(_message.Message):
    __slots__ = ("model_name", "image", "attribution", "class_index", "metrics", "mask", "baseline", "seed", "score_space", "batch_size", "attribution_domain")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_DOMAIN_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    image: _tensor_pb2.Image
    attribution: _tensor_pb2.Tensor
    class_index: int
    metrics: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.MetricSpec]
    mask: _tensor_pb2.Image
    baseline: _methods_pb2.Baseline
    seed: int
    score_space: ScoreSpace
    batch_size: int
    attribution_domain: MapDomain
    def __init__(self, model_name: _Optional[str] = ..., image: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ..., attribution: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., class_index: _Optional[int] = ..., metrics: _Optional[_Iterable[_Union[_metrics_pb2.MetricSpec, _Mapping]]] = ..., mask: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ..., baseline: _Optional[_Union[_methods_pb2.Baseline, _Mapping]] = ..., seed: _Optional[int] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., batch_size: _Optional[int] = ..., attribution_domain: _Optional[_Union[MapDomain, str]] = ...) -> None: ...

class EvaluateResponse(_message.Message):
    __slots__ = ("model_name", "class_index", "label", "results", "seed", "forward_passes", "provider", "timings", "attribution_frame", "score_space")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    ATTRIBUTION_FRAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    class_index: int
    label: str
    results: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.MetricResult]
    seed: int
    forward_passes: int
    provider: str
    timings: Timings
    attribution_frame: MapFrame
    score_space: ScoreSpace
    def __init__(self, model_name: _Optional[str] = ..., class_index: _Optional[int] = ..., label: _Optional[str] = ..., results: _Optional[_Iterable[_Union[_metrics_pb2.MetricResult, _Mapping]]] = ..., seed: _Optional[int] = ..., forward_passes: _Optional[int] = ..., provider: _Optional[str] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., attribution_frame: _Optional[_Union[MapFrame, str]] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ...) -> None: ...

class ExplanationSetting(_message.Message):
    __slots__ = ("label", "method", "baseline")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    label: str
    method: _methods_pb2.MethodSpec
    baseline: _methods_pb2.Baseline
    def __init__(self, label: _Optional[str] = ..., method: _Optional[_Union[_methods_pb2.MethodSpec, _Mapping]] = ..., baseline: _Optional[_Union[_methods_pb2.Baseline, _Mapping]] = ...) -> None: ...

class Matrix(_message.Message):
    __slots__ = ("size", "values")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    size: int
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, size: _Optional[int] = ..., values: _Optional[_Iterable[float]] = ...) -> None: ...

class ConsistencyRequest(_message.Message):
    __slots__ = ("model_name", "image", "class_index", "settings", "metric", "metric_baselines", "top_fraction", "seed", "score_space", "batch_size", "return_maps", "metric_score_space")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    METRIC_BASELINES_FIELD_NUMBER: _ClassVar[int]
    TOP_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    RETURN_MAPS_FIELD_NUMBER: _ClassVar[int]
    METRIC_SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    image: _tensor_pb2.Image
    class_index: int
    settings: _containers.RepeatedCompositeFieldContainer[ExplanationSetting]
    metric: _metrics_pb2.MetricSpec
    metric_baselines: _containers.RepeatedCompositeFieldContainer[_methods_pb2.Baseline]
    top_fraction: float
    seed: int
    score_space: ScoreSpace
    batch_size: int
    return_maps: bool
    metric_score_space: ScoreSpace
    def __init__(self, model_name: _Optional[str] = ..., image: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ..., class_index: _Optional[int] = ..., settings: _Optional[_Iterable[_Union[ExplanationSetting, _Mapping]]] = ..., metric: _Optional[_Union[_metrics_pb2.MetricSpec, _Mapping]] = ..., metric_baselines: _Optional[_Iterable[_Union[_methods_pb2.Baseline, _Mapping]]] = ..., top_fraction: _Optional[float] = ..., seed: _Optional[int] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., batch_size: _Optional[int] = ..., return_maps: _Optional[bool] = ..., metric_score_space: _Optional[_Union[ScoreSpace, str]] = ...) -> None: ...

class MetricRanking(_message.Message):
    __slots__ = ("baseline", "scores", "ranks")
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    RANKS_FIELD_NUMBER: _ClassVar[int]
    baseline: str
    scores: _containers.RepeatedScalarFieldContainer[float]
    ranks: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, baseline: _Optional[str] = ..., scores: _Optional[_Iterable[float]] = ..., ranks: _Optional[_Iterable[int]] = ...) -> None: ...

class ConsistencyResult(_message.Message):
    __slots__ = ("model_name", "class_index", "label", "settings", "spearman", "ssim", "top_iou", "metric", "rankings", "kendall_tau", "maps", "seed", "forward_passes", "timings", "score_space", "metric_score_space", "setting_precision")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SPEARMAN_FIELD_NUMBER: _ClassVar[int]
    SSIM_FIELD_NUMBER: _ClassVar[int]
    TOP_IOU_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    RANKINGS_FIELD_NUMBER: _ClassVar[int]
    KENDALL_TAU_FIELD_NUMBER: _ClassVar[int]
    MAPS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    METRIC_SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    SETTING_PRECISION_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    class_index: int
    label: str
    settings: _containers.RepeatedScalarFieldContainer[str]
    spearman: Matrix
    ssim: Matrix
    top_iou: Matrix
    metric: str
    rankings: _containers.RepeatedCompositeFieldContainer[MetricRanking]
    kendall_tau: Matrix
    maps: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Tensor]
    seed: int
    forward_passes: int
    timings: Timings
    score_space: ScoreSpace
    metric_score_space: ScoreSpace
    setting_precision: _containers.RepeatedCompositeFieldContainer[Precision]
    def __init__(self, model_name: _Optional[str] = ..., class_index: _Optional[int] = ..., label: _Optional[str] = ..., settings: _Optional[_Iterable[str]] = ..., spearman: _Optional[_Union[Matrix, _Mapping]] = ..., ssim: _Optional[_Union[Matrix, _Mapping]] = ..., top_iou: _Optional[_Union[Matrix, _Mapping]] = ..., metric: _Optional[str] = ..., rankings: _Optional[_Iterable[_Union[MetricRanking, _Mapping]]] = ..., kendall_tau: _Optional[_Union[Matrix, _Mapping]] = ..., maps: _Optional[_Iterable[_Union[_tensor_pb2.Tensor, _Mapping]]] = ..., seed: _Optional[int] = ..., forward_passes: _Optional[int] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., metric_score_space: _Optional[_Union[ScoreSpace, str]] = ..., setting_precision: _Optional[_Iterable[_Union[Precision, _Mapping]]] = ...) -> None: ...

class ConsistencyResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: ConsistencyResult
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[ConsistencyResult, _Mapping]] = ...) -> None: ...

class AnalyzeScalesRequest(_message.Message):
    __slots__ = ("model_name", "image", "class_index", "wcam", "corruptions", "severities", "zooms", "seed", "score_space", "batch_size", "return_maps")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    WCAM_FIELD_NUMBER: _ClassVar[int]
    CORRUPTIONS_FIELD_NUMBER: _ClassVar[int]
    SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    ZOOMS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    RETURN_MAPS_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    image: _tensor_pb2.Image
    class_index: int
    wcam: _methods_pb2.WcamParams
    corruptions: _containers.RepeatedScalarFieldContainer[Corruption]
    severities: _containers.RepeatedScalarFieldContainer[int]
    zooms: _containers.RepeatedScalarFieldContainer[float]
    seed: int
    score_space: ScoreSpace
    batch_size: int
    return_maps: bool
    def __init__(self, model_name: _Optional[str] = ..., image: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ..., class_index: _Optional[int] = ..., wcam: _Optional[_Union[_methods_pb2.WcamParams, _Mapping]] = ..., corruptions: _Optional[_Iterable[_Union[Corruption, str]]] = ..., severities: _Optional[_Iterable[int]] = ..., zooms: _Optional[_Iterable[float]] = ..., seed: _Optional[int] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., batch_size: _Optional[int] = ..., return_maps: _Optional[bool] = ...) -> None: ...

class ScaleVariant(_message.Message):
    __slots__ = ("name", "corruption", "severity", "zoom", "predicted", "target_score", "level_importance", "approximation_share", "image", "map", "wcam", "precision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CORRUPTION_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    ZOOM_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_FIELD_NUMBER: _ClassVar[int]
    TARGET_SCORE_FIELD_NUMBER: _ClassVar[int]
    LEVEL_IMPORTANCE_FIELD_NUMBER: _ClassVar[int]
    APPROXIMATION_SHARE_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    WCAM_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    corruption: Corruption
    severity: int
    zoom: float
    predicted: ClassScore
    target_score: float
    level_importance: _containers.RepeatedScalarFieldContainer[float]
    approximation_share: float
    image: _tensor_pb2.Tensor
    map: _tensor_pb2.Tensor
    wcam: WcamDetails
    precision: Precision
    def __init__(self, name: _Optional[str] = ..., corruption: _Optional[_Union[Corruption, str]] = ..., severity: _Optional[int] = ..., zoom: _Optional[float] = ..., predicted: _Optional[_Union[ClassScore, _Mapping]] = ..., target_score: _Optional[float] = ..., level_importance: _Optional[_Iterable[float]] = ..., approximation_share: _Optional[float] = ..., image: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., map: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., wcam: _Optional[_Union[WcamDetails, _Mapping]] = ..., precision: _Optional[_Union[Precision, _Mapping]] = ...) -> None: ...

class AnalyzeScalesResult(_message.Message):
    __slots__ = ("model_name", "class_index", "label", "variants", "seed", "forward_passes", "timings", "score_space")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    class_index: int
    label: str
    variants: _containers.RepeatedCompositeFieldContainer[ScaleVariant]
    seed: int
    forward_passes: int
    timings: Timings
    score_space: ScoreSpace
    def __init__(self, model_name: _Optional[str] = ..., class_index: _Optional[int] = ..., label: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[ScaleVariant, _Mapping]]] = ..., seed: _Optional[int] = ..., forward_passes: _Optional[int] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ...) -> None: ...

class AnalyzeScalesResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: AnalyzeScalesResult
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[AnalyzeScalesResult, _Mapping]] = ...) -> None: ...

class AggregateRequest(_message.Message):
    __slots__ = ("model_name", "images", "class_index", "maps", "methods", "normalisation", "absolute", "aggregator", "kappa", "reference_quantile", "metric", "search", "kappas", "baseline", "seed", "score_space", "batch_size", "return_members", "metric_score_space", "validation_fraction", "selection", "held_out", "num_splits", "split_seed")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDEX_FIELD_NUMBER: _ClassVar[int]
    MAPS_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    NORMALISATION_FIELD_NUMBER: _ClassVar[int]
    ABSOLUTE_FIELD_NUMBER: _ClassVar[int]
    AGGREGATOR_FIELD_NUMBER: _ClassVar[int]
    KAPPA_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_QUANTILE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    SEARCH_FIELD_NUMBER: _ClassVar[int]
    KAPPAS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    RETURN_MEMBERS_FIELD_NUMBER: _ClassVar[int]
    METRIC_SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    VALIDATION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_FIELD_NUMBER: _ClassVar[int]
    NUM_SPLITS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_SEED_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    images: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Image]
    class_index: int
    maps: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Tensor]
    methods: _containers.RepeatedCompositeFieldContainer[_methods_pb2.MethodSpec]
    normalisation: Normalisation
    absolute: bool
    aggregator: Aggregator
    kappa: float
    reference_quantile: float
    metric: _metrics_pb2.MetricSpec
    search: bool
    kappas: _containers.RepeatedScalarFieldContainer[float]
    baseline: _methods_pb2.Baseline
    seed: int
    score_space: ScoreSpace
    batch_size: int
    return_members: bool
    metric_score_space: ScoreSpace
    validation_fraction: float
    selection: _containers.RepeatedScalarFieldContainer[int]
    held_out: _containers.RepeatedScalarFieldContainer[int]
    num_splits: int
    split_seed: int
    def __init__(self, model_name: _Optional[str] = ..., images: _Optional[_Iterable[_Union[_tensor_pb2.Image, _Mapping]]] = ..., class_index: _Optional[int] = ..., maps: _Optional[_Iterable[_Union[_tensor_pb2.Tensor, _Mapping]]] = ..., methods: _Optional[_Iterable[_Union[_methods_pb2.MethodSpec, _Mapping]]] = ..., normalisation: _Optional[_Union[Normalisation, str]] = ..., absolute: _Optional[bool] = ..., aggregator: _Optional[_Union[Aggregator, str]] = ..., kappa: _Optional[float] = ..., reference_quantile: _Optional[float] = ..., metric: _Optional[_Union[_metrics_pb2.MetricSpec, _Mapping]] = ..., search: _Optional[bool] = ..., kappas: _Optional[_Iterable[float]] = ..., baseline: _Optional[_Union[_methods_pb2.Baseline, _Mapping]] = ..., seed: _Optional[int] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., batch_size: _Optional[int] = ..., return_members: _Optional[bool] = ..., metric_score_space: _Optional[_Union[ScoreSpace, str]] = ..., validation_fraction: _Optional[float] = ..., selection: _Optional[_Iterable[int]] = ..., held_out: _Optional[_Iterable[int]] = ..., num_splits: _Optional[int] = ..., split_seed: _Optional[int] = ...) -> None: ...

class AggregateSplit(_message.Message):
    __slots__ = ("selection", "held_out", "selection_scores", "held_out_scores", "member_selection_scores", "member_held_out_scores", "chosen", "best_member", "selection_gain", "held_out_gain")
    SELECTION_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_FIELD_NUMBER: _ClassVar[int]
    SELECTION_SCORES_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_SCORES_FIELD_NUMBER: _ClassVar[int]
    MEMBER_SELECTION_SCORES_FIELD_NUMBER: _ClassVar[int]
    MEMBER_HELD_OUT_SCORES_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    BEST_MEMBER_FIELD_NUMBER: _ClassVar[int]
    SELECTION_GAIN_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_GAIN_FIELD_NUMBER: _ClassVar[int]
    selection: _containers.RepeatedScalarFieldContainer[int]
    held_out: _containers.RepeatedScalarFieldContainer[int]
    selection_scores: _containers.RepeatedScalarFieldContainer[float]
    held_out_scores: _containers.RepeatedScalarFieldContainer[float]
    member_selection_scores: _containers.RepeatedScalarFieldContainer[float]
    member_held_out_scores: _containers.RepeatedScalarFieldContainer[float]
    chosen: int
    best_member: int
    selection_gain: float
    held_out_gain: float
    def __init__(self, selection: _Optional[_Iterable[int]] = ..., held_out: _Optional[_Iterable[int]] = ..., selection_scores: _Optional[_Iterable[float]] = ..., held_out_scores: _Optional[_Iterable[float]] = ..., member_selection_scores: _Optional[_Iterable[float]] = ..., member_held_out_scores: _Optional[_Iterable[float]] = ..., chosen: _Optional[int] = ..., best_member: _Optional[int] = ..., selection_gain: _Optional[float] = ..., held_out_gain: _Optional[float] = ...) -> None: ...

class GainSpread(_message.Message):
    __slots__ = ("mean", "sd", "standard_error", "min", "max", "splits")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    SD_FIELD_NUMBER: _ClassVar[int]
    STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    mean: float
    sd: float
    standard_error: float
    min: float
    max: float
    splits: int
    def __init__(self, mean: _Optional[float] = ..., sd: _Optional[float] = ..., standard_error: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., splits: _Optional[int] = ...) -> None: ...

class Combination(_message.Message):
    __slots__ = ("normalisation", "aggregator", "kappa", "score")
    NORMALISATION_FIELD_NUMBER: _ClassVar[int]
    AGGREGATOR_FIELD_NUMBER: _ClassVar[int]
    KAPPA_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    normalisation: Normalisation
    aggregator: Aggregator
    kappa: float
    score: float
    def __init__(self, normalisation: _Optional[_Union[Normalisation, str]] = ..., aggregator: _Optional[_Union[Aggregator, str]] = ..., kappa: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class AggregateResult(_message.Message):
    __slots__ = ("model_name", "class_indices", "members", "member_scores", "chosen", "table", "aggregates", "aggregate_scores", "gain", "metric", "higher_is_better", "member_maps", "seed", "forward_passes", "timings", "score_space", "metric_score_space", "member_precision", "splits", "held_out_gain", "selection_gain", "split_seed")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDICES_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_SCORES_FIELD_NUMBER: _ClassVar[int]
    CHOSEN_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    AGGREGATES_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_SCORES_FIELD_NUMBER: _ClassVar[int]
    GAIN_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    HIGHER_IS_BETTER_FIELD_NUMBER: _ClassVar[int]
    MEMBER_MAPS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    METRIC_SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_PRECISION_FIELD_NUMBER: _ClassVar[int]
    SPLITS_FIELD_NUMBER: _ClassVar[int]
    HELD_OUT_GAIN_FIELD_NUMBER: _ClassVar[int]
    SELECTION_GAIN_FIELD_NUMBER: _ClassVar[int]
    SPLIT_SEED_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    class_indices: _containers.RepeatedScalarFieldContainer[int]
    members: _containers.RepeatedScalarFieldContainer[str]
    member_scores: _tensor_pb2.Tensor
    chosen: Combination
    table: _containers.RepeatedCompositeFieldContainer[Combination]
    aggregates: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Tensor]
    aggregate_scores: _containers.RepeatedScalarFieldContainer[float]
    gain: float
    metric: str
    higher_is_better: bool
    member_maps: _tensor_pb2.Tensor
    seed: int
    forward_passes: int
    timings: Timings
    score_space: ScoreSpace
    metric_score_space: ScoreSpace
    member_precision: _containers.RepeatedCompositeFieldContainer[Precision]
    splits: _containers.RepeatedCompositeFieldContainer[AggregateSplit]
    held_out_gain: GainSpread
    selection_gain: GainSpread
    split_seed: int
    def __init__(self, model_name: _Optional[str] = ..., class_indices: _Optional[_Iterable[int]] = ..., members: _Optional[_Iterable[str]] = ..., member_scores: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., chosen: _Optional[_Union[Combination, _Mapping]] = ..., table: _Optional[_Iterable[_Union[Combination, _Mapping]]] = ..., aggregates: _Optional[_Iterable[_Union[_tensor_pb2.Tensor, _Mapping]]] = ..., aggregate_scores: _Optional[_Iterable[float]] = ..., gain: _Optional[float] = ..., metric: _Optional[str] = ..., higher_is_better: _Optional[bool] = ..., member_maps: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., seed: _Optional[int] = ..., forward_passes: _Optional[int] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., metric_score_space: _Optional[_Union[ScoreSpace, str]] = ..., member_precision: _Optional[_Iterable[_Union[Precision, _Mapping]]] = ..., splits: _Optional[_Iterable[_Union[AggregateSplit, _Mapping]]] = ..., held_out_gain: _Optional[_Union[GainSpread, _Mapping]] = ..., selection_gain: _Optional[_Union[GainSpread, _Mapping]] = ..., split_seed: _Optional[int] = ...) -> None: ...

class AggregateResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: AggregateResult
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[AggregateResult, _Mapping]] = ...) -> None: ...

class MeasureRequest(_message.Message):
    __slots__ = ("model_name", "images", "method", "measures", "stability_models", "noise_levels", "baseline", "seed", "score_space", "batch_size")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    STABILITY_MODELS_FIELD_NUMBER: _ClassVar[int]
    NOISE_LEVELS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    images: _containers.RepeatedCompositeFieldContainer[_tensor_pb2.Image]
    method: _methods_pb2.MethodSpec
    measures: _containers.RepeatedScalarFieldContainer[SalienceMeasure]
    stability_models: _containers.RepeatedScalarFieldContainer[str]
    noise_levels: _containers.RepeatedScalarFieldContainer[float]
    baseline: _methods_pb2.Baseline
    seed: int
    score_space: ScoreSpace
    batch_size: int
    def __init__(self, model_name: _Optional[str] = ..., images: _Optional[_Iterable[_Union[_tensor_pb2.Image, _Mapping]]] = ..., method: _Optional[_Union[_methods_pb2.MethodSpec, _Mapping]] = ..., measures: _Optional[_Iterable[_Union[SalienceMeasure, str]]] = ..., stability_models: _Optional[_Iterable[str]] = ..., noise_levels: _Optional[_Iterable[float]] = ..., baseline: _Optional[_Union[_methods_pb2.Baseline, _Mapping]] = ..., seed: _Optional[int] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., batch_size: _Optional[int] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("mean", "std", "min", "max", "count")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    mean: float
    std: float
    min: float
    max: float
    count: int
    def __init__(self, mean: _Optional[float] = ..., std: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class Series(_message.Message):
    __slots__ = ("name", "values", "summary")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    name: str
    values: _containers.RepeatedScalarFieldContainer[float]
    summary: Summary
    def __init__(self, name: _Optional[str] = ..., values: _Optional[_Iterable[float]] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ...) -> None: ...

class NoiseCurve(_message.Message):
    __slots__ = ("scores", "ssim", "score_auc", "ssim_auc")
    SCORES_FIELD_NUMBER: _ClassVar[int]
    SSIM_FIELD_NUMBER: _ClassVar[int]
    SCORE_AUC_FIELD_NUMBER: _ClassVar[int]
    SSIM_AUC_FIELD_NUMBER: _ClassVar[int]
    scores: _containers.RepeatedScalarFieldContainer[float]
    ssim: _containers.RepeatedScalarFieldContainer[float]
    score_auc: float
    ssim_auc: float
    def __init__(self, scores: _Optional[_Iterable[float]] = ..., ssim: _Optional[_Iterable[float]] = ..., score_auc: _Optional[float] = ..., ssim_auc: _Optional[float] = ...) -> None: ...

class MeasureResult(_message.Message):
    __slots__ = ("model_name", "method", "class_indices", "entropy", "noise_levels", "noise_curves", "out_of_set", "transforms", "stability_models", "stability", "degradation", "seed", "forward_passes", "timings", "score_space", "clean_precision", "reliability")
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CLASS_INDICES_FIELD_NUMBER: _ClassVar[int]
    ENTROPY_FIELD_NUMBER: _ClassVar[int]
    NOISE_LEVELS_FIELD_NUMBER: _ClassVar[int]
    NOISE_CURVES_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_SET_FIELD_NUMBER: _ClassVar[int]
    TRANSFORMS_FIELD_NUMBER: _ClassVar[int]
    STABILITY_MODELS_FIELD_NUMBER: _ClassVar[int]
    STABILITY_FIELD_NUMBER: _ClassVar[int]
    DEGRADATION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    CLEAN_PRECISION_FIELD_NUMBER: _ClassVar[int]
    RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    model_name: str
    method: str
    class_indices: _containers.RepeatedScalarFieldContainer[int]
    entropy: _containers.RepeatedCompositeFieldContainer[Series]
    noise_levels: _containers.RepeatedScalarFieldContainer[float]
    noise_curves: _containers.RepeatedCompositeFieldContainer[NoiseCurve]
    out_of_set: _containers.RepeatedCompositeFieldContainer[Series]
    transforms: _containers.RepeatedCompositeFieldContainer[Series]
    stability_models: _containers.RepeatedScalarFieldContainer[str]
    stability: _containers.RepeatedCompositeFieldContainer[Series]
    degradation: _containers.RepeatedCompositeFieldContainer[Series]
    seed: int
    forward_passes: int
    timings: Timings
    score_space: ScoreSpace
    clean_precision: _containers.RepeatedCompositeFieldContainer[Precision]
    reliability: Summary
    def __init__(self, model_name: _Optional[str] = ..., method: _Optional[str] = ..., class_indices: _Optional[_Iterable[int]] = ..., entropy: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., noise_levels: _Optional[_Iterable[float]] = ..., noise_curves: _Optional[_Iterable[_Union[NoiseCurve, _Mapping]]] = ..., out_of_set: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., transforms: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., stability_models: _Optional[_Iterable[str]] = ..., stability: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., degradation: _Optional[_Iterable[_Union[Series, _Mapping]]] = ..., seed: _Optional[int] = ..., forward_passes: _Optional[int] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., clean_precision: _Optional[_Iterable[_Union[Precision, _Mapping]]] = ..., reliability: _Optional[_Union[Summary, _Mapping]] = ...) -> None: ...

class MeasureResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: MeasureResult
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[MeasureResult, _Mapping]] = ...) -> None: ...

class AuditRequest(_message.Message):
    __slots__ = ("dataset", "models", "methods", "metrics", "seed", "name", "measures", "ensemble", "scales")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MEASURES_FIELD_NUMBER: _ClassVar[int]
    ENSEMBLE_FIELD_NUMBER: _ClassVar[int]
    SCALES_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    models: _containers.RepeatedScalarFieldContainer[str]
    methods: _containers.RepeatedCompositeFieldContainer[_methods_pb2.MethodSpec]
    metrics: _containers.RepeatedCompositeFieldContainer[_metrics_pb2.MetricSpec]
    seed: int
    name: str
    measures: _containers.RepeatedScalarFieldContainer[SalienceMeasure]
    ensemble: AuditEnsemble
    scales: AuditScales
    def __init__(self, dataset: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., methods: _Optional[_Iterable[_Union[_methods_pb2.MethodSpec, _Mapping]]] = ..., metrics: _Optional[_Iterable[_Union[_metrics_pb2.MetricSpec, _Mapping]]] = ..., seed: _Optional[int] = ..., name: _Optional[str] = ..., measures: _Optional[_Iterable[_Union[SalienceMeasure, str]]] = ..., ensemble: _Optional[_Union[AuditEnsemble, _Mapping]] = ..., scales: _Optional[_Union[AuditScales, _Mapping]] = ...) -> None: ...

class AuditEnsemble(_message.Message):
    __slots__ = ("normalisation", "aggregator", "kappa")
    NORMALISATION_FIELD_NUMBER: _ClassVar[int]
    AGGREGATOR_FIELD_NUMBER: _ClassVar[int]
    KAPPA_FIELD_NUMBER: _ClassVar[int]
    normalisation: Normalisation
    aggregator: Aggregator
    kappa: float
    def __init__(self, normalisation: _Optional[_Union[Normalisation, str]] = ..., aggregator: _Optional[_Union[Aggregator, str]] = ..., kappa: _Optional[float] = ...) -> None: ...

class AuditScales(_message.Message):
    __slots__ = ("corruptions", "severities", "zooms", "num_designs")
    CORRUPTIONS_FIELD_NUMBER: _ClassVar[int]
    SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    ZOOMS_FIELD_NUMBER: _ClassVar[int]
    NUM_DESIGNS_FIELD_NUMBER: _ClassVar[int]
    corruptions: _containers.RepeatedScalarFieldContainer[Corruption]
    severities: _containers.RepeatedScalarFieldContainer[int]
    zooms: _containers.RepeatedScalarFieldContainer[float]
    num_designs: int
    def __init__(self, corruptions: _Optional[_Iterable[_Union[Corruption, str]]] = ..., severities: _Optional[_Iterable[int]] = ..., zooms: _Optional[_Iterable[float]] = ..., num_designs: _Optional[int] = ...) -> None: ...

class AuditResult(_message.Message):
    __slots__ = ("summary_json", "results_path", "summary_path", "report_path", "computed", "total", "timings", "score_space", "metric_score_space")
    SUMMARY_JSON_FIELD_NUMBER: _ClassVar[int]
    RESULTS_PATH_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_PATH_FIELD_NUMBER: _ClassVar[int]
    REPORT_PATH_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    METRIC_SCORE_SPACE_FIELD_NUMBER: _ClassVar[int]
    summary_json: str
    results_path: str
    summary_path: str
    report_path: str
    computed: int
    total: int
    timings: Timings
    score_space: ScoreSpace
    metric_score_space: ScoreSpace
    def __init__(self, summary_json: _Optional[str] = ..., results_path: _Optional[str] = ..., summary_path: _Optional[str] = ..., report_path: _Optional[str] = ..., computed: _Optional[int] = ..., total: _Optional[int] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., score_space: _Optional[_Union[ScoreSpace, str]] = ..., metric_score_space: _Optional[_Union[ScoreSpace, str]] = ...) -> None: ...

class AuditResponse(_message.Message):
    __slots__ = ("progress", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    result: AuditResult
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[AuditResult, _Mapping]] = ...) -> None: ...
