"""A seeded generator of hostile xai.v1 requests and the runner that sends them (tests/test_fuzz.py, bench/fuzz.py).

Every case is a cheap, valid base request of one RPC (the bundled 64x64 ``shapes`` model, small parameters) with
one to three fields set to hostile values (unknown enum numbers, also inside method and metric parameters;
negative and huge integers; NaN and infinities; empty and huge repeated fields; NUL bytes, 300-character, ``..``
and absolute paths; tensors of impossible shapes or mismatched bytes; corrupted PNGs; junk or subtly broken ONNX
uploads), or a raw body: undecodable bytes, random bytes, a valid body with unknown fields. Case ``i`` of seed
``s`` depends on ``random.Random(f"{s}/{i}")`` alone, so ``case(s, i)`` rebuilds any one of them::

    python bench/fuzz.py --seed 1010 --index 1234 -v   # replays one case and prints what it sent

Requests are sent as bytes (identity serializers), so what goes on the wire is exactly what was generated.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import random
import re
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import grpc
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_status import rpc_status
from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import methods_pb2, metrics_pb2, tensor_pb2
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

from fuzz_assets import BUNDLED_MODEL, DATASET, PLANTED_AUDIT, ROOT, Assets, make_tensor
from fuzz_assets import write_dataset  # noqa: F401 - the callers' one entry point

SEED = 1010
# Every call carries this deadline: an accepted request must finish well within it on the bundled models (an
# audit renders its report with matplotlib, about 0.5 s, hence its own).
DEADLINE_S = 2.0
AUDIT_DEADLINE_S = 5.0
# Once a call's deadline passes, the server must have stopped its work within this (the issue asks for a second;
# the rest is slack for a loaded machine). A job still running this long after is reported, and the fuzzer waits
# no more than IDLE_WAIT_S for it.
IDLE_AFTER_DEADLINE_S = 1.5
IDLE_WAIT_S = 3.0
# Statuses no client input may cause: a bug (INTERNAL, UNKNOWN), a lost server (UNAVAILABLE), corruption.
FORBIDDEN = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE,
                       grpc.StatusCode.DATA_LOSS})
MAX_DEPTH = 6

# ---------------------------------------------------------------------------------------------------------------
# Hostile values


def _weighted(pairs: list[tuple[float, list]]) -> Callable[[random.Random], object]:
    weights = [w for w, _ in pairs]

    def pick(rng: random.Random):
        group = rng.choices([g for _, g in pairs], weights)[0]
        return rng.choice(group)
    return pick


# Boundaries and far-out values are common; mid-size counts (work that is accepted and runs until the deadline)
# are rarer, so that a run stays short.
_pick_int = _weighted([
    (5, [0, 1, -1, 2, 3]),
    (4, [2**31 - 1, -2**31, 2**32 - 1, 2**62, 2**63 - 1, -2**63, 2**64 - 1, 10**12]),
    (1, [7, 64, 255, 1000, 4096, 65_535]),
])
_RANGES = {
    FieldDescriptor.TYPE_INT32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_SINT32: (-2**31, 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-2**31, 2**31 - 1), FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1), FieldDescriptor.TYPE_INT64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-2**63, 2**63 - 1), FieldDescriptor.TYPE_SFIXED64: (-2**63, 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1), FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}
FLOATS = [math.nan, math.inf, -math.inf, -0.0, 0.0, -1.0, 1e-45, 1e-8, 0.5, 1.0, 1.5, 100.0, 1e30, -1e30, 3.4e38]
UNKNOWN_ENUMS = [99, -1, 7, 1000, 2**31 - 1, -2**31]
STRINGS = [
    "", "\x00", f"{BUNDLED_MODEL}\x00", f"{BUNDLED_MODEL}\x00/../../etc/passwd", "x" * 300, "a/" * 150, "..",
    "../", "../../etc/passwd", "/etc/passwd", "/", ".", "./", "~root/.ssh/id_rsa", f"{BUNDLED_MODEL}/../../..",
    "C:\\Windows\\win.ini", "\\\\server\\share", "\u00fcn\u00efc\u00f8d\u00e9\u2713", "\u202egpj.exe", "%s%n%x",
    "{}", "\n\r\t", " ", f"{BUNDLED_MODEL} ", BUNDLED_MODEL.upper(), "con", "audits", "-rf", "*", "NaN",
    "haar", "db38", "bior1.3", "sym2", "morl", "\U0001f600" * 20,
]
# Other loaded names that a mutation may point at (never unloaded or replaced by the fuzzer for good).
NAMES = ["shapes_run2", "digits", "scale_shape"]

# ---------------------------------------------------------------------------------------------------------------
# Valid, cheap base requests: one per RPC, each accepted in milliseconds on the bundled model


def _image(assets: Assets, rng: random.Random) -> tensor_pb2.Image:
    if rng.random() < 0.7:
        return tensor_pb2.Image(encoded=assets.png)
    return tensor_pb2.Image(pixels=make_tensor(tensor_pb2.DATA_TYPE_UINT8, [64, 64, 3], assets.pixels.tobytes()))


def _map(assets: Assets) -> tensor_pb2.Tensor:
    return make_tensor(tensor_pb2.DATA_TYPE_FLOAT32, [64, 64], assets.attribution.tobytes())


def _methods() -> list[Callable[[], methods_pb2.MethodSpec]]:
    """Every method, with parameters that take a few milliseconds on a 64 x 64 image."""
    M = methods_pb2
    return [
        lambda: M.MethodSpec(occlusion=M.OcclusionParams(window=[32], stride=[32])),
        lambda: M.MethodSpec(rise=M.RiseParams(num_masks=16, grid_size=4)),
        lambda: M.MethodSpec(sobol=M.SobolParams(grid_size=2, num_designs=2,
                                                 perturbation=M.SOBOL_PERTURBATION_INPAINTING)),
        lambda: M.MethodSpec(hsic=M.HsicParams(grid_size=2, num_designs=8, sampler=M.HSIC_SAMPLER_SOBOL)),
        lambda: M.MethodSpec(lime=M.LimeParams(num_samples=16, segmentation=M.SEGMENTATION_SLIC, n_segments=8)),
        lambda: M.MethodSpec(kernel_shap=M.KernelShapParams(num_samples=16, segmentation=M.SEGMENTATION_SLIC,
                                                            n_segments=8)),
        lambda: M.MethodSpec(wcam=M.WcamParams(grid_size=2, num_designs=2, levels=1, wavelet="haar")),
        lambda: M.MethodSpec(eva=M.EvaParams(epsilon=0.01, grid_size=2, bound_method=M.BOUND_METHOD_IBP,
                                             max_competitors=1)),
    ]


def _method(rng: random.Random) -> methods_pb2.MethodSpec:
    return rng.choice(_methods())()


def _metric(rng: random.Random, with_mask: bool) -> metrics_pb2.MetricSpec:
    """A pixel-domain metric (the wavelet ones score WCAM's wavelet maps only); localisation needs the mask."""
    return rng.choice(_metrics()[:6 if with_mask else 5])()


def _metrics() -> list[Callable[[], metrics_pb2.MetricSpec]]:
    M = metrics_pb2
    return [
        lambda: M.MetricSpec(deletion=M.DeletionParams(steps=4)),
        lambda: M.MetricSpec(insertion=M.InsertionParams(steps=4, blur_sigma=2.0)),
        lambda: M.MetricSpec(mu_fidelity=M.MuFidelityParams(grid_size=4, subset_fraction=0.2, num_samples=8,
                                                            correlation=M.CORRELATION_SPEARMAN)),
        lambda: M.MetricSpec(morf=M.RegionParams(region_size=16, max_regions=4)),
        lambda: M.MetricSpec(lerf=M.RegionParams(region_size=16, max_regions=4)),
        lambda: M.MetricSpec(localisation=M.LocalisationParams()),
        lambda: M.MetricSpec(wavelet_deletion=M.WaveletCurveParams(steps=4, levels=1, wavelet="haar")),
        lambda: M.MetricSpec(wavelet_insertion=M.WaveletCurveParams(steps=4, levels=1, wavelet="haar")),
    ]


def _cheap_params(specs) -> dict[str, Callable[[], Message]]:
    """Member name -> a factory of its cheap parameters message."""
    table = {}
    for make in specs():
        name = make().WhichOneof("params")
        table[name] = lambda make=make, name=name: getattr(make(), name)
    return table


CHEAP_PARAMS = {"xai.v1.MethodSpec": _cheap_params(_methods), "xai.v1.MetricSpec": _cheap_params(_metrics)}


def _baseline(rng: random.Random) -> methods_pb2.Baseline:
    B = methods_pb2.Baseline
    return rng.choice([B(kind=B.KIND_DATASET_MEAN), B(kind=B.KIND_BLACK), B(kind=B.KIND_BLUR, sigma=2.0),
                       B(kind=B.KIND_CONSTANT, value=0.3), B(kind=B.KIND_UNIFORM_NOISE)])


# Every space, and none (the server's defaults).
SCORE_SPACES = [ex.SCORE_SPACE_UNSPECIFIED, ex.SCORE_SPACE_RAW, ex.SCORE_SPACE_LOGIT, ex.SCORE_SPACE_PROBABILITY,
                ex.SCORE_SPACE_LOG_PROBABILITY]


def _explain(rng: random.Random, assets: Assets) -> ex.ExplainRequest:
    with_mask = rng.random() < 0.3
    request = ex.ExplainRequest(model_name=BUNDLED_MODEL, image=_image(assets, rng), method=_method(rng),
                                target=ex.Target(top_k=1) if rng.random() < 0.5 else ex.Target(class_indices=[0]),
                                seed=rng.randrange(1000), baseline=_baseline(rng),
                                score_space=rng.choice(SCORE_SPACES), metric_score_space=rng.choice(SCORE_SPACES),
                                metrics=[_metric(rng, with_mask)] if rng.random() < 0.5 else [])
    if with_mask:
        request.mask.encoded = assets.mask_png
    return request


def base_request(rpc: str, rng: random.Random, assets: Assets, index: int) -> Message:
    """A valid request of ``rpc`` that the server answers OK in milliseconds."""
    M = methods_pb2
    if rpc == "LoadModel":
        overrides = ms.ModelOverrides(batch_size=8) if rng.random() < 0.5 else None
        if rng.random() < 0.5:
            return ms.LoadModelRequest(name=f"fuzz_{index}", path="shapes_run1", overrides=overrides)
        return ms.LoadModelRequest(name=f"fuzz_{index}", onnx_model=assets.upload, overrides=overrides)
    if rpc == "UnloadModel":
        return ms.UnloadModelRequest(name=f"fuzz_absent_{index}")
    if rpc == "ListModels":
        return ms.ListModelsRequest()
    if rpc == "GetModel":
        return ms.GetModelRequest(name=BUNDLED_MODEL)
    if rpc == "GetModelStatistics":
        return ms.GetModelStatisticsRequest(name=rng.choice(["", BUNDLED_MODEL]))
    if rpc == "InspectModel":
        return ms.InspectModelRequest(name=BUNDLED_MODEL, skip_verification=rng.random() < 0.5, repeats=1)
    if rpc == "Predict":
        return ex.PredictRequest(model_name=BUNDLED_MODEL, images=[_image(assets, rng)], top_k=3,
                                 score_space=ex.SCORE_SPACE_PROBABILITY)
    if rpc == "Explain":
        return _explain(rng, assets)
    if rpc == "ExplainStream":
        return ex.ExplainStreamRequest(request=_explain(rng, assets))
    if rpc == "ListMethods":
        return ex.ListMethodsRequest()
    if rpc == "Evaluate":
        with_mask = rng.random() < 0.3
        request = ex.EvaluateRequest(model_name=BUNDLED_MODEL, image=_image(assets, rng), attribution=_map(assets),
                                     class_index=rng.randrange(5), metrics=[_metric(rng, with_mask)],
                                     baseline=_baseline(rng), seed=3)
        if with_mask:
            request.mask.encoded = assets.mask_png
        return request
    if rpc == "Consistency":
        B = M.Baseline
        return ex.ConsistencyRequest(
            model_name=BUNDLED_MODEL, image=_image(assets, rng), seed=5,
            settings=[ex.ExplanationSetting(method=M.MethodSpec(occlusion=M.OcclusionParams(window=[32], stride=[32])),
                                            baseline=B(kind=B.KIND_BLACK)),
                      ex.ExplanationSetting(method=M.MethodSpec(rise=M.RiseParams(num_masks=16, grid_size=4)))],
            metric=metrics_pb2.MetricSpec(deletion=metrics_pb2.DeletionParams(steps=4)),
            metric_baselines=[B(kind=B.KIND_BLACK), B(kind=B.KIND_BLUR)], top_fraction=0.2)
    if rpc == "AnalyzeScales":
        return ex.AnalyzeScalesRequest(model_name=BUNDLED_MODEL, image=_image(assets, rng), seed=5,
                                       wcam=M.WcamParams(grid_size=2, num_designs=2, levels=1),
                                       corruptions=[ex.CORRUPTION_GAUSSIAN_BLUR], severities=[1],
                                       zooms=[2.0] if rng.random() < 0.5 else [])
    if rpc == "Aggregate":
        return ex.AggregateRequest(model_name=BUNDLED_MODEL, images=[_image(assets, rng)], seed=5,
                                   maps=[_map(assets), make_tensor(tensor_pb2.DATA_TYPE_FLOAT32, [64, 64],
                                                               assets.attribution[::-1].tobytes())],
                                   metric=metrics_pb2.MetricSpec(deletion=metrics_pb2.DeletionParams(steps=4)),
                                   normalisation=ex.NORMALISATION_MAX_ABS, aggregator=ex.AGGREGATOR_MEAN)
    if rpc == "Measure":
        return ex.MeasureRequest(model_name=BUNDLED_MODEL, images=[_image(assets, rng)], seed=5,
                                 method=M.MethodSpec(occlusion=M.OcclusionParams(window=[32], stride=[32])),
                                 measures=[ex.SALIENCE_MEASURE_ENTROPY, ex.SALIENCE_MEASURE_OUT_OF_SET],
                                 noise_levels=[0.0, 0.5])
    if rpc == "Audit":
        return ex.AuditRequest(dataset=DATASET, models=[BUNDLED_MODEL], name=f"fuzz{index}", seed=1,
                               methods=[M.MethodSpec(occlusion=M.OcclusionParams(window=[32], stride=[32]))],
                               metrics=[metrics_pb2.MetricSpec(deletion=metrics_pb2.DeletionParams(steps=4))])
    if rpc == "Health.Check":
        return health_pb2.HealthCheckRequest(service=rng.choice(["", "xai.v1.ExplainService"]))
    if rpc == "Reflection":
        return reflection_pb2.ServerReflectionRequest(list_services="")
    raise KeyError(rpc)


@dataclass(frozen=True)
class Rpc:
    name: str
    path: str
    request: type
    shape: str  # "unary", "server_stream" or "bidi"
    weight: float
    # What the unchanged base request gets (UnloadModel's names a model that is not loaded).
    base_code: grpc.StatusCode = grpc.StatusCode.OK
    deadline_s: float = DEADLINE_S


RPCS = [
    Rpc("LoadModel", "/xai.v1.ModelService/LoadModel", ms.LoadModelRequest, "unary", 1.5),
    Rpc("UnloadModel", "/xai.v1.ModelService/UnloadModel", ms.UnloadModelRequest, "unary", 0.5,
        grpc.StatusCode.NOT_FOUND),
    Rpc("ListModels", "/xai.v1.ModelService/ListModels", ms.ListModelsRequest, "unary", 0.5),
    Rpc("GetModel", "/xai.v1.ModelService/GetModel", ms.GetModelRequest, "unary", 0.5),
    Rpc("InspectModel", "/xai.v1.ModelService/InspectModel", ms.InspectModelRequest, "unary", 0.5),
    Rpc("GetModelStatistics", "/xai.v1.ModelService/GetModelStatistics", ms.GetModelStatisticsRequest, "unary",
        0.3),
    Rpc("Predict", "/xai.v1.ExplainService/Predict", ex.PredictRequest, "unary", 1.5),
    Rpc("Explain", "/xai.v1.ExplainService/Explain", ex.ExplainRequest, "unary", 2.0),
    Rpc("ExplainStream", "/xai.v1.ExplainService/ExplainStream", ex.ExplainStreamRequest, "server_stream", 1.0),
    Rpc("ListMethods", "/xai.v1.ExplainService/ListMethods", ex.ListMethodsRequest, "unary", 0.3),
    Rpc("Evaluate", "/xai.v1.ExplainService/Evaluate", ex.EvaluateRequest, "unary", 1.5),
    Rpc("Consistency", "/xai.v1.ExplainService/Consistency", ex.ConsistencyRequest, "server_stream", 1.0),
    Rpc("AnalyzeScales", "/xai.v1.ExplainService/AnalyzeScales", ex.AnalyzeScalesRequest, "server_stream", 1.0),
    Rpc("Aggregate", "/xai.v1.ExplainService/Aggregate", ex.AggregateRequest, "server_stream", 1.0),
    Rpc("Measure", "/xai.v1.ExplainService/Measure", ex.MeasureRequest, "server_stream", 1.0),
    Rpc("Audit", "/xai.v1.ExplainService/Audit", ex.AuditRequest, "server_stream", 0.2,
        deadline_s=AUDIT_DEADLINE_S),
    Rpc("Health.Check", "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest, "unary", 0.3),
    Rpc("Reflection", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        reflection_pb2.ServerReflectionRequest, "bidi", 0.3),
]
RPC_BY_NAME = {rpc.name: rpc for rpc in RPCS}

# ---------------------------------------------------------------------------------------------------------------
# Named attacks: each way the server was broken before (issue 10), sent on every run


@dataclass(frozen=True)
class Attack:
    name: str
    rpc: str
    apply: Callable[[Message, "Assets"], None]
    # The status the attack must get (None: any but the forbidden ones), and whether OK is wrong.
    expect: grpc.StatusCode | None = None
    refused: bool = False
    # Work the server accepts and runs until the deadline: a shorter one, or a lower weight, keeps the run short.
    deadline_s: float | None = None
    weight: float = 1.0


def _set(path: str, value) -> Callable[[Message, "Assets"], None]:
    """An attack that writes ``value`` at the dotted ``path`` (a callable value gets the assets)."""
    def apply(request: Message, assets: "Assets") -> None:
        *parents, name = path.split(".")
        target = request
        for part in parents:
            target = getattr(target, part)
        resolved = value(assets) if callable(value) else value
        if isinstance(resolved, Message):
            getattr(target, name).CopyFrom(resolved)
        elif isinstance(resolved, list):
            del getattr(target, name)[:]
            getattr(target, name).extend(resolved)
        else:
            setattr(target, name, resolved)
    return apply


def _tensor_named(name: str) -> Callable[["Assets"], tensor_pb2.Tensor]:
    return lambda assets: dict(assets.hostile_tensors)[name]


def _model_named(name: str) -> Callable[["Assets"], bytes]:
    return lambda assets: next(model for described, model, _ in assets.hostile_models if described == name)


def _png_named(name: str) -> Callable[["Assets"], bytes]:
    return lambda assets: dict(assets.hostile_pngs)[name]


def _upload(name: str) -> Callable[[Message, "Assets"], None]:
    def apply(request: Message, assets: "Assets") -> None:
        request.onnx_model = _model_named(name)(assets)
        # The hostile model as it is: a request override would take precedence over its metadata.
        request.ClearField("overrides")
    return apply


def _pixel_map_with_wavelet_metric(request: Message, assets: "Assets") -> None:
    del request.metrics[:]
    request.metrics.add().wavelet_deletion.steps = 4


def _consistency_baselines(request: Message, assets: "Assets") -> None:
    template = methods_pb2.Baseline(kind=methods_pb2.Baseline.KIND_BLUR, sigma=3.0)
    del request.metric_baselines[:]
    for _ in range(300):
        request.metric_baselines.add().CopyFrom(template)


M, X, INVALID, EXHAUSTED = methods_pb2, metrics_pb2, grpc.StatusCode.INVALID_ARGUMENT, \
    grpc.StatusCode.RESOURCE_EXHAUSTED
ATTACKS = [
    Attack("sobol.perturbation=99", "Explain", _set("method", M.MethodSpec(sobol=M.SobolParams(
        grid_size=2, num_designs=2, perturbation=99))), INVALID),
    Attack("mu_fidelity.correlation=7", "Evaluate", _set("metrics", [X.MetricSpec(mu_fidelity=X.MuFidelityParams(
        num_samples=8, correlation=7))]), INVALID),
    Attack("NUL in LoadModel.path", "LoadModel", _set("path", "shapes\x00.onnx"), INVALID),
    Attack("NUL in Audit.dataset", "Audit", _set("dataset", "fuzzset\x00/manifest.csv"), INVALID),
    Attack("300-character LoadModel.path", "LoadModel", _set("path", "p" * 300), INVALID),
    Attack("300-character Audit.dataset", "Audit", _set("dataset", "d" * 300), INVALID),
    Attack("pixels [2**62, 4] with no bytes", "Predict", _set("images", [tensor_pb2.Image(
        pixels=make_tensor(tensor_pb2.DATA_TYPE_UINT8, [2**62, 4], b""))]), INVALID),
    Attack("FLOAT32 pixels [0, 0, 3]", "Explain", _set("image.pixels", _tensor_named("FLOAT32 [0, 0, 3]")),
           INVALID),
    Attack("UINT8 pixels [0, 0, 3]", "Predict", _set("images", [tensor_pb2.Image(
        pixels=make_tensor(tensor_pb2.DATA_TYPE_UINT8, [0, 0, 3], b""))]), INVALID),
    Attack("mask [0, 5]", "Explain", _set("mask.pixels", _tensor_named("[0, 5]")), INVALID),
    Attack("Evaluate a pixel map with wavelet_deletion", "Evaluate", _pixel_map_with_wavelet_metric, INVALID),
    Attack("PNG with a corrupted chunk after IDAT", "Predict", _set("images", lambda assets: [tensor_pb2.Image(
        encoded=_png_named("chunk after IDAT not a chunk")(assets))]), INVALID),
    Attack("ONNX upload with a non-UTF-8 op_type", "LoadModel", _upload("non-UTF-8 op_type"), INVALID),
    Attack("Audit scales.corruptions=[0]", "Audit", _set("scales", ex.AuditScales(corruptions=[0])), INVALID),
    Attack("Audit measures=[0, 4]", "Audit", _set("measures", [0, 4]), INVALID),
    Attack("Audit of a manifest.json whose samples are [1]", "Audit", _set("dataset", "badmanifest"), INVALID),
    *[Attack(f"ONNX upload, {name}", "LoadModel", _upload(name), INVALID) for name in (
        "metadata a list", "metadata a number", "metadata preprocessing a string", "metadata mean non-numeric",
        "metadata mean null", "metadata nested 100000 deep")],
    *[Attack(f"ONNX upload, {name}", "LoadModel", _upload(name), refused=True) for name in (
        "metadata batch_size 10^12", "declares 100000x100000", "declares 2^62 x 1")],
    *[Attack(f"ONNX upload with {name}", "LoadModel", _upload(name), refused=True) for name in (
        "external data README.md", "external data /etc/hostname", "external data ../../../../etc/passwd")],
    Attack("audit output through a planted symbolic link", "Audit", _set("name", PLANTED_AUDIT), refused=True),
    Attack("5000 targets on a 5-class model", "Explain", _set("target", ex.Target(class_indices=range(5000))),
           INVALID),
    Attack("RISE num_masks=1000000 grid_size=32", "Explain", _set("method", M.MethodSpec(rise=M.RiseParams(
        num_masks=1_000_000, grid_size=32))), EXHAUSTED),
    Attack("LIME num_samples=100000 n_segments=1000", "Explain", _set("method", M.MethodSpec(lime=M.LimeParams(
        num_samples=100_000, segmentation=M.SEGMENTATION_SLIC, n_segments=1000))), deadline_s=0.5),
    # Its forward passes stop at the deadline; what follows them did not (71 s past a 5 s deadline), and a
    # deadline under 2 s ends the call before it starts.
    Attack("Consistency with 300 metric baselines", "Consistency", _consistency_baselines, weight=0.3),
    Attack("Predict batch_size=4294967295", "Predict", _set("batch_size", 2**32 - 1)),
    Attack("InspectModel repeats=4294967295", "InspectModel", _set("repeats", 2**32 - 1), INVALID),
]


# ---------------------------------------------------------------------------------------------------------------
# Mutations


@dataclass
class Slot:
    """A place a mutation can write: ``parent.<field>`` (or its element ``index``), reached by ``path``."""

    path: str
    parent: Message
    field: FieldDescriptor
    index: int | None = None
    # Called after the write: puts a detached parent in place (see ``_spec_slots``).
    attach: Callable[[], None] | None = None


def _repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)
    return flag if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


def slots(message: Message, prefix: str = "", depth: int = 0) -> list[Slot]:
    """Every field of ``message`` and of its nested messages, set or not (an unset oneof member is a place too:
    writing into ``method.sobol`` turns an occlusion request into a Sobol one)."""
    if message.DESCRIPTOR.full_name in CHEAP_PARAMS:
        return _spec_slots(message, prefix, depth)
    found = []
    for descriptor in message.DESCRIPTOR.fields:
        path = f"{prefix}{descriptor.name}"
        if descriptor.message_type is not None and descriptor.message_type.GetOptions().map_entry:
            continue
        found.append(Slot(path, message, descriptor))
        value = getattr(message, descriptor.name)
        if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
            if depth >= MAX_DEPTH:
                continue
            if _repeated(descriptor):
                for i, element in enumerate(value):
                    found += slots(element, f"{path}[{i}].", depth + 1)
            else:
                found += slots(value, f"{path}.", depth + 1)
        elif _repeated(descriptor):
            found += [Slot(f"{path}[{i}]", message, descriptor, i) for i in range(len(value))]
    return found


def _spec_slots(spec: Message, prefix: str, depth: int) -> list[Slot]:
    """A MethodSpec or MetricSpec: its method's fields, and those of every other method, which a write switches to
    with cheap parameters (the defaults of RISE or EVA take seconds: a deadline, not a finding, every time)."""
    chosen = spec.WhichOneof("params")
    found = []
    for descriptor in spec.DESCRIPTOR.fields:
        path = f"{prefix}{descriptor.name}"
        if descriptor.name == chosen:
            found.append(Slot(path, spec, descriptor))
            found += slots(getattr(spec, descriptor.name), f"{path}.", depth + 1)
            continue
        prototype = CHEAP_PARAMS[spec.DESCRIPTOR.full_name][descriptor.name]()

        def attach(spec=spec, name=descriptor.name, prototype=prototype) -> None:
            getattr(spec, name).CopyFrom(prototype)
        found += [Slot(f"{path}.{f.name}", prototype, f, attach=attach) for f in prototype.DESCRIPTOR.fields]
    return found


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}...({len(value) if hasattr(value, '__len__') else '?'} long)"


def _scalar(rng: random.Random, field: FieldDescriptor, assets: Assets) -> tuple[object, str]:
    """A hostile value for a scalar field, and how to say it."""
    kind = field.type
    if kind == FieldDescriptor.TYPE_ENUM:
        if rng.random() < 0.7:
            value = rng.choice(UNKNOWN_ENUMS)
        else:
            value = rng.choice([v.number for v in field.enum_type.values])
        return value, str(value)
    if kind in _RANGES:
        low, high = _RANGES[kind]
        value = _pick_int(rng)
        if not low <= value <= high:
            value = rng.choice([low, high])
        return value, str(value)
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        value = rng.choice(FLOATS)
        return value, repr(value)
    if kind == FieldDescriptor.TYPE_BOOL:
        return rng.random() < 0.5, ""
    if kind == FieldDescriptor.TYPE_STRING:
        value = rng.choice(STRINGS + NAMES) if field.name.endswith("name") or field.name.endswith("models") else \
            rng.choice(STRINGS)
        return value, _show(value)
    if kind == FieldDescriptor.TYPE_BYTES:
        if field.name == "onnx_model":
            described, value, _ = rng.choice(assets.hostile_models)
            return value, f"<ONNX: {described}>"
        if field.name == "encoded":
            return _hostile_encoded(rng, assets)
        value = rng.randbytes(rng.choice([0, 1, 7, 1000]))
        return value, f"<{len(value)} random bytes>"
    raise TypeError(field)


def _hostile_encoded(rng: random.Random, assets: Assets) -> tuple[bytes, str]:
    roll = rng.random()
    if roll < 0.7:
        described, value = rng.choice(assets.hostile_pngs)
        return value, f"<PNG: {described}>"
    data = bytearray(assets.png)
    if roll < 0.9:  # flip bytes past the signature: CRCs, lengths and compressed data break in turn
        positions = [rng.randrange(8, len(data)) for _ in range(rng.choice([1, 2, 8]))]
        for position in positions:
            data[position] ^= 1 << rng.randrange(8)
        return bytes(data), f"<PNG with bits flipped at {positions}>"
    cut = rng.randrange(8, len(data))
    return bytes(data[:cut]), f"<PNG truncated at {cut} of {len(data)}>"


def _hostile_image(rng: random.Random, assets: Assets) -> tuple[tensor_pb2.Image | None, str]:
    roll = rng.random()
    if roll < 0.45:
        value, described = _hostile_encoded(rng, assets)
        return tensor_pb2.Image(encoded=value), described
    if roll < 0.9:
        described, tensor = rng.choice(assets.hostile_tensors)
        return tensor_pb2.Image(pixels=tensor), f"<pixels {described}>"
    if roll < 0.95:
        return tensor_pb2.Image(), "<empty Image>"
    return None, "<unset>"


def _write(rng: random.Random, slot: Slot, assets: Assets) -> str:
    field, parent = slot.field, slot.parent
    container = getattr(parent, field.name)
    if slot.index is not None:  # one element of a repeated scalar field
        value, described = _scalar(rng, field, assets)
        container[slot.index] = value
        return f"{slot.path}={described or value}"
    if _repeated(field):
        if rng.random() < 0.35:
            del container[:]
            return f"{slot.path}=[]"
        if field.type == FieldDescriptor.TYPE_MESSAGE:
            count = rng.choice([2, 8, 64, 300])
            if len(container) and rng.random() < 0.7:
                template = container[rng.randrange(len(container))]
                for _ in range(count):
                    container.add().CopyFrom(template)
                return f"{slot.path}+={count} copies"
            for _ in range(min(count, 8)):
                container.add()
            return f"{slot.path}+={min(count, 8)} empty"
        count = rng.choice([2, 64, 1000])
        if len(container) and rng.random() < 0.5:
            values, described = [container[0]] * count, f"{container[0]!r}"
        else:
            value, described = _scalar(rng, field, assets)
            values = [value] * count
        container.extend(values)
        return f"{slot.path}+={count} x {described}"
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        name = field.message_type.full_name
        if name == "xai.v1.Tensor" and rng.random() < 0.8:
            described, tensor = rng.choice(assets.hostile_tensors)
            container.CopyFrom(tensor)
            return f"{slot.path}=<{described}>"
        if name == "xai.v1.Image" and rng.random() < 0.8:
            image, described = _hostile_image(rng, assets)
            if image is None:
                parent.ClearField(field.name)
            else:
                container.CopyFrom(image)
            return f"{slot.path}={described}"
        if rng.random() < 0.5 or parent.DESCRIPTOR.full_name in CHEAP_PARAMS:  # {} there: the slow defaults
            parent.ClearField(field.name)
            return f"{slot.path}=<unset>"
        container.Clear()
        container.SetInParent()
        return f"{slot.path}={{}}"
    value, described = _scalar(rng, field, assets)
    setattr(parent, field.name, value)
    return f"{slot.path}={described or value}"


def mutate(rng: random.Random, message: Message, assets: Assets) -> str:
    """Write one hostile value somewhere in ``message``; returns "path=value"."""
    slot = rng.choice(slots(message))
    described = _write(rng, slot, assets)
    if slot.attach is not None:
        slot.attach()
    return described


# Bodies no protobuf parser accepts, whatever the message: wire type 7, field 0, an unterminated varint, a length
# past the end, an end-group with no start.
_BROKEN_WIRE = [b"\x0f", b"\x00", b"\x08\xff", b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
                b"\x0a\x05ab", b"\x0a\xff\xff\xff\xff\x0f", b"\x0c", b"\xff\xff\xff\xff"]


def _undecodable(rng: random.Random, request: Message) -> tuple[bytes, str]:
    strings = [f for f in request.DESCRIPTOR.fields if f.type == FieldDescriptor.TYPE_STRING]
    if strings and rng.random() < 0.3:  # a string field that is not UTF-8
        tag = (strings[0].number << 3) | 2
        body = _varint(tag) + b"\x02\xff\xfe"
        return body, f"<{strings[0].name} not UTF-8>"
    broken = rng.choice(_BROKEN_WIRE)
    if rng.random() < 0.5:
        return request.SerializeToString() + broken, f"<valid body + {broken!r}>"
    return broken, f"<{broken!r}>"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@dataclass(frozen=True)
class Case:
    seed: int
    index: int
    rpc: Rpc
    body: bytes
    mutations: tuple[str, ...]
    # What the oracle expects beyond "no forbidden status": this status, and whether OK would be wrong.
    expect: grpc.StatusCode | None = None
    refused: bool = False
    # The status's details must name the field at fault (google.rpc.BadRequest).
    names_field: bool = False
    deadline_s: float | None = None  # None: the RPC's

    def describe(self) -> str:
        return (f"seed={self.seed} index={self.index} rpc={self.rpc.name} "
                f"mutations=[{'; '.join(self.mutations) or 'none'}]")

    def request(self) -> Message | None:
        try:
            return self.rpc.request.FromString(self.body)
        except DecodeError:
            return None


def case(seed: int, index: int, assets: Assets) -> Case:
    """Case ``index`` of ``seed``: 5% valid base requests, 10% undecodable or random bodies, 2% unknown fields, 13%
    named attacks, the rest one to three hostile fields. The first ``len(ATTACKS)`` cases are the named attacks in
    order, so that a run sends each at least once whatever its draws (a rare one drawn at its weight alone was
    missed by about one seed in eight)."""
    rng = random.Random(f"{seed}/{index}")
    rpc = rng.choices(RPCS, [r.weight for r in RPCS])[0]
    roll = rng.random()
    if index < len(ATTACKS) or 0.17 <= roll < 0.30:
        attack = ATTACKS[index] if index < len(ATTACKS) else rng.choices(ATTACKS, [a.weight for a in ATTACKS])[0]
        rpc = RPC_BY_NAME[attack.rpc]
        request = base_request(rpc.name, rng, assets, index)
        attack.apply(request, assets)
        return Case(seed, index, rpc, request.SerializeToString(), (f"attack: {attack.name}",), expect=attack.expect,
                    refused=attack.refused, names_field=attack.expect is not None or attack.refused,
                    deadline_s=attack.deadline_s)
    request = base_request(rpc.name, rng, assets, index)
    if roll < 0.05:
        return Case(seed, index, rpc, request.SerializeToString(), (), expect=rpc.base_code)
    if roll < 0.13:
        if roll < 0.10:
            body, described = _undecodable(rng, request)
        else:
            body = rng.randbytes(rng.choice([1, 3, 16, 64]))
            described = f"<random {body.hex()}>"
        try:
            rpc.request.FromString(body)
        except DecodeError:
            return Case(seed, index, rpc, body, (f"body={described}",), expect=grpc.StatusCode.INVALID_ARGUMENT)
        return Case(seed, index, rpc, body, (f"body={described} (decodes)",))
    if roll < 0.15:  # unknown fields are skipped by every proto3 parser
        extra = _varint((rng.choice([999, 2**29 - 1]) << 3) | 2) + b"\x03abc"
        return Case(seed, index, rpc, request.SerializeToString() + extra, ("body=<valid + unknown field>",))
    mutations = []
    for _ in range(rng.choices([1, 2, 3], [0.7, 0.2, 0.1])[0]):
        if not request.DESCRIPTOR.fields:
            break
        try:
            mutations.append(mutate(rng, request, assets))
        except (ValueError, TypeError) as error:  # a value the client library refuses to set: not sent
            mutations.append(f"<not set: {error}>")
    if not mutations:  # a request without fields: send it with an unknown field
        extra = _varint((999 << 3) | 0) + b"\x01"
        return Case(seed, index, rpc, request.SerializeToString() + extra, ("body=<unknown field 999>",))
    refused = (rpc.name == "LoadModel" and request.WhichOneof("source") == "onnx_model" and any(
        request.onnx_model == model for _, model, must_refuse in assets.hostile_models if must_refuse)) or (
        rpc.name == "Audit" and request.name == PLANTED_AUDIT)
    return Case(seed, index, rpc, request.SerializeToString(), tuple(mutations), refused=refused)


# ---------------------------------------------------------------------------------------------------------------
# Sending and judging


@dataclass
class Result:
    case: Case
    code: grpc.StatusCode
    details: str
    seconds: float
    response: bytes | None = None  # the last message, for unary and streamed answers
    # The fields the status's google.rpc.BadRequest details name.
    fields: tuple[str, ...] = ()
    # After DEADLINE_EXCEEDED or CANCELLED: how long the server's jobs took to stop (inf: still running after
    # IDLE_WAIT_S; None: not measured).
    idle_after_s: float | None = None
    # Jobs of earlier cases the server was still running when this one was sent (they may be to blame).
    busy_before: int = 0
    # Where the server raised, from its log: "KeyError: 7 at service/api/requests.py:97 (message_values)".
    raised: str | None = None

    def violation(self) -> str | None:
        if self.code in FORBIDDEN:
            return self.code.name
        if OVERSIZED in self.details:
            return f"{self.code.name} from the client: the server's error status was over its 8 KiB metadata limit"
        if self.idle_after_s is not None and self.idle_after_s > IDLE_AFTER_DEADLINE_S:
            waited = f"{self.idle_after_s:.1f} s" if math.isfinite(self.idle_after_s) else f"over {IDLE_WAIT_S:.0f} s"
            blame = f" ({self.busy_before} earlier jobs still ran when it was sent)" if self.busy_before else ""
            return f"{self.code.name}, and the server's work went on for {waited}{blame}"
        if self.case.expect is not None and self.code != self.case.expect:
            return f"{self.code.name}, want {self.case.expect.name}"
        if self.case.refused and self.code == grpc.StatusCode.OK:
            return "OK for a request that must be refused"
        if self.case.names_field and self.code != grpc.StatusCode.OK and not self.fields:
            return f"{self.code.name} without the field at fault (google.rpc.BadRequest)"
        return None


ABANDONED = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED)
# What a gRPC client answers itself when a status's message and details exceed its metadata limit (8 KiB by
# default): the server's own status never arrives.
OVERSIZED = "received metadata size exceeds"


def call(channel: grpc.Channel, rpc: Rpc, body: bytes, timeout: float) -> tuple[grpc.StatusCode, str, bytes | None,
                                                                              tuple[str, ...]]:
    """Send ``body`` to ``rpc`` as it is; (status, details, last response message, fields named at fault)."""
    last = None
    try:
        if rpc.shape == "unary":
            last = channel.unary_unary(rpc.path)(body, timeout=timeout)
        elif rpc.shape == "server_stream":
            for last in channel.unary_stream(rpc.path)(body, timeout=timeout):
                pass
        else:
            for last in channel.stream_stream(rpc.path)(iter([body]), timeout=timeout):
                pass
    except grpc.RpcError as error:
        return error.code(), error.details() or "", None, _violated_fields(error)
    return grpc.StatusCode.OK, "", last, ()


def _violated_fields(error: grpc.RpcError) -> tuple[str, ...]:
    try:
        status = rpc_status.from_call(error)
    except ValueError:  # details of another status: the client replaced the server's (see OVERSIZED)
        return ()
    fields = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            fields += [violation.field for violation in request.field_violations]
    return tuple(fields)


BUNDLED_NAMES = frozenset(p.name for p in (ROOT / "models").iterdir() if (p / "model.onnx").is_file())


def run_case(channel: grpc.Channel, case: Case, *, timeout: float | None = None,
             in_flight: Callable[[], int] | None = None) -> Result:
    """Send one case; with ``in_flight`` (the server's count of running and queued jobs), also time how long its
    work goes on after a deadline."""
    busy_before = in_flight() if in_flight is not None else 0
    timeout = timeout or case.deadline_s or case.rpc.deadline_s
    started = time.perf_counter()
    code, details, last, fields = call(channel, case.rpc, case.body, timeout)
    ended = time.perf_counter()
    result = Result(case, code, details, ended - started, last, fields, busy_before=busy_before)
    if code in ABANDONED and in_flight is not None:
        while in_flight() and time.perf_counter() - ended < IDLE_WAIT_S:
            time.sleep(0.01)
        result.idle_after_s = math.inf if in_flight() else time.perf_counter() - ended
    if case.rpc.name == "LoadModel" and code == grpc.StatusCode.OK:
        _restore(channel, ms.LoadModelResponse.FromString(last).model.name)
    if case.rpc.name == "UnloadModel" and code == grpc.StatusCode.OK:
        name = ms.UnloadModelRequest.FromString(case.body).name
        if name in BUNDLED_NAMES:
            _restore(channel, name)
    return result


def _restore(channel: grpc.Channel, name: str) -> None:
    """Keep the registry as it was: a model the fuzzer loaded goes; a bundled one it replaced or unloaded comes back
    as it was."""
    if name in BUNDLED_NAMES:
        request = ms.LoadModelRequest(name=name, path=name, replace=True)
        code, details, *_ = call(channel, RPC_BY_NAME["LoadModel"], request.SerializeToString(), 30)
    else:
        code, details, *_ = call(channel, RPC_BY_NAME["UnloadModel"],
                                 ms.UnloadModelRequest(name=name).SerializeToString(), 30)
    if code != grpc.StatusCode.OK:
        raise AssertionError(f"cannot restore model {name!r} after a fuzzed LoadModel: {code.name} {details}")


def health_status(channel: grpc.Channel, timeout: float = 1.0) -> str:
    """The overall health status's name, or the error that stood in its way."""
    try:
        response = channel.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None,
                                       response_deserializer=health_pb2.HealthCheckResponse.FromString)(
            health_pb2.HealthCheckRequest(service="").SerializeToString(), timeout=timeout)
    except grpc.RpcError as error:
        return f"{error.code().name}: {error.details()}"
    return health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)


_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def rss_mb() -> float:
    """Resident memory of this process (VmRSS), in MiB, once glibc has returned its free pages to the system.

    Without the trim, RSS is the allocator's high-water mark: it rises whenever two large jobs (admitted by the
    budget) happen to overlap, and never falls, which says nothing of a leak. After it, RSS is what is in use."""
    _LIBC.malloc_trim(0)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclass
class Run:
    """A fuzzing run's results."""

    seed: int
    results: list[Result] = field(default_factory=list)
    health: list[tuple[int, str]] = field(default_factory=list)  # (case index, status) when not SERVING
    rss: list[tuple[int, float]] = field(default_factory=list)  # (case index, MiB)
    seconds: float = 0.0

    def memory(self, first_fraction: float = 0.1) -> tuple[float, float]:
        """RSS (MiB) once ``first_fraction`` of the cases is done, and at the end: each the least of three samples, so
        that a leak (which raises the floor) counts and one large request in flight at a sample does not."""
        cut = self.rss[0][0] + first_fraction * (self.rss[-1][0] - self.rss[0][0])
        after = [mib for index, mib in self.rss if index >= cut]
        return min(after[:3]), min(m for _, m in self.rss[-3:])

    def floor(self, from_fraction: float = 0.0) -> float:
        """The least RSS (MiB) sampled from ``from_fraction`` of the run on: what stays in use whatever the
        requests in flight. A leak raises it; a large job (RSS swings by about 250 MiB here) does not."""
        cut = self.rss[0][0] + from_fraction * (self.rss[-1][0] - self.rss[0][0])
        return min(mib for index, mib in self.rss if index >= cut)

    def abandoned(self) -> list[Result]:
        return [r for r in self.results if r.code in ABANDONED]

    def histogram(self) -> Counter:
        return Counter(r.code.name for r in self.results)

    def histogram_text(self) -> str:
        by_rpc: dict[str, Counter] = {}
        for r in self.results:
            by_rpc.setdefault(r.case.rpc.name, Counter())[r.code.name] += 1
        lines = [f"{len(self.results)} requests in {self.seconds:.1f} s, seed {self.seed}:"]
        lines += [f"  {code:<20} {count}" for code, count in self.histogram().most_common()]
        lines.append("by RPC:")
        lines += [f"  {name:<14} " + ", ".join(f"{c} {n}" for c, n in counts.most_common())
                  for name, counts in sorted(by_rpc.items())]
        return "\n".join(lines)

    def failures(self) -> list[tuple[Result, str]]:
        return [(r, v) for r in self.results if (v := r.violation())]

    def causes(self) -> dict[tuple[str, str, str], list[Result]]:
        """Failures grouped by RPC, violation and where the server raised (else the fields mutated): one entry per
        likely cause."""
        grouped: dict[tuple[str, str, str], list[Result]] = {}
        for result, violation in self.failures():
            place = result.raised.rsplit(" at ", 1)[-1] if result.raised else \
                ",".join(sorted({_field_of(m) for m in result.case.mutations})) or "<base>"
            grouped.setdefault((result.case.rpc.name, violation, place), []).append(result)
        return grouped

    def report(self, limit: int = 40) -> str:
        lines = [self.histogram_text()]
        waits = [r.idle_after_s for r in self.abandoned() if r.idle_after_s is not None]
        if waits:
            finite = [w for w in waits if math.isfinite(w)]
            lines.append(f"{len(waits)} calls ended by their deadline; the server was idle again after at most "
                         f"{max(finite, default=0):.2f} s, except {len(waits) - len(finite)} still busy after "
                         f"{IDLE_WAIT_S:.0f} s")
        if self.rss:
            tenth, half, end = self.memory(0.1)[0], *self.memory(0.5)
            lines.append(f"RSS {tenth:.0f} MiB after the first tenth, {half:.0f} MiB at the half, {end:.0f} MiB at "
                         f"the end ({end - half:+.0f} since the half), peak sample {max(m for _, m in self.rss):.0f} "
                         "MiB")
        if self.health:
            lines.append(f"health not SERVING: {self.health[:10]}")
        causes = self.causes()
        if causes:
            lines.append(f"{len(self.failures())} failing requests, {len(causes)} distinct (RPC, status, place):")
            for (rpc, violation, _), results in sorted(causes.items(), key=lambda kv: -len(kv[1]))[:limit]:
                simplest = min(results, key=lambda r: len(" ".join(r.case.mutations)))
                lines.append(f"  {len(results):4d} x {rpc} {violation}: {simplest.details[:160]!r}\n"
                             + (f"         raised {simplest.raised}\n" if simplest.raised else "")
                             + f"         e.g. {simplest.case.describe()}")
        return "\n".join(lines)


def _field_of(mutation: str) -> str:
    name = mutation.split("=", 1)[0].split("+=", 1)[0]
    return re.sub(r"\[\d+\]", "[]", name)


class ServerErrors(logging.Handler):
    """Where the server raised, for each case, from the tracebacks it logs (an embedded server's, in this process).

    While active, the service's and grpc's error logs come here instead of the root logger: each failure is
    reported once, with its place, instead of as thousands of tracebacks."""

    LOGGERS = ("service", "grpc")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.index: int | None = None
        self.raised: dict[int, str] = {}
        self._saved: dict[str, tuple[bool, int]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None and self.index is not None:
            self.raised.setdefault(self.index, _where(record.exc_info[1]))

    def __enter__(self) -> "ServerErrors":
        for name in self.LOGGERS:
            logger = logging.getLogger(name)
            self._saved[name] = (logger.propagate, logger.level)
            logger.addHandler(self)
            logger.propagate = False
            if logger.getEffectiveLevel() > logging.ERROR:
                logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc_info) -> None:
        for name, (propagate, level) in self._saved.items():
            logger = logging.getLogger(name)
            logger.removeHandler(self)
            logger.propagate = propagate
            logger.setLevel(level)


def _where(error: BaseException) -> str:
    """"KeyError: 7 at service/api/requests.py:97 (message_values)": the exception and its last frame in this
    repository (else its last frame)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(ROOT))] or frames
    text = f"{type(error).__name__}: {str(error)[:160]}"
    if not ours:
        return text
    frame = ours[-1]
    filename = Path(frame.filename)
    shown = filename.relative_to(ROOT) if filename.is_relative_to(ROOT) else filename.name
    return f"{text} at {shown}:{frame.lineno} ({frame.name})"


def fuzz(channel: grpc.Channel, seed: int, count: int, assets: Assets, *, start: int = 0, health_every: int = 50,
         in_flight: Callable[[], int] | None = None, on_progress: Callable[[int], None] | None = None) -> Run:
    """Send cases ``start .. start + count - 1`` of ``seed`` one after the other; every ``health_every`` cases (and
    after the last), check health and record this process's RSS."""
    run = Run(seed)
    started = time.perf_counter()
    with ServerErrors() as errors:
        for index in range(start, start + count):
            errors.index = index
            result = run_case(channel, case(seed, index, assets), in_flight=in_flight)
            result.raised = errors.raised.get(index)
            run.results.append(result)
            _checkpoint(run, channel, index, index - start + 1, count, health_every, on_progress)
    run.seconds = time.perf_counter() - started
    return run


def _checkpoint(run: Run, channel: grpc.Channel, index: int, done: int, count: int, health_every: int,
                on_progress: Callable[[int], None] | None) -> None:
    if done % health_every == 0 or done == count:
        status = health_status(channel)
        if status != "SERVING":
            run.health.append((index, status))
        run.rss.append((index, rss_mb()))
        if on_progress is not None:
            on_progress(done)


def warm_up(channel: grpc.Channel, assets: Assets) -> None:
    """Every RPC once, with every base method, and GetModel of every model a mutation names: imports, PyTorch
    mirrors and first-use caches come before any memory is measured."""
    rng = random.Random(0)
    requests = [(rpc, base_request(rpc.name, rng, assets, -1)) for rpc in RPCS]
    requests += [(RPC_BY_NAME["GetModel"], ms.GetModelRequest(name=name)) for name in NAMES]
    explain = RPC_BY_NAME["Explain"]
    for method in _methods():
        request = base_request("Explain", rng, assets, -1)
        request.method.CopyFrom(method())
        requests.append((explain, request))
    for rpc, request in requests:
        result = run_case(channel, Case(0, -1, rpc, request.SerializeToString(), ()), timeout=120.0)
        if result.code != rpc.base_code:
            raise AssertionError(f"warm-up {rpc.name} failed: {result.code.name} {result.details}")
