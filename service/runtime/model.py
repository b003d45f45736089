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
from threadpoolctl import threadpool_limits

from service.budget import DEFAULT_BUDGET, MIB, Budget
from service.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from service.runtime import images, model_file, providers as providers_mod
from service.runtime.model_config import ModelConfig, resolve_config
from service.runtime.preprocessing import Preprocessing, ResizePolicy, default_preprocessing
from service.runtime.scores import (DEFAULT_THRESHOLD, LogitSource, ModelOutputs, ScoreSpace, activation_matches,
                                   logit_source, looks_like, served_classes)
from service.runtime.signature import (ACTIVATION_KINDS, GraphSignature, Layout, OutputKind, as_rows, format_dims,
                                       read_signature, with_output)

log = logging.getLogger(__name__)

# ONNX element types a session input may have, and the numpy type fed to it.
_INPUT_DTYPES = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.UINT8: np.uint8,
}
PROBE_SEED = 0
# The size a dynamic height or width is probed at when nothing configures it: what torchvision's and timm's
# ImageNet classifiers take, small enough that the probe costs little. Requests use each image's own size.
DEFAULT_DYNAMIC_SIZE = 224
# How far a dynamic model's second probe size is from the first on each dynamic axis (taller and narrower, so
# non-square): a graph that declares its spatial axes dynamic but bakes a size into a Reshape or a position
# embedding fails there, at load.
SECOND_PROBE_OFFSET = 32


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
    # An axis the graph leaves dynamic and no configuration fixes: each image keeps its own size there, and
    # ``height``/``width`` hold only the size the load probe used (DEFAULT_DYNAMIC_SIZE).
    dynamic_height: bool = False
    dynamic_width: bool = False
    # Where LOGIT scores come from (exact logits, or a fallback: see service.runtime.scores).
    logit_source: LogitSource = LogitSource.OUTPUT
    # The tensor the session returns as the logits (the input of the terminal activation), when it does.
    logits_output: str | None = None
    # A sigmoid head's decision threshold on each class's probability.
    threshold: float = DEFAULT_THRESHOLD

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The input size of a static model; for a dynamic one, the size it was probed at (an image's own
        size is what its requests use: ``LoadedModel.input_size``)."""
        return self.height, self.width, self.channels

    @property
    def dynamic_size(self) -> bool:
        return self.dynamic_height or self.dynamic_width

    def label(self, class_index: int) -> str:
        return self.labels[class_index] if class_index < len(self.labels) else str(class_index)


class LoadedModel:
    """An onnxruntime session shared by concurrent requests (``run`` is thread-safe)."""

    def __init__(self, info: ModelInfo, session: ort.InferenceSession, model_bytes: bytes,
                 budget: Budget = DEFAULT_BUDGET, default_batch: int | None = None) -> None:
        self.info = info
        self._session = session
        # The graph as loaded: verified methods build their PyTorch mirror from it (service.verify).
        self.model_bytes = model_bytes
        self._input_dtype = _INPUT_DTYPES[info.signature.input_elem_type]
        self.budget = budget
        # The server's batch before the memory cap, when neither the graph nor the configuration fixes the
        # batch: a dynamic model's batch then follows each image's size (``batch_limit``).
        self._default_batch = default_batch

    # --- the input side: which size an image takes, and how it gets there ---------------------------------

    def input_size(self, image_height: int, image_width: int) -> tuple[int, int]:
        """The (height, width) an image of this size is fitted to. A static model: its input size. Both axes
        dynamic: the image's own. One axis dynamic: the fixed axis's size, the other scaled by the same factor
        (the aspect ratio kept, as OCR models of fixed height and free width expect; REJECT keeps the image's
        own size on the dynamic axis and refuses another size on the fixed one)."""
        info = self.info
        if not info.dynamic_size:
            return info.height, info.width
        if info.dynamic_height and info.dynamic_width:
            return image_height, image_width
        keep_ratio = info.preprocessing.resize is not ResizePolicy.REJECT
        if info.dynamic_width:
            scaled = max(1, round(image_width * info.height / image_height)) if keep_ratio else image_width
            return info.height, scaled
        scaled = max(1, round(image_height * info.width / image_width)) if keep_ratio else image_height
        return scaled, info.width

    def placement(self, image_height: int, image_width: int) -> images.Placement | None:
        """Where a letterboxed image lies in the input, for a letterbox model and an image of another size;
        None when the image fills the whole input (maps are then in the model input's frame)."""
        info = self.info
        if info.preprocessing.resize is not ResizePolicy.LETTERBOX or info.dynamic_size:
            return None
        if (image_height, image_width) == (info.height, info.width):
            return None
        return images.letterbox_placement(image_height, image_width, info.height, info.width)

    def fit_image(self, image: np.ndarray, field: str = "image") -> np.ndarray:
        """An H x W x C image (uint8, or float in [0, 1]) as float32 pixels at its input size (``input_size``):
        resized by the model's policy, letterboxed with its pad value."""
        pixels = images.to_unit_pixels(image, field=field)
        pixels = images.match_channels(pixels, self.info.channels)
        height, width = self.input_size(*pixels.shape[:2])
        if self.info.dynamic_size and height * width > self.budget.model_input_pixels:
            raise ResourceExhausted(
                f"becomes a model input of {height} x {width} = {height * width} pixels, over this server's limit "
                f"of {self.budget.model_input_pixels} (ONNXPLAIN_MAX_MODEL_INPUT_PIXELS); send a smaller image",
                field=field)
        preprocessing = self.info.preprocessing
        return images.fit(pixels, height, width, preprocessing.resize, field=field,
                          pad_value=preprocessing.pad_pixel(self.info.channels))

    def fit_mask(self, mask: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
        """An H x W mask in [0, 1] of an image of ``image_size`` (its size as sent) as a bool mask over that
        image's model input: placed like the image (the letterbox's padding is background), resized bilinearly
        and thresholded at 0.5. A mask of another size than its image is stretched over it."""
        target = self.input_size(*image_size)
        values = mask.astype(np.float32)[..., None]
        box = self.placement(*image_size)
        if box is not None:
            placed = np.zeros((*target, 1), dtype=np.float32)
            placed[box.top:box.top + box.height, box.left:box.left + box.width] = images.fit(
                values, box.height, box.width, ResizePolicy.STRETCH)
            values = placed
        elif self.info.preprocessing.resize is ResizePolicy.CENTER_CROP and mask.shape == tuple(image_size):
            values = images.fit(values, *target, ResizePolicy.CENTER_CROP)
        else:
            values = images.fit(values, *target, ResizePolicy.STRETCH)
        return values[..., 0] > 0.5

    def accepts(self, image_shape: tuple[int, ...]) -> bool:
        """Whether ``predict`` takes images of this (H, W, C): the input size, or any size on dynamic axes."""
        if len(image_shape) != 3 or image_shape[2] != self.info.channels or min(image_shape[:2]) < 1:
            return False
        return ((self.info.dynamic_height or image_shape[0] == self.info.height)
                and (self.info.dynamic_width or image_shape[1] == self.info.width))

    def batch_limit(self, height: int, width: int) -> int:
        """Images per session call at this size: the model's batch, lowered for a larger image of a dynamic
        model (when its batch is the server's default) so that one call's input fits the job memory."""
        if self._default_batch is None:
            return self.info.max_batch
        image_bytes = height * width * self.info.channels * np.dtype(np.float32).itemsize
        return max(1, min(self._default_batch, self.budget.job_memory_bytes // image_bytes))

    def predict(self, pixels: np.ndarray, *, score_space: ScoreSpace = ScoreSpace.RAW,
                batch_size: int | None = None, run_options: ort.RunOptions | None = None) -> np.ndarray:
        """Class scores (N, classes) of images (N, H, W, C) in [0, 1] at the model's input size (any size on
        the axes a dynamic model leaves free: ``accepts``), in ``score_space``.

        ``run_options``: set its ``terminate`` from another thread to stop a session call that is running
        (a batch of a large model can take seconds; a cancelled job should not wait for it)."""
        return self.outputs(pixels, batch_size=batch_size, run_options=run_options).scores(score_space)

    def outputs(self, pixels: np.ndarray, *, batch_size: int | None = None,
                run_options: ort.RunOptions | None = None) -> ModelOutputs:
        """The output explained and the logits before its activation (where the graph has them) for images
        (N, H, W, C): one set of session calls, from which every score space is served."""
        if pixels.ndim != 4 or not self.accepts(pixels.shape[1:]):
            raise ValueError(f"expected images of shape (N, {self.info.image_shape}), got {pixels.shape}")
        limit = self.batch_limit(*pixels.shape[1:3])
        chunk = limit if batch_size is None else max(1, min(batch_size, limit))
        runs = [self._run(pixels[start:start + chunk], run_options) for start in range(0, len(pixels), chunk)]
        columns = self.info.signature.output_dims[1] or 0
        raw = np.concatenate([r[0] for r in runs]) if runs else np.zeros((0, columns), np.float32)
        logits = None
        if self.info.logits_output is not None:
            logits = np.concatenate([r[1] for r in runs]) if runs else np.zeros((0, columns), np.float32)
        for values in (raw, logits):
            if values is not None and not np.all(np.isfinite(values)):
                bad = int(np.count_nonzero(~np.isfinite(values).all(axis=1)))
                raise FailedPrecondition(f"model {self.info.name!r} gives NaN or infinite scores for {bad} of "
                                         f"{len(values)} images; such scores cannot be explained or compared")
        return ModelOutputs(self.info.output_kind, raw, logits)

    def _run(self, pixels: np.ndarray,
             run_options: ort.RunOptions | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """The output explained, (N, columns), and the logits (or None) of one session call."""
        count = len(pixels)
        if self.info.fixed_batch and count < self.info.max_batch:
            # A fixed batch axis takes exactly max_batch images: pad with copies, drop their outputs.
            padding = np.repeat(pixels[-1:], self.info.max_batch - count, axis=0)
            pixels = np.concatenate([pixels, padding])
        values = self.info.preprocessing.apply(pixels, channels_first=self.info.layout is Layout.NCHW)
        if self._input_dtype is np.uint8:
            values = np.clip(np.rint(values), 0, 255)
        feed = {self.info.signature.input_name: values.astype(self._input_dtype, copy=False)}
        names = [self.info.signature.output_name]
        if self.info.logits_output is not None:
            names.append(self.info.logits_output)
        try:
            fetched = self._session.run(names, feed, run_options)
            # [N, C, 1, 1] -> [N, C] by naming the axes kept (a bare squeeze drops the batch axis of one image).
            rows = [as_rows(np.asarray(fetched[0], dtype=np.float32), names[0])[:count]]
            if len(fetched) > 1:  # the logits, as they were checked against the output at load
                logits = np.asarray(fetched[1], dtype=np.float32)
                rows.append(logits.reshape(logits.shape[0], -1)[:count])
        except Exception as error:  # onnxruntime's own types (Fail, RuntimeException, InvalidArgument)
            if run_options is not None and run_options.terminate:
                raise  # stopped on purpose: the caller reports its cancel
            raise FailedPrecondition(f"model {self.info.name!r} fails on a batch of {len(pixels)} images "
                                     f"({error.__class__.__name__}: {str(error)[:300]})") from error
        return rows[0], (rows[1] if len(rows) > 1 else None)


def load_model(name: str, model_bytes: bytes, *, source: str, model_path: Path | None = None,
               overrides: Mapping[str, Any] | None = None, default_batch_size: int = 32,
               device: providers_mod.DevicePreference = providers_mod.DevicePreference.AUTO,
               budget: Budget = DEFAULT_BUDGET) -> LoadedModel:
    """Validate, inspect and open an ONNX image classifier.

    ``model_path`` (a repository model, whose file ``model_bytes`` holds) lets tensors keep their data
    in files inside the model's folder, and the session then opens the model by path so that
    onnxruntime resolves them there; without it (an upload) the model must hold all its data. Errors
    about the file itself name ``path`` or ``onnx_model``, the LoadModel field it came from. Everything
    the model declares or is configured with is checked against ``budget`` before anything of its
    size is allocated.
    """
    field = "path" if model_path is not None else "onnx_model"
    model = model_file.parse(model_bytes, field)
    external = model_file.scan(model, field)
    if model_path is None:
        model_file.refuse_external_data(external, field)
    elif external:
        model_file.inline_external_data(model, external, model_path.parent, field)
        # The graph kept for the PyTorch mirror holds its data: nothing reads external files later.
        model_bytes = model.SerializeToString()
    try:
        onnx.checker.check_model(model)
    except (onnx.checker.ValidationError, ValueError) as error:  # ValueError: text onnx cannot decode
        raise InvalidArgument(f"the ONNX checker rejects the model: {error}", field=field) from error

    config = resolve_config(model, model_path, overrides or {})
    signature = read_signature(model, field, config.output, config.field_of("output") or "overrides.output")
    if signature.input_elem_type not in _INPUT_DTYPES:
        raise InvalidArgument(
            f"input {signature.input_name!r} has element type {_type_name(signature.input_elem_type)}; "
            "supported: float, float16, double, uint8",
            field=field,
        )
    layout = config.layout or signature.layout_guess()
    height, width, channels, dynamic_height, dynamic_width = _image_size(signature, layout, config, field, budget)
    max_batch = _max_batch(signature, config, height * width * channels, default_batch_size, field, budget)
    follows_size = (dynamic_height or dynamic_width) and signature.fixed_batch is None and config.batch_size is None
    preprocessing = Preprocessing.from_mapping(config.preprocessing, default_preprocessing(channels))
    preprocessing.validate(channels, field_prefix=f"{config.preprocessing_source}.preprocessing",
                           fields={key.removeprefix("preprocessing."): value for key, value in config.fields.items()
                                   if key.startswith("preprocessing.")})

    output_kind, kind_source, logits_output = _output_kind(signature, config)
    if logits_output is not None:
        # The logits before the terminal activation come out of the same session call as the output.
        session_source: bytes | Path = with_output(model, logits_output, signature.output_name).SerializeToString()
    else:
        session_source = model_bytes if model_path is None else model_path
    session = _open_session(session_source, device, field)
    info = ModelInfo(
        name=name, source=source, sha256=hashlib.sha256(model_bytes).hexdigest(), signature=signature,
        layout=layout, height=height, width=width, channels=channels, fixed_batch=signature.fixed_batch is not None,
        max_batch=max_batch, output_kind=output_kind or OutputKind.LOGITS, output_kind_source=kind_source,
        preprocessing=preprocessing,
        preprocessing_source=config.preprocessing_source, num_classes=signature.output_dims[1] or 0,
        labels=(), provider=session.get_providers()[0], description=config.description,
        dynamic_height=dynamic_height, dynamic_width=dynamic_width,
    )
    loaded = LoadedModel(info, session, model_bytes, budget,
                         min(default_batch_size, budget.batch_size) if follows_size else None)
    # Probe batches: prove the session runs, count classes when the graph leaves them dynamic, and tell
    # logits from probabilities when neither the graph nor the config says. Batches of 2 and of 1 (a last,
    # partial batch) catch graphs that only run at the size they were traced with.
    probe = np.random.default_rng(PROBE_SEED).random((min(2, info.max_batch), *info.image_shape), dtype=np.float32)
    try:
        probe_outputs = loaded.outputs(probe)
        if len(probe) > 1 and not info.fixed_batch:
            single = loaded.outputs(probe[:1]).raw
            if single.shape != (1, *probe_outputs.raw.shape[1:]):
                raise ValueError(f"scores of shape {list(single.shape)} for one image")
    except Exception as error:  # onnxruntime raises its own exception types: report them as they are
        if info.dynamic_size and _session_failed(error):  # most likely a size baked into the graph
            raise _size_refusal(info, info.height, info.width, error, "") from error
        raise InvalidArgument(f"the model fails on a probe batch: {error}", field=field) from error
    raw = probe_outputs.raw
    if raw.ndim != 2 or raw.shape[0] != len(probe) or raw.shape[1] < 1:
        raise InvalidArgument(f"the model gives scores of shape {list(raw.shape)} for {len(probe)} images; "
                              "a classifier gives [batch, classes]", field=field)
    _probe_other_size(loaded, raw.shape[1:])
    if output_kind is None:
        output_kind, kind_source = looks_like(raw), "probe"
    if logits_output is not None and not _gives_logits(loaded, probe, output_kind, logits_output):
        # A softmax over another axis, or reshapes between it and the output that regroup classes: the tensor
        # is not this output's logits. LOGIT then falls back (service.runtime.scores).
        log.info("terminal activation's input is not the output's logits",
                 extra={"model": name, "tensor": logits_output})
        logits_output = None
    num_classes = served_classes(output_kind, raw.shape[1])
    labels = tuple(config.labels or ())
    if not labels and output_kind is OutputKind.SIGMOID and raw.shape[1] == 1:
        labels = BINARY_LABELS
    if labels and len(labels) != num_classes:
        served = " (a binary sigmoid head serves two: negative, positive)" if num_classes != raw.shape[1] else ""
        raise InvalidArgument(f"{len(labels)} labels for {num_classes} classes{served}",
                              field=config.field_of("labels"))
    loaded.info = replace(info, num_classes=num_classes, labels=labels, output_kind=output_kind,
                          output_kind_source=kind_source, logits_output=logits_output,
                          logit_source=logit_source(output_kind, logits_output is not None),
                          threshold=DEFAULT_THRESHOLD if config.threshold is None else config.threshold)
    log.info("model loaded", extra={"model": name, "provider": info.provider, "layout": layout.value,
                                    "input": format_dims(signature.input_dims), "output_kind": output_kind.value,
                                    "output": signature.output_name,
                                    "logit_source": loaded.info.logit_source.value})
    return loaded


def _gives_logits(loaded: LoadedModel, probe: np.ndarray, kind: OutputKind, tensor: str) -> bool:
    """Whether the session's ``tensor``, one row per image, activates into the output on the probe batch."""
    trial = LoadedModel(replace(loaded.info, logits_output=tensor), loaded._session, loaded.model_bytes)
    try:
        outputs = trial.outputs(probe)
    except FailedPrecondition:  # no batch axis, or not finite: not usable as logits
        return False
    return activation_matches(kind, outputs.raw, outputs.logits)


# A binary sigmoid head's two served classes, unless labels are configured.
BINARY_LABELS = ("negative", "positive")


def _output_kind(signature: GraphSignature, config: ModelConfig) -> tuple[OutputKind | None, str, str | None]:
    """The output's kind and what said so (the configuration or the graph; None: the probe decides), and the
    tensor holding its logits: the input of a terminal activation that makes this kind."""
    graph_kind = signature.output_kind_from_graph()
    if config.output_kind:
        kind, source = config.output_kind, config.output_kind_source
    elif graph_kind:
        kind, source = graph_kind, "graph"
    else:
        return None, "", None
    logits = signature.pre_activation if ACTIVATION_KINDS.get(signature.output_op) is kind else None
    return kind, source, logits


def _type_name(elem_type: int) -> str:
    try:
        return onnx.TensorProto.DataType.Name(elem_type)
    except ValueError:  # a number no ONNX type has
        return str(elem_type)


def _image_size(signature: GraphSignature, layout: Layout, config: ModelConfig, field: str,
                budget: Budget) -> tuple[int, int, int, bool, bool]:
    """(height, width, channels, dynamic height, dynamic width) of the model's images.

    The rule for each spatial axis: the graph's size where it fixes one; else the configured size (sidecar,
    metadata or overrides) where one is given; else the axis is dynamic, each image keeps its own size there
    (``LoadedModel.input_size``) and the load probe uses DEFAULT_DYNAMIC_SIZE. A fixed input over the pixel
    budget is refused here, before a probe or a request allocates an image of that size."""
    graph_h, graph_w, channels = signature.spatial_dims(layout)
    if channels not in (1, 3):
        raise InvalidArgument(
            f"input {signature.input_name!r} has {channels} channels under layout {layout.value}; "
            "image models take 1 or 3",
            field=config.field_of("layout") or "overrides.layout",
        )
    for axis, graph_value in (("height", graph_h), ("width", graph_w)):
        configured = getattr(config, axis)
        if graph_value and configured and graph_value != configured:
            raise InvalidArgument(f"the graph fixes {axis} {graph_value}, not {configured}",
                                  field=config.field_of(axis))
    dynamic_h = not (graph_h or config.height)
    dynamic_w = not (graph_w or config.width)
    height = graph_h or config.height or DEFAULT_DYNAMIC_SIZE
    width = graph_w or config.width or DEFAULT_DYNAMIC_SIZE
    if height * width > budget.model_input_pixels:
        if dynamic_h or dynamic_w:  # only the probe's default size is too large: a smaller one can be configured
            raise InvalidArgument(
                f"the dynamic input is probed at {height} x {width} = {height * width} pixels, over this server's "
                f"limit of {budget.model_input_pixels} (ONNXPLAIN_MAX_MODEL_INPUT_PIXELS); give a smaller height "
                "and width in the sidecar or overrides", field="overrides.height" if dynamic_h else "overrides.width")
        # Name what set the size: the configuration when it gave an axis the graph leaves open.
        blamed = (config.field_of("height") if graph_h is None else
                  config.field_of("width") if graph_w is None else field)
        raise InvalidArgument(
            f"the model's input is {height} x {width} = {height * width} pixels, over this server's limit of "
            f"{budget.model_input_pixels} (ONNXPLAIN_MAX_MODEL_INPUT_PIXELS)", field=blamed)
    return height, width, channels, dynamic_h, dynamic_w


def _probe_other_size(model: LoadedModel, classes_shape: tuple[int, ...]) -> None:
    """A dynamic model scored at a second size: a graph that declares free spatial axes but computes with one
    size baked in is refused at load, with what to configure, instead of failing on the first other image."""
    info = model.info
    if not info.dynamic_size:
        return
    height = info.height + SECOND_PROBE_OFFSET if info.dynamic_height else info.height
    width = max(1, info.width - SECOND_PROBE_OFFSET) if info.dynamic_width else info.width
    if height * width > model.budget.model_input_pixels:
        return
    pixels = np.random.default_rng(PROBE_SEED + 1).random((1, height, width, info.channels), dtype=np.float32)
    try:
        scores = model.outputs(pixels).raw
        if scores.shape[1:] != tuple(classes_shape):
            raise ValueError(f"scores of shape {list(scores.shape)}")
    except Exception as error:  # onnxruntime raises its own exception types
        raise _size_refusal(info, height, width, error, f" after running at {info.height} x {info.width}") \
            from error


def _session_failed(error: Exception) -> bool:
    """Whether onnxruntime itself refused to run (``LoadedModel._run`` wraps its error), not a check of ours."""
    return isinstance(error, FailedPrecondition) and error.__cause__ is not None


def _size_refusal(info: ModelInfo, height: int, width: int, error: Exception, after: str) -> InvalidArgument:
    free = [axis for axis, dynamic in (("height", info.dynamic_height), ("width", info.dynamic_width)) if dynamic]
    axes, verb = " and ".join(free), "are" if len(free) > 1 else "is"
    return InvalidArgument(
        f"the input's {axes} {verb} dynamic in the graph, but the model fails at {height} x {width}{after} "
        f"({str(error)[:200]}); give the size it takes as {axes} in the sidecar or overrides",
        field=f"overrides.{free[0]}")


def _max_batch(signature: GraphSignature, config: ModelConfig, image_values: int, default_batch_size: int,
               field: str, budget: Budget) -> int:
    """Images per session call: the graph's fixed batch, else the configured one, else the server's default
    (lowered to what the job memory budget holds); a fixed or configured batch over the budget is refused."""
    image_bytes = image_values * np.dtype(np.float32).itemsize
    fixed = signature.fixed_batch
    if fixed is not None:
        batch, blamed, what = fixed, field, "the graph fixes the batch axis at"
    elif config.batch_size is not None:
        batch, blamed, what = config.batch_size, config.field_of("batch_size"), "the configured batch size is"
    else:
        fitting = budget.job_memory_bytes // image_bytes
        return max(1, min(default_batch_size, budget.batch_size, fitting))
    if batch > budget.batch_size:
        raise InvalidArgument(f"{what} {batch}, over this server's limit of {budget.batch_size} images per call "
                              "(ONNXPLAIN_MAX_BATCH_SIZE)", field=blamed)
    if batch * image_bytes > budget.job_memory_bytes:
        raise InvalidArgument(
            f"{what} {batch}: one call's input takes {-(-batch * image_bytes // MIB)} MiB, over this server's "
            f"{budget.job_memory_mb} MiB per job (ONNXPLAIN_MAX_JOB_MEMORY_MB)", field=blamed)
    return batch


@functools.cache
def _reserve_cores_for_onnxruntime() -> None:
    """Keep numpy's BLAS single-threaded, process-wide, once a model is loaded.

    Explainers call BLAS between forward passes (RISE builds its masks with matmul); OpenBLAS's
    threads then spin on the cores onnxruntime's own threads need. Measured on 2 cores with a
    224-pixel resnet18: RISE ran at 1.19x the bare forward passes, 1.06x with BLAS on one thread.
    """
    threadpool_limits(limits=1, user_api="blas")


def _open_session(model: bytes | Path, device: providers_mod.DevicePreference, field: str) -> ort.InferenceSession:
    """A session from the model's bytes, or from its file (external data then resolves in its folder)."""
    _reserve_cores_for_onnxruntime()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: keep CPU-only machines quiet
    source = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(source, options, providers=providers_mod.choose_providers(device))
    except Exception as error:  # onnxruntime's own types (Fail, InvalidGraph, NotImplemented)
        raise InvalidArgument(f"onnxruntime cannot load the model: {error}", field=field) from error
