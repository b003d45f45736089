"""The conformance matrix of issue 11 ("Every real ONNX classifier, end to end"), through the gRPC server.

Every case of tests/conformance_models.py (torchvision architectures with weights=None, constructed exporter
variants) is loaded by path with its overrides, and must: predict like its source (the exporter's own forward
pass) on 3 images; give a finite, non-zero map with every black-box method at a tiny setting; and get from EVA
(2 x 2 grid, epsilon 1/255, IBP, and the default CROWN-IBP) the mode that EXPECTED names: verified, hybrid at a
cut, or a FAILED_PRECONDITION refusal with its reason. No call may end INTERNAL or UNKNOWN.

Every case loads, predicts like its source and runs every black-box method; EVA verifies or runs hybrid on
every architecture but three refusals, each named: sigmoid heads (no softmax margins), a dynamic-size model at
another size than its mirror was checked at, and QDQ int8 (rounding up to the output). ``bench/conformance.py``
prints the same matrix as a table, with EVA's time on an 8 x 8 grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from conformance_models import (BLACK_BOX_PARAMS, BROKEN_CODES, CASES, CLASSES, EVA_QUICK, SIZE, ConformanceModels,
                                EvaMode, conformance_server, eva_mode, explain_map, load_case, predict_error,
                                sample_images)

VERIFIED = EvaMode("verified")
SIGMOID_HEAD = "has a sigmoid head: its classes are scored independently"


def hybrid(cut: str) -> EvaMode:
    return EvaMode("hybrid", cut)


def refused(reason: str, code: str = "FAILED_PRECONDITION") -> EvaMode:
    return EvaMode("refused", reason, code)


@dataclass(frozen=True)
class Expected:
    """One case's outcomes: the output kind detected, EVA's mode with IBP (EVA_QUICK) and with the default bound
    method, CROWN-IBP (the whole model where the method runs on it, else the latest cut whose tail it bounds)."""

    ibp: EvaMode
    crown_ibp: EvaMode
    output_kind: str = "OUTPUT_KIND_LOGITS"
    classes: int = CLASSES


# Why each hybrid. The seven torchvision CNNs bound whole with IBP, but vacuously: on a box of radius 1e-3 its
# margin bounds are 1e11 (squeezenet1_1) to 1e17 (resnet18) above what the model reaches (random weights, no
# training for robustness), and CROWN-IBP, which starts from IBP's intermediate bounds, fares no better;
# auto_LiRPA 0.3's CROWN cannot pass a MaxPool whose stride is not its kernel (resnet, squeezenet) and the NHWC
# model's input Transpose stops CROWN-IBP. ConvNeXt, ViT and Swin hold Erf (GELU) and LayerNorm, ViT also TopK
# and Mod, and Swin's LayerNorm onnx2torch misreads, so its head runs on onnxruntime. The tail after each cut is
# the final Linear layer, whose bounds are exact.
EXPECTED: dict[str, Expected] = {
    "resnet18": Expected(hybrid("/Flatten"), hybrid("/Flatten")),
    "resnet50": Expected(hybrid("/Flatten"), hybrid("/Flatten")),
    "mobilenet_v3_small": Expected(hybrid("/classifier/classifier.1/HardSwish"),
                                   hybrid("/classifier/classifier.1/HardSwish")),
    "efficientnet_b0": Expected(hybrid("/Flatten"), hybrid("/Flatten")),
    "regnet_y_400mf": Expected(hybrid("/Flatten"), hybrid("/Flatten")),
    "squeezenet1_1": Expected(hybrid("/features/features.12/Concat"), hybrid("/features/features.12/Concat")),
    "densenet121": Expected(hybrid("/Flatten"), hybrid("/Flatten")),
    "convnext_reduced": Expected(hybrid("/classifier/classifier.1/Flatten"),
                                 hybrid("/classifier/classifier.1/Flatten")),
    "vit_reduced": Expected(hybrid("/Gather_4"), hybrid("/Gather_4")),
    "swin_reduced": Expected(hybrid("/flatten/Flatten"), hybrid("/flatten/Flatten")),
    "nhwc_keras": Expected(VERIFIED, hybrid("/net/Flatten")),
    "fixed_batch4": Expected(VERIFIED, VERIFIED),
    "constant_weights": Expected(VERIFIED, VERIFIED),
    "caffe2_ir3_opset9": Expected(VERIFIED, VERIFIED, output_kind="OUTPUT_KIND_PROBABILITIES"),
    # EVA bounds the margins between the classes of one softmax; sigmoid heads score classes independently.
    "sigmoid_binary": Expected(refused(SIGMOID_HEAD), refused(SIGMOID_HEAD), "OUTPUT_KIND_SIGMOID", classes=2),
    "sigmoid_multilabel": Expected(refused(SIGMOID_HEAD), refused(SIGMOID_HEAD), "OUTPUT_KIND_SIGMOID", classes=5),
    # The mirror is checked at the load probe's size (224); the matrix's images are 32 x 32.
    "dynamic_hw": Expected(refused("its verification mirror is checked at 224x224 only"),
                           refused("its verification mirror is checked at 224x224 only")),
    # Activation QuantizeLinear/DequantizeLinear pairs round (no bound relaxes them), up to the output itself.
    "int8_qdq": Expected(refused("runs neither on the whole model"), refused("runs neither on the whole model")),
    "float16_io": Expected(VERIFIED, VERIFIED),
}


def test_the_table_covers_every_case():
    assert set(EXPECTED) == set(CASES)


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


@pytest.mark.parametrize("name", CASES)
def test_loads_with_its_size_classes_and_output_kind(loads, name):
    from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

    info, outcome = loads(name)
    assert outcome.ok, outcome
    dynamic = name == "dynamic_hw"  # each image at its own size; the probe ran at 224
    assert (info.dynamic_height, info.dynamic_width) == (dynamic, dynamic)
    assert (info.height, info.width) == ((224, 224) if dynamic else (SIZE, SIZE))
    assert info.num_classes == EXPECTED[name].classes
    assert ms.OutputKind.Name(info.output_kind) == EXPECTED[name].output_kind, info.output_kind_source


@pytest.mark.parametrize("name", CASES)
def test_predicts_like_its_source(client, models, loads, name):
    _, loaded = loads(name)
    assert loaded.ok, loaded
    case = models.get(name)
    images = sample_images(case.height, case.width)
    _, _, outcome, ours = predict_error(client, case, images)
    assert outcome.ok, outcome
    expected = case.reference(images.astype(np.float32) / 255)
    np.testing.assert_allclose(ours, expected, rtol=case.tolerance.rtol, atol=case.tolerance.absolute(expected),
                               err_msg=case.tolerance.why)
    assert np.ptp(expected) > 0.1  # the reference's scores vary: a constant model would compare trivially


def test_the_black_box_methods_are_the_servers(client):
    assert {m.name for m in client.list_methods()} == set(BLACK_BOX_PARAMS) | {"eva"}


@pytest.mark.parametrize("method", list(BLACK_BOX_PARAMS))
@pytest.mark.parametrize("name", CASES)
def test_black_box_method_gives_a_finite_nonzero_map(client, models, loads, name, method):
    _, loaded = loads(name)
    assert loaded.ok, loaded
    case = models.get(name)
    attribution, outcome = explain_map(client, case, sample_images(case.height, case.width)[0], method)
    assert outcome.ok, outcome
    assert attribution.shape == (case.height, case.width)
    assert np.isfinite(attribution).all() and np.any(attribution != 0)


@pytest.mark.parametrize("bound_method", ["ibp", "crown_ibp"])
@pytest.mark.parametrize("name", CASES)
def test_eva_mode_is_the_tables(client, models, loads, name, bound_method):
    _, loaded = loads(name)
    assert loaded.ok, loaded
    case = models.get(name)
    mode = eva_mode(client, case, sample_images(case.height, case.width)[0],
                    {**EVA_QUICK, "bound_method": f"BOUND_METHOD_{bound_method.upper()}"})
    assert mode.code not in BROKEN_CODES, mode
    _assert_mode(mode, getattr(EXPECTED[name], bound_method))


def _assert_mode(mode: EvaMode, expected: EvaMode) -> None:
    assert (mode.kind, mode.code) == (expected.kind, expected.code), mode
    if mode.kind == "hybrid":
        assert mode.detail == expected.detail, mode  # the cut used
    else:
        assert expected.detail in mode.detail, mode
