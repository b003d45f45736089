"""The model runtime: ONNX inspection, preprocessing, onnxruntime sessions, the repository."""
