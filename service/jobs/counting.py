"""The ``predict`` handed to methods and metrics: counted, timed, interruptible, in one score space.

Every forward pass is also reported, under the model's name and ``method``, to the server's telemetry when the job
runs for an RPC (service.jobs.usage).
"""

from __future__ import annotations

import time
from typing import Sequence

import numpy as np
import onnxruntime as ort

from service.jobs import usage
from service.jobs.control import JobControl
from service.runtime.model import LoadedModel
from service.runtime.scores import ScoreSpace


class CountingPredict:
    def __init__(self, model: LoadedModel, control: JobControl, *, total: int, score_space: ScoreSpace,
                 batch_size: int | None, method: str, stage: str = "explain") -> None:
        """``method`` names what the passes are for in the server's statistics: the explanation method, or the
        job (``evaluate``, ``consistency``) where they serve several."""
        self.model, self.control = model, control
        self.total, self.score_space, self.batch_size, self.stage = total, score_space, batch_size, stage
        self.method = method
        self._usage = usage.current.get()
        self.passes = 0
        self.model_ms = 0.0
        # A cancel (the client left, or the deadline passed) also stops the session call in progress.
        self._run_options = ort.RunOptions()
        control.on_cancel(self._terminate)

    def _terminate(self) -> None:
        self._run_options.terminate = True

    def all_classes(self, pixels: np.ndarray) -> np.ndarray:
        """Scores of every class (N, classes); checks for cancellation and reports progress."""
        self.control.checkpoint()
        started = time.perf_counter()
        try:
            scores = self.model.predict(pixels, score_space=self.score_space, batch_size=self.batch_size,
                                        run_options=self._run_options)
        except Exception:  # onnxruntime's own types: a run stopped by the cancel above is the cancel
            if self.control.cancelled:
                self.control.checkpoint()
            raise
        seconds = time.perf_counter() - started
        self.model_ms += seconds * 1000.0
        self.passes += len(pixels)
        if self._usage is not None:
            self._usage.forward(self.model.info.name, self.method, len(pixels), seconds)
        self.control.report(self.stage, self.passes, self.total)
        return scores

    def finish(self) -> None:
        """The last progress event: done == total, even where the total was an upper bound (KernelSHAP
        enumerates all coalitions when there are fewer than its sample budget)."""
        self.total = self.passes
        self.control.report(self.stage, self.passes, self.total)

    def columns(self, classes: Sequence[int]):
        """A method's ``predict``: the scores of ``classes`` only, (N, T)."""
        classes = list(classes)
        return lambda pixels: self.all_classes(pixels)[:, classes]

    def score(self, class_index: int):
        """A metric's ``score``: one class's scores, (N,)."""
        return lambda pixels: self.all_classes(pixels)[:, class_index]
