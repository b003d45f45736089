"""The ``predict`` handed to methods and metrics: counted, timed, interruptible, in the score space each use asks.

One job can use two spaces (an explanation on logits, its metrics on probabilities): every use names its space,
or takes the job's ``score_space``; a forward pass is counted once, whatever space its scores are served in.

Every forward pass is also reported, under the model's name and ``method``, to the server's telemetry when the job
runs for an RPC (service.jobs.usage).

Model time is the session's time for the job's own calls, not the wall time around them: a call that waited in
the model's batcher, or ran merged with other jobs' calls, is charged its share of each merged call's time in
proportion to its images there (service.runtime.batcher), so that the jobs' model times sum to the session's.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnxruntime as ort

from service.jobs import usage
from service.jobs.control import JobControl
from service.runtime.batcher import SessionMeter, meter
from service.runtime.model import LoadedModel
from service.runtime.scores import ModelOutputs, ScoreSpace


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

    def all_classes(self, pixels: np.ndarray, space: ScoreSpace | None = None) -> np.ndarray:
        """Scores of every class (N, classes) in ``space`` (default the job's); checks for cancellation and
        reports progress."""
        return self.outputs(pixels).scores(space or self.score_space)

    def outputs(self, pixels: np.ndarray) -> ModelOutputs:
        """The model's outputs for ``pixels``, from which every space is served: one counted set of passes."""
        self.control.checkpoint()
        session = SessionMeter()
        token = meter.set(session)
        try:
            outputs = self.model.outputs(pixels, batch_size=self.batch_size, run_options=self._run_options)
        except Exception:  # onnxruntime's own types: a run stopped by the cancel above is the cancel
            if self.control.cancelled:
                self.control.checkpoint()
            raise
        finally:
            meter.reset(token)
        seconds = session.seconds
        self.model_ms += seconds * 1000.0
        self.passes += len(pixels)
        if self._usage is not None:
            self._usage.forward(self.model.info.name, self.method, len(pixels), seconds)
        self.control.report(self.stage, self.passes, self.total)
        return outputs

    def finish(self) -> None:
        """The last progress event: done == total, even where the total was an upper bound (KernelSHAP
        enumerates all coalitions when there are fewer than its sample budget)."""
        self.total = self.passes
        self.control.report(self.stage, self.passes, self.total)

    def columns(self, classes: Sequence[int], space: ScoreSpace | None = None):
        """A method's ``predict``: the scores of ``classes`` only, (N, T), in ``space`` (default the job's)."""
        classes = list(classes)
        return lambda pixels: self.all_classes(pixels, space)[:, classes]

    def score(self, class_index: int, space: ScoreSpace | None = None):
        """A metric's ``score``: one class's scores, (N,), in ``space`` (default the job's)."""
        return lambda pixels: self.all_classes(pixels, space)[:, class_index]
