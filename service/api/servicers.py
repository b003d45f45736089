"""The xai.v1 services: each handler converts the request, runs a job, converts the result."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from pathlib import Path

import numpy as np
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import explain_service_pb2_grpc as ex_grpc
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms
from onnxplain_client._proto.xai.v1 import model_service_pb2_grpc as ms_grpc

from service import inspect as inspection
from service.api import requests, responses
from service.api.status import translate_errors
from service.api.telemetry import Telemetry, statistics_response
from service.errors import InvalidArgument, ResourceExhausted
from service.explainers import METHODS
from service.jobs.aggregate import run_aggregate
from service.jobs.audit import run_audit_job
from service.jobs.consistency import run_consistency
from service.jobs.control import Progress
from service.jobs.evaluate import run_evaluate
from service.jobs.explain import run_explain
from service.jobs.measure import run_measure
from service.jobs.predict import run_predict
from service.jobs.runner import JobRunner
from service.jobs.scales import run_scales
from service.metrics import METRICS
from service.runtime.repository import ModelRepository
from service.runtime.scores import ScoreSpace
from service.verify.mirror import cached_report, verification_report


log = logging.getLogger(__name__)


def _deadline(context) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


class ModelService(ms_grpc.ModelServiceServicer):
    def __init__(self, repository: ModelRepository, runner: JobRunner, telemetry: Telemetry) -> None:
        """``runner``: the server's interactive lane: loading and describing a model never waits behind a job."""
        self.repository = repository
        self.runner = runner
        self.telemetry = telemetry

    @translate_errors
    async def LoadModel(self, request: ms.LoadModelRequest, context) -> ms.LoadModelResponse:
        overrides = requests.overrides(request.overrides)
        source = request.WhichOneof("source")
        if source == "path":
            path = requests.relative_path(request.path, "path")
            load = lambda _control: self.repository.load_path(path, request.name, overrides, request.replace)
        elif source == "onnx_model":
            load = lambda _control: self.repository.load_bytes(request.name, request.onnx_model, overrides,
                                                                request.replace)
        else:
            raise InvalidArgument("set path (inside the server's models directory) or onnx_model (the file's bytes)",
                                  field="source")
        outcome = await self.runner.run(load, deadline=_deadline(context))
        return ms.LoadModelResponse(model=responses.model_info(outcome.value.info))

    @translate_errors
    async def UnloadModel(self, request: ms.UnloadModelRequest, context) -> ms.UnloadModelResponse:
        self.repository.unload(request.name)
        return ms.UnloadModelResponse()

    @translate_errors
    async def ListModels(self, request: ms.ListModelsRequest, context) -> ms.ListModelsResponse:
        described = []
        for model in self.repository.list():
            # Load-time checks keep every description convertible; should one still fail, the others are
            # listed and that model's failure is logged, so one model never breaks the list for every client.
            try:
                described.append(responses.model_info(model.info))
            except (ValueError, TypeError, OverflowError):
                log.exception("model not listed", extra={"model": model.info.name})
        return ms.ListModelsResponse(models=described)

    @translate_errors
    async def GetModel(self, request: ms.GetModelRequest, context) -> ms.GetModelResponse:
        model = self.repository.get(request.name, field="name")
        return ms.GetModelResponse(model=await self._described(model, context))

    async def _described(self, model, context, verify: bool = True) -> ms.ModelInfo:
        """The model's ModelInfo with its verification (unless not ``verify``), as GetModel gives it."""
        info = responses.model_info(model.info)
        if not verify:
            return info
        report = cached_report(model)
        if report is None:  # the first call builds, checks and probes the model's mirror (seconds): off the loop
            report = (await self.runner.run(lambda control: verification_report(model, control.checkpoint),
                                            deadline=_deadline(context))).value
        info.verification.CopyFrom(responses.verification(report))
        return info

    @translate_errors
    async def InspectModel(self, request: ms.InspectModelRequest, context) -> ms.InspectModelResponse:
        model = self.repository.get(request.name, field="name")
        repeats = request.repeats or inspection.DEFAULT_REPEATS
        if not 1 <= repeats <= inspection.MAX_REPEATS:
            raise InvalidArgument(f"must be from 1 to {inspection.MAX_REPEATS}, not {repeats}", field="repeats")
        info = await self._described(model, context, verify=not request.skip_verification)
        found = (await self.runner.run(lambda control: inspection.inspect_model(model, repeats, control.checkpoint),
                                       deadline=_deadline(context))).value
        return ms.InspectModelResponse(
            model=info, warnings=found.warnings,
            forward_timings=[ms.ForwardTiming(batch_size=t.batch_size, median_ms=t.median_ms, repeats=t.repeats)
                             for t in found.timings])

    @translate_errors
    async def GetModelStatistics(self, request: ms.GetModelStatisticsRequest,
                                 context) -> ms.GetModelStatisticsResponse:
        models = [self.repository.get(request.name, field="name")] if request.name else self.repository.list()
        return statistics_response(self.telemetry.statistics(m.info.name for m in models),
                                   {m.info.name: m.batch_stats.snapshot() for m in models})


class ExplainService(ex_grpc.ExplainServiceServicer):
    def __init__(self, repository: ModelRepository, runner: JobRunner, preparer: JobRunner, max_message_bytes: int,
                 data_dir: Path | None = None, *, interactive: JobRunner | None = None) -> None:
        self.repository = repository
        self.runner = runner
        # Predict runs in the interactive lane: a prediction takes milliseconds and must not wait behind jobs.
        self.interactive = interactive or runner
        # Decoding and parsing run in this small pool of their own: the event loop only routes, so health checks
        # answer while a request decodes large images, and a flood of them queues (and is refused) there.
        self.preparer = preparer
        self.max_message_bytes = max_message_bytes
        self.data_dir = data_dir.resolve() if data_dir else None

    async def _prepare(self, build, context):
        """``build(control)`` (request -> job) in the preparing pool, under the request's deadline."""
        return (await self.preparer.run(build, deadline=_deadline(context))).value

    @translate_errors
    async def Predict(self, request: ex.PredictRequest, context) -> ex.PredictResponse:
        started = time.perf_counter()
        model = self.repository.get(request.model_name)
        if not request.images:
            raise InvalidArgument("send at least one image", field="images")

        def decode(control) -> list[np.ndarray]:
            reader = requests.ImageReader(self.runner.budget)
            pixels = []
            for i, image in enumerate(request.images):
                control.checkpoint()  # a batch of large images takes a while to decode
                pixels.append(requests.image_pixels(image, model, f"images[{i}]", reader))
            return pixels  # one size, or each its own on a dynamic-size model

        pixels = await self._prepare(decode, context)
        prepare_ms = (time.perf_counter() - started) * 1000.0
        space = requests.score_space(request.score_space, default=ScoreSpace.RAW)  # Predict: the model's own output
        outcome = await self.interactive.run(
            lambda control: run_predict(model, pixels, top_k=request.top_k, score_space=space,
                                        batch_size=request.batch_size or None, control=control),
            deadline=_deadline(context))
        return responses.predict_response(model, outcome.value, _timings(started, outcome, prepare_ms))

    @translate_errors
    async def Explain(self, request: ex.ExplainRequest, context) -> ex.ExplainResponse:
        return await self._explain(request, context, on_progress=None)

    @translate_errors
    async def ExplainStream(self, request: ex.ExplainStreamRequest, context):
        async for event in _streamed(lambda on_progress: self._explain(request.request, context, on_progress)):
            yield ex.ExplainStreamResponse(**event)

    async def _explain(self, request: ex.ExplainRequest, context, on_progress) -> ex.ExplainResponse:
        def to_job(model):
            job = requests.explain_job(request, model, self.runner.budget)
            job.targets.check(model.info.num_classes)  # classes the model lacks are invalid, not too many
            # Refuse before computing what could not be sent: one float32 map per target (in the frame it is
            # returned in: a letterboxed image's own), plus the model's input image.
            height, width = job.image.shape[:2]
            if job.placement is not None:
                height, width = job.placement.image_height, job.placement.image_width
            response_bytes = 4 * job.targets.count * height * width + 3 * job.image.shape[0] * job.image.shape[1]
            if response_bytes > self.max_message_bytes:
                raise ResourceExhausted(
                    f"{job.targets.count} maps of {height}x{width} need about "
                    f"{response_bytes >> 20} MiB, over the {self.max_message_bytes >> 20} MiB message limit; "
                    "ask for fewer classes", field="target")
            return job

        return await self._run_job(request.model_name, context, to_job, run_explain, responses.explain_response,
                                   on_progress)

    @translate_errors
    async def ListMethods(self, request: ex.ListMethodsRequest, context) -> ex.ListMethodsResponse:
        return ex.ListMethodsResponse(methods=[responses.method_info(m, m.cost) for m in METHODS.values()],
                                      metrics=[responses.method_info(m) for m in METRICS.values()])

    @translate_errors
    async def Evaluate(self, request: ex.EvaluateRequest, context) -> ex.EvaluateResponse:
        return await self._run_job(request.model_name, context,
                                   lambda model: requests.evaluate_job(request, model, self.runner.budget),
                                   run_evaluate, responses.evaluate_response)

    @translate_errors
    async def Consistency(self, request: ex.ConsistencyRequest, context):
        async for event in self._stream_job(
                request, context, requests.consistency_job, run_consistency,
                functools.partial(responses.consistency_result, return_maps=request.return_maps),
                ex.ConsistencyResponse):
            yield event

    @translate_errors
    async def AnalyzeScales(self, request: ex.AnalyzeScalesRequest, context):
        async for event in self._stream_job(
                request, context, requests.scales_job, run_scales,
                functools.partial(responses.scales_result, return_maps=request.return_maps), ex.AnalyzeScalesResponse):
            yield event

    @translate_errors
    async def Aggregate(self, request: ex.AggregateRequest, context):
        async for event in self._stream_job(
                request, context, requests.aggregate_job, run_aggregate,
                functools.partial(responses.aggregate_result, return_members=request.return_members),
                ex.AggregateResponse):
            yield event

    @translate_errors
    async def Measure(self, request: ex.MeasureRequest, context):
        async for event in self._stream_job(
                request, context, functools.partial(requests.measure_job, repository=self.repository), run_measure,
                functools.partial(responses.measure_result, method=request.method.WhichOneof("params") or ""),
                ex.MeasureResponse):
            yield event

    @translate_errors
    async def Audit(self, request: ex.AuditRequest, context):
        started = time.perf_counter()
        job = await self._prepare(
            lambda control: requests.audit_job(request, self.repository, self.data_dir, control.checkpoint), context)
        prepare_ms = (time.perf_counter() - started) * 1000.0

        async def work(on_progress):
            outcome = await self.runner.run(lambda control: run_audit_job(job, control), deadline=_deadline(context),
                                            on_progress=on_progress)
            return responses.audit_result(outcome.value, self.data_dir, ex.Timings(
                total_ms=(time.perf_counter() - started) * 1000.0, prepare_ms=prepare_ms, queue_ms=outcome.queue_ms))

        async for event in _streamed(work):
            yield ex.AuditResponse(**event)

    async def _stream_job(self, request, context, to_job, run, to_response, message):
        """A streaming job RPC: progress events, then the result, each wrapped in the RPC's response ``message``."""
        async for event in _streamed(lambda on_progress: self._run_job(
                request.model_name, context, lambda model: to_job(request, model, budget=self.runner.budget), run,
                to_response, on_progress)):
            yield message(**event)

    async def _run_job(self, model_name: str, context, to_job, run, to_response, on_progress=None):
        """The shape of every job RPC: convert the request, run the job in a worker, convert the result."""
        started = time.perf_counter()
        model = self.repository.get(model_name)
        job = await self._prepare(lambda _control: to_job(model), context)
        prepare_ms = (time.perf_counter() - started) * 1000.0
        outcome = await self.runner.run(lambda control: run(model, job, control), deadline=_deadline(context),
                                        on_progress=on_progress)
        return to_response(model, outcome.value, _timings(started, outcome, prepare_ms))


def _timings(started: float, outcome, prepare_ms: float) -> ex.Timings:
    return ex.Timings(total_ms=(time.perf_counter() - started) * 1000.0, model_ms=outcome.value.model_ms,
                      prepare_ms=prepare_ms, queue_ms=outcome.queue_ms)


async def _streamed(work):
    """Run ``work(on_progress)`` and yield {"progress": ...} events, then {"result": ...}.

    Only the latest progress matters, so a slow reader gets fewer, fresher events; the last
    one has done == total. If the client leaves, the job is cancelled at its next batch.
    """
    latest: list[Progress] = []
    changed = asyncio.Event()

    def on_progress(progress: Progress) -> None:
        latest[:] = [progress]
        changed.set()

    task = asyncio.ensure_future(work(on_progress))
    # A stream the client left (or whose deadline passed) is closed before it reads the result: the
    # outcome is still retrieved, so asyncio has no "exception was never retrieved" to log.
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    waiter: asyncio.Future | None = None
    try:
        while True:
            waiter = asyncio.ensure_future(changed.wait())
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if changed.is_set():
                changed.clear()
                yield {"progress": _progress(latest[0])}
            if task.done():
                break
        yield {"result": task.result()}
    finally:
        for pending in (task, waiter):
            if pending is not None and not pending.done():
                pending.cancel()


def _progress(progress: Progress) -> ex.Progress:
    return ex.Progress(stage=progress.stage, done=progress.done, total=progress.total,
                       elapsed_ms=progress.elapsed_ms)
