"""The conformance matrix's models (issue 11): real torchvision architectures and constructed exporter variants.

Each case is built once per run by ``ConformanceModels.get`` into a directory (the server's models directory),
and comes with the overrides to load it with and a *reference*: the exporter's own forward pass (the PyTorch
module, with the exporter's input convention), to compare the server's predictions against. Everything is
random-initialised (``weights=None``, ``torch.manual_seed(0)``): nothing downloads.

Sizes are reduced so that the whole matrix runs in minutes on two CPU cores: torchvision CNNs keep their full
architecture but run at 32 x 32 (every one of them ends in adaptive pooling) with 10 classes; the transformers
and ConvNeXt use the same classes at a reduced configuration, named in ``Case.source``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

CLASSES = 10
SIZE = 32  # every case's input side: the CNNs' adaptive pooling takes it, and 8 x 8 patches tile it
IMAGENET = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
# Caffe's convention (old-zoo squeezenet1.0): BGR pixels in 0..255 minus a per-channel mean, no std.
CAFFE_MEAN_BGR = [104.0, 117.0, 123.0]

Reference = Callable[[np.ndarray], np.ndarray]  # pixels (N, H, W, 3) float32 in [0, 1] -> scores (N, classes)


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float  # per unit of the scores' scale (their largest magnitude, at least 1)
    why: str

    def absolute(self, expected: np.ndarray) -> float:
        """``atol`` for these scores: a sum taken in another order differs by a few ulps of its largest partial
        sums, which grow with the activations, so a small logit of a deep net carries the error of its large
        neighbours (regnet_y_400mf: a logit of 0.04 next to 6.7 was once off by 1.5e-4, over a fixed 1e-4)."""
        return self.atol * max(1.0, float(np.abs(expected).max()))


EXACT = Tolerance(1e-4, 1e-4, "same float32 arithmetic up to the order of sums")
# float16 keeps 11 significant bits: every weight and the input carry a relative rounding of 2^-11 ~ 5e-4, which a
# few layers of sums grow (measured: max error 4.5e-4 on logits of standard deviation 1, see _calibrate).
FLOAT16 = Tolerance(1e-2, 2e-3, "float16 weights and I/O: 11-bit mantissas, ~5e-4 relative rounding per value")
# int8 QDQ rounds every activation to its quantisation step (range/255) and the errors add up over the layers; the
# reference is the float32 network the quantiser started from (measured: max error 9e-3 on logits of standard
# deviation 1, about one output step).
INT8_QDQ = Tolerance(0.0, 3e-2, "int8 QDQ: activations rounded to steps of range/255 at every layer")


@dataclass(frozen=True)
class Case:
    name: str
    source: str  # the exporter / architecture and the configuration it was built with
    path: Path  # inside the server's models directory
    overrides: dict[str, Any]  # ModelOverrides in JSON form, as LoadModel takes them
    reference: Reference
    height: int = SIZE
    width: int = SIZE
    tolerance: Tolerance = EXACT
    notes: str = ""


@dataclass
class ConformanceModels:
    """Builds each case on first use into ``directory`` and keeps it for the rest of the run."""

    directory: Path
    _built: dict[str, Case] = field(default_factory=dict)

    def get(self, name: str) -> Case:
        if name not in self._built:
            self._built[name] = BUILDERS[name](self.directory / f"{name}.onnx")
        return self._built[name]


# --- helpers ----------------------------------------------------------------------------------------------------

def _torch():
    import torch

    return torch


def _export(module, path: Path, shape: tuple[int, ...], *, opset: int = 17, dynamic_axes: dict | None = None,
            batch_axis: bool = True) -> Path:
    """TorchScript export (deterministic, fast for these sizes) with input "image" and output "scores"."""
    torch = _torch()
    module.eval()
    axes = dynamic_axes if dynamic_axes is not None else (
        {"image": {0: "batch"}, "scores": {0: "batch"}} if batch_axis else None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, torch.zeros(shape), str(path), dynamo=False, opset_version=opset,
                          input_names=["image"], output_names=["scores"], dynamic_axes=axes)
    return path


def _prepare(pixels: np.ndarray, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0), *, scale: float = 1.0,
             bgr: bool = False, channels_last: bool = False):
    """Pixels (N, H, W, 3) in [0, 1] as the exporter's module takes them: channel order, scale, (x - mean) / std,
    layout."""
    torch = _torch()
    values = pixels[..., ::-1] if bgr else pixels
    values = (values.astype(np.float32) * scale - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    if not channels_last:
        values = values.transpose(0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(values, dtype=np.float32))


def _torch_reference(module, **convention) -> Reference:
    """The module's scores on pixels prepared the exporter's way (``_prepare``'s keywords)."""
    torch = _torch()

    def reference(pixels: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            scores = module(_prepare(pixels, **convention)).numpy()
        return scores.reshape(len(pixels), -1)  # a [N, C, 1, 1] head compares as [N, C]

    return reference


def _calibrate(module, **convention):
    """Give a random-initialised network the activation scales of a trained one, so that its scores carry
    information and a tolerance of 1e-4 means something.

    Random init leaves eval-mode BatchNorm with running statistics (0, 1) that do not match the activations:
    efficientnet_b0's logits come out near 1e-14 and mobilenet_v3_small's near 1e-10; torchvision also
    zero-initialises ViT's head, whose scores are then constant. So: re-estimate every BatchNorm's statistics on
    16 random images (cumulative average), give a zero last layer random weights, then shift and scale the last Linear
    or Conv so that its outputs (the logits, before any Sigmoid or Softmax) have mean 0 and standard deviation 1."""
    torch = _torch()
    nn = torch.nn
    inputs = _prepare(np.random.default_rng(3).random((16, SIZE, SIZE, 3), dtype=np.float32), **convention)
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
        module.train()
        with torch.no_grad():
            module(inputs)
    module.eval()
    last = [m for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d))][-1]
    captured = []
    hook = last.register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    with torch.no_grad():
        if not last.weight.any():
            nn.init.normal_(last.weight, std=0.02)
        module(inputs)
        outputs = captured[-1]
        spread = outputs.std()
        last.weight /= spread
        if last.bias is not None:  # centred too: a saturated Sigmoid head would hide every perturbation
            last.bias -= outputs.mean(dim=[d for d in range(outputs.dim()) if d != 1])
            last.bias /= spread
    hook.remove()
    return module


def _seeded(factory: Callable[[], Any], **convention):
    """The module ``factory`` builds under seed 0, calibrated (``_calibrate``) for inputs of ``convention``."""
    torch = _torch()
    torch.manual_seed(0)
    return _calibrate(factory(), **convention)


# --- torchvision ------------------------------------------------------------------------------------------------

def _torchvision(architecture: str) -> Callable[[Path], Case]:
    def build(path: Path) -> Case:
        import torchvision

        factory = getattr(torchvision.models, architecture)
        net = _seeded(lambda: factory(weights=None, num_classes=CLASSES), **IMAGENET)
        _export(net, path, (1, 3, SIZE, SIZE))
        return Case(path.stem, f"torchvision {architecture}(weights=None, num_classes={CLASSES}) at {SIZE}x{SIZE}",
                    path, {"preprocessing": IMAGENET}, _torch_reference(net, **IMAGENET))

    return build


def _convnext(path: Path) -> Case:
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    # convnext_tiny is ConvNeXt([96->192 x3, 192->384 x3, 384->768 x9, 768 x3]); same class, two small stages.
    net = _seeded(lambda: ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)], num_classes=CLASSES),
                   **IMAGENET)
    _export(net, path, (1, 3, SIZE, SIZE))
    return Case(path.stem, "torchvision ConvNeXt (convnext_tiny's class) block_setting=[16->32 x1, 32 x1], "
                f"num_classes={CLASSES}, {SIZE}x{SIZE}", path, {"preprocessing": IMAGENET},
                _torch_reference(net, **IMAGENET))


def _vit(path: Path) -> Case:
    from torchvision.models import VisionTransformer

    net = _seeded(lambda: VisionTransformer(image_size=SIZE, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                                            mlp_dim=64, num_classes=CLASSES), **IMAGENET)
    _export(net, path, (1, 3, SIZE, SIZE))
    return Case(path.stem, "torchvision VisionTransformer (vit_b_16's class) image_size=32, patch_size=8, "
                f"num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64, num_classes={CLASSES}",
                path, {"preprocessing": IMAGENET}, _torch_reference(net, **IMAGENET))


def _swin(path: Path) -> Case:
    from torchvision.models import SwinTransformer

    net = _seeded(lambda: SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[1, 1], num_heads=[1, 2],
                                          window_size=[4, 4], num_classes=CLASSES), **IMAGENET)
    _export(net, path, (1, 3, SIZE, SIZE))
    return Case(path.stem, "torchvision SwinTransformer (swin_t's class) patch_size=4, embed_dim=16, depths=[1,1], "
                f"num_heads=[1,2], window_size=4, num_classes={CLASSES}, {SIZE}x{SIZE}",
                path, {"preprocessing": IMAGENET}, _torch_reference(net, **IMAGENET))


# --- constructed exporter variants ------------------------------------------------------------------------------

def _tiny_cnn(outputs: int = CLASSES, *, head: str = "linear", convention: dict | None = None):
    """conv-relu-pool-conv-relu-GAP and a head: "linear" (logits), "sigmoid" (per-class probabilities), or
    "conv_softmax" (a 1x1 Conv and a channel Softmax left at [N, C, 1, 1], as Caffe2 exports did)."""
    torch = _torch()
    nn = torch.nn

    class TinyCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
            self.head = nn.Conv2d(16, outputs, 1) if head == "conv_softmax" else nn.Linear(16, outputs)

        def forward(self, x):
            pooled = self.features(x)
            if head == "conv_softmax":
                return torch.softmax(self.head(pooled), dim=1)
            scores = self.head(torch.flatten(pooled, 1))
            return torch.sigmoid(scores) if head == "sigmoid" else scores

    return _seeded(TinyCNN, **(IMAGENET if convention is None else convention))


TINY = "TinyCNN (conv8-relu-maxpool-conv16-relu-GAP-linear)"


def _nhwc(path: Path) -> Case:
    """tf2onnx / Keras without --inputs-as-nchw: NHWC input in 0..255, a Rescaling to [-1, 1] inside the graph."""
    torch = _torch()
    net = _tiny_cnn(convention={"mean": [1.0] * 3, "std": [1.0] * 3, "scale": 2.0})  # x/127.5-1 of 0..255

    class KerasStyle(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net((x / 127.5 - 1.0).permute(0, 3, 1, 2))

    wrapped = KerasStyle().eval()
    _export(wrapped, path, (1, SIZE, SIZE, 3))
    return Case(path.stem, f"{TINY}, NHWC input [N,{SIZE},{SIZE},3] in 0..255, Rescaling x/127.5-1 in the graph",
                path, {"preprocessing": {"pixel_range": "PIXEL_RANGE_0_255"}},
                _torch_reference(wrapped, scale=255.0, channels_last=True))


def _fixed_batch(path: Path) -> Case:
    net = _tiny_cnn()
    _export(net, path, (4, 3, SIZE, SIZE), batch_axis=False)
    return Case(path.stem, f"{TINY}, PyTorch export without dynamic_axes at batch 4 ([4,3,{SIZE},{SIZE}])",
                path, {"preprocessing": IMAGENET}, _torch_reference(net, **IMAGENET))


def _constant_weights(path: Path) -> Case:
    """Paddle2ONNX style: every parameter is a Constant node, the graph has no initializer."""
    net = _tiny_cnn()
    _export(net, path, (1, 3, SIZE, SIZE))
    model = onnx.load(str(path))
    constants = [helper.make_node("Constant", [], [init.name], value=init) for init in model.graph.initializer]
    nodes = constants + list(model.graph.node)
    del model.graph.initializer[:]
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Case(path.stem, f"{TINY}, every initializer turned into a Constant node (Paddle2ONNX)", path,
                {"preprocessing": IMAGENET}, _torch_reference(net, **IMAGENET))


def _caffe2_ir3(path: Path) -> Case:
    """Old model-zoo style: IR 3, opset 9, fixed batch 1, initializers listed among the graph inputs, a Softmax
    over the channels of a [1, C, 1, 1] tensor as the output, Caffe preprocessing (BGR, 0..255, mean, no std)."""
    net = _tiny_cnn(head="conv_softmax", convention={"mean": CAFFE_MEAN_BGR, "scale": 255.0, "bgr": True})
    torch = _torch()
    logits = torch.nn.Sequential(net.features, net.head).eval()  # the Softmax is written by hand below
    _export(logits, path, (1, 3, SIZE, SIZE), opset=9, batch_axis=False)
    model = onnx.load(str(path))
    graph = model.graph
    (output,) = graph.output
    graph.node.append(helper.make_node("Softmax", [output.name], ["prob"], axis=1))  # opset 9: 2-D [1, C*1*1]
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("prob", TensorProto.FLOAT, [1, CLASSES, 1, 1]))
    graph.input.extend(helper.make_tensor_value_info(init.name, init.data_type, init.dims)
                       for init in graph.initializer)
    del graph.value_info[:]
    model.ir_version = 3
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    preprocessing = {"channel_order": "CHANNEL_ORDER_BGR", "pixel_range": "PIXEL_RANGE_0_255",
                     "mean": CAFFE_MEAN_BGR, "std": [1.0, 1.0, 1.0]}
    return Case(path.stem, f"{TINY} with a 1x1-Conv head; IR 3, opset 9, fixed [1,3,{SIZE},{SIZE}], initializers "
                f"in graph.input, Softmax output [1,{CLASSES},1,1], Caffe BGR 0..255 mean (104,117,123)",
                path, {"preprocessing": preprocessing},
                _torch_reference(net, mean=CAFFE_MEAN_BGR, scale=255.0, bgr=True))


def _sigmoid(outputs: int, what: str) -> Callable[[Path], Case]:
    def build(path: Path) -> Case:
        net = _tiny_cnn(outputs, head="sigmoid")
        _export(net, path, (1, 3, SIZE, SIZE))
        reference = _torch_reference(net, **IMAGENET)
        if outputs == 1:  # a binary head is served as two classes, negative and positive: [1 - p, p]
            probability = reference
            reference = lambda pixels: np.concatenate([1 - probability(pixels), probability(pixels)], axis=1)  # noqa: E731
        return Case(path.stem, f"{TINY} with a Sigmoid head [N,{outputs}] ({what})", path,
                    {"preprocessing": IMAGENET}, reference)

    return build


def _dynamic_hw(path: Path) -> Case:
    net = _tiny_cnn()
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "scores": {0: "batch"}}
    _export(net, path, (1, 3, SIZE, SIZE), dynamic_axes=axes)
    return Case(path.stem, f"{TINY}, input [N,3,height,width] (no size in the graph or a config)", path,
                {"preprocessing": IMAGENET}, _torch_reference(net, **IMAGENET),
                notes=f"the reference runs at the image's own size, {SIZE}x{SIZE}")


def _int8_qdq(path: Path) -> Case:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    net = _tiny_cnn()
    float_path = path.with_name(f"{path.stem}.float.onnx.src")  # not *.onnx: the server must not discover it
    _export(net, float_path, (1, 3, SIZE, SIZE))

    class Calibration(CalibrationDataReader):
        def __init__(self) -> None:
            # Images like the ones served (not the test's own: another seed); uniform noise would set activation
            # ranges that the served images leave, and their scores would clip to constants.
            pixels = sample_images(count=16, seed=11).astype(np.float32) / 255
            normalised = (pixels - np.asarray(IMAGENET["mean"], np.float32)) / np.asarray(IMAGENET["std"], np.float32)
            self._feeds = iter([{"image": image[None].transpose(0, 3, 1, 2).copy()} for image in normalised])

        def get_next(self):
            return next(self._feeds, None)

    quantize_static(str(float_path), str(path), Calibration(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return Case(path.stem, f"{TINY}, onnxruntime quantize_static QDQ (uint8 activations, int8 weights, "
                "16 calibration images)", path, {"preprocessing": IMAGENET}, _torch_reference(net, **IMAGENET),
                tolerance=INT8_QDQ, notes="reference: the float32 network before quantisation")


def _float16(path: Path) -> Case:
    """Float16 throughout, I/O included (what onnxconverter_common's convert_float_to_float16 gives without
    keep_io_types): initializers cast to float16, the input and output declared float16."""
    net = _tiny_cnn()
    _export(net, path, (1, 3, SIZE, SIZE))
    model = onnx.load(str(path))
    graph = model.graph
    for init in graph.initializer:
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name))
    for value in (*graph.input, *graph.output):
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
    del graph.value_info[:]
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return Case(path.stem, f"{TINY}, initializers and I/O cast to float16", path, {"preprocessing": IMAGENET},
                _torch_reference(net, **IMAGENET), tolerance=FLOAT16,
                notes="reference: the float32 network before the cast")


BUILDERS: dict[str, Callable[[Path], Case]] = {
    "resnet18": _torchvision("resnet18"),
    "resnet50": _torchvision("resnet50"),
    "mobilenet_v3_small": _torchvision("mobilenet_v3_small"),
    "efficientnet_b0": _torchvision("efficientnet_b0"),
    "regnet_y_400mf": _torchvision("regnet_y_400mf"),
    "squeezenet1_1": _torchvision("squeezenet1_1"),
    "densenet121": _torchvision("densenet121"),
    "convnext_reduced": _convnext,
    "vit_reduced": _vit,
    "swin_reduced": _swin,
    "nhwc_keras": _nhwc,
    "fixed_batch4": _fixed_batch,
    "constant_weights": _constant_weights,
    "caffe2_ir3_opset9": _caffe2_ir3,
    "sigmoid_binary": _sigmoid(1, "binary"),
    "sigmoid_multilabel": _sigmoid(5, "multi-label"),
    "dynamic_hw": _dynamic_hw,
    "int8_qdq": _int8_qdq,
    "float16_io": _float16,
}
CASES = tuple(BUILDERS)


def sample_images(height: int = SIZE, width: int = SIZE, count: int = 3, seed: int = 7) -> np.ndarray:
    """``count`` distinct uint8 RGB images at the model's size: smooth blobs on noise, so that every method sees
    structure (a constant image gives constant perturbations)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:height, 0:width] / max(height, width)
    images = []
    for index in range(count):
        centre = rng.random(2)
        blob = np.exp(-((rows - centre[0]) ** 2 + (cols - centre[1]) ** 2) / 0.05)[..., None]
        colour = rng.random(3)
        noise = rng.random((height, width, 3)) * 0.3
        images.append(np.clip(blob * colour + noise + 0.1 * index, 0, 1))
    return np.rint(np.stack(images) * 255).astype(np.uint8)


# --- running a case through the server (shared by tests/test_conformance.py and bench/conformance.py) --------

# Every black-box method at a tiny setting for 32 x 32 images: a few dozen forward passes each.
BLACK_BOX_PARAMS: dict[str, dict[str, Any]] = {
    "occlusion": {"window": [16], "stride": [16]},
    "rise": {"num_masks": 8, "grid_size": 2},
    "sobol": {"grid_size": 2, "num_designs": 2},
    "hsic": {"grid_size": 2, "num_designs": 8},
    "lime": {"num_samples": 16, "segmentation": "SEGMENTATION_SLIC", "n_segments": 4},
    "kernel_shap": {"num_samples": 16, "segmentation": "SEGMENTATION_SLIC", "n_segments": 4},
    "wcam": {"num_designs": 2, "levels": 1, "sufficient_image": False},
}
# EVA in the test: 4 groups, a fixed radius (no calibration search), IBP: the cheapest complete run.
EVA_QUICK = {"grid_size": 2, "epsilon": 1 / 255, "bound_method": "BOUND_METHOD_IBP"}
# Codes that mean the server broke rather than refused: never acceptable anywhere in the matrix.
BROKEN_CODES = ("INTERNAL", "UNKNOWN")


@dataclass(frozen=True)
class Outcome:
    """What one call gave: OK, or the status code's name and the server's message."""

    code: str
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "OK"


def attempt(call: Callable[[], Any]) -> tuple[Any, Outcome]:
    """Run one RPC: (its result, OK) or (None, the refusal)."""
    import grpc

    try:
        return call(), Outcome("OK")
    except grpc.RpcError as error:
        return None, Outcome(error.code().name, error.details() or "")


def conformance_server(directory: Path):
    """An in-process server over ``directory`` that loads nothing at start: each case is loaded by path with its
    own overrides (resnet50's 94 MB would not fit an upload under the 64 MiB message limit)."""
    from service.api.server import EmbeddedServer
    from service.config import Settings

    return EmbeddedServer(Settings(models_dir=directory, data_dir=directory, workers=2, max_queue=8, preload=False))


def load_case(client, case: Case) -> tuple[Any, Outcome]:
    return attempt(lambda: client.load_model(case.path.name, name=case.name, overrides=case.overrides, replace=True))


def predict_error(client, case: Case, images: np.ndarray) -> tuple[float | None, bool, Outcome, np.ndarray | None]:
    """Largest |server - reference| over ``images`` (uint8), whether every score is within the case's tolerance
    (numpy's allclose: atol scaled to the scores + rtol * |reference|), the outcome, and the server's scores."""
    predictions, outcome = attempt(lambda: client.predict(case.name, list(images), top_k=1))
    if not outcome.ok:
        return None, False, outcome, None
    ours = np.stack([p.scores for p in predictions])
    expected = case.reference(images.astype(np.float32) / 255)
    if ours.shape != expected.shape:
        return float("inf"), False, outcome, ours
    within = bool(np.allclose(ours, expected, rtol=case.tolerance.rtol, atol=case.tolerance.absolute(expected)))
    return float(np.abs(ours - expected).max()), within, outcome, ours


def explain_map(client, case: Case, image: np.ndarray, method: str) -> tuple[np.ndarray | None, Outcome]:
    explanation, outcome = attempt(lambda: client.explain(case.name, image, method, BLACK_BOX_PARAMS[method], seed=0))
    return (None if explanation is None else explanation.map), outcome


@dataclass(frozen=True)
class EvaMode:
    """EVA's answer on a model: "verified" (the whole model bounded), "hybrid" (``detail``: the cut layer) or
    "refused" (``detail``: the server's reason, ``code`` its status)."""

    kind: str
    detail: str = ""
    code: str = "OK"

    def __str__(self) -> str:
        return {"verified": "verified", "hybrid": f"hybrid at {self.detail}"}.get(
            self.kind, f"refused {self.code}: {self.detail}")


def eva_mode(client, case: Case, image: np.ndarray, params: dict[str, Any] = EVA_QUICK,
             timeout: float | None = None) -> EvaMode:
    explanation, outcome = attempt(lambda: client.explain(case.name, image, "eva", params, seed=0, timeout=timeout))
    if not outcome.ok:
        return EvaMode("refused", outcome.message, outcome.code)
    details = explanation.response.attributions[0].eva
    if details.certified:
        return EvaMode("verified")
    return EvaMode("hybrid", details.split_layer)
