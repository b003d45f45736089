"""Verified perturbation analysis: a PyTorch mirror of a loaded ONNX model, checked against onnxruntime,
bounded with auto_LiRPA (the ``verify`` extra). torch, onnx2torch and auto_LiRPA are imported only when a
verified method runs or GetModel asks whether a model is verifiable."""
