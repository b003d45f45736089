"""A loaded model: one onnxruntime session, its metadata, and batched prediction in pixel space.

``LoadedModel.predict`` is the only way explainers reach the model: images in
pixel space go in, class scores come out, whatever the model's layout, batch
axis, input dtype and preprocessing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import onnxruntime as ort

from service.budget import DEFAULT_BUDGET, Budget
from service.errors import FailedPrecondition, ResourceExhausted
from service.runtime import images
from service.runtime.batch_axis import BatchAxis
from service.runtime.batcher import Batcher, BatchStats
from service.runtime.preprocessing import Preprocessing, ResizePolicy
from service.runtime.scores import DEFAULT_THRESHOLD, LogitSource, ModelOutputs, ScoreSpace
from service.runtime.session import SessionRunner
from service.runtime.signature import GraphSignature, Layout, OutputKind, as_rows

# ONNX element types a session input may have, and the numpy type fed to it.
INPUT_DTYPES = {
    onnx.TensorProto.FLOAT: np.float32,
    onnx.TensorProto.FLOAT16: np.float16,
    onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.UINT8: np.uint8,
}


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
    # Whether the session served takes exactly ``max_batch`` images a call (the graph's fixed batch, unless freed).
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
    # ``height``/``width`` hold only the size the load probe used (``service.runtime.loader.DEFAULT_DYNAMIC_SIZE``).
    dynamic_height: bool = False
    dynamic_width: bool = False
    # Where LOGIT scores come from (exact logits, or a fallback: see service.runtime.scores).
    logit_source: LogitSource = LogitSource.OUTPUT
    # The tensor the session returns as the logits (the input of the terminal activation), when it does.
    logits_output: str | None = None
    # A sigmoid head's decision threshold on each class's probability.
    threshold: float = DEFAULT_THRESHOLD
    # The graph's floating-point precision as served: "fp32", or "fp16" when the model's ``precision`` key asked
    # for it and the converted graph passed the load's accuracy check (service.runtime.half_precision);
    # ``precision_reason`` says why fp16 was asked for and not served.
    precision: str = "fp32"
    precision_reason: str = ""
    # Where EVA's PyTorch mirror runs (the server's verify_device: auto, cpu, cuda) and on which CUDA device.
    verify_device: str = "auto"
    verify_device_id: int = 0
    # How the batch axis is served (``fixed_batch`` and ``max_batch`` describe the session served), why, and the
    # rewrites that freed it (service.runtime.batch_axis).
    batch_axis: BatchAxis = BatchAxis.DYNAMIC
    batch_axis_reason: str = ""
    batch_axis_rewrites: tuple[str, ...] = ()
    # How ``layout`` was decided: the configuration key that set it, or "graph: ..." (loader._layout_reason).
    layout_source: str = ""
    # Where each preprocessing key's value came from, by key: "default", "metadata_props", "sidecar", "overrides".
    preprocessing_sources: tuple[tuple[str, str], ...] = ()

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

    def __init__(self, info: ModelInfo, session: SessionRunner, model_bytes: bytes,
                 budget: Budget = DEFAULT_BUDGET, default_batch: int | None = None) -> None:
        self.info = info
        self._session = session
        # The graph as loaded (external data inlined), never the freed one the session may serve: verified methods
        # build their PyTorch mirror from it (service.verify), with their own passes, checked against the session.
        self.model_bytes = model_bytes
        self._input_dtype = INPUT_DTYPES[info.signature.input_elem_type]
        self.budget = budget
        # The server's batch before the memory cap, when neither the graph nor the configuration fixes the
        # batch: a dynamic model's batch then follows each image's size (``batch_limit``).
        self._default_batch = default_batch
        # Session calls, batched or not (GetModelStatistics); the batcher merging concurrent jobs' calls, if any
        # (``service.runtime.batcher``, attached by the loader once the model has passed its probes).
        self.batch_stats = BatchStats()
        self.batcher: Batcher | None = None

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
            fetched = self._execute(names, feed, run_options)
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

    def _execute(self, names: list[str], feed: dict, run_options: ort.RunOptions | None) -> list:
        """The outputs of one session call on ``feed``: through the batcher, which may merge it with other jobs'
        calls, or on its own. Either way its session time is charged to the caller (``batcher.charge``)."""
        if self.batcher is not None:
            return self.batcher.run(names, feed, run_options)
        return self.batch_stats.timed(self._run_feed, names, feed, run_options)

    def _run_feed(self, names: list[str], feed: dict, run_options: ort.RunOptions | None) -> list:
        """The only place the session runs."""
        return self._session.run(names, feed, run_options)

    def input_capacity(self, input_shape: tuple[int, ...]) -> int:
        """Images per session call for a session input of this shape (the batcher's bound on a merged call)."""
        height, width = input_shape[2:4] if self.info.layout is Layout.NCHW else input_shape[1:3]
        return self.batch_limit(height, width)

    def close(self) -> None:
        """Stop the batcher's worker (it runs what is queued first); later calls run unbatched."""
        if self.batcher is not None:
            self.batcher.stop()
