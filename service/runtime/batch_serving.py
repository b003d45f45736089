"""Which batch axis a model is served with, decided at load: the graph's own, or a fixed batch of 1 freed
(``service.runtime.batch_axis``) once the freed graph is proved to score every image of a batch as the graph
as exported scores it alone.

The freed graph is served with the batch a dynamic-batch graph gets (the configured ``batch_size``, else the
server's default within the job memory budget). It is not served when the sidecar, metadata or overrides set
``free_batch`` false, when that batch would be 1 anyway, or when the proof fails (the graph mixes images
across the batch, or keeps the traced batch in a shape the rewrite does not reach): the graph is then served
as exported, one image per session call, and ``ModelInfo.batch_axis_reason`` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import onnx
import onnxruntime as ort

from service.errors import ServiceError
from service.runtime.batch_axis import PROOF_BATCH, PROOF_SEED, BatchAxis, NotFreed, free_batch_axis, prove_per_image
from service.runtime.model import LoadedModel, ModelInfo
from service.runtime.model_config import ModelConfig
from service.runtime.providers import ExecutionSettings, InputProfile
from service.runtime.session import SessionRunner, open_session
from service.runtime.signature import GraphSignature

log = logging.getLogger(__name__)

ONE_AT_A_TIME = "served as exported, one image per session call"


@dataclass(frozen=True)
class BatchPlan:
    batch_axis: BatchAxis
    reason: str
    # The freed graph, to be proved before it is served (``serve_freed``); None: the graph is served as exported.
    freed: onnx.ModelProto | None = None
    rewrites: tuple[str, ...] = ()


def plan(model: onnx.ModelProto, signature: GraphSignature, config: ModelConfig,
         dynamic_batch: Callable[[], int]) -> BatchPlan:
    """How ``model`` (the graph to serve, with any extra output the session returns) is served. ``dynamic_batch``:
    the batch a dynamic graph would get (raises for a configured batch over the budget)."""
    fixed = signature.fixed_batch
    if fixed is None:
        return BatchPlan(BatchAxis.DYNAMIC, "the graph's batch axis is dynamic")
    if fixed > 1:
        return BatchPlan(BatchAxis.FIXED, f"the graph fixes a batch of {fixed}, served as exported: calls take {fixed} "
                                          "images, a short chunk padded (only a batch of 1 is freed)")
    if config.free_batch is False:
        return BatchPlan(BatchAxis.FIXED, f"the graph fixes a batch of 1 and {config.field_of('free_batch')} is "
                                          f"false: {ONE_AT_A_TIME}")
    batch = dynamic_batch()
    if batch < 2:
        return BatchPlan(BatchAxis.FIXED, "the graph fixes a batch of 1 and a freed graph would take one image a "
                                          "call too (the configured batch_size, or the job memory budget): "
                                          f"{ONE_AT_A_TIME}")
    try:
        freed, rewrites = free_batch_axis(model)
    except NotFreed as refusal:
        return BatchPlan(BatchAxis.FIXED, f"the graph fixes a batch of 1: {refusal}; {ONE_AT_A_TIME}")
    return BatchPlan(BatchAxis.FREED, "", freed, tuple(rewrites))


def serve_freed(plan: BatchPlan, exported: SessionRunner, info: ModelInfo, execution: ExecutionSettings,
                field: str, profile: InputProfile | None = None) -> tuple[SessionRunner, ModelInfo]:
    """The session to serve and its info: the freed graph's when it scores a probe batch as ``exported`` (the
    graph as exported, on the same device) scores each image alone, else ``exported``'s, one image a call.

    The proof runs through ``LoadedModel.outputs``, as requests will: the same preprocessing and input type, the
    explained output and the logits the session returns beside it."""
    one_at_a_time = replace(info, fixed_batch=True, max_batch=1, batch_axis=BatchAxis.FIXED)
    try:
        freed = open_session(plan.freed.SerializeToString(), execution, field, profile)
    except ServiceError as error:
        return exported, _not_freed(one_at_a_time, f"onnxruntime cannot load the freed graph ({error.message[:240]})")
    except ValueError as error:  # protobuf: the freed graph's few new shape tensors took it past 2 GiB
        return exported, _not_freed(one_at_a_time, f"the freed graph cannot be serialized ({str(error)[:200]})")
    returned = {output.name for output in exported.session.get_outputs()}
    logits = info.signature.pre_activation if info.signature.pre_activation in returned else None
    names = [info.signature.output_name, *([logits] if logits else [])]
    # The freed graph's failure is an answer here, not an error: onnxruntime need not log it.
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4
    reference = LoadedModel(replace(one_at_a_time, logits_output=logits), exported, b"")
    candidate = LoadedModel(replace(info, logits_output=logits), freed, b"")
    images = np.random.default_rng(PROOF_SEED).random((min(PROOF_BATCH, info.max_batch), *info.image_shape),
                                                      dtype=np.float32)
    try:
        reference_rows = _rows(reference, images)
    except Exception as error:  # noqa: BLE001 - the graph as exported fails on its own: the load probe reports it
        return exported, _not_freed(one_at_a_time, f"the graph as exported fails on a probe image ({error})")
    proof = prove_per_image(lambda _: reference_rows, lambda batch: _rows(candidate, batch, quiet), images, names,
                            info.signature.input_elem_type)
    if not proof.holds:
        return exported, _not_freed(one_at_a_time, proof.summary)
    reason = (f"the graph fixes a batch of 1: freed ({len(plan.rewrites)} rewrites) and served with batches of up "
              f"to {info.max_batch}; {proof.summary}")
    log.info("batch axis freed", extra={"model": info.name, "rewrites": list(plan.rewrites)})
    return freed, replace(info, provider=freed.provider, batch_axis_reason=reason)


def _rows(model: LoadedModel, images: np.ndarray, run_options: ort.RunOptions | None = None) -> list[np.ndarray]:
    outputs = model.outputs(images, run_options=run_options)
    return [outputs.raw, *([outputs.logits] if outputs.logits is not None else [])]


def _not_freed(info: ModelInfo, why: str) -> ModelInfo:
    log.info("batch axis kept fixed", extra={"model": info.name, "reason": why})
    return replace(info, batch_axis_reason=f"the graph fixes a batch of 1 and is not freed: {why}; {ONE_AT_A_TIME}",
                   batch_axis_rewrites=())
