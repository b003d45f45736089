"""numpy arrays <-> ``xai.v1.Tensor`` (row-major, little-endian raw bytes, as in the OIP)."""

from __future__ import annotations

import math

import numpy as np

from onnxplain_client._proto.xai.v1 import tensor_pb2

_DTYPES = {
    tensor_pb2.DATA_TYPE_UINT8: np.dtype("u1"),
    tensor_pb2.DATA_TYPE_FLOAT16: np.dtype("<f2"),
    tensor_pb2.DATA_TYPE_FLOAT32: np.dtype("<f4"),
    tensor_pb2.DATA_TYPE_FLOAT64: np.dtype("<f8"),
    tensor_pb2.DATA_TYPE_INT32: np.dtype("<i4"),
}
_DATATYPES = {dtype.newbyteorder("<") if dtype.itemsize > 1 else dtype: code for code, dtype in _DTYPES.items()}


MAX_DIMENSIONS = 32


class TensorError(ValueError):
    """A Tensor message whose bytes do not match its datatype and shape."""


def to_tensor(array: np.ndarray) -> tensor_pb2.Tensor:
    array = np.asarray(array)
    dtype = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
    if dtype not in _DATATYPES:
        raise TensorError(f"dtype {array.dtype} has no xai.v1 DataType; use uint8, float16, float32, float64 or int32")
    return tensor_pb2.Tensor(
        datatype=_DATATYPES[dtype], shape=list(array.shape), raw_data=np.ascontiguousarray(array, dtype).tobytes()
    )


def from_tensor(tensor: tensor_pb2.Tensor) -> np.ndarray:
    if tensor.datatype not in _DTYPES:
        raise TensorError(f"datatype {tensor.datatype} is not one of UINT8, FLOAT16, FLOAT32, FLOAT64, INT32")
    shape = tuple(tensor.shape)
    if len(shape) > MAX_DIMENSIONS:
        raise TensorError(f"has {len(shape)} dimensions; at most {MAX_DIMENSIONS}")
    if any(d < 0 for d in shape):
        raise TensorError(f"shape {list(shape)} has a negative dimension")
    dtype = _DTYPES[tensor.datatype]
    # Python integers: numpy's int64 product wraps around ([2**62, 4] would claim 0 bytes).
    elements = math.prod(shape)
    expected = elements * dtype.itemsize
    if len(tensor.raw_data) != expected:
        raise TensorError(
            f"raw_data has {len(tensor.raw_data)} bytes; shape {list(shape)} of "
            f"{tensor_pb2.DataType.Name(tensor.datatype)} needs {expected}"
        )
    return np.frombuffer(tensor.raw_data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
