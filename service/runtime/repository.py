"""The models a server holds, loaded from its models directory or from uploaded bytes.

A model directory follows Triton's repository layout: ``<models>/<name>/model.onnx``
with an optional ``config.json`` sidecar; a lone ``<models>/<name>.onnx`` (with
``<name>.json``) works too. Paths are confined to the models directory.
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any, Mapping

from service.budget import DEFAULT_BUDGET, Budget
from service.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, ServiceError
from service.runtime.batcher import BatchingSettings
from service.runtime.model import LoadedModel
from service.runtime.loader import load_model
from service.runtime.providers import DevicePreference, ExecutionSettings

log = logging.getLogger(__name__)

MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


class ModelRepository:
    def __init__(self, models_dir: Path | None, *, default_batch_size: int = 32,
                 device: DevicePreference | ExecutionSettings = DevicePreference.AUTO, budget: Budget = DEFAULT_BUDGET,
                 batching: BatchingSettings = BatchingSettings()) -> None:
        self.budget = budget
        self.batching = batching
        self.models_dir = models_dir.resolve() if models_dir else None
        self.default_batch_size = default_batch_size
        self.device = device
        self._models: dict[str, LoadedModel] = {}
        self._lock = threading.Lock()

    def discover(self) -> list[Path]:
        """Model files in the models directory, one per model."""
        if self.models_dir is None or not self.models_dir.is_dir():
            return []
        found = [d / "model.onnx" for d in sorted(self.models_dir.iterdir()) if (d / "model.onnx").is_file()]
        return found + sorted(self.models_dir.glob("*.onnx"))

    def load_all(self) -> list[LoadedModel]:
        """Load every model in the directory; one that fails is logged with its reason, not fatal."""
        loaded = []
        for path in self.discover():
            relative = path.relative_to(self.models_dir).as_posix()
            try:
                loaded.append(self.load_path(relative))
            except ServiceError as error:
                log.error("model not loaded", extra={"path": relative, "reason": str(error)})
        return loaded

    def resolve(self, relative: str) -> Path:
        """The model file ``relative`` names inside the models directory."""
        if self.models_dir is None:
            raise FailedPrecondition("the server has no models directory; upload the model bytes instead",
                                     field="path")
        if "\x00" in relative:
            raise InvalidArgument("the path holds a NUL character; give a path inside the models directory",
                                  field="path")
        try:
            candidate = (self.models_dir / relative).resolve()
            if not candidate.is_relative_to(self.models_dir):
                raise InvalidArgument(f"{relative!r} is outside the models directory; give a path inside it",
                                      field="path")
            if candidate.is_dir():
                candidate = candidate / "model.onnx"
            if not candidate.is_file():
                raise NotFound(f"no model file at {relative!r} in the models directory", field="path")
        except (OSError, RuntimeError) as error:  # a name too long, a symbolic-link loop, no permission
            raise InvalidArgument(f"{relative[:200]!r} cannot be opened in the models directory "
                                  f"({error.__class__.__name__}: {getattr(error, 'strerror', None) or error})",
                                  field="path") from error
        return candidate

    def load_path(self, relative: str, name: str = "", overrides: Mapping[str, Any] | None = None,
                  replace: bool = False) -> LoadedModel:
        path = self.resolve(relative)
        default_name = path.parent.name if path.name == "model.onnx" else path.stem
        try:
            model_bytes = path.read_bytes()
        except OSError as error:
            raise InvalidArgument(f"cannot read {relative[:200]!r}: {error.strerror}", field="path") from error
        return self._load(name or default_name, model_bytes, source=relative, model_path=path,
                          overrides=overrides, replace=replace)

    def load_bytes(self, name: str, model_bytes: bytes, overrides: Mapping[str, Any] | None = None,
                   replace: bool = False) -> LoadedModel:
        if not name:
            raise InvalidArgument("an uploaded model needs a name", field="name")
        return self._load(name, model_bytes, source="upload", model_path=None, overrides=overrides,
                          replace=replace)

    def _load(self, name: str, model_bytes: bytes, *, source: str, model_path: Path | None,
              overrides: Mapping[str, Any] | None, replace: bool) -> LoadedModel:
        if not MODEL_NAME.fullmatch(name):
            raise InvalidArgument(f"{name!r} is not a valid model name (letters, digits, '_', '.', '-')",
                                  field="name")
        if not replace and name in self._models:
            raise AlreadyExists(f"a model named {name!r} is loaded; set replace or unload it first", field="name")
        # Loading is slow (session creation, probe); do it outside the lock. Only a model that passed every
        # check is registered: ListModels describes each one, so none may hold a value it cannot describe.
        model = load_model(name, model_bytes, source=source, model_path=model_path, overrides=overrides,
                           default_batch_size=self.default_batch_size, device=self.device, budget=self.budget,
                           batching=self.batching)
        with self._lock:
            if not replace and name in self._models:
                model.close()
                raise AlreadyExists(f"a model named {name!r} is loaded; set replace or unload it first",
                                    field="name")
            replaced = self._models.get(name)
            self._models[name] = model
        if replaced is not None:
            replaced.close()  # its jobs still running finish unbatched
        return model

    def get(self, name: str, field: str = "model_name") -> LoadedModel:
        if not name:
            raise InvalidArgument("name the model (see ListModels)", field=field)
        model = self._models.get(name)
        if model is None:
            known = ", ".join(sorted(self._models)) or "none"
            raise NotFound(f"no model named {name!r} is loaded (loaded: {known})", field=field)
        return model

    def unload(self, name: str) -> None:
        with self._lock:
            model = self._models.pop(name, None)
        if model is None:
            raise NotFound(f"no model named {name!r} is loaded", field="name")
        model.close()  # its batcher's worker ends once what is queued has run; it does not block the caller

    def close(self) -> None:
        """Stop every model's batcher (server shutdown); the models stay listed and run unbatched."""
        for model in self.list():
            model.close()

    def list(self) -> list[LoadedModel]:
        return [self._models[name] for name in sorted(self._models)]
