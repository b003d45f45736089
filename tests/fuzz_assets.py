"""The hostile bytes the fuzzer (tests/fuzzing.py) draws from: hand-written and corrupted PNGs, tensors of impossible
shapes or mismatched bytes, junk and subtly broken ONNX uploads, and the server-side files the Audit cases use."""

from __future__ import annotations

import io
import json
import struct
import sys
import zlib
from functools import cached_property
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper
from onnxplain_client._proto.xai.v1 import tensor_pb2
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BUNDLED_MODEL = "shapes"
# The Audit RPC's dataset, written under the server's data directory by ``write_dataset``, and an audit folder
# planted there as a symbolic link to a folder outside it.
DATASET = "fuzzset/manifest.csv"
PLANTED_AUDIT = "planted"



def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_bytes(width: int, height: int, *, color_type: int = 2, bit_depth: int = 8, rows: bytes | None = None,
              level: int = 9) -> bytes:
    """A PNG written by hand (so that it can claim any size): ``rows`` is the filtered scanline data, by default
    every row filter 0 and all bytes zero, which zlib squeezes to almost nothing."""
    channels = {0: 1, 2: 3, 4: 2, 6: 4}[color_type]
    if rows is None:
        compressor = zlib.compressobj(level)
        row = b"\x00" * (1 + width * channels * bit_depth // 8)
        # Streamed row by row: an 8000 x 8000 image never exists uncompressed here.
        blocks = [compressor.compress(row) for _ in range(height)]
        idat = b"".join(blocks) + compressor.flush()
    else:
        idat = zlib.compress(rows, level)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def _encode(array: np.ndarray, format: str, **options) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=format, **options)
    return buffer.getvalue()


def make_tensor(datatype: int, shape: list[int], raw: bytes) -> tensor_pb2.Tensor:
    return tensor_pb2.Tensor(datatype=datatype, shape=shape, raw_data=raw)


def pooled_classifier(*, input_dims=("batch", 3, 64, 64), classes: int = 5, op: str = "GlobalAveragePool",
                      metadata: dict[str, str] | None = None, external: str | None = None,
                      input_type: int = TensorProto.FLOAT, opset: int = 17, ir_version: int = 8) -> bytes:
    """scores = mean over pixels per channel @ weights: a valid tiny image classifier, or a subtly broken one."""
    weights = np.linspace(-1, 1, 3 * classes, dtype=np.float32).reshape(3, classes)
    initializer = numpy_helper.from_array(weights, "weights")
    if external is not None:  # the weights "live" in a file the uploader names
        initializer.ClearField("raw_data")
        initializer.data_location = TensorProto.EXTERNAL
        for key, value in (("location", external), ("offset", "0"), ("length", str(weights.nbytes))):
            initializer.external_data.add(key=key, value=value)
    nodes = [helper.make_node(op, ["image"], ["pooled"]), helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "weights"], ["logits"])]
    graph = helper.make_graph(nodes, "pooled", [helper.make_tensor_value_info("image", input_type, list(input_dims))],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
                              initializer=[initializer])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    return model.SerializeToString()


class Assets:
    """The bytes every case draws from: sample images, hostile images, tensors and ONNX models."""

    def __init__(self, root: Path = ROOT) -> None:
        samples = root / "models" / BUNDLED_MODEL / "samples"
        self.png = (samples / "sample_00.png").read_bytes()
        self.mask_png = (samples / "sample_00.mask.png").read_bytes()
        self.pixels = np.asarray(Image.open(io.BytesIO(self.png)).convert("RGB"))
        self.attribution = np.random.default_rng(0).random((64, 64), dtype=np.float32)
        self.upload = pooled_classifier()

    @cached_property
    def hostile_pngs(self) -> list[tuple[str, bytes]]:
        png = self.png
        iend = png.rindex(b"IEND")
        ihdr_crc = png.index(b"IHDR") + 4 + 13
        gray16 = _encode(np.full((8, 8), 40000, np.uint16), "PNG")
        # The image data in two IDAT chunks, the second with a type that is no chunk type: Pillow reads it while
        # decoding and raises SyntaxError (issue 10 found it as a corrupted IEND).
        rows = b"".join(b"\x00" + row.tobytes() for row in self.pixels)
        data = zlib.compress(rows)
        ihdr = _chunk(b"IHDR", struct.pack(">IIBBBBB", 64, 64, 8, 2, 0, 0, 0))
        broken_chunk = (PNG_SIGNATURE + ihdr + _chunk(b"IDAT", data[:len(data) // 2])
                        + _chunk(b"\x01DAT", data[len(data) // 2:]) + _chunk(b"IEND", b""))
        return [
            ("empty", b""),
            ("signature only", PNG_SIGNATURE),
            ("bad IEND CRC", png[:iend + 4] + b"\xde\xad\xbe\xef"),
            ("chunk after IDAT not a chunk", broken_chunk),
            ("bad IHDR CRC", png[:ihdr_crc] + b"\x00\x00\x00\x00" + png[ihdr_crc + 4:]),
            ("truncated half", png[:len(png) // 2]),
            ("no IEND chunk", png[:iend - 4]),
            ("IEND chunk cut short", png[:iend + 2]),
            ("claims 100000x100000", png_bytes(100_000, 100_000, rows=b"\x00" * 16)),
            ("claims 2^31-1 x 1", png_bytes(2**31 - 1, 1, rows=b"\x00" * 16)),
            ("zero width", png_bytes(0, 64, rows=b"")),
            ("short IDAT", png_bytes(64, 64, rows=b"\x00" * 100)),
            ("bad bit depth", png_bytes(8, 8, bit_depth=3, rows=b"\x00" * 72)),
            ("1x1", png_bytes(1, 1)),
            ("1x64 strip", png_bytes(1, 64)),
            ("64x1 strip", png_bytes(64, 1)),
            ("RGBA", png_bytes(64, 64, color_type=6)),
            ("gray+alpha", png_bytes(64, 64, color_type=4)),
            ("16-bit gray", gray16),
            ("palette", self._palette()),
            ("JPEG", _encode(self.pixels, "JPEG")),
            ("JPEG truncated", _encode(self.pixels, "JPEG")[:200]),
            ("GIF", _encode(self.pixels[..., 0], "GIF")),
            ("BMP", _encode(self.pixels, "BMP")),
            ("TIFF", _encode(self.pixels, "TIFF")),
            ("text", b"GIF89a this is not an image"),
            ("mask PNG (1 channel)", self.mask_png),
        ]

    def _palette(self) -> bytes:
        buffer = io.BytesIO()
        Image.fromarray(self.pixels).convert("P").save(buffer, format="PNG")
        return buffer.getvalue()

    @cached_property
    def hostile_tensors(self) -> list[tuple[str, tensor_pb2.Tensor]]:
        u8, f16, f32, f64, i32 = (tensor_pb2.DATA_TYPE_UINT8, tensor_pb2.DATA_TYPE_FLOAT16,
                                  tensor_pb2.DATA_TYPE_FLOAT32, tensor_pb2.DATA_TYPE_FLOAT64,
                                  tensor_pb2.DATA_TYPE_INT32)
        nan = np.full((64, 64, 3), np.nan, np.float32).tobytes()
        return [
            ("[2**62, 4] empty", make_tensor(u8, [2**62, 4], b"")),
            ("[2**32, 2**32] empty (product overflows)", make_tensor(u8, [2**32, 2**32], b"")),
            ("[2**31, 2**31, 4] empty", make_tensor(f32, [2**31, 2**31, 4], b"")),
            ("FLOAT32 [0, 0, 3]", make_tensor(f32, [0, 0, 3], b"")),
            ("UINT8 [0, 0, 3]", make_tensor(u8, [0, 0, 3], b"")),
            ("[0, 5]", make_tensor(f32, [0, 5], b"")),
            ("[64, 0]", make_tensor(f32, [64, 0], b"")),
            ("[-1, 3]", make_tensor(f32, [-1, 3], b"")),
            ("[-64, -64, 3]", make_tensor(u8, [-64, -64, 3], b"\x00" * (64 * 64 * 3))),
            ("scalar", make_tensor(f32, [], struct.pack("<f", 0.5))),
            ("no shape, bytes", make_tensor(u8, [], b"\x00" * 12)),
            ("[64, 64, 3] one byte short", make_tensor(u8, [64, 64, 3], self.pixels.tobytes()[:-1])),
            ("[64, 64, 3] one byte over", make_tensor(u8, [64, 64, 3], self.pixels.tobytes() + b"\x00")),
            ("datatype 99", make_tensor(99, [64, 64, 3], self.pixels.tobytes())),
            ("datatype UNSPECIFIED", make_tensor(0, [64, 64, 3], self.pixels.tobytes())),
            ("FLOAT32 NaN image", make_tensor(f32, [64, 64, 3], nan)),
            ("FLOAT32 +inf map", make_tensor(f32, [64, 64], np.full((64, 64), np.inf, np.float32).tobytes())),
            ("FLOAT32 NaN map", make_tensor(f32, [64, 64], np.full((64, 64), np.nan, np.float32).tobytes())),
            ("FLOAT32 out of [0, 1]", make_tensor(f32, [64, 64, 3], np.full((64, 64, 3), 7, np.float32).tobytes())),
            ("FLOAT16 image", make_tensor(f16, [64, 64, 3], np.full((64, 64, 3), 0.5, np.float16).tobytes())),
            ("FLOAT64 map", make_tensor(f64, [64, 64], self.attribution.astype(np.float64).tobytes())),
            ("INT32 [64, 64]", make_tensor(i32, [64, 64], np.arange(64 * 64, dtype=np.int32).tobytes())),
            ("[64, 64, 2]", make_tensor(u8, [64, 64, 2], b"\x00" * (64 * 64 * 2))),
            ("[64, 64, 5]", make_tensor(u8, [64, 64, 5], b"\x00" * (64 * 64 * 5))),
            ("[64, 64, 4] RGBA", make_tensor(u8, [64, 64, 4], b"\x80" * (64 * 64 * 4))),
            ("[1, 64, 64, 3] batched", make_tensor(u8, [1, 64, 64, 3], self.pixels.tobytes())),
            ("[1, 1, 1, 1, 1, 1, 1, 1]", make_tensor(f32, [1] * 8, struct.pack("<f", 0.5))),
            ("rank 64", make_tensor(u8, [1] * 64, b"\x00")),
            ("[1, 1, 3]", make_tensor(u8, [1, 1, 3], b"\x00\x80\xff")),
            ("[4096, 1, 3]", make_tensor(u8, [4096, 1, 3], b"\x10" * (4096 * 3))),
            ("[32, 32] map (wrong size)", make_tensor(f32, [32, 32], self.attribution[:32, :32].tobytes())),
            ("[64, 64, 1] map", make_tensor(f32, [64, 64, 1], self.attribution.tobytes())),
            ("[64, 64] UINT8 map", make_tensor(u8, [64, 64], b"\x01" * 4096)),
            ("valid image", make_tensor(u8, [64, 64, 3], self.pixels.tobytes())),
            ("valid map", make_tensor(f32, [64, 64], self.attribution.tobytes())),
        ]

    @cached_property
    def hostile_models(self) -> list[tuple[str, bytes, bool]]:
        """(description, ONNX bytes, refused): ``refused`` models must never load: they read files of the server, or
        declare inputs or batches that no budget admits."""
        valid = self.upload
        op = b"GlobalAveragePool"
        nested = "[" * 100_000 + "]" * 100_000

        def meta(value) -> dict[str, str]:
            return {"onnxplain": value if isinstance(value, str) else json.dumps(value)}

        models = [
            ("empty", b"", False),
            ("junk", b"not an onnx model at all \x00\xff" * 4, False),
            ("zeros", b"\x00" * 64, False),
            ("truncated", valid[:len(valid) // 2], False),
            ("non-UTF-8 op_type", valid.replace(op, op[:-1] + b"\xff"), False),
            ("unknown op", pooled_classifier(op="NoSuchOperator"), False),
            ("opset 999", pooled_classifier(opset=999), False),
            ("ir_version 99", pooled_classifier(ir_version=99), False),
            ("int8 input", pooled_classifier(input_type=TensorProto.INT8), False),
            ("string input", pooled_classifier(input_type=TensorProto.STRING), False),
            ("declares 100000x100000", pooled_classifier(input_dims=("batch", 3, 100_000, 100_000)), True),
            ("declares 2^62 x 1", pooled_classifier(input_dims=("batch", 3, 2**62, 1)), True),
            ("declares 0x0", pooled_classifier(input_dims=("batch", 3, 0, 0)), False),
            ("declares 1000 channels", pooled_classifier(input_dims=("batch", 1000, 8, 8)), False),
            ("declares dynamic H, W", pooled_classifier(input_dims=("batch", 3, "h", "w")), False),
            ("declares rank 2", pooled_classifier(input_dims=("batch", 3)), False),
            ("0 classes", pooled_classifier(classes=0), False),
            ("metadata batch_size 10^12", pooled_classifier(metadata=meta({"batch_size": 10**12})), True),
            ("metadata height/width 10^6", pooled_classifier(metadata=meta({"height": 10**6, "width": 10**6})),
             True),
            ("metadata a list", pooled_classifier(metadata=meta([1, 2])), False),
            ("metadata a number", pooled_classifier(metadata=meta(5)), False),
            ("metadata null", pooled_classifier(metadata=meta("null")), False),
            ("metadata not JSON", pooled_classifier(metadata=meta("{")), False),
            ("metadata nested 100000 deep", pooled_classifier(metadata=meta(nested)), False),
            ("metadata preprocessing a string", pooled_classifier(metadata=meta({"preprocessing": "x"})), False),
            ("metadata mean non-numeric",
             pooled_classifier(metadata=meta({"preprocessing": {"mean": ["a", "b", "c"]}})), False),
            ("metadata mean null", pooled_classifier(metadata=meta({"preprocessing": {"mean": None}})), False),
            ("metadata mean of one", pooled_classifier(metadata=meta({"preprocessing": {"mean": [0.5]}})), False),
            ("metadata std zero", pooled_classifier(metadata=meta({"preprocessing": {"std": [0, 0, 0]}})), False),
            ("metadata pixel_range 7", pooled_classifier(metadata=meta({"preprocessing": {"pixel_range": 7}})),
             False),
            ("metadata labels a number", pooled_classifier(metadata=meta({"labels": 5})), False),
            ("metadata output_kind a list", pooled_classifier(metadata=meta({"output_kind": ["logits"]})), False),
            ("metadata batch_size true", pooled_classifier(metadata=meta({"batch_size": True})), False),
            ("Image.NominalPixelRange junk", pooled_classifier(metadata={"Image.NominalPixelRange": "\x00"}), False),
            ("external data README.md", pooled_classifier(external="README.md"), True),
            ("external data /etc/hostname", pooled_classifier(external="/etc/hostname"), True),
            ("external data ../../../../etc/passwd", pooled_classifier(external="../../../../etc/passwd"), True),
            ("external data models/shapes/model.onnx", pooled_classifier(external="models/shapes/model.onnx"),
             True),
        ]
        return models


def write_dataset(data_dir: Path, items: int = 2) -> None:
    """What the Audit cases use under the server's data directory: ``fuzzset`` (fresh shapes scenes with masks, a
    CSV manifest), ``badmanifest`` (a manifest.json whose samples are not objects) and ``audits/planted``, a symbolic
    link to a folder outside the data directory that an audit must not write through."""
    sys.path.insert(0, str(ROOT / "models"))
    from scenes import write_scene_dataset

    folder = data_dir / "fuzzset"
    folder.mkdir(parents=True, exist_ok=True)
    write_scene_dataset(folder, items, seed=77)
    (data_dir / "badmanifest").mkdir(exist_ok=True)
    (data_dir / "badmanifest" / "manifest.json").write_text(json.dumps({"samples": [1]}))
    outside = data_dir.parent / f"{data_dir.name}_outside"
    outside.mkdir(exist_ok=True)
    (data_dir / "audits").mkdir(exist_ok=True)
    planted = data_dir / "audits" / PLANTED_AUDIT
    if not planted.is_symlink():
        planted.symlink_to(outside, target_is_directory=True)
