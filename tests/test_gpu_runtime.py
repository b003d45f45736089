"""GPU-path runtime pieces that run on any machine: provider options from server settings, the session runner's
I/O binding, fp16 serving and its accuracy check, the verification device."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

from service.config import Settings
from service.errors import InvalidArgument
from service.runtime import half_precision
from service.runtime.loader import load_model
from service.runtime.providers import (CPU, CUDA, TENSORRT, ArenaExtend, ConvAlgoSearch, DevicePreference,
                                       ExecutionSettings, InputProfile, cuda_device_count, provider_options)
from service.runtime.session import BUFFERS_PER_THREAD, SessionRunner
from tests.onnx_builders import export_torch, image_classifier

ALL_PROVIDERS = [TENSORRT, CUDA, CPU]
PROFILE = InputProfile("image", (1, 3, 224, 224), (32, 3, 224, 224))
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}


def test_provider_options_come_from_the_server_settings():
    settings = Settings.from_env({
        "ONNXPLAIN_CUDA_DEVICE_ID": "1", "ONNXPLAIN_CUDNN_CONV_ALGO_SEARCH": "heuristic",
        "ONNXPLAIN_CUDA_ARENA_EXTEND_STRATEGY": "kNextPowerOfTwo", "ONNXPLAIN_CUDA_COPY_IN_DEFAULT_STREAM": "false",
        "ONNXPLAIN_TENSORRT_FP16": "true", "ONNXPLAIN_TENSORRT_CACHE_DIR": "/srv/onnxplain/trt",
        "ONNXPLAIN_VERIFY_DEVICE": "cpu"})
    execution = settings.execution
    assert execution.cudnn_conv_algo_search is ConvAlgoSearch.HEURISTIC
    assert execution.arena_extend_strategy is ArenaExtend.NEXT_POWER_OF_TWO
    assert execution.verify_device is DevicePreference.CPU
    chosen = provider_options(execution, PROFILE, available=ALL_PROVIDERS, devices=2, tensorrt_usable=True)
    assert chosen == [
        (TENSORRT, {"device_id": "1", "trt_fp16_enable": "True", "trt_engine_cache_enable": "True",
                    "trt_engine_cache_path": "/srv/onnxplain/trt", "trt_timing_cache_enable": "True",
                    "trt_timing_cache_path": "/srv/onnxplain/trt",
                    "trt_profile_min_shapes": "image:1x3x224x224", "trt_profile_opt_shapes": "image:32x3x224x224",
                    "trt_profile_max_shapes": "image:32x3x224x224"}),
        (CUDA, {"device_id": "1", "cudnn_conv_algo_search": "HEURISTIC", "arena_extend_strategy": "kNextPowerOfTwo",
                "do_copy_in_default_stream": "0"}),
        (CPU, {}),
    ]


def test_defaults_and_when_each_provider_is_left_out():
    defaults = ExecutionSettings()
    cuda = (CUDA, {"device_id": "0", "cudnn_conv_algo_search": "EXHAUSTIVE",
                   "arena_extend_strategy": "kSameAsRequested", "do_copy_in_default_stream": "1"})
    # TensorRT's library missing, or no known input shapes, or switched off: CUDA then CPU.
    assert provider_options(defaults, PROFILE, available=ALL_PROVIDERS, devices=1, tensorrt_usable=False) == [
        cuda, (CPU, {})]
    assert provider_options(defaults, None, available=ALL_PROVIDERS, devices=1, tensorrt_usable=True) == [
        cuda, (CPU, {})]
    assert provider_options(ExecutionSettings(tensorrt=False), PROFILE, available=ALL_PROVIDERS, devices=1,
                            tensorrt_usable=True) == [cuda, (CPU, {})]
    # TensorRT's default cache is the server user's, fp16 off.
    (name, trt), *_ = provider_options(defaults, PROFILE, available=ALL_PROVIDERS, devices=1, tensorrt_usable=True)
    assert name == TENSORRT and trt["trt_fp16_enable"] == "False"
    assert trt["trt_engine_cache_path"].endswith("onnxplain/tensorrt")
    # No device (or not the one configured), or the CPU asked for: CPU only.
    assert provider_options(defaults, PROFILE, available=ALL_PROVIDERS, devices=0) == [(CPU, {})]
    assert provider_options(ExecutionSettings(device_id=1), PROFILE, available=ALL_PROVIDERS, devices=1) == [(CPU, {})]
    assert provider_options(ExecutionSettings(device=DevicePreference.CPU), PROFILE, available=ALL_PROVIDERS,
                            devices=4, tensorrt_usable=True) == [(CPU, {})]


@pytest.mark.skipif(cuda_device_count() > 0, reason="the CPU fallback of a machine without a CUDA device")
def test_without_a_device_cuda_falls_back_to_the_cpu_and_says_so(tmp_path):
    """No CUDA device: whatever onnxruntime lists as available, the session is granted the CPU, reports it, and
    runs unbound."""
    weights = np.random.default_rng(0).normal(size=(8 * 8 * 3, 4)).astype(np.float32)
    loaded = load_model("m", image_classifier(weights, (8, 8, 3)).SerializeToString(), source="test",
                        device=ExecutionSettings(device=DevicePreference.CUDA, tensorrt_cache_dir=tmp_path / "trt"))
    assert loaded.info.provider == CPU
    assert loaded._session.bound is False
    assert not (tmp_path / "trt").exists()  # TensorRT was not asked for, so nothing was written
    assert loaded.info.precision == "fp32" and loaded.info.precision_reason == ""


def test_bound_runs_match_plain_runs(tmp_path):
    """The I/O-binding path (what CUDA uses) on the CPU provider: the same outputs as a separate plain session,
    over more shapes than a thread keeps buffers for, and with a buffer reused for new values."""
    import torch

    torch.manual_seed(0)
    path = export_torch(_small_cnn(), tmp_path / "cnn.onnx", (1, 3, 12, 12))
    reference = ort.InferenceSession(str(path), providers=[CPU])
    runner = SessionRunner(ort.InferenceSession(str(path), providers=[CPU]), bound=True)
    rng = np.random.default_rng(1)
    for batch in [3, 1, 2, 4, 5, 6, 3, 3]:  # 6 shapes > BUFFERS_PER_THREAD: the oldest are dropped and remade
        x = rng.normal(size=(batch, 3, 12, 12)).astype(np.float32)
        (ours,) = runner.run(["logits"], {"image": x})
        (expected,) = reference.run(["logits"], {"image": x})
        np.testing.assert_array_equal(ours, expected)
    assert len(runner._local.buffers) == BUFFERS_PER_THREAD


def _small_cnn():
    import torch

    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                               torch.nn.Linear(4 * 10 * 10, 5)).eval()


def test_check_measures_error_against_the_scores_range():
    reference = np.array([[0.0, 10.0, 2.0], [5.0, 4.99, 1.0]])
    shifted = reference + np.array([[0.0, 0.05, 0.0], [0.0, 0.0, 0.0]])
    result = half_precision.check(reference, shifted)
    assert result.relative_error == pytest.approx(0.05 / 10.0) and result.passed
    # A near tie (5.0 vs 4.99: a lead of 0.1% of the range) may flip within the tolerance.
    flipped = reference.copy()
    flipped[1, 1] = 5.01
    assert half_precision.check(reference, flipped).top1_agreement == 0.5
    assert half_precision.check(reference, flipped).passed
    # A clear lead lost fails even with a small error elsewhere; infinities fail.
    assert not half_precision.check(reference, reference[:, ::-1]).passed
    overflowed = half_precision.check(reference, np.where(reference > 9, np.inf, reference))
    assert not overflowed.passed and "NaN or infinite" in overflowed.describe()


def test_fp16_resnet18_is_served_within_tolerance(tmp_path):
    """A torchvision resnet18 (weights=None, 64 x 64) served in fp16: its scores are within the stated tolerance
    of an onnxruntime session on the original graph, and they are not the fp32 scores."""
    import torch
    import torchvision

    torch.manual_seed(0)
    path = export_torch(torchvision.models.resnet18(weights=None, num_classes=10), tmp_path / "r18.onnx",
                        (1, 3, 64, 64))
    loaded = load_model("r18", path.read_bytes(), source="test",
                        overrides={"precision": "fp16", "preprocessing": IMAGENET})
    assert (loaded.info.precision, loaded.info.precision_reason) == ("fp16", "")
    pixels = np.random.default_rng(3).random((6, 64, 64, 3), dtype=np.float32)
    served = loaded.predict(pixels)
    mean, std = np.array(IMAGENET["mean"], np.float32), np.array(IMAGENET["std"], np.float32)
    inputs = ((pixels - mean) / std).transpose(0, 3, 1, 2).astype(np.float32)
    (expected,) = ort.InferenceSession(str(path), providers=[CPU]).run(["logits"], {"image": inputs})
    scale = expected.max() - expected.min()
    assert np.abs(served - expected).max() <= half_precision.RELATIVE_TOLERANCE * scale
    assert np.abs(served - expected).max() > 0  # fp16 rounding shows: the converted graph is what runs
    np.testing.assert_array_equal(served.argmax(axis=1), expected.argmax(axis=1))


def test_fp16_overflow_falls_back_to_fp32_with_the_reason():
    """A MatMul weight beyond fp16's largest value (65504): the converter clamps it, the fp16 scores miss the fp32
    ones by far more than the tolerance, so fp32 is served and the reason names the field. (A MatMul whose
    *activations* pass 65504 overflows to infinity on CUDA, failing the same check as non-finite; onnxruntime's
    CPU provider has no fp16 MatMul and runs it in fp32 between casts it then removes, so it cannot show that.)"""
    weights = np.random.default_rng(0).normal(size=(8 * 8 * 3, 4)).astype(np.float32)
    weights[0, 0] = 2e5
    model = image_classifier(weights, (8, 8, 3))
    loaded = load_model("big", model.SerializeToString(), source="test", overrides={"precision": "fp16"})
    assert loaded.info.precision == "fp32"
    assert loaded.info.precision_reason.startswith("overrides.precision fp16 not served: fp16 scores differ from fp32")
    pixels = np.random.default_rng(1).random((3, 8, 8, 3), dtype=np.float32)
    expected = pixels.transpose(0, 3, 1, 2).reshape(3, -1).astype(np.float64) @ weights.astype(np.float64)
    np.testing.assert_allclose(loaded.predict(pixels), expected, rtol=1e-5, atol=1e-3)


def test_precision_key_is_checked():
    weights = np.ones((8 * 8 * 3, 2), np.float32)
    with pytest.raises(InvalidArgument) as refused:
        load_model("m", image_classifier(weights, (8, 8, 3)).SerializeToString(), source="test",
                   overrides={"precision": "int4"})
    assert refused.value.field == "overrides.precision"


def test_fp16_of_a_graph_without_float32_input_is_refused():
    """A uint8-input graph (its float conversion inside): fp16 conversion is for float32 inputs, so the key is
    refused with its field, not silently ignored."""
    from onnx import TensorProto, helper

    model = image_classifier(np.ones((8 * 8 * 3, 2), np.float32), (8, 8, 3))
    model.graph.input[0].type.tensor_type.elem_type = TensorProto.UINT8
    model.graph.node[0].input[0] = "as_float"
    model.graph.node.insert(0, helper.make_node("Cast", ["image"], ["as_float"], to=TensorProto.FLOAT))
    assert load_model("m", model.SerializeToString(), source="test").info.precision == "fp32"  # it loads as is
    with pytest.raises(InvalidArgument, match="takes UINT8") as refused:
        load_model("m", model.SerializeToString(), source="test", overrides={"precision": "fp16"})
    assert refused.value.field == "overrides.precision"


def test_verification_device_follows_the_setting():
    import torch

    from service.verify.device import torch_device

    assert torch_device("cpu") == "cpu"
    assert torch_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert torch_device("cuda", device_id=torch.cuda.device_count()) == "cpu"  # no such device: the CPU
