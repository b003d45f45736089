from onnxplain_client._proto.xai.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SobolPerturbation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOBOL_PERTURBATION_UNSPECIFIED: _ClassVar[SobolPerturbation]
    SOBOL_PERTURBATION_INPAINTING: _ClassVar[SobolPerturbation]
    SOBOL_PERTURBATION_BLUR: _ClassVar[SobolPerturbation]
    SOBOL_PERTURBATION_AMPLITUDE: _ClassVar[SobolPerturbation]

class HsicSampler(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HSIC_SAMPLER_UNSPECIFIED: _ClassVar[HsicSampler]
    HSIC_SAMPLER_SOBOL: _ClassVar[HsicSampler]
    HSIC_SAMPLER_LATIN_HYPERCUBE: _ClassVar[HsicSampler]

class Segmentation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEGMENTATION_UNSPECIFIED: _ClassVar[Segmentation]
    SEGMENTATION_QUICKSHIFT: _ClassVar[Segmentation]
    SEGMENTATION_SLIC: _ClassVar[Segmentation]

class WaveletRescale(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WAVELET_RESCALE_UNSPECIFIED: _ClassVar[WaveletRescale]
    WAVELET_RESCALE_CLIP: _ClassVar[WaveletRescale]
    WAVELET_RESCALE_MINMAX: _ClassVar[WaveletRescale]

class EvaSegmentation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVA_SEGMENTATION_UNSPECIFIED: _ClassVar[EvaSegmentation]
    EVA_SEGMENTATION_GRID: _ClassVar[EvaSegmentation]
    EVA_SEGMENTATION_SLIC: _ClassVar[EvaSegmentation]

class BoundMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOUND_METHOD_UNSPECIFIED: _ClassVar[BoundMethod]
    BOUND_METHOD_IBP: _ClassVar[BoundMethod]
    BOUND_METHOD_CROWN_IBP: _ClassVar[BoundMethod]
    BOUND_METHOD_CROWN: _ClassVar[BoundMethod]
    BOUND_METHOD_ALPHA_CROWN: _ClassVar[BoundMethod]
SOBOL_PERTURBATION_UNSPECIFIED: SobolPerturbation
SOBOL_PERTURBATION_INPAINTING: SobolPerturbation
SOBOL_PERTURBATION_BLUR: SobolPerturbation
SOBOL_PERTURBATION_AMPLITUDE: SobolPerturbation
HSIC_SAMPLER_UNSPECIFIED: HsicSampler
HSIC_SAMPLER_SOBOL: HsicSampler
HSIC_SAMPLER_LATIN_HYPERCUBE: HsicSampler
SEGMENTATION_UNSPECIFIED: Segmentation
SEGMENTATION_QUICKSHIFT: Segmentation
SEGMENTATION_SLIC: Segmentation
WAVELET_RESCALE_UNSPECIFIED: WaveletRescale
WAVELET_RESCALE_CLIP: WaveletRescale
WAVELET_RESCALE_MINMAX: WaveletRescale
EVA_SEGMENTATION_UNSPECIFIED: EvaSegmentation
EVA_SEGMENTATION_GRID: EvaSegmentation
EVA_SEGMENTATION_SLIC: EvaSegmentation
BOUND_METHOD_UNSPECIFIED: BoundMethod
BOUND_METHOD_IBP: BoundMethod
BOUND_METHOD_CROWN_IBP: BoundMethod
BOUND_METHOD_CROWN: BoundMethod
BOUND_METHOD_ALPHA_CROWN: BoundMethod

class Baseline(_message.Message):
    __slots__ = ("kind", "value", "sigma", "image")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Baseline.Kind]
        KIND_CONSTANT: _ClassVar[Baseline.Kind]
        KIND_BLACK: _ClassVar[Baseline.Kind]
        KIND_WHITE: _ClassVar[Baseline.Kind]
        KIND_DATASET_MEAN: _ClassVar[Baseline.Kind]
        KIND_IMAGE_MEAN: _ClassVar[Baseline.Kind]
        KIND_BLUR: _ClassVar[Baseline.Kind]
        KIND_UNIFORM_NOISE: _ClassVar[Baseline.Kind]
        KIND_GAUSSIAN_NOISE: _ClassVar[Baseline.Kind]
        KIND_INPAINT: _ClassVar[Baseline.Kind]
        KIND_IMAGE: _ClassVar[Baseline.Kind]
    KIND_UNSPECIFIED: Baseline.Kind
    KIND_CONSTANT: Baseline.Kind
    KIND_BLACK: Baseline.Kind
    KIND_WHITE: Baseline.Kind
    KIND_DATASET_MEAN: Baseline.Kind
    KIND_IMAGE_MEAN: Baseline.Kind
    KIND_BLUR: Baseline.Kind
    KIND_UNIFORM_NOISE: Baseline.Kind
    KIND_GAUSSIAN_NOISE: Baseline.Kind
    KIND_INPAINT: Baseline.Kind
    KIND_IMAGE: Baseline.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    kind: Baseline.Kind
    value: float
    sigma: float
    image: _tensor_pb2.Image
    def __init__(self, kind: _Optional[_Union[Baseline.Kind, str]] = ..., value: _Optional[float] = ..., sigma: _Optional[float] = ..., image: _Optional[_Union[_tensor_pb2.Image, _Mapping]] = ...) -> None: ...

class OcclusionParams(_message.Message):
    __slots__ = ("window", "stride")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    STRIDE_FIELD_NUMBER: _ClassVar[int]
    window: _containers.RepeatedScalarFieldContainer[int]
    stride: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, window: _Optional[_Iterable[int]] = ..., stride: _Optional[_Iterable[int]] = ...) -> None: ...

class RiseParams(_message.Message):
    __slots__ = ("num_masks", "grid_size", "keep_probability", "centered", "target_reliability", "max_seconds")
    NUM_MASKS_FIELD_NUMBER: _ClassVar[int]
    GRID_SIZE_FIELD_NUMBER: _ClassVar[int]
    KEEP_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CENTERED_FIELD_NUMBER: _ClassVar[int]
    TARGET_RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    num_masks: int
    grid_size: int
    keep_probability: float
    centered: bool
    target_reliability: float
    max_seconds: float
    def __init__(self, num_masks: _Optional[int] = ..., grid_size: _Optional[int] = ..., keep_probability: _Optional[float] = ..., centered: _Optional[bool] = ..., target_reliability: _Optional[float] = ..., max_seconds: _Optional[float] = ...) -> None: ...

class SobolParams(_message.Message):
    __slots__ = ("grid_size", "num_designs", "perturbation", "sigma", "target_reliability", "max_seconds")
    GRID_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_DESIGNS_FIELD_NUMBER: _ClassVar[int]
    PERTURBATION_FIELD_NUMBER: _ClassVar[int]
    SIGMA_FIELD_NUMBER: _ClassVar[int]
    TARGET_RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    grid_size: int
    num_designs: int
    perturbation: SobolPerturbation
    sigma: float
    target_reliability: float
    max_seconds: float
    def __init__(self, grid_size: _Optional[int] = ..., num_designs: _Optional[int] = ..., perturbation: _Optional[_Union[SobolPerturbation, str]] = ..., sigma: _Optional[float] = ..., target_reliability: _Optional[float] = ..., max_seconds: _Optional[float] = ...) -> None: ...

class HsicParams(_message.Message):
    __slots__ = ("grid_size", "num_designs", "sampler", "target_reliability", "max_seconds")
    GRID_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_DESIGNS_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    TARGET_RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    grid_size: int
    num_designs: int
    sampler: HsicSampler
    target_reliability: float
    max_seconds: float
    def __init__(self, grid_size: _Optional[int] = ..., num_designs: _Optional[int] = ..., sampler: _Optional[_Union[HsicSampler, str]] = ..., target_reliability: _Optional[float] = ..., max_seconds: _Optional[float] = ...) -> None: ...

class LimeParams(_message.Message):
    __slots__ = ("num_samples", "segmentation", "n_segments", "kernel_width", "ridge_alpha", "target_reliability", "max_seconds")
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    N_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    KERNEL_WIDTH_FIELD_NUMBER: _ClassVar[int]
    RIDGE_ALPHA_FIELD_NUMBER: _ClassVar[int]
    TARGET_RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    num_samples: int
    segmentation: Segmentation
    n_segments: int
    kernel_width: float
    ridge_alpha: float
    target_reliability: float
    max_seconds: float
    def __init__(self, num_samples: _Optional[int] = ..., segmentation: _Optional[_Union[Segmentation, str]] = ..., n_segments: _Optional[int] = ..., kernel_width: _Optional[float] = ..., ridge_alpha: _Optional[float] = ..., target_reliability: _Optional[float] = ..., max_seconds: _Optional[float] = ...) -> None: ...

class KernelShapParams(_message.Message):
    __slots__ = ("num_samples", "segmentation", "n_segments", "target_reliability", "max_seconds")
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    N_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    TARGET_RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    num_samples: int
    segmentation: Segmentation
    n_segments: int
    target_reliability: float
    max_seconds: float
    def __init__(self, num_samples: _Optional[int] = ..., segmentation: _Optional[_Union[Segmentation, str]] = ..., n_segments: _Optional[int] = ..., target_reliability: _Optional[float] = ..., max_seconds: _Optional[float] = ...) -> None: ...

class WcamParams(_message.Message):
    __slots__ = ("grid_size", "num_designs", "levels", "wavelet", "keep_approximation", "rescale", "sufficient_image", "target_reliability", "max_seconds")
    GRID_SIZE_FIELD_NUMBER: _ClassVar[int]
    NUM_DESIGNS_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    WAVELET_FIELD_NUMBER: _ClassVar[int]
    KEEP_APPROXIMATION_FIELD_NUMBER: _ClassVar[int]
    RESCALE_FIELD_NUMBER: _ClassVar[int]
    SUFFICIENT_IMAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    grid_size: int
    num_designs: int
    levels: int
    wavelet: str
    keep_approximation: bool
    rescale: WaveletRescale
    sufficient_image: bool
    target_reliability: float
    max_seconds: float
    def __init__(self, grid_size: _Optional[int] = ..., num_designs: _Optional[int] = ..., levels: _Optional[int] = ..., wavelet: _Optional[str] = ..., keep_approximation: _Optional[bool] = ..., rescale: _Optional[_Union[WaveletRescale, str]] = ..., sufficient_image: _Optional[bool] = ..., target_reliability: _Optional[float] = ..., max_seconds: _Optional[float] = ...) -> None: ...

class EvaParams(_message.Message):
    __slots__ = ("epsilon", "grid_size", "segmentation", "n_segments", "bound_method", "max_competitors", "chunk_size", "segments", "split_layer", "hybrid_samples", "attack_steps", "target_reliability", "max_seconds", "calibrate_radius")
    EPSILON_FIELD_NUMBER: _ClassVar[int]
    GRID_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTATION_FIELD_NUMBER: _ClassVar[int]
    N_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    BOUND_METHOD_FIELD_NUMBER: _ClassVar[int]
    MAX_COMPETITORS_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    SPLIT_LAYER_FIELD_NUMBER: _ClassVar[int]
    HYBRID_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    ATTACK_STEPS_FIELD_NUMBER: _ClassVar[int]
    TARGET_RELIABILITY_FIELD_NUMBER: _ClassVar[int]
    MAX_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CALIBRATE_RADIUS_FIELD_NUMBER: _ClassVar[int]
    epsilon: float
    grid_size: int
    segmentation: EvaSegmentation
    n_segments: int
    bound_method: BoundMethod
    max_competitors: int
    chunk_size: int
    segments: _containers.RepeatedScalarFieldContainer[int]
    split_layer: str
    hybrid_samples: int
    attack_steps: int
    target_reliability: float
    max_seconds: float
    calibrate_radius: bool
    def __init__(self, epsilon: _Optional[float] = ..., grid_size: _Optional[int] = ..., segmentation: _Optional[_Union[EvaSegmentation, str]] = ..., n_segments: _Optional[int] = ..., bound_method: _Optional[_Union[BoundMethod, str]] = ..., max_competitors: _Optional[int] = ..., chunk_size: _Optional[int] = ..., segments: _Optional[_Iterable[int]] = ..., split_layer: _Optional[str] = ..., hybrid_samples: _Optional[int] = ..., attack_steps: _Optional[int] = ..., target_reliability: _Optional[float] = ..., max_seconds: _Optional[float] = ..., calibrate_radius: _Optional[bool] = ...) -> None: ...

class MethodSpec(_message.Message):
    __slots__ = ("occlusion", "rise", "sobol", "hsic", "lime", "kernel_shap", "wcam", "eva")
    OCCLUSION_FIELD_NUMBER: _ClassVar[int]
    RISE_FIELD_NUMBER: _ClassVar[int]
    SOBOL_FIELD_NUMBER: _ClassVar[int]
    HSIC_FIELD_NUMBER: _ClassVar[int]
    LIME_FIELD_NUMBER: _ClassVar[int]
    KERNEL_SHAP_FIELD_NUMBER: _ClassVar[int]
    WCAM_FIELD_NUMBER: _ClassVar[int]
    EVA_FIELD_NUMBER: _ClassVar[int]
    occlusion: OcclusionParams
    rise: RiseParams
    sobol: SobolParams
    hsic: HsicParams
    lime: LimeParams
    kernel_shap: KernelShapParams
    wcam: WcamParams
    eva: EvaParams
    def __init__(self, occlusion: _Optional[_Union[OcclusionParams, _Mapping]] = ..., rise: _Optional[_Union[RiseParams, _Mapping]] = ..., sobol: _Optional[_Union[SobolParams, _Mapping]] = ..., hsic: _Optional[_Union[HsicParams, _Mapping]] = ..., lime: _Optional[_Union[LimeParams, _Mapping]] = ..., kernel_shap: _Optional[_Union[KernelShapParams, _Mapping]] = ..., wcam: _Optional[_Union[WcamParams, _Mapping]] = ..., eva: _Optional[_Union[EvaParams, _Mapping]] = ...) -> None: ...
