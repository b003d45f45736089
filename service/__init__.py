"""onnxplain: explain the decisions of ONNX image classifiers over gRPC."""

__version__ = "0.1.0"
