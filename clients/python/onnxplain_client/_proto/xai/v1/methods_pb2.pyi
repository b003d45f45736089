from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Baseline(_message.Message):
    __slots__ = ("kind", "value")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Baseline.Kind]
        KIND_CONSTANT: _ClassVar[Baseline.Kind]
        KIND_BLACK: _ClassVar[Baseline.Kind]
        KIND_WHITE: _ClassVar[Baseline.Kind]
        KIND_DATASET_MEAN: _ClassVar[Baseline.Kind]
        KIND_IMAGE_MEAN: _ClassVar[Baseline.Kind]
    KIND_UNSPECIFIED: Baseline.Kind
    KIND_CONSTANT: Baseline.Kind
    KIND_BLACK: Baseline.Kind
    KIND_WHITE: Baseline.Kind
    KIND_DATASET_MEAN: Baseline.Kind
    KIND_IMAGE_MEAN: Baseline.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    kind: Baseline.Kind
    value: float
    def __init__(self, kind: _Optional[_Union[Baseline.Kind, str]] = ..., value: _Optional[float] = ...) -> None: ...

class OcclusionParams(_message.Message):
    __slots__ = ("window", "stride")
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    STRIDE_FIELD_NUMBER: _ClassVar[int]
    window: _containers.RepeatedScalarFieldContainer[int]
    stride: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, window: _Optional[_Iterable[int]] = ..., stride: _Optional[_Iterable[int]] = ...) -> None: ...
