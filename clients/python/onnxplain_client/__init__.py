"""Python client of the onnxplain gRPC API (xai.v1)."""

from onnxplain_client.cancellation import Cancellation
from onnxplain_client.client import (Attribution, AuditReport, Explanation, OnnxplainClient, Precision, Prediction,
                                     precision)
from onnxplain_client.errors import InvalidRequest, OnnxplainError
from onnxplain_client.tensors import from_tensor, to_tensor

__all__ = ["Attribution", "AuditReport", "Cancellation", "Explanation", "InvalidRequest", "OnnxplainClient",
           "OnnxplainError", "Precision", "Prediction", "from_tensor", "precision", "to_tensor"]
