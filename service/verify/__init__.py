"""Verified perturbation analysis: a PyTorch mirror of a loaded ONNX model, checked against onnxruntime,
bounded with auto_LiRPA (the ``verify`` extra). Nothing here is imported unless a verified method runs."""
