from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Correlation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CORRELATION_UNSPECIFIED: _ClassVar[Correlation]
    CORRELATION_SPEARMAN: _ClassVar[Correlation]
    CORRELATION_PEARSON: _ClassVar[Correlation]
CORRELATION_UNSPECIFIED: Correlation
CORRELATION_SPEARMAN: Correlation
CORRELATION_PEARSON: Correlation

class DeletionParams(_message.Message):
    __slots__ = ("steps",)
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: int
    def __init__(self, steps: _Optional[int] = ...) -> None: ...

class InsertionParams(_message.Message):
    __slots__ = ("steps", "blur_sigma")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    BLUR_SIGMA_FIELD_NUMBER: _ClassVar[int]
    steps: int
    blur_sigma: float
    def __init__(self, steps: _Optional[int] = ..., blur_sigma: _Optional[float] = ...) -> None: ...

class MuFidelityParams(_message.Message):
    __slots__ = ("grid_size", "subset_fraction", "num_samples", "correlation")
    GRID_SIZE_FIELD_NUMBER: _ClassVar[int]
    SUBSET_FRACTION_FIELD_NUMBER: _ClassVar[int]
    NUM_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_FIELD_NUMBER: _ClassVar[int]
    grid_size: int
    subset_fraction: float
    num_samples: int
    correlation: Correlation
    def __init__(self, grid_size: _Optional[int] = ..., subset_fraction: _Optional[float] = ..., num_samples: _Optional[int] = ..., correlation: _Optional[_Union[Correlation, str]] = ...) -> None: ...

class RegionParams(_message.Message):
    __slots__ = ("region_size", "max_regions")
    REGION_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_REGIONS_FIELD_NUMBER: _ClassVar[int]
    region_size: int
    max_regions: int
    def __init__(self, region_size: _Optional[int] = ..., max_regions: _Optional[int] = ...) -> None: ...

class LocalisationParams(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WaveletCurveParams(_message.Message):
    __slots__ = ("steps", "levels", "wavelet")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    WAVELET_FIELD_NUMBER: _ClassVar[int]
    steps: int
    levels: int
    wavelet: str
    def __init__(self, steps: _Optional[int] = ..., levels: _Optional[int] = ..., wavelet: _Optional[str] = ...) -> None: ...

class MetricSpec(_message.Message):
    __slots__ = ("deletion", "insertion", "mu_fidelity", "morf", "lerf", "localisation", "wavelet_deletion", "wavelet_insertion")
    DELETION_FIELD_NUMBER: _ClassVar[int]
    INSERTION_FIELD_NUMBER: _ClassVar[int]
    MU_FIDELITY_FIELD_NUMBER: _ClassVar[int]
    MORF_FIELD_NUMBER: _ClassVar[int]
    LERF_FIELD_NUMBER: _ClassVar[int]
    LOCALISATION_FIELD_NUMBER: _ClassVar[int]
    WAVELET_DELETION_FIELD_NUMBER: _ClassVar[int]
    WAVELET_INSERTION_FIELD_NUMBER: _ClassVar[int]
    deletion: DeletionParams
    insertion: InsertionParams
    mu_fidelity: MuFidelityParams
    morf: RegionParams
    lerf: RegionParams
    localisation: LocalisationParams
    wavelet_deletion: WaveletCurveParams
    wavelet_insertion: WaveletCurveParams
    def __init__(self, deletion: _Optional[_Union[DeletionParams, _Mapping]] = ..., insertion: _Optional[_Union[InsertionParams, _Mapping]] = ..., mu_fidelity: _Optional[_Union[MuFidelityParams, _Mapping]] = ..., morf: _Optional[_Union[RegionParams, _Mapping]] = ..., lerf: _Optional[_Union[RegionParams, _Mapping]] = ..., localisation: _Optional[_Union[LocalisationParams, _Mapping]] = ..., wavelet_deletion: _Optional[_Union[WaveletCurveParams, _Mapping]] = ..., wavelet_insertion: _Optional[_Union[WaveletCurveParams, _Mapping]] = ...) -> None: ...

class MetricResult(_message.Message):
    __slots__ = ("name", "score", "fractions", "curve", "values", "forward_passes", "standard_error")
    class ValuesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    FRACTIONS_FIELD_NUMBER: _ClassVar[int]
    CURVE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    FORWARD_PASSES_FIELD_NUMBER: _ClassVar[int]
    STANDARD_ERROR_FIELD_NUMBER: _ClassVar[int]
    name: str
    score: float
    fractions: _containers.RepeatedScalarFieldContainer[float]
    curve: _containers.RepeatedScalarFieldContainer[float]
    values: _containers.ScalarMap[str, float]
    forward_passes: int
    standard_error: float
    def __init__(self, name: _Optional[str] = ..., score: _Optional[float] = ..., fractions: _Optional[_Iterable[float]] = ..., curve: _Optional[_Iterable[float]] = ..., values: _Optional[_Mapping[str, float]] = ..., forward_passes: _Optional[int] = ..., standard_error: _Optional[float] = ...) -> None: ...
