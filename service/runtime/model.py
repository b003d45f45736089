"""A loaded model: one onnxruntime session, its metadata, and batched prediction in pixel space.

``LoadedModel.predict`` is the only way explainers reach the model: images in
pixel space go in, class scores come out, whatever the model's layout, batch
axis, input dtype and preprocessing.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx
import onnxruntime as ort
from google.protobuf.message import DecodeError
from threadpoolctl import threadpool_limits

from service.errors import InvalidArgument
from service.runtime import images, providers as providers_mod
from service.runtime.model_config import resolve_config
from service.runtime.preprocessing import Preprocessing, default_preprocessing
from service.runtime.scores import ScoreSpace, looks_like, to_space
from service.runtime.signature import GraphSignature, Layout, OutputKind, format_dims, read_signature

log = logging.getLogger(__name__)

# ONNX element types a session input may have, and the numpy type fed to it.
_INPUT_DTYPES = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.UINT8: np.uint8,
}
PROBE_SEED = 0


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    sha256: str
    signature: GraphSignature
    layout: Layout
    height: int
    width: int
    channels: int
    fixed_batch: bool
    max_batch: int
    output_kind: OutputKind
    output_kind_source: str
    preprocessing: Preprocessing
    preprocessing_source: str
    num_classes: int
    labels: tuple[str, ...]
    provider: str
    description: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.height, self.width, self.channels

    def label(self, class_index: int) -> str:
        return self.labels[class_index] if class_index < len(self.labels) else str(class_index)


class LoadedModel:
    """An onnxruntime session shared by concurrent requests (``run`` is thread-safe)."""

    def __init__(self, info: ModelInfo, session: ort.InferenceSession, model_bytes: bytes) -> None:
        self.info = info
        self._session = session
        # The graph as loaded: verified methods build their PyTorch mirror from it (service.verify).
        self.model_bytes = model_bytes
        self._input_dtype = _INPUT_DTYPES[info.signature.input_elem_type]

    def fit_image(self, image: np.ndarray, field: str = "image") -> np.ndarray:
        """An H x W x C image (uint8, or float in [0, 1]) as float32 pixels at the model's input size."""
        pixels = images.to_unit_pixels(image, field=field)
        pixels = images.match_channels(pixels, self.info.channels)
        return images.fit(pixels, self.info.height, self.info.width, self.info.preprocessing.resize, field=field)

    def predict(self, pixels: np.ndarray, *, score_space: ScoreSpace = ScoreSpace.RAW,
                batch_size: int | None = None) -> np.ndarray:
        """Class scores (N, classes) of images (N, H, W, C) in [0, 1] at the model's input size."""
        if pixels.ndim != 4 or pixels.shape[1:] != self.info.image_shape:
            raise ValueError(f"expected images of shape (N, {self.info.image_shape}), got {pixels.shape}")
        chunk = self.info.max_batch if batch_size is None else max(1, min(batch_size, self.info.max_batch))
        outputs = [self._run(pixels[start:start + chunk]) for start in range(0, len(pixels), chunk)]
        scores = np.concatenate(outputs) if outputs else np.zeros((0, self.info.num_classes), np.float32)
        return to_space(scores, self.info.output_kind, score_space)

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        count = len(pixels)
        if self.info.fixed_batch and count < self.info.max_batch:
            # A fixed batch axis takes exactly max_batch images: pad with copies, drop their outputs.
            padding = np.repeat(pixels[-1:], self.info.max_batch - count, axis=0)
            pixels = np.concatenate([pixels, padding])
        values = self.info.preprocessing.apply(pixels, channels_first=self.info.layout is Layout.NCHW)
        if self._input_dtype is np.uint8:
            values = np.clip(np.rint(values), 0, 255)
        feed = {self.info.signature.input_name: values.astype(self._input_dtype, copy=False)}
        (output,) = self._session.run([self.info.signature.output_name], feed)
        return np.asarray(output, dtype=np.float32)[:count]


def load_model(name: str, model_bytes: bytes, *, source: str, model_path: Path | None = None,
               overrides: Mapping[str, Any] | None = None, default_batch_size: int = 32,
               device: providers_mod.DevicePreference = providers_mod.DevicePreference.AUTO) -> LoadedModel:
    """Validate, inspect and open an ONNX image classifier."""
    try:
        model = onnx.load_model_from_string(model_bytes)
    except (DecodeError, ValueError) as error:
        raise InvalidArgument(f"not an ONNX model ({error.__class__.__name__}: {error})", field="model") from error
    if not model.graph.node:
        raise InvalidArgument("not an ONNX model: the graph has no nodes", field="model")
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as error:
        raise InvalidArgument(f"the ONNX checker rejects the model: {error}", field="model") from error

    signature = read_signature(model)
    if signature.input_elem_type not in _INPUT_DTYPES:
        raise InvalidArgument(
            f"input {signature.input_name!r} has element type "
            f"{onnx.TensorProto.DataType.Name(signature.input_elem_type)}; supported: float, float16, double, uint8",
            field="model",
        )
    config = resolve_config(model, model_path, overrides or {})
    layout = config.layout or signature.layout_guess()
    height, width, channels = _image_size(signature, layout, config.height, config.width)
    preprocessing = Preprocessing.from_mapping(config.preprocessing, default_preprocessing(channels))
    preprocessing.validate(channels, field_prefix=f"{config.preprocessing_source}.preprocessing")

    session = _open_session(model_bytes, device)
    fixed = signature.fixed_batch
    info = ModelInfo(
        name=name, source=source, sha256=hashlib.sha256(model_bytes).hexdigest(), signature=signature,
        layout=layout, height=height, width=width, channels=channels, fixed_batch=fixed is not None,
        max_batch=fixed or config.batch_size or default_batch_size,
        output_kind=OutputKind.LOGITS, output_kind_source="", preprocessing=preprocessing,
        preprocessing_source=config.preprocessing_source, num_classes=signature.output_dims[1] or 0,
        labels=(), provider=session.get_providers()[0], description=config.description,
    )
    loaded = LoadedModel(info, session, model_bytes)
    # One probe batch: proves the session runs, counts classes when the graph leaves them dynamic,
    # and tells logits from probabilities when neither the graph nor the config says.
    probe = np.random.default_rng(PROBE_SEED).random((min(2, info.max_batch), *info.image_shape), dtype=np.float32)
    try:
        probe_outputs = loaded.predict(probe)
    except Exception as error:  # onnxruntime raises its own exception types: report them as they are
        raise InvalidArgument(f"the model fails on a probe batch: {error}", field="model") from error
    num_classes = probe_outputs.shape[1]
    labels = tuple(config.labels or ())
    if labels and len(labels) != num_classes:
        raise InvalidArgument(f"{len(labels)} labels for {num_classes} classes", field="labels")
    if config.output_kind:
        output_kind, kind_source = config.output_kind, config.output_kind_source
    elif signature.output_kind_from_graph():
        output_kind, kind_source = signature.output_kind_from_graph(), "graph"
    else:
        output_kind, kind_source = looks_like(probe_outputs), "probe"
    loaded.info = replace(info, num_classes=num_classes, labels=labels, output_kind=output_kind,
                           output_kind_source=kind_source)
    log.info("model loaded", extra={"model": name, "provider": info.provider, "layout": layout.value,
                                    "input": format_dims(signature.input_dims), "output_kind": output_kind.value})
    return loaded


def _image_size(signature: GraphSignature, layout: Layout, height: int | None,
                width: int | None) -> tuple[int, int, int]:
    graph_h, graph_w, channels = signature.spatial_dims(layout)
    if channels not in (1, 3):
        raise InvalidArgument(
            f"input {signature.input_name!r} has {channels} channels under layout {layout.value}; "
            "image models take 1 or 3",
            field="overrides.layout",
        )
    for axis, graph_value, configured in (("height", graph_h, height), ("width", graph_w, width)):
        if graph_value and configured and graph_value != configured:
            raise InvalidArgument(f"the graph fixes {axis} {graph_value}, not {configured}",
                                  field=f"overrides.{axis}")
        if not (graph_value or configured):
            raise InvalidArgument(f"the input's {axis} is dynamic; give it in the sidecar or overrides",
                                  field=f"overrides.{axis}")
    return graph_h or height, graph_w or width, channels


@functools.cache
def _reserve_cores_for_onnxruntime() -> None:
    """Keep numpy's BLAS single-threaded, process-wide, once a model is loaded.

    Explainers call BLAS between forward passes (RISE builds its masks with matmul); OpenBLAS's
    threads then spin on the cores onnxruntime's own threads need. Measured on 2 cores with a
    224-pixel resnet18: RISE ran at 1.19x the bare forward passes, 1.06x with BLAS on one thread.
    """
    threadpool_limits(limits=1, user_api="blas")


def _open_session(model_bytes: bytes, device: providers_mod.DevicePreference) -> ort.InferenceSession:
    _reserve_cores_for_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: keep CPU-only machines quiet
    try:
        return ort.InferenceSession(model_bytes, options, providers=providers_mod.choose_providers(device))
    except Exception as error:  # onnxruntime's own types (Fail, InvalidGraph, NotImplemented)
        raise InvalidArgument(f"onnxruntime cannot load the model: {error}", field="model") from error
