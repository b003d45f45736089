"""A synchronous client: images in (paths, bytes, numpy arrays, PIL images), numpy maps out."""

from __future__ import annotations


import contextlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import grpc
import numpy as np
from google.protobuf import json_format

from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import explain_service_pb2_grpc as ex_grpc
from onnxplain_client._proto.xai.v1 import methods_pb2, metrics_pb2
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms
from onnxplain_client._proto.xai.v1 import model_service_pb2_grpc as ms_grpc
from onnxplain_client._proto.xai.v1 import tensor_pb2
from onnxplain_client.cancellation import Cancellation
from onnxplain_client.enums import full_name, short_name
from onnxplain_client.errors import InvalidRequest, TranslatingStub
from onnxplain_client.tensors import from_tensor, to_tensor

ImageLike = Any  # str | Path | bytes | np.ndarray | PIL.Image.Image
MIB = 1024 * 1024


@dataclass(frozen=True)
class Prediction:
    top: list[tuple[int, str, float]]  # (class index, label, score), best first
    scores: np.ndarray  # (classes,)
    # Sigmoid heads: the predicted classes (probability above the model's threshold), best first; else empty.
    above_threshold: list[tuple[int, str, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Precision:
    """How precise a randomized method's map is (xai.v1.Precision): absent for deterministic methods."""

    # (H, W) float32, per pixel, in the map's units and frame; None where the response left it out (the studies'
    # entries without return_maps, Aggregate's and Measure's always).
    standard_error: np.ndarray | None
    reliability: float  # expected Spearman with the map of another seed (split-half, Spearman-Brown corrected)
    samples: int  # samples used, in the unit of the method's count parameter
    max_samples: int  # the cap (the count parameter)
    forward_passes: int
    rounds: int
    # "reliability" (target reached), "samples" (cap spent), "time" (max_seconds passed) or "exact" (enumerated)
    stop_reason: str
    samples_for_target: int  # samples that would reach target_reliability (0: no target, or not predictable)
    target_reliability: float


@dataclass(frozen=True)
class Attribution:
    class_index: int
    label: str
    score: float
    map: np.ndarray  # (H, W) float32
    metrics: dict[str, Any] = field(default_factory=dict)  # name -> xai.v1.MetricResult
    precision: Precision | None = None  # randomized methods only

    def plot(self, image: np.ndarray | None = None, alpha: float | None = None):
        """The map over ``image`` (uint8 at the map's size; mid-grey when None), its scores in the title: a
        matplotlib Figure (the ``plot`` extra). ``Explanation.plot()`` draws it over the image the model saw."""
        from onnxplain_client import display

        return display.plot_attribution(self, image, display.ALPHA if alpha is None else alpha)

    def _repr_png_(self) -> bytes | None:
        from onnxplain_client import display

        return display.repr_png(self.plot)


@dataclass(frozen=True)
class Explanation:
    method: str
    attributions: list[Attribution]
    seed: int
    forward_passes: int
    provider: str
    timings: dict[str, float]
    baseline: dict[str, Any]
    image: np.ndarray  # what the model saw, (H, W, 3) uint8
    parameters: dict[str, Any]
    response: ex.ExplainResponse = field(repr=False)
    # The frame of every map: "model_input" (the size of ``image``), or "image" (the image as sent, for a
    # letterbox model: the padding cut off, the map resized to the image's own height and width).
    map_frame: str = "model_input"

    @property
    def map(self) -> np.ndarray:
        """The first (usually only) attribution map."""
        return self.attributions[0].map

    def plot(self, alpha: float | None = None):
        """Every map over the image the model saw, side by side, each with its class, score, metrics and
        reliability in its title: a matplotlib Figure (the ``plot`` extra; see ``onnxplain_client.display``)."""
        from onnxplain_client import display

        return display.plot_explanation(self, display.ALPHA if alpha is None else alpha)

    def _repr_png_(self) -> bytes | None:
        """The notebook's picture of the explanation (None, the text repr, without matplotlib)."""
        from onnxplain_client import display

        return display.repr_png(self.plot)


class AuditReport:
    """The Audit RPC's result: every field of xai.v1.AuditResult reads through (``computed``, ``summary_json``,
    ``results_path``...), plus the summary parsed and the results as pandas DataFrames (the ``dataframe`` extra)."""

    def __init__(self, result: ex.AuditResult):
        self.result = result

    def __getattr__(self, name: str) -> Any:
        if name == "result":  # not set yet (copy, unpickle): no recursion
            raise AttributeError(name)
        return getattr(self.result, name)

    def __repr__(self) -> str:
        return (f"AuditReport(computed={self.result.computed}, total={self.result.total}, "
                f"results_path={self.result.results_path!r})")

    @property
    def summary(self) -> dict[str, Any]:
        return json.loads(self.result.summary_json or "{}")

    def results_file(self, data_dir: str | Path | None = None) -> Path:
        """The audit's SQLite store. ``results_path`` is inside the server's data directory: give ``data_dir``
        (that directory, or a copy of it) unless this process runs where the path resolves."""
        path = Path(self.result.results_path)
        if data_dir is not None and not path.is_absolute():
            path = Path(data_dir) / path
        if not path.is_file():
            raise FileNotFoundError(f"{path}: the audit's results are in the server's data directory; pass "
                                    "data_dir= (that directory, or a copy of it) to read them")
        return path

    def to_dataframe(self, data_dir: str | Path | None = None):
        """One row per item x model x method: model, method, item, label, predicted, score, correct, seconds,
        then one column per metric (see ``onnxplain_client.frames.results_dataframe``)."""
        from onnxplain_client.frames import results_dataframe

        return results_dataframe(self.results_file(data_dir))

    def summary_dataframe(self):
        """One row per model x method: items, accuracy, seconds per item, mean reliability, mean of each metric."""
        from onnxplain_client.frames import summary_dataframe

        return summary_dataframe(self.summary)


class OnnxplainClient:
    def __init__(self, address: str, *, token: str | None = None, root_certificates: bytes | None = None,
                 max_message_mb: int = 64) -> None:
        options = [("grpc.max_receive_message_length", max_message_mb * MIB),
                   ("grpc.max_send_message_length", max_message_mb * MIB)]
        if root_certificates is not None:
            credentials = grpc.ssl_channel_credentials(root_certificates)
            self._channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(address, options=options)
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        # A refusal raises OnnxplainError (a grpc.RpcError naming the field at fault), raw stubs included.
        self.models = TranslatingStub(ms_grpc.ModelServiceStub(self._channel))
        self.explainer = TranslatingStub(ex_grpc.ExplainServiceStub(self._channel))

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "OnnxplainClient":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self._channel).result(timeout=timeout)

    # --- models ---------------------------------------------------------------------------------------------
    # Every helper takes ``timeout`` (seconds; None: no deadline), a deadline the server honours within a second.
    def list_models(self, *, timeout: float | None = None) -> list[ms.ModelInfo]:
        return list(self.models.ListModels(ms.ListModelsRequest(), timeout=timeout, metadata=self._metadata).models)

    def get_model(self, name: str, *, timeout: float | None = None) -> ms.ModelInfo:
        return self.models.GetModel(ms.GetModelRequest(name=name), timeout=timeout, metadata=self._metadata).model

    def inspect_model(self, name: str, *, verify: bool = True, repeats: int = 0,
                      timeout: float | None = None) -> ms.InspectModelResponse:
        """What the server makes of a loaded model: its ModelInfo (with ``verification`` unless not ``verify``:
        finding it needs torch on the server), forward passes timed at batch 1 and at its batch (median of
        ``repeats``, 0: the server's 5), and warnings."""
        request = ms.InspectModelRequest(name=name, skip_verification=not verify, repeats=repeats)
        return self.models.InspectModel(request, timeout=timeout, metadata=self._metadata)

    def load_model(self, path: str | None = None, *, onnx_model: bytes | str | Path | None = None, name: str = "",
                   overrides: Mapping[str, Any] | None = None, replace: bool = False,
                   timeout: float | None = None) -> ms.ModelInfo:
        """Load ``path`` (inside the server's models directory) or upload ``onnx_model`` (bytes or a local file).

        ``overrides`` uses ModelOverrides' JSON form, e.g. ``{"layout": "LAYOUT_NHWC"}``.
        """
        request = ms.LoadModelRequest(name=name, replace=replace)
        if overrides:
            _parse(dict(overrides), request.overrides, "overrides")
        if path is not None:
            request.path = path
        elif onnx_model is not None:
            request.onnx_model = onnx_model if isinstance(onnx_model, bytes) else Path(onnx_model).read_bytes()
        return self.models.LoadModel(request, timeout=timeout, metadata=self._metadata).model

    def unload_model(self, name: str, *, timeout: float | None = None) -> None:
        self.models.UnloadModel(ms.UnloadModelRequest(name=name), timeout=timeout, metadata=self._metadata)

    def get_model_statistics(self, name: str = "", *, timeout: float | None = None) -> list[ms.ModelStatistics]:
        """Requests, forward passes, queue and model time since the server started: of ``name``, or of every
        loaded model when it is empty."""
        request = ms.GetModelStatisticsRequest(name=name)
        return list(self.models.GetModelStatistics(request, timeout=timeout, metadata=self._metadata).models)

    # --- explanations ---------------------------------------------------------------------------------------
    def list_methods(self, *, timeout: float | None = None) -> list[ex.MethodInfo]:
        return list(self.explainer.ListMethods(ex.ListMethodsRequest(), timeout=timeout,
                                               metadata=self._metadata).methods)

    def predict(self, model: str, images: ImageLike | Sequence[ImageLike], *, top_k: int = 5,
                probabilities: bool = False, score_space: str | None = None,
                timeout: float | None = None) -> list[Prediction]:
        """Scores of ``images``: the model's own output (RAW) unless ``probabilities`` or ``score_space`` ("raw",
        "logit", "probability", "log_probability") says otherwise."""
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        request = ex.PredictRequest(model_name=model, images=[image_message(i) for i in batch], top_k=top_k,
                                    score_space=_score_space(probabilities, score_space))
        response = self.explainer.Predict(request, timeout=timeout, metadata=self._metadata)
        return [Prediction([(s.class_index, s.label, s.score) for s in p.top], from_tensor(p.scores)[0],
                           [(s.class_index, s.label, s.score) for s in p.above_threshold])
                for p in response.predictions]

    def explain(self, model: str, image: ImageLike, method: str = "occlusion",
                params: Mapping[str, Any] | None = None, *, classes: Iterable[int] = (), top_k: int = 0,
                seed: int | None = None, baseline: Mapping[str, Any] | None = None, probabilities: bool = False,
                batch_size: int = 0, metrics: Mapping[str, Mapping[str, Any]] | None = None,
                mask: ImageLike | None = None, score_space: str | None = None, metric_score_space: str | None = None,
                timeout: float | None = None, on_progress: Callable[[ex.Progress], None] | None = None,
                cancel: Cancellation | None = None) -> Explanation:
        """Explain ``image``; with ``on_progress`` the call streams progress events to it, and ``cancel`` (a
        ``Cancellation``) stops it from another thread.

        ``params`` are the method's parameters by name (see ``list_methods``); ``baseline`` is a
        Baseline in JSON form, e.g. ``{"kind": "KIND_CONSTANT", "value": 0.5}``; ``metrics`` maps
        metric names to their parameters, e.g. ``{"deletion": {"steps": 16}}``, scored on every map.
        ``score_space`` ("raw", "logit", "probability", "log_probability"; ``probabilities`` is "probability") is
        the space the method explains, default "logit"; ``metric_score_space`` the metrics', default "probability".
        """
        request = ex.ExplainRequest(model_name=model, image=image_message(image), batch_size=batch_size,
                                    target=ex.Target(class_indices=list(classes), top_k=top_k),
                                    score_space=_score_space(probabilities, score_space),
                                    metric_score_space=_score_space(False, metric_score_space, "metric_score_space"))
        _common(request, seed=seed, baseline=baseline)
        request.method.CopyFrom(method_spec(method, params))
        request.metrics.extend(metric_spec(name, values) for name, values in (metrics or {}).items())
        if mask is not None:
            request.mask.CopyFrom(image_message(mask))
        if on_progress is None and cancel is None:
            return _explanation(self.explainer.Explain(request, timeout=timeout, metadata=self._metadata))
        return _explanation(self._last(self.explainer.ExplainStream(ex.ExplainStreamRequest(request=request),
                                                                    timeout=timeout, metadata=self._metadata),
                                       on_progress, cancel))

    def evaluate(self, model: str, image: ImageLike, attribution: np.ndarray,
                 metrics: Mapping[str, Mapping[str, Any]], *, class_index: int | None = None,
                 mask: ImageLike | None = None, seed: int | None = None, baseline: Mapping[str, Any] | None = None,
                 probabilities: bool = False, batch_size: int = 0, domain: str = "pixel",
                 score_space: str | None = None, timeout: float | None = None) -> ex.EvaluateResponse:
        """Score any (H, W) map with metrics by name, e.g. ``{"deletion": {}, "insertion": {"steps": 16}}``.

        ``domain`` "wavelet" sends a map in WCAM's wavelet layout, for the wavelet_* metrics."""
        request = ex.EvaluateRequest(model_name=model, image=image_message(image),
                                     attribution=to_tensor(np.asarray(attribution, dtype=np.float32)),
                                     metrics=[metric_spec(name, values) for name, values in metrics.items()],
                                     score_space=_score_space(probabilities, score_space), batch_size=batch_size,
                                     attribution_domain=ex.MapDomain.Value(f"MAP_DOMAIN_{domain.upper()}"))
        _common(request, seed=seed, baseline=baseline)
        if class_index is not None:
            request.class_index = class_index
        if mask is not None:
            request.mask.CopyFrom(image_message(mask))
        return self.explainer.Evaluate(request, timeout=timeout, metadata=self._metadata)

    def consistency(self, model: str, image: ImageLike, settings: Sequence[Mapping[str, Any]], *,
                    metric: tuple[str, Mapping[str, Any]] = ("deletion", {}),
                    metric_baselines: Sequence[Mapping[str, Any]] = (), class_index: int | None = None,
                    top_fraction: float = 0.1, seed: int | None = None, probabilities: bool = False,
                    return_maps: bool = False, batch_size: int = 0, score_space: str | None = None,
                    metric_score_space: str | None = None, timeout: float | None = None,
                    on_progress: Callable[[ex.Progress], None] | None = None,
                    cancel: Cancellation | None = None) -> ex.ConsistencyResult:
        """Compare explanation settings, each ``{"method": name, "params": {...}, "baseline": {...},
        "label": "..."}``: agreement of their maps and stability of their ranking across metric baselines."""
        request = ex.ConsistencyRequest(model_name=model, image=image_message(image), top_fraction=top_fraction,
                                        metric=metric_spec(*metric),
                                        score_space=_score_space(probabilities, score_space),
                                        metric_score_space=_score_space(False, metric_score_space,
                                                                        "metric_score_space"),
                                        return_maps=return_maps, batch_size=batch_size)
        _common(request, seed=seed)
        if class_index is not None:
            request.class_index = class_index
        for setting in settings:
            entry = request.settings.add(label=setting.get("label", ""))
            entry.method.CopyFrom(method_spec(setting["method"], setting.get("params")))
            if setting.get("baseline"):
                _parse(dict(setting["baseline"]), entry.baseline, "baseline")
        for values in metric_baselines:
            _parse(dict(values), request.metric_baselines.add(), "metric_baselines")
        return self._last(self.explainer.Consistency(request, timeout=timeout, metadata=self._metadata),
                          on_progress, cancel)

    def analyze_scales(self, model: str, image: ImageLike, *, corruptions: Sequence[str] = (),
                       severities: Sequence[int] = (), zooms: Sequence[float] = (),
                       wcam: Mapping[str, Any] | None = None, class_index: int | None = None,
                       seed: int | None = None, probabilities: bool = False, return_maps: bool = False,
                       batch_size: int = 0, score_space: str | None = None, timeout: float | None = None,
                       on_progress: Callable[[ex.Progress], None] | None = None,
                       cancel: Cancellation | None = None) -> ex.AnalyzeScalesResult:
        """WCAM on ``image`` and on its corrupted (e.g. ``["gaussian_blur", "jpeg"]``, severities 1-5) or zoomed
        (e.g. ``[1.5, 2]``) versions: how the prediction and the importance per scale shift."""
        request = ex.AnalyzeScalesRequest(
            model_name=model, image=image_message(image), severities=list(severities), zooms=list(zooms),
            corruptions=[ex.Corruption.Value(full_name("Corruption", name)) for name in corruptions],
            score_space=_score_space(probabilities, score_space), return_maps=return_maps, batch_size=batch_size)
        _common(request, seed=seed)
        if class_index is not None:
            request.class_index = class_index
        request.wcam.CopyFrom(method_spec("wcam", wcam).wcam)
        return self._last(self.explainer.AnalyzeScales(request, timeout=timeout, metadata=self._metadata),
                          on_progress, cancel)

    def aggregate(self, model: str, images: ImageLike | Sequence[ImageLike], *,
                  methods: Mapping[str, Mapping[str, Any] | None] | Sequence[tuple[str, Mapping[str, Any] | None]]
                  | None = None, maps: Sequence[np.ndarray] = (),
                  normalisation: str = "max_abs", aggregator: str = "mean", kappa: float | None = None,
                  absolute: bool = False, metric: tuple[str, Mapping[str, Any] | None] = ("deletion", None),
                  search: bool = False, kappas: Sequence[float] = (), class_index: int | None = None,
                  seed: int | None = None, baseline: Mapping[str, Any] | None = None, probabilities: bool = False,
                  return_members: bool = False, batch_size: int = 0, score_space: str | None = None,
                  metric_score_space: str | None = None, validation_fraction: float | None = None,
                  selection: Sequence[int] = (), held_out: Sequence[int] = (), num_splits: int = 0,
                  split_seed: int | None = None, timeout: float | None = None,
                  on_progress: Callable[[ex.Progress], None] | None = None,
                  cancel: Cancellation | None = None) -> ex.AggregateResult:
        """Combine explanations of ``images``: ``methods`` by name with their parameters (run first; a list of
        (name, params) pairs holds one method under several settings) and/or your
        ``maps`` (one image), normalised and aggregated (names as in ListMethods: "max_abs", "ucb", ...), every
        member and the aggregate scored by ``metric``; ``search`` tries every combination and keeps the best.
        ``gain`` is in-sample; ``validation_fraction`` (``num_splits`` random splits) or ``selection``/``held_out``
        image indices choose on some images and score on the others (``splits``, ``held_out_gain``)."""
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        request = ex.AggregateRequest(
            model_name=model, images=[image_message(i) for i in batch],
            maps=[to_tensor(np.asarray(m, dtype=np.float32)) for m in maps],
            methods=[method_spec(name, params) for name, params in _pairs(methods)],
            normalisation=ex.Normalisation.Value(full_name("Normalisation", normalisation)),
            aggregator=ex.Aggregator.Value(full_name("Aggregator", aggregator)), absolute=absolute,
            metric=metric_spec(*metric), search=search, kappas=list(kappas),
            score_space=_score_space(probabilities, score_space),
            metric_score_space=_score_space(False, metric_score_space, "metric_score_space"),
            return_members=return_members, batch_size=batch_size)
        _common(request, seed=seed, baseline=baseline)
        if kappa is not None:
            request.kappa = kappa
        if class_index is not None:
            request.class_index = class_index
        request.selection.extend(selection)
        request.held_out.extend(held_out)
        request.num_splits = num_splits
        if validation_fraction is not None:
            request.validation_fraction = validation_fraction
        if split_seed is not None:
            request.split_seed = split_seed
        return self._last(self.explainer.Aggregate(request, timeout=timeout, metadata=self._metadata), on_progress,
                          cancel)

    def measure(self, model: str, images: ImageLike | Sequence[ImageLike], method: str = "occlusion",
                params: Mapping[str, Any] | None = None, *, measures: Sequence[str] = (),
                stability_models: Sequence[str] = (), noise_levels: Sequence[float] = (), seed: int | None = None,
                baseline: Mapping[str, Any] | None = None, probabilities: bool = False, batch_size: int = 0,
                score_space: str | None = None, timeout: float | None = None,
                on_progress: Callable[[ex.Progress], None] | None = None,
                cancel: Cancellation | None = None) -> ex.MeasureResult:
        """The salience measures ("entropy", "out_of_set", "transforms", "stability", "degradation"; default all,
        stability when ``stability_models`` are named) of ``method``'s maps over ``images``."""
        batch = list(images) if isinstance(images, (list, tuple)) else [images]
        request = ex.MeasureRequest(
            model_name=model, images=[image_message(i) for i in batch], method=method_spec(method, params),
            measures=[ex.SalienceMeasure.Value(full_name("SalienceMeasure", name)) for name in measures],
            stability_models=list(stability_models), noise_levels=list(noise_levels),
            score_space=_score_space(probabilities, score_space), batch_size=batch_size)
        _common(request, seed=seed, baseline=baseline)
        return self._last(self.explainer.Measure(request, timeout=timeout, metadata=self._metadata), on_progress,
                          cancel)

    def audit(self, dataset: str, models: Sequence[str], name: str, *,
              methods: Mapping[str, Mapping[str, Any] | None] | Sequence[tuple[str, Mapping[str, Any] | None]]
              | None = None, metrics: Mapping[str, Mapping[str, Any] | None] | None = None, seed: int | None = None,
              measures: Sequence[str] = (), ensemble: Mapping[str, Any] | None = None,
              scales: Mapping[str, Any] | None = None, timeout: float | None = None,
              on_progress: Callable[[ex.Progress], None] | None = None,
              cancel: Cancellation | None = None) -> AuditReport:
        """Audit ``dataset`` (a path inside the server's data directory) with loaded ``models``; results go to
        <data dir>/audits/``name``, and the same call resumes an interrupted audit. The AuditReport reads like the
        xai.v1.AuditResult and loads the results into pandas (``to_dataframe``, ``summary_dataframe``)."""
        request = ex.AuditRequest(
            dataset=dataset, models=list(models), name=name,
            methods=[method_spec(n, p) for n, p in _pairs(methods)],
            metrics=[metric_spec(n, p) for n, p in (metrics or {}).items()],
            measures=[ex.SalienceMeasure.Value(full_name("SalienceMeasure", m)) for m in measures])
        if seed is not None:
            request.seed = seed
        if ensemble:  # {"normalisation": "rank", "aggregator": "mean", "kappa": 1}
            request.ensemble.CopyFrom(ex.AuditEnsemble(
                normalisation=ex.Normalisation.Value(full_name("Normalisation",
                                                               ensemble.get("normalisation", "max_abs"))),
                aggregator=ex.Aggregator.Value(full_name("Aggregator", ensemble.get("aggregator", "mean"))),
                **({"kappa": ensemble["kappa"]} if "kappa" in ensemble else {})))
        if scales:  # {"corruptions": ["gaussian_blur"], "severities": [3], "zooms": [2.0], "num_designs": 2}
            request.scales.CopyFrom(ex.AuditScales(
                corruptions=[ex.Corruption.Value(full_name("Corruption", c)) for c in scales.get("corruptions", ())],
                severities=list(scales.get("severities", ())), zooms=list(scales.get("zooms", ())),
                num_designs=scales.get("num_designs", 0)))
        return AuditReport(self._last(self.explainer.Audit(request, timeout=timeout, metadata=self._metadata),
                                      on_progress, cancel))

    @staticmethod
    def _last(stream, on_progress, cancel: Cancellation | None = None):
        """The result of a progress-then-result stream, handing progress events to ``on_progress``; ``cancel``
        cancels it from another thread (OnnxplainError CANCELLED)."""
        with cancel.tracking(stream) if cancel is not None else contextlib.nullcontext():
            for event in stream:
                if event.HasField("progress"):
                    if on_progress is not None:
                        on_progress(event.progress)
                else:
                    return event.result
        raise RuntimeError("the stream ended without a result")


def _parse(values: Mapping[str, Any], message, field: str):
    """``values`` into ``message``, the request's ``field`` (e.g. "method.occlusion"); InvalidRequest naming it."""
    fields = message.DESCRIPTOR.fields
    known = {name for f in fields for name in (f.name, f.json_name)}
    unknown = [key for key in values if key not in known]
    if unknown:  # protobuf's own message lists its fields in its internal form; say it as a user would read it
        raise InvalidRequest(f"{message.DESCRIPTOR.name} has no field {unknown[0]!r} "
                             f"(it has {', '.join(f.name for f in fields) or 'none'})", f"{field}.{unknown[0]}")
    try:
        return json_format.ParseDict(values, message)
    except json_format.ParseError as error:
        raise InvalidRequest(str(error), field) from error


def method_spec(name: str, params: Mapping[str, Any] | None = None) -> methods_pb2.MethodSpec:
    """A MethodSpec from a method name and its parameters by name (scalars allowed for repeated fields)."""
    return _spec(methods_pb2.MethodSpec(), name, params, "method")


def metric_spec(name: str, params: Mapping[str, Any] | None = None) -> metrics_pb2.MetricSpec:
    return _spec(metrics_pb2.MetricSpec(), name, params, "metric")


def _spec(spec, name: str, params: Mapping[str, Any] | None, kind: str):
    known = [f.name for f in spec.DESCRIPTOR.oneofs_by_name["params"].fields]
    if name not in known:
        raise InvalidRequest(f"unknown {kind} {name!r}; this client knows {known}", kind)
    chosen = getattr(spec, name)
    chosen.SetInParent()  # selects it even when every parameter keeps its default
    _parse(_listify_repeated(dict(params or {}), chosen), chosen, f"{kind}.{name}")
    return spec


def _common(request, *, seed: int | None = None, baseline: Mapping[str, Any] | None = None) -> None:
    if seed is not None:
        request.seed = seed
    if baseline:
        _parse(dict(baseline), request.baseline, "baseline")


def _score_space(probabilities: bool, space: str | None = None, field: str = "score_space") -> int:
    """A ScoreSpace by short name ("raw", "logit", "probability", "log_probability"); ``probabilities`` is
    "probability"; neither leaves it unspecified, for the server's default (see the proto's ScoreSpace)."""
    if space:
        if full_name("ScoreSpace", space) not in ex.ScoreSpace.keys():
            names = [short_name("ScoreSpace", name) for name in ex.ScoreSpace.keys()
                     if not name.endswith("UNSPECIFIED")]
            raise InvalidRequest(f"unknown score space {space!r}; one of {', '.join(names)}", field)
        return ex.ScoreSpace.Value(full_name("ScoreSpace", space))
    return ex.SCORE_SPACE_PROBABILITY if probabilities else ex.SCORE_SPACE_UNSPECIFIED


def image_message(image: ImageLike) -> tensor_pb2.Image:
    """Paths and bytes travel encoded; arrays as raw pixel tensors (uint8, or float in [0, 1])."""
    if isinstance(image, (str, Path)):
        return tensor_pb2.Image(encoded=Path(image).read_bytes())
    if isinstance(image, (bytes, bytearray)):
        return tensor_pb2.Image(encoded=bytes(image))
    if isinstance(image, np.ndarray):
        return tensor_pb2.Image(pixels=to_tensor(image))
    if hasattr(image, "save"):  # a PIL image
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return tensor_pb2.Image(encoded=buffer.getvalue())
    raise TypeError(f"cannot send {type(image).__name__} as an image; use a path, bytes, an array or a PIL image")


def _listify_repeated(params: dict[str, Any], message) -> dict[str, Any]:
    """Let ``window=8`` stand for ``window=[8]`` in repeated fields, and an enum's short name stand for its
    value (``bound_method="crown"`` for BOUND_METHOD_CROWN), as ListMethods writes the defaults."""
    fields = message.DESCRIPTOR.fields_by_name
    return {name: [value] if name in fields and _is_repeated(fields[name]) and not isinstance(value, (list, tuple))
            else _enum_name(fields.get(name), value) for name, value in params.items()}


def _pairs(methods) -> list[tuple[str, Any]]:
    """(name, params) pairs from a mapping by name, or from a list (one method under several settings)."""
    return list(methods.items() if isinstance(methods, Mapping) else methods or ())


def _enum_name(descriptor, value: Any) -> Any:
    if descriptor is None or descriptor.enum_type is None or not isinstance(value, str):
        return value
    values = descriptor.enum_type.values_by_name
    full = full_name(descriptor.enum_type.name, value)
    return full if value not in values and full in values else value


def _is_repeated(descriptor) -> bool:
    # protobuf >= 6 has `is_repeated` (and upb drops `label`); older releases only have `label`.
    flag = getattr(descriptor, "is_repeated", None)
    return flag if flag is not None else descriptor.label == descriptor.LABEL_REPEATED


def _explanation(response: ex.ExplainResponse) -> Explanation:
    return Explanation(
        method=response.method,
        attributions=[Attribution(a.class_index, a.label, a.score, from_tensor(a.map), {m.name: m for m in a.metrics},
                                  precision(a.precision) if a.HasField("precision") else None)
                      for a in response.attributions],
        seed=response.seed,
        forward_passes=response.forward_passes,
        provider=response.provider,
        timings=json_format.MessageToDict(response.timings, preserving_proto_field_name=True),
        baseline={"target_scores": list(response.baseline.target_scores),
                  "predicted": (response.baseline.predicted.class_index, response.baseline.predicted.label,
                                response.baseline.predicted.score)},
        image=from_tensor(response.model_input_image),
        parameters=json.loads(response.parameters_json or "{}"),
        response=response,
        map_frame="image" if response.map_frame == ex.MAP_FRAME_IMAGE else "model_input",
    )


def precision(message: ex.Precision) -> Precision | None:
    """A xai.v1.Precision as a ``Precision``: Explain's ``Attribution.precision``, and the entries of
    ``ConsistencyResult.setting_precision``, ``ScaleVariant.precision``, ``AggregateResult.member_precision``
    and ``MeasureResult.clean_precision``. None for an empty entry (a deterministic method or a given map)."""
    if message.max_samples == 0 and message.stop_reason == ex.STOP_REASON_UNSPECIFIED:
        return None
    return Precision(
        standard_error=from_tensor(message.standard_error) if message.HasField("standard_error") else None,
        reliability=message.reliability, samples=message.samples,
        max_samples=message.max_samples, forward_passes=message.forward_passes, rounds=message.rounds,
        stop_reason=short_name("StopReason", ex.StopReason.Name(message.stop_reason)),
        samples_for_target=message.samples_for_target, target_reliability=message.target_reliability,
    )


__all__ = ["Attribution", "AuditReport", "Explanation", "OnnxplainClient", "Precision", "Prediction", "image_message",
           "method_spec", "metric_spec", "precision"]
