"""Hostile models: each refused at LoadModel with INVALID_ARGUMENT naming the field at fault, nothing registered.

The attacks of issue 10: external data that reads the server's files, metadata that is not what it claims,
declared inputs and batches that exhaust memory, text that is not UTF-8. Built by hand with onnx.helper.
"""

from __future__ import annotations

import json
import re

import grpc
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import image_classifier, pooled_classifier
from test_server import assert_status

from service.budget import Budget
from service.errors import InvalidArgument
from service.runtime import model_file
from service.runtime.repository import ModelRepository

SHAPE = (4, 4, 3)
WEIGHTS = np.random.default_rng(0).normal(size=(4 * 4 * 3, 2)).astype(np.float32)
# What a leaking server would read instead of the model's weights: scores from these are recognisable.
SECRET = np.full((4 * 4 * 3, 2), 1000.0, dtype=np.float32)


def linear() -> onnx.ModelProto:
    return image_classifier(WEIGHTS, SHAPE)


def expected_scores(pixels: np.ndarray, weights: np.ndarray = WEIGHTS) -> np.ndarray:
    """The linear model's scores, by hand: NCHW-flattened pixels times the weights (no preprocessing)."""
    return pixels.transpose(0, 3, 1, 2).reshape(len(pixels), -1) @ weights


def external(tensor: TensorProto, location: str) -> TensorProto:
    tensor.ClearField("raw_data")
    tensor.data_location = TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value=location)
    return tensor


def with_external_weights(location: str) -> onnx.ModelProto:
    model = linear()
    external(model.graph.initializer[0], location)
    return model


def with_metadata(text: str) -> bytes:
    model = linear()
    model.metadata_props.add(key="onnxplain", value=text)
    return model.SerializeToString()


def refused(repository: ModelRepository, load, field: str, match: str = "") -> InvalidArgument:
    with pytest.raises(InvalidArgument, match=re.escape(match) if match else None) as caught:
        load(repository)
    assert caught.value.field == field, caught.value
    assert repository.list() == []  # a failed load registers nothing
    return caught.value


@pytest.fixture
def repository(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    return ModelRepository(models)


# --- external data ---------------------------------------------------------------------------------------------

def test_a_repository_model_reads_external_data_from_its_own_folder(repository, tmp_path, monkeypatch):
    folder = repository.models_dir / "ext"
    folder.mkdir()
    onnx.save_model(linear(), folder / "model.onnx", save_as_external_data=True, location="data.bin",
                    size_threshold=0)
    assert (folder / "data.bin").stat().st_size == WEIGHTS.nbytes
    # A decoy at the same relative location in the working directory: loading by bytes would resolve there.
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "data.bin").write_bytes(SECRET.tobytes())
    monkeypatch.chdir(cwd)

    loaded = repository.load_path("ext")
    twin = repository.load_bytes("twin", linear().SerializeToString())
    pixels = np.random.default_rng(1).random((5, *SHAPE), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(pixels), expected_scores(pixels), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(loaded.predict(pixels), twin.predict(pixels))
    # The graph kept for the PyTorch mirror holds the weights themselves: nothing reads external files later.
    kept = onnx.load_model_from_string(loaded.model_bytes)
    assert model_file.scan(kept, "path") == []
    np.testing.assert_array_equal(numpy_helper.to_array(kept.graph.initializer[0]), WEIGHTS)


def test_external_data_in_a_subfolder_with_offsets(repository):
    folder = repository.models_dir / "nested"
    (folder / "weights").mkdir(parents=True)
    model = linear()
    bias = numpy_helper.from_array(np.array([[3.0, -3.0]], np.float32), "bias")
    model.graph.initializer.append(bias)
    model.graph.node[-1].output[0] = "product"
    model.graph.node.append(helper.make_node("Add", ["product", "bias"], ["logits"]))
    onnx.save_model(model, folder / "model.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights/all.bin", size_threshold=0)
    pixels = np.random.default_rng(2).random((3, *SHAPE), dtype=np.float32)
    scores = repository.load_path("nested").predict(pixels)
    np.testing.assert_allclose(scores, expected_scores(pixels) + [3.0, -3.0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("location, match", [
    ("../secret.bin", "outside the model's folder"),
    ("sub/../../secret.bin", "outside the model's folder"),
    ("ABSOLUTE", "absolute path"),
    ("link.bin", "outside the model's folder"),  # a symbolic link inside the folder to the file outside
    ("missing.bin", "cannot be opened"),
    ("sub", "not a regular file"),
    (model_file.ORT_MEMORY_LOCATION, "external data location"),
    ("", "external data location"),
])
def test_a_repository_model_cannot_reference_files_outside_its_folder(repository, location, match):
    secret = repository.models_dir / "secret.bin"  # beside the model's folder, not in it
    secret.write_bytes(SECRET.tobytes())
    folder = repository.models_dir / "escape"
    (folder / "sub").mkdir(parents=True)
    (folder / "link.bin").symlink_to(secret)
    location = str(secret) if location == "ABSOLUTE" else location
    (folder / "model.onnx").write_bytes(with_external_weights(location).SerializeToString())
    error = refused(repository, lambda r: r.load_path("escape"), "path", match)
    assert "'weights'" in error.message


def test_unknown_external_data_keys_are_refused(repository):
    folder = repository.models_dir / "keys"
    folder.mkdir()
    (folder / "data.bin").write_bytes(WEIGHTS.tobytes())
    model = with_external_weights("data.bin")
    model.graph.initializer[0].external_data.add(key="basepath", value="/etc")
    (folder / "model.onnx").write_bytes(model.SerializeToString())
    refused(repository, lambda r: r.load_path("keys"), "path", "basepath")


def test_an_uploaded_model_with_external_data_never_reads_the_working_directory(repository, tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "secret").write_bytes(SECRET.tobytes())
    monkeypatch.chdir(tmp_path)
    payload = with_external_weights("etc/secret").SerializeToString()
    pixels = np.random.default_rng(3).random((2, *SHAPE), dtype=np.float32)
    # The attack is real here: onnxruntime, given these bytes, reads the secret and returns it as scores.
    session = ort.InferenceSession(payload, providers=["CPUExecutionProvider"])
    (leaked,) = session.run(None, {"image": pixels.transpose(0, 3, 1, 2).copy()})
    np.testing.assert_allclose(leaked, expected_scores(pixels, SECRET), rtol=1e-5)

    # The server refuses before onnx's checker, onnx's loader or onnxruntime sees the model.
    readers = []
    monkeypatch.setattr(ort, "InferenceSession", lambda *a, **k: readers.append("onnxruntime"))
    monkeypatch.setattr(onnx.checker, "check_model", lambda *a, **k: readers.append("checker"))
    monkeypatch.setattr(model_file, "load_external_data_for_tensor", lambda *a, **k: readers.append("loader"))
    error = refused(repository, lambda r: r.load_bytes("leak", payload), "onnx_model", "'weights'")
    assert "etc/secret" in error.message and readers == []


def _constant_node(model: onnx.ModelProto) -> None:
    tensor = external(numpy_helper.from_array(WEIGHTS, "constant"), "etc/secret")
    model.graph.node.append(helper.make_node("Constant", [], ["unused"], value=tensor))


def _subgraph(model: onnx.ModelProto) -> None:
    def branch(initializer: TensorProto) -> onnx.GraphProto:
        return helper.make_graph([helper.make_node("Identity", [initializer.name], ["out"])], "branch", [],
                                 [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                                 initializer=[initializer])

    clean = branch(numpy_helper.from_array(WEIGHTS, "clean"))
    hostile = branch(external(numpy_helper.from_array(WEIGHTS, "inner"), "etc/secret"))
    # Attributes are sorted by name: else_branch is attribute 0, then_branch attribute 1.
    model.graph.node.append(helper.make_node("If", ["flag"], ["unused"], then_branch=hostile, else_branch=clean))


def _sparse(model: onnx.ModelProto) -> None:
    values = external(numpy_helper.from_array(WEIGHTS[:, 0], "sparse_values"), "etc/secret")
    indices = numpy_helper.from_array(np.arange(48, dtype=np.int64), "sparse_indices")
    model.graph.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [96]))


def _function(model: onnx.ModelProto) -> None:
    tensor = external(numpy_helper.from_array(WEIGHTS, "in_function"), "etc/secret")
    model.functions.append(helper.make_function("custom", "f", [], ["y"],
                                                [helper.make_node("Constant", [], ["y"], value=tensor)],
                                                [helper.make_opsetid("", 17)]))


@pytest.mark.parametrize("place, tensor, where", [
    (_constant_node, "constant", "graph.node[2].attribute[0].t"),
    (_subgraph, "inner", "graph.node[2].attribute[1].g.initializer[0]"),
    (_sparse, "sparse_values", "graph.sparse_initializer[0].values"),
    (_function, "in_function", "functions[0].node[0].attribute[0].t"),
])
def test_external_data_anywhere_in_an_upload_is_refused(repository, place, tensor, where):
    model = linear()
    place(model)
    error = refused(repository, lambda r: r.load_bytes("hidden", model.SerializeToString()), "onnx_model")
    assert f"tensor {tensor!r} ({where})" in error.message


# --- metadata_props and the sidecar ----------------------------------------------------------------------------

META = "metadata_props.onnxplain"


@pytest.mark.parametrize("text, field, match", [
    ("[1]", META, "JSON object, not list"),
    ("3", META, "JSON object, not int"),
    ('"preprocessing"', META, "JSON object, not str"),
    ("[" * 100_000 + "]" * 100_000, META, "deeper than 32 levels"),
    ('{"batch_size": 1' + "0" * 5000 + "}", META, "not usable JSON"),
    ("{not json", META, "not usable JSON"),
    ('{"colour": 1}', META, "unknown keys"),
    ('{"preprocessing": "imagenet"}', f"{META}.preprocessing", "must be a JSON object"),
    ('{"preprocessing": {"mean": ["a", "b", "c"]}}', f"{META}.preprocessing.mean", "list of numbers"),
    ('{"preprocessing": {"mean": null}}', f"{META}.preprocessing.mean", "not null"),
    ('{"preprocessing": {"mean": [true]}}', f"{META}.preprocessing.mean", "list of numbers"),
    ('{"preprocessing": {"mean": []}}', f"{META}.preprocessing.mean", "an empty list"),
    ('{"preprocessing": {"mean": [0.1, 0.2]}}', f"{META}.preprocessing.mean", "has 2 values; give 1 or 3"),
    ('{"preprocessing": {"mean": [NaN]}}', f"{META}.preprocessing.mean", "finite"),
    ('{"preprocessing": {"mean": [1e300]}}', f"{META}.preprocessing.mean", "finite"),
    ('{"preprocessing": {"std": [Infinity]}}', f"{META}.preprocessing.std", "finite"),
    ('{"preprocessing": {"std": [0]}}', f"{META}.preprocessing.std", "> 0"),
    ('{"preprocessing": {"std": [-1, 1, 1]}}', f"{META}.preprocessing.std", "> 0"),
    ('{"preprocessing": {"std": 1e-45}}', f"{META}.preprocessing.std", "overflows float32"),
    ('{"preprocessing": {"pixel_range": 255}}', f"{META}.preprocessing.pixel_range", "must be one of"),
    ('{"preprocessing": {"channel_order": "CMYK"}}', f"{META}.preprocessing.channel_order", "not one of"),
    ('{"preprocessing": {"gamma": 2.2}}', f"{META}.preprocessing", "unknown key"),
    ('{"labels": "ab"}', f"{META}.labels", "list of strings"),
    ('{"labels": ["\\ud800", "b"]}', f"{META}.labels[0]", "not UTF-8"),
    ('{"description": "\\udfff"}', f"{META}.description", "not UTF-8"),
    ('{"description": 7}', f"{META}.description", "must be a string"),
    ('{"layout": ["NCHW"]}', f"{META}.layout", "must be one of"),
    ('{"output_kind": "odds"}', f"{META}.output_kind", "not one of"),
    ('{"height": true}', f"{META}.height", "positive integer"),
    ('{"height": 5}', f"{META}.height", "the graph fixes height 4, not 5"),
    ('{"batch_size": 1000000000000}', f"{META}.batch_size", "over this server's limit of 1024"),
    ('{"batch_size": 0}', f"{META}.batch_size", "positive integer"),
    ('{"batch_size": 2.5}', f"{META}.batch_size", "positive integer"),
    ('{"labels": ["a", "b", "c"]}', f"{META}.labels", "3 labels for 2 classes"),
])
def test_bad_metadata_props(repository, text, field, match):
    refused(repository, lambda r: r.load_bytes("meta", with_metadata(text)), field, match)


def test_metadata_that_is_not_utf8(repository):
    payload = with_metadata('{"description": "PLACEHOLDER"}').replace(b"PLACEHOLDER", b"\xff" * 11)
    refused(repository, lambda r: r.load_bytes("meta", payload), "onnx_model", "not UTF-8")


@pytest.mark.parametrize("sidecar, field, match", [
    (b"[1, 2]", "sidecar", "JSON object, not list"),
    (b"[" * 100_000 + b"]" * 100_000, "sidecar", "deeper than 32 levels"),
    (b'{"description": "\xff"}', "sidecar", "not usable JSON"),
    (b'{"preprocessing": {"std": null}}', "sidecar.preprocessing.std", "not null"),
    (b'{"preprocessing": {"mean": [0.5, 0.5]}}', "sidecar.preprocessing.mean", "has 2 values"),
    (b'{"batch_size": 4096}', "sidecar.batch_size", "ONNXPLAIN_MAX_BATCH_SIZE"),
])
def test_bad_sidecar(repository, sidecar, field, match):
    folder = repository.models_dir / "side"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(linear().SerializeToString())
    (folder / "config.json").write_bytes(sidecar)
    refused(repository, lambda r: r.load_path("side"), field, match)


def test_a_sidecar_that_links_outside_the_folder(repository):
    outside = repository.models_dir.parent / "config.json"
    outside.write_text(json.dumps({"labels": ["a", "b"]}))
    folder = repository.models_dir / "linked"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(linear().SerializeToString())
    (folder / "config.json").symlink_to(outside)
    refused(repository, lambda r: r.load_path("linked"), "sidecar", "outside the model's folder")


def test_the_field_names_the_source_that_set_the_value(repository):
    """The metadata's mean has the wrong length; the overrides set only std: the error names the metadata."""
    payload = with_metadata('{"preprocessing": {"mean": [0.5, 0.5]}}')
    refused(repository, lambda r: r.load_bytes("m", payload, {"preprocessing": {"std": [0.5]}}),
            f"{META}.preprocessing.mean", "has 2 values")


# --- declared sizes against the budget --------------------------------------------------------------------------

def _declared(dims: list[int | str]) -> bytes:
    model = pooled_classifier(WEIGHTS[:3], (4, 4, 3))
    for axis, value in enumerate(dims):
        dim = model.graph.input[0].type.tensor_type.shape.dim[axis]
        if isinstance(value, int):
            dim.dim_value = value
        else:
            dim.dim_param = value
    return model.SerializeToString()


@pytest.mark.parametrize("dims, overrides, field, match", [
    ([1, 3, 100_000, 100_000], {}, "onnx_model", "10000000000 pixels, over this server's limit of 16777216"),
    ([1, 3, 2**31, 2**31], {}, "onnx_model", "4611686018427387904 pixels"),
    (["n", 3, "h", "w"], {"height": 100_000, "width": 100_000}, "overrides.height", "ONNXPLAIN_MAX_MODEL_INPUT"),
    (["n", 3, 8, "w"], {"width": 2**40}, "overrides.width", "ONNXPLAIN_MAX_MODEL_INPUT_PIXELS"),
    ([10**9, 3, 8, 8], {}, "onnx_model", "fixes the batch axis at 1000000000"),
    ([1000, 3, 1024, 1024], {}, "onnx_model", "12000 MiB, over this server's 3072 MiB"),
    (["n", 3, 8, 8], {"batch_size": 1_000_000}, "overrides.batch_size", "over this server's limit of 1024"),
    (["n", 3, 2048, 2048], {"batch_size": 1000}, "overrides.batch_size", "MiB, over this server's 3072 MiB"),
])
def test_declared_sizes_over_the_budget(repository, dims, overrides, field, match):
    refused(repository, lambda r: r.load_bytes("big", _declared(dims), overrides), field, match)


def test_a_smaller_budget_refuses_what_the_default_takes(tmp_path):
    payload = _declared(["n", 3, 64, 64])
    assert ModelRepository(None).load_bytes("ok", payload).info.max_batch == 32
    small = ModelRepository(None, budget=Budget(model_input_pixels=63 * 64))
    refused(small, lambda r: r.load_bytes("big", payload), "onnx_model", "4096 pixels")


def test_the_default_batch_shrinks_to_fit_the_job_memory():
    """No batch configured: the server's default (32) is lowered to what one job's memory holds."""
    repository = ModelRepository(None, budget=Budget(job_memory_mb=1))
    info = repository.load_bytes("wide", _declared(["n", 3, 128, 128])).info
    assert info.max_batch == 5  # images of 128 x 128 x 3 float32 values take 192 KiB: 5 fit in 1 MiB


# --- graphs that onnx or onnxruntime choke on -------------------------------------------------------------------

def test_an_op_type_that_is_not_utf8(repository):
    payload = linear().SerializeToString().replace(b"Flatten", b"Fl\xfftt\xfen")
    refused(repository, lambda r: r.load_bytes("u", payload), "onnx_model", "graph.node[0].op_type")


def test_an_input_name_that_is_not_utf8(repository):
    payload = linear().SerializeToString().replace(b"image", b"im\xc3ge")
    refused(repository, lambda r: r.load_bytes("u", payload), "onnx_model", "graph.input[0].name")


def test_an_unknown_element_type(repository):
    model = linear()
    model.graph.input[0].type.tensor_type.elem_type = 999
    refused(repository, lambda r: r.load_bytes("t", model.SerializeToString()), "onnx_model", "element type 999")


def test_an_output_that_is_not_batch_by_classes(repository):
    """The graph declares [batch, 4] but computes [batch, 2, 2]: the probe tells."""
    model = image_classifier(np.ones((48, 4), np.float32), SHAPE)
    model.graph.initializer.append(numpy_helper.from_array(np.array([-1, 2, 2], np.int64), "shape"))
    model.graph.node[-1].output[0] = "flat_scores"
    model.graph.node.append(helper.make_node("Reshape", ["flat_scores", "shape"], ["logits"]))
    refused(repository, lambda r: r.load_bytes("o", model.SerializeToString()), "onnx_model", "[batch, classes]")


@pytest.mark.parametrize("path, match", [
    ("a\x00b", "NUL"),
    ("x" * 300, "cannot be opened"),
])
def test_unusable_paths(repository, path, match):
    refused(repository, lambda r: r.load_path(path), "path", match)


def test_a_model_name_with_a_trailing_newline(repository):
    refused(repository, lambda r: r.load_bytes("name\n", linear().SerializeToString()), "name", "not a valid")


# --- through the server: precise statuses, and ListModels keeps working ----------------------------------------

def test_the_server_refuses_an_external_data_upload(client, tmp_path, monkeypatch):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "secret").write_bytes(SECRET.tobytes())
    monkeypatch.chdir(tmp_path)
    payload = with_external_weights("etc/secret").SerializeToString()
    assert_status(lambda: client.load_model(onnx_model=payload, name="leak"), grpc.StatusCode.INVALID_ARGUMENT,
                  "onnx_model", "external file")
    assert "leak" not in {m.name for m in client.list_models()}


@pytest.mark.parametrize("payload, overrides, field", [
    (with_metadata('{"batch_size": 1000000000000}'), {}, f"{META}.batch_size"),
    (with_metadata("[" * 100_000 + "]" * 100_000), {}, META),
    (with_metadata('{"preprocessing": {"mean": null}}'), {}, f"{META}.preprocessing.mean"),
    (linear().SerializeToString(), {"batchSize": 1_000_000}, "overrides.batch_size"),
    (_declared([1, 3, 100_000, 100_000]), {}, "onnx_model"),
    (linear().SerializeToString().replace(b"Flatten", b"Fl\xfftt\xfen"), {}, "onnx_model"),
])
def test_the_server_answers_invalid_argument_and_lists_the_other_models(client, payload, overrides, field):
    before = {m.name for m in client.list_models()}
    assert_status(lambda: client.load_model(onnx_model=payload, name="hostile", overrides=overrides),
                  grpc.StatusCode.INVALID_ARGUMENT, field)
    assert {m.name for m in client.list_models()} == before and "hostile" not in before


def test_load_all_skips_a_hostile_model_and_loads_the_rest(repository):
    for name, payload in (("good", linear().SerializeToString()), ("bad", with_metadata("[1]"))):
        (repository.models_dir / name).mkdir()
        (repository.models_dir / name / "model.onnx").write_bytes(payload)
    assert [m.info.name for m in repository.load_all()] == ["good"]
    assert repository.get("good").info.source == "good/model.onnx"


def test_deep_json_is_refused_before_parsing_even_under_a_raised_recursion_limit():
    """auto_LiRPA raises the recursion limit to 10**6 when imported; json's C parser would then overflow the
    thread's stack on a document nested 100,000 deep instead of raising RecursionError."""
    import sys

    from service.runtime.model_config import json_depth, parse_json_object

    assert json_depth('{"a": [1, {"b": "[[[[["}], "c": "\\\\\\"]"}') == 3
    previous = sys.getrecursionlimit()
    sys.setrecursionlimit(10**6)
    try:
        with pytest.raises(InvalidArgument, match="deeper than"):
            parse_json_object("[" * 100_000 + "]" * 100_000, "metadata_props.onnxplain", "the metadata")
    finally:
        sys.setrecursionlimit(previous)
