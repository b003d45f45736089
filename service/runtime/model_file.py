"""What an ONNX file may hold and reference, checked before onnx's checker or onnxruntime reads it.

A tensor may keep its data in a file beside the model (``data_location == EXTERNAL``). onnx and
onnxruntime resolve that file against the model's folder when they open the model by path, and
against the *working directory* when they get bytes: an uploaded model naming ``etc/passwd``
would have the server read that file and hand it back as class scores. So:

* an uploaded model must hold all its data; any tensor with external data is refused;
* a repository model may keep data in regular files inside its own folder (relative locations
  that resolve there, symbolic links included); that data is read here, after the check, so the
  graph kept in memory (what the PyTorch mirror reads) holds everything, and onnxruntime opens
  the model by path, so it resolves the same files.

Text that is not UTF-8 anywhere in the file is refused too: the onnx checker and onnxruntime
raise plain ``UnicodeDecodeError`` on it, and a name that is not text cannot be reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from onnx.external_data_helper import load_external_data_for_tensor

from service.errors import InvalidArgument

# onnxruntime's location for data already in memory: the offset is then a raw address.
ORT_MEMORY_LOCATION = "*/_ORT_MEM_ADDR_/*"
EXTERNAL_DATA_KEYS = frozenset({"location", "offset", "length", "checksum"})
# protobuf cannot serialize a message of 2 GiB or more.
PROTOBUF_LIMIT = 2**31 - 1


@dataclass(frozen=True)
class ExternalTensor:
    tensor: onnx.TensorProto
    # Where it sits in the model, e.g. "graph.node[3].attribute[0].t".
    where: str

    def describe(self) -> str:
        return f"tensor {self.tensor.name or '(unnamed)'!r} ({self.where})"


def parse(model_bytes: bytes, field: str) -> onnx.ModelProto:
    try:
        model = onnx.load_model_from_string(model_bytes)
    except (DecodeError, ValueError) as error:
        raise InvalidArgument(f"not an ONNX model ({error.__class__.__name__}: {error})", field=field) from error
    if not model.graph.node:
        raise InvalidArgument("not an ONNX model: the graph has no nodes", field=field)
    return model


def scan(model: onnx.ModelProto, field: str) -> list[ExternalTensor]:
    """Refuse text that is not UTF-8 anywhere in ``model``; the tensors whose data lives outside the
    file, wherever they are (subgraphs, node attributes, sparse tensors, functions, training graphs)."""
    found = []
    for message, where in _messages(model, field):
        if isinstance(message, onnx.TensorProto) and (message.data_location == onnx.TensorProto.EXTERNAL
                                                      or len(message.external_data)):
            found.append(ExternalTensor(message, where))
    return found


def refuse_external_data(external: list[ExternalTensor], field: str) -> None:
    """An uploaded model holds all its data: there is no folder its locations could be relative to."""
    if external:
        first = external[0]
        location = _entries(first.tensor).get("location", "")
        raise InvalidArgument(
            f"{first.describe()} keeps its data in an external file ({location!r}); an uploaded model must hold "
            f"all its data ({len(external)} tensor(s) do not): save it with onnx.save_model(model, path, "
            "save_as_external_data=False), or place it in the server's models directory", field=field)


def inline_external_data(model: onnx.ModelProto, external: list[ExternalTensor], folder: Path, field: str) -> None:
    """Read the external data of a repository model into ``model``, each file checked first to be a
    regular file inside ``folder`` (the model file's folder)."""
    folder = folder.resolve()
    for item in external:
        _confined_file(item, folder, field)
        try:
            load_external_data_for_tensor(item.tensor, str(folder))
        except (ValueError, OSError, onnx.checker.ValidationError) as error:
            raise InvalidArgument(f"cannot read the external data of {item.describe()}: {error}",
                                  field=field) from error
    if external and model.ByteSize() > PROTOBUF_LIMIT:
        raise InvalidArgument(f"the model with its external data takes {model.ByteSize()} bytes, over protobuf's "
                              "2 GiB limit for one message; onnxplain serves models under 2 GiB", field=field)


def _confined_file(item: ExternalTensor, folder: Path, field: str) -> Path:
    entries = _entries(item.tensor)
    unknown = set(entries) - EXTERNAL_DATA_KEYS
    if unknown:
        raise InvalidArgument(f"{item.describe()} has external data keys {sorted(unknown)}; known: "
                              f"{sorted(EXTERNAL_DATA_KEYS)}", field=field)
    if item.tensor.data_location != onnx.TensorProto.EXTERNAL:
        raise InvalidArgument(f"{item.describe()} has external data entries but its data_location is not "
                              "EXTERNAL", field=field)
    location = entries.get("location", "")
    if not location or location == ORT_MEMORY_LOCATION or "\x00" in location:
        raise InvalidArgument(f"{item.describe()} has the external data location {location!r}; give a file name "
                              "relative to the model's folder", field=field)
    relative = Path(location)
    if relative.is_absolute():
        raise InvalidArgument(f"{item.describe()} names the absolute path {location!r}; external data must be a "
                              "path relative to the model's folder, inside it", field=field)
    try:
        target = (folder / relative).resolve(strict=True)
    except (OSError, RuntimeError) as error:  # missing, a symbolic-link loop, a name too long
        raise InvalidArgument(f"{item.describe()} keeps its data in {location!r}, which cannot be opened in the "
                              f"model's folder ({error.__class__.__name__})", field=field) from error
    if not target.is_relative_to(folder):
        raise InvalidArgument(f"{item.describe()} keeps its data in {location!r}, outside the model's folder; "
                              "a model may reference only files inside its own folder", field=field)
    if not target.is_file():
        raise InvalidArgument(f"{item.describe()} keeps its data in {location!r}, which is not a regular file",
                              field=field)
    return target


def _entries(tensor: onnx.TensorProto) -> dict[str, str]:
    return {entry.key: entry.value for entry in tensor.external_data}


def _messages(root: Message, field: str) -> Iterator[tuple[Message, str]]:
    """Every message under ``root`` with its path, depth first, without recursion; refuses strings
    that are not UTF-8 (protobuf hands them over as bytes)."""
    stack: list[tuple[Message, str]] = [(root, "")]
    while stack:
        message, where = stack.pop()
        yield message, where
        for descriptor, value in message.ListFields():
            values = value if descriptor.is_repeated else (value,)
            if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
                prefix = f"{where}." if where else ""
                if descriptor.is_repeated:
                    stack.extend((item, f"{prefix}{descriptor.name}[{i}]") for i, item in enumerate(values))
                else:
                    stack.append((value, f"{prefix}{descriptor.name}"))
            elif descriptor.type == FieldDescriptor.TYPE_STRING:
                for text in values:
                    if isinstance(text, bytes):
                        raise InvalidArgument(
                            f"{where or 'model'}.{descriptor.name} holds {text[:60]!r}, which is not UTF-8 text; "
                            "ONNX names and strings are UTF-8", field=field)
