"""Loading a model: validate the file, read its signature and configuration, open the session, probe it.

Everything a request relies on is decided here, once, and recorded in ``ModelInfo``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx

from service.budget import DEFAULT_BUDGET, MIB, Budget
from service.errors import FailedPrecondition, InvalidArgument
from service.runtime import batch_serving, half_precision, model_file, providers as providers_mod
from service.runtime.batch_axis import BatchAxis
from service.runtime.batcher import BatchingSettings, make_batcher
from service.runtime.model import INPUT_DTYPES, LoadedModel, ModelInfo
from service.runtime.model_config import ModelConfig, resolve_config
from service.runtime.preprocessing import Preprocessing, default_preprocessing
from service.runtime.scores import (DEFAULT_THRESHOLD, activation_matches, logit_source, looks_like,
                                   served_classes)
from service.runtime.session import SessionRunner, open_session
from service.runtime.signature import (ACTIVATION_KINDS, IMAGE_CHANNELS, GraphSignature, Layout, OutputKind,
                                       format_dims, read_signature, with_output)

log = logging.getLogger(__name__)

PROBE_SEED = 0
# The size a dynamic height or width is probed at when nothing configures it: what torchvision's and timm's
# ImageNet classifiers take, small enough that the probe costs little. Requests use each image's own size.
DEFAULT_DYNAMIC_SIZE = 224
# How far a dynamic model's second probe size is from the first on each dynamic axis (taller and narrower, so
# non-square): a graph that declares its spatial axes dynamic but bakes a size into a Reshape or a position
# embedding fails there, at load.
SECOND_PROBE_OFFSET = 32


def load_model(name: str, model_bytes: bytes, *, source: str, model_path: Path | None = None,
               overrides: Mapping[str, Any] | None = None, default_batch_size: int = 32,
               device: providers_mod.DevicePreference | providers_mod.ExecutionSettings = (
                   providers_mod.DevicePreference.AUTO),
               budget: Budget = DEFAULT_BUDGET, batching: BatchingSettings = BatchingSettings()) -> LoadedModel:
    """Validate, inspect and open an ONNX image classifier.

    ``model_path`` (a repository model, whose file ``model_bytes`` holds) lets tensors keep their data
    in files inside the model's folder, and the session then opens the model by path so that
    onnxruntime resolves them there; without it (an upload) the model must hold all its data. Errors
    about the file itself name ``path`` or ``onnx_model``, the LoadModel field it came from. Everything
    the model declares or is configured with is checked against ``budget`` before anything of its
    size is allocated. ``device``: where sessions run, a preference or the server's whole execution settings.
    """
    execution = providers_mod.ExecutionSettings.of(device)
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
    if signature.input_elem_type not in INPUT_DTYPES:
        raise InvalidArgument(
            f"input {signature.input_name!r} has element type {_type_name(signature.input_elem_type)}; "
            "supported: float, float16, double, uint8",
            field=field,
        )
    layout = config.layout or signature.layout_guess()
    layout_source = config.field_of("layout") or _layout_reason(signature, layout)
    height, width, channels, dynamic_height, dynamic_width = _image_size(signature, layout, config, field, budget)
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
    image_values = height * width * channels
    # A graph fixed at batch 1 is served freed, with the batch a dynamic graph would get, once proved equal.
    plan = batch_serving.plan(model, signature, config, lambda: _max_batch(None, config, image_values,
                                                                           default_batch_size, field, budget))
    served_batch = None if plan.freed is not None else signature.fixed_batch
    max_batch = _max_batch(served_batch, config, image_values, default_batch_size, field, budget)
    dynamic_size = dynamic_height or dynamic_width
    profile = _input_profile(signature.input_name, layout, height, width, channels, max_batch,
                             served_batch is not None, dynamic_size)
    # The graph as exported, the reference a freed graph is proved against, takes its own batch of 1.
    exported_profile = profile if plan.freed is None else _input_profile(
        signature.input_name, layout, height, width, channels, 1, True, dynamic_size)
    session = open_session(session_source, execution, field, exported_profile)
    info = ModelInfo(
        name=name, source=source, sha256=hashlib.sha256(model_bytes).hexdigest(), signature=signature,
        layout=layout, layout_source=layout_source, preprocessing_sources=_preprocessing_sources(config),
        height=height, width=width, channels=channels, fixed_batch=served_batch is not None, max_batch=max_batch,
        output_kind=output_kind or OutputKind.LOGITS, output_kind_source=kind_source,
        preprocessing=preprocessing,
        preprocessing_source=config.preprocessing_source, num_classes=signature.output_dims[1] or 0,
        labels=(), provider=session.provider, description=config.description,
        dynamic_height=dynamic_height, dynamic_width=dynamic_width,
        batch_axis=plan.batch_axis, batch_axis_reason=plan.reason, batch_axis_rewrites=plan.rewrites,
        verify_device=execution.verify_device.value, verify_device_id=execution.device_id,
    )
    if plan.freed is not None:
        session, info = batch_serving.serve_freed(plan, session, info, execution, field, profile)
    if config.precision is half_precision.Precision.FP16:
        served_graph = plan.freed if info.batch_axis is BatchAxis.FREED else model
        session, info = _serve_fp16(served_graph, session, info, execution, config.field_of("precision"), profile)
    follows_size = (dynamic_height or dynamic_width) and not info.fixed_batch and config.batch_size is None
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
    # Last: the probes above ran alone, and a refused model leaves no worker thread behind.
    loaded.batcher = make_batcher(loaded, config.dynamic_batching, config.fields, batching)
    log.info("model loaded", extra={"model": name, "provider": info.provider, "layout": layout.value,
                                    "input": format_dims(signature.input_dims), "output_kind": output_kind.value,
                                    "output": signature.output_name,
                                    "logit_source": loaded.info.logit_source.value})
    return loaded


def _input_profile(name: str, layout: Layout, height: int, width: int, channels: int, max_batch: int,
                   fixed_batch: bool, dynamic_size: bool) -> providers_mod.InputProfile | None:
    """The input shapes a TensorRT engine covers: one image to the model's batch; None for a dynamic image size
    (each new size would build an engine)."""
    if dynamic_size:
        return None
    image = (channels, height, width) if layout is Layout.NCHW else (height, width, channels)
    return providers_mod.InputProfile(name, ((max_batch if fixed_batch else 1), *image), (max_batch, *image))


def _serve_fp16(graph: onnx.ModelProto, session: SessionRunner, info: ModelInfo,
                execution: providers_mod.ExecutionSettings,
                field: str | None, profile: providers_mod.InputProfile | None) -> tuple[SessionRunner, ModelInfo]:
    """The fp16 conversion of the graph served (``graph``), when it scores probe images as the fp32 session does
    (``half_precision.serve``); else the fp32 session, with the reason in ``precision_reason``."""
    images = info.max_batch if info.fixed_batch else min(half_precision.PROBE_IMAGES, info.max_batch)
    probe = info.preprocessing.apply(half_precision.probe_pixels(images, info.height, info.width, info.channels),
                                     channels_first=info.layout is Layout.NCHW)
    served = half_precision.serve(graph, session, execution, probe, info.signature.output_name, field, profile)
    return served.runner, replace(info, provider=served.runner.provider, precision=served.precision.value,
                                  precision_reason=served.reason)


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


def _preprocessing_sources(config: ModelConfig) -> tuple[tuple[str, str], ...]:
    """Each preprocessing key and the source that set it ("default" where none did), from the fields recorded
    ("sidecar.preprocessing.mean", "metadata_props.onnxplain.preprocessing.std")."""
    sources = []
    for key in (f.name for f in fields(Preprocessing)):
        recorded = config.field_of(f"preprocessing.{key}")
        source = recorded.split(".preprocessing.")[0].split(".")[0] if recorded else "default"
        sources.append((key, source))
    return tuple(sources)


def _layout_reason(signature: GraphSignature, layout: Layout) -> str:
    """Why ``layout_guess`` chose ``layout``: the axis it read as the channel axis (and the tie it broke)."""
    axis = 1 if layout is Layout.NCHW else 3
    tie = " (axis 3 too: NCHW wins ties)" if layout is Layout.NCHW and signature.input_dims[3] in IMAGE_CHANNELS else ""
    channels = signature.input_dims[axis]
    plural = "s" if channels != 1 else ""
    return f"graph: axis {axis} of {format_dims(signature.input_dims)} has {channels} channel{plural}{tie}"


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


def _max_batch(fixed: int | None, config: ModelConfig, image_values: int, default_batch_size: int,
               field: str, budget: Budget) -> int:
    """Images per session call: the fixed batch of the graph served (None: dynamic, or freed), else the configured
    one, else the server's default (lowered to what the job memory budget holds); a fixed or configured batch over
    the budget is refused."""
    image_bytes = image_values * np.dtype(np.float32).itemsize
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
