"""What the commands share: a client (remote or in-process), a progress bar, parameter parsing."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Iterator, NoReturn

from service.config import Settings, bundled_models_dir


class CommandError(Exception):
    """A command line the command cannot run (a missing file, a malformed value): one line, exit status 2,
    as argparse answers a malformed flag. Refusals of the server keep their gRPC code and exit 1."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option

    def line(self) -> str:
        return f"error: {self.option}: {self}" if self.option else f"error: {self}"


def fail(message: str, option: str | None = None) -> NoReturn:
    """Stop the command: ``option`` names the flag or argument to correct, ``message`` says how."""
    raise CommandError(message, option)


def client_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", help="host:port of a running server; default: an in-process one")
    parser.add_argument("--token", default=os.environ.get("ONNXPLAIN_TOKEN"), help="bearer token")
    parser.add_argument("--tls-ca", type=Path, help="CA certificate for a TLS server")


# --- commands ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def connect(args: argparse.Namespace, model: str | None = None) -> Iterator[tuple[Any, str | None]]:
    """A client and the model's name on the server: --server's, or an in-process server's, which loads the
    model with the command's ``--set`` overrides."""
    from onnxplain_client import OnnxplainClient

    from service.cli.overrides import parse_overrides, to_model_overrides

    overrides = parse_overrides(getattr(args, "overrides", None) or [])
    if args.server and overrides:
        from service.errors import InvalidArgument

        raise InvalidArgument("applies to a model this command loads from a local file; a model on --server keeps "
                              "the configuration it was loaded with (LoadModel's overrides)", field="--set")
    if args.server:
        root = args.tls_ca.read_bytes() if args.tls_ca else None
        with OnnxplainClient(args.server, token=args.token, root_certificates=root) as client:
            yield client, model
        return
    from service.api.server import EmbeddedServer

    if model is None:  # the whole repository, loaded
        settings = Settings(models_dir=getattr(args, "models_dir", None) or bundled_models_dir())
        path = None
    else:  # one model file, loaded by path
        path = Path(model).resolve()
        if not path.exists():
            fail(f"{model} is neither a local model file nor (without --server) a model name", "MODEL")
        settings = Settings(models_dir=path.parent, preload=False)
    with EmbeddedServer(settings) as address:
        with OnnxplainClient(address) as client:
            name = (client.load_model(path.name, overrides=to_model_overrides(overrides)).name
                    if path is not None else None)
            yield client, name


# --- progress ---------------------------------------------------------------------------------------------------

# One style for every long command: on stderr, so stdout stays the result; off when stderr is not a terminal
# (logs, pipes, CI) unless ONNXPLAIN_PROGRESS=always; ONNXPLAIN_PROGRESS=never turns it off everywhere.
PROGRESS_ENV = "ONNXPLAIN_PROGRESS"
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}]"


def progress_disabled() -> bool | None:
    """tqdm's ``disable``: None (auto: off unless stderr is a terminal), False (forced on), True (forced off)."""
    choice = os.environ.get(PROGRESS_ENV, "auto").strip().lower()
    if choice not in ("auto", "always", "never"):
        fail(f"{choice!r}: write auto, always or never", PROGRESS_ENV)
    return {"auto": None, "always": False, "never": True}[choice]


def new_bar(description: str, total: int | None = None, unit: str = "pass"):
    """A tqdm bar in the commands' one style, for work counted here (audit results, demo samples)."""
    from tqdm import tqdm

    return tqdm(desc=description, total=total, unit=unit, file=sys.stderr, leave=False, dynamic_ncols=True,
                bar_format=BAR_FORMAT, disable=progress_disabled())


@contextlib.contextmanager
def progress_bar(description: str, unit: str = "pass"):
    """A bar fed by a streamed RPC's progress events: yields the ``on_progress`` callback. A new stage (the
    metrics after the map, say) restarts the count under ``description (stage)``."""
    with new_bar(description, unit=unit) as bar:
        shown = [description]

        def on_progress(progress) -> None:
            stage = f"{description} ({progress.stage})" if progress.stage and progress.stage != description \
                else description
            if stage != shown[0]:
                shown[0] = stage
                bar.set_description_str(stage, refresh=False)
            bar.total = progress.total
            bar.n = progress.done
            bar.refresh()

        yield on_progress


def existing_directory(path: Path | None, option: str) -> None:
    """Stop (one line, exit 2) when a directory the command line names is not one; None: the default is used."""
    if path is not None and not path.is_dir():
        fail(f"{path}: no such directory", option)


def existing_files(*paths: Path) -> None:
    """Stop (one line, exit 2) before any work when a file the command line names is missing: ``error: PATH:
    No such file or directory``, as the operating system words it."""
    for path in paths:
        if not Path(path).is_file():
            fail(f"{path}: {'is a directory' if Path(path).is_dir() else 'No such file or directory'}")


def enum_choices(enum_name: str) -> list[str]:
    """The short names of an xai.v1 enum (SalienceMeasure -> entropy, out_of_set, ...): the proto is the one list."""
    from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
    from onnxplain_client.enums import short_name

    return [short_name(enum_name, name) for name in getattr(ex, enum_name).keys() if not name.endswith("_UNSPECIFIED")]


def method_params(method: str, items: list[str]) -> dict[str, Any]:
    """``--param`` values for ``method``, checked against the protos before any model loads: an unknown method
    fails on ``--method``, a parameter of another name or type on ``--param`` (exit 2, as a malformed flag)."""
    from onnxplain_client.client import method_spec
    from onnxplain_client.errors import InvalidRequest

    params = parse_params(items)
    try:
        method_spec(method, params)
    except InvalidRequest as error:
        if error.field == "method":
            fail(error.message, "--method")
        fail(f"{error.field}: {error.message}", "--param")
    return params


def parse_params(items: list[str]) -> dict[str, Any]:
    params = {}
    for item in items:
        key, _, raw = item.partition("=")
        if not raw:
            fail(f"{item!r}: write NAME=VALUE", "--param")
        params[key] = json_or_text(raw)
    return params


def json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def baseline(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        return {"kind": "KIND_CONSTANT", "value": float(text)}
    except ValueError:
        return {"kind": f"KIND_{text.upper()}"}
