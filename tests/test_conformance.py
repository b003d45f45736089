"""The conformance matrix of issue 11 ("Every real ONNX classifier, end to end"), through the gRPC server.

Every case of tests/conformance_models.py (torchvision architectures with weights=None, constructed exporter
variants) is loaded by path with its overrides, and must: predict like its source (the exporter's own forward
pass) on 3 images; give a finite, non-zero map with every black-box method at a tiny setting; and get from EVA
(2 x 2 grid, epsilon 1/255, IBP, and the default CROWN-IBP) the mode that EXPECTED names: verified, hybrid at a
cut, or a FAILED_PRECONDITION refusal with its reason. No call may end INTERNAL or UNKNOWN.

EXPECTED is the truth on main today (2026-12-03). Each row's ``issue`` says what issue 11 asks for; when a
runtime or mirror branch lands, the rows it fixes fail here (an expected refusal that no longer happens, a
strict xfail that passes) and are updated to the new truth. ``bench/conformance.py`` prints the same matrix as
a table.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from conformance_models import (BLACK_BOX_PARAMS, BROKEN_CODES, CASES, CLASSES, EVA_QUICK, SIZE, ConformanceModels,
                                EvaMode, conformance_server, eva_mode, explain_map, load_case, predict_error,
                                sample_images)

VERIFIED = EvaMode("verified")
# The TorchScript exporter writes equal initializers once and copies them with Identity nodes (under weights=None
# every zero-initialised bias of a shape is one tensor); onnx2torch's Conv reads its weight and bias from
# graph.initializers only, so the conversion fails with a KeyError naming the copied tensor. Paddle-style Constant
# weights fail the same way.
NOT_MIRRORED = "the model cannot be mirrored for verification (KeyError"
# The mirror's check against onnxruntime is at 1e-4 relative / 1e-5 absolute: deep float32 networks with unit-scale
# logits sit at its edge, and which check trips first (node by node, or auto_LiRPA's forward) varies run to run.
NUMERIC = ("the PyTorch mirror diverges from onnxruntime first at node", "auto_LiRPA's bounds on a batch of points "
           "differ from onnxruntime's outputs")


def refused(reason: str, code: str = "FAILED_PRECONDITION") -> EvaMode:
    return EvaMode("refused", reason, code)


def refused_numerically() -> EvaMode:
    return EvaMode("refused", " | ".join(NUMERIC), "FAILED_PRECONDITION")


@dataclass(frozen=True)
class Expected:
    """One case's outcomes today. ``load``: None when it loads, else (status code, part of the message).
    ``eva``: EVA's mode with EVA_QUICK, None when the model does not load. ``eva_internal``: a known INTERNAL
    today (a bug): ``eva`` then holds the mode once it is fixed, and the case's EVA test is a strict xfail, which
    fails as soon as the bug is gone. ``issue``: what issue 11 expects."""

    eva: EvaMode | None
    issue: str
    load: tuple[str, str] | None = None
    output_kind: str = "OUTPUT_KIND_LOGITS"
    eva_internal: str = ""


EXPECTED: dict[str, Expected] = {
    "resnet18": Expected(VERIFIED, "verified"),
    "resnet50": Expected(refused_numerically(), "verified"),
    "mobilenet_v3_small": Expected(refused(NOT_MIRRORED), "verified (HardSwish/HardSigmoid rewritten with Relu)"),
    "efficientnet_b0": Expected(refused(NOT_MIRRORED), "verified (SiLU = x * Sigmoid(x))"),
    "regnet_y_400mf": Expected(refused_numerically(), "verified"),
    "squeezenet1_1": Expected(refused(NOT_MIRRORED), "verified"),
    "densenet121": Expected(refused_numerically(), "verified"),
    "convnext_reduced": Expected(refused(NOT_MIRRORED), "hybrid, cut after the last GELU (Erf) / LayerNorm"),
    "vit_reduced": Expected(refused("auto_LiRPA 0.3 cannot bound the operator(s) aten::ATen, TopK, Mod, Erf"),
                            "hybrid, cut after the final LayerNorm (the tail is one Linear)"),
    "swin_reduced": Expected(refused("auto_LiRPA 0.3 cannot bound the operator(s) aten::ATen, Erf"),
                             "hybrid, cut after the final LayerNorm"),
    "nhwc_keras": Expected(VERIFIED, "verified"),
    "fixed_batch4": Expected(VERIFIED, "verified"),
    "constant_weights": Expected(refused(NOT_MIRRORED), "verified (Constant nodes moved to initializers)"),
    "caffe2_ir3_opset9": Expected(
        None, "loads (output [1,C,1,1] flattened by naming axes 2, 3), probabilities from the graph, verified",
        load=("INVALID_ARGUMENT", "output 'prob' has shape [1, 10, 1, 1]; a classifier's output is [batch, classes]")),
    # The probe calls a Sigmoid head logits (its rows do not sum to 1): the issue expects a sigmoid output kind.
    "sigmoid_binary": Expected(
        VERIFIED, "a sigmoid head detected (explained as logit(p) or p), verified", output_kind="OUTPUT_KIND_LOGITS",
        eva_internal="EVA on a one-output model: ValueError 'zero-size array to reduction operation maximum' "
                     "(no competing class) ends INTERNAL"),
    "sigmoid_multilabel": Expected(VERIFIED, "a multi-label sigmoid head detected (per-class scores), verified",
                                   output_kind="OUTPUT_KIND_LOGITS"),
    "dynamic_hw": Expected(
        None, "loads at a native or configured size (letterbox policy), verified",
        load=("INVALID_ARGUMENT", "the input's height is dynamic; give it in the sidecar or overrides")),
    "int8_qdq": Expected(refused("operator DequantizeLinear"),
                         "hybrid (activation QDQ in the empirical head) or verified with DQ(W) folded"),
    "float16_io": Expected(refused("verification needs a float32 input; this model takes FLOAT16"),
                           "verified by a float32 mirror, flagged as such"),
}
# Known INTERNALs of the default bound method (CROWN-IBP) on a 2 x 2 grid, by case.
CROWN_IBP_INTERNAL = {
    "resnet18": "auto_LiRPA CROWN on MaxPool 3x3 stride 2: ValueError 'self.stride ([2, 2]) != self.kernel_size'",
    "nhwc_keras": "CROWN-IBP through the input Transpose: RuntimeError \"shape '[9, 16, -1]' is invalid\"",
    "sigmoid_binary": EXPECTED["sigmoid_binary"].eva_internal,
}
LOADING = [name for name in CASES if EXPECTED[name].load is None]


def _reaching_the_model(bugs: dict[str, str] | None = None):
    """Every case, for the tests past loading: a case refused at load today is skipped with its refusal as the
    reason (visible in the summary, and gone once test_is_refused_at_load moves its row); a case with a known
    INTERNAL in ``bugs`` is a strict xfail, which fails as soon as the bug is fixed."""
    params = []
    for name in CASES:
        marks = []
        if EXPECTED[name].load is not None:
            code, message = EXPECTED[name].load
            marks.append(pytest.mark.skip(reason=f"not reached today: load refused ({code}: {message})"))
        elif bugs and name in bugs:
            marks.append(pytest.mark.xfail(strict=True, raises=AssertionError, reason=bugs[name]))
        params.append(pytest.param(name, marks=marks))
    return params


def test_the_table_covers_every_case_and_only_loading_cases_reach_eva():
    assert set(EXPECTED) == set(CASES)
    assert {name for name, row in EXPECTED.items() if row.eva is None} == \
        {name for name, row in EXPECTED.items() if row.load is not None}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return ConformanceModels(tmp_path_factory.mktemp("conformance"))


@pytest.fixture(scope="module")
def client(models):
    """This module's own server (over the cases' directory, nothing preloaded), in place of conftest's."""
    from onnxplain_client import OnnxplainClient

    server = conformance_server(models.directory)
    with server, OnnxplainClient(server.address) as connected:
        yield connected


@pytest.fixture(scope="module")
def loads(client, models):
    """Each case loaded once: name -> (ModelInfo or None, Outcome)."""
    outcomes = {}

    def load(name: str):
        if name not in outcomes:
            outcomes[name] = load_case(client, models.get(name))
        return outcomes[name]

    return load


@pytest.mark.parametrize("name", LOADING)
def test_loads_with_its_size_classes_and_output_kind(loads, name):
    from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

    info, outcome = loads(name)
    assert outcome.ok, outcome
    assert (info.height, info.width) == (SIZE, SIZE)
    assert info.num_classes == {"sigmoid_binary": 1, "sigmoid_multilabel": 5}.get(name, CLASSES)
    assert ms.OutputKind.Name(info.output_kind) == EXPECTED[name].output_kind, info.output_kind_source


@pytest.mark.parametrize("name", [name for name in CASES if name not in LOADING])
def test_is_refused_at_load_as_the_table_says(loads, name):
    """Today's refusals; the rows of the cases that load once the runtime work lands move to LOADING."""
    _, outcome = loads(name)
    code, message = EXPECTED[name].load
    assert outcome.code == code and message in outcome.message, outcome


@pytest.mark.parametrize("name", _reaching_the_model())
def test_predicts_like_its_source(client, models, loads, name):
    _, loaded = loads(name)
    assert loaded.ok, loaded
    case = models.get(name)
    images = sample_images(case.height, case.width)
    _, _, outcome, ours = predict_error(client, case, images)
    assert outcome.ok, outcome
    expected = case.reference(images.astype(np.float32) / 255)
    np.testing.assert_allclose(ours, expected, rtol=case.tolerance.rtol, atol=case.tolerance.atol,
                               err_msg=case.tolerance.why)
    assert np.ptp(expected) > 0.1  # the reference's scores vary: a constant model would compare trivially


def test_the_black_box_methods_are_the_servers(client):
    assert {m.name for m in client.list_methods()} == set(BLACK_BOX_PARAMS) | {"eva"}


@pytest.mark.parametrize("method", list(BLACK_BOX_PARAMS))
@pytest.mark.parametrize("name", _reaching_the_model())
def test_black_box_method_gives_a_finite_nonzero_map(client, models, loads, name, method):
    _, loaded = loads(name)
    assert loaded.ok, loaded
    case = models.get(name)
    attribution, outcome = explain_map(client, case, sample_images(case.height, case.width)[0], method)
    assert outcome.ok, outcome
    assert attribution.shape == (case.height, case.width)
    assert np.isfinite(attribution).all() and np.any(attribution != 0)


@pytest.mark.parametrize("name", _reaching_the_model({n: r.eva_internal for n, r in EXPECTED.items()
                                                      if r.eva_internal}))
def test_eva_mode_is_the_tables(client, models, loads, name):
    _, loaded = loads(name)
    assert loaded.ok, loaded
    case = models.get(name)
    mode = eva_mode(client, case, sample_images(case.height, case.width)[0])
    assert mode.code not in BROKEN_CODES, mode
    _assert_mode(mode, EXPECTED[name].eva)


@pytest.mark.parametrize("name", [param for param in _reaching_the_model(CROWN_IBP_INTERNAL)
                                  if EXPECTED[param.values[0]].eva == VERIFIED])
def test_eva_default_bound_method_agrees(client, models, loads, name):
    """CROWN-IBP (the default) on the models IBP verifies: the same mode, and never INTERNAL."""
    _, loaded = loads(name)
    assert loaded.ok, loaded
    case = models.get(name)
    mode = eva_mode(client, case, sample_images(case.height, case.width)[0],
                    {**EVA_QUICK, "bound_method": "BOUND_METHOD_CROWN_IBP"})
    assert mode.code not in BROKEN_CODES, mode
    assert mode == VERIFIED, mode


def _assert_mode(mode: EvaMode, expected: EvaMode) -> None:
    assert (mode.kind, mode.code) == (expected.kind, expected.code), mode
    assert any(reason in mode.detail for reason in expected.detail.split(" | ")), mode
