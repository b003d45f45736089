"""Runs: one image, one model, several methods explained one after the other in a background thread.

Each method is one streamed Explain through the Python client; its progress events update the run's state,
which the page reads as server-sent events. Cancelling raises out of the progress callback, which ends the
stream: the client drops the call and the server cancels the job at its next batch. The methods of a run go one
at a time so that each sees the server as a request of its own would (and a run costs one worker at a time).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import grpc
from onnxplain_client import Cancellation, OnnxplainError

from service.ui.guard import Limits, Refusal, check_admission

log = logging.getLogger(__name__)

# The scores every map gets: what the page compares methods by (defaults as ListMethods states them).
METRICS: dict[str, dict[str, Any]] = {"deletion": {}, "insertion": {}, "mu_fidelity": {}}
OVERLAY_UPSCALE = 4  # small model inputs (64 px) are drawn at a size one can read


@dataclass
class MethodRun:
    name: str
    params: dict[str, Any]
    status: str = "queued"  # queued, running, done, error, cancelled
    stage: str = ""
    done: int = 0
    total: int = 0
    result: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def view(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "status": self.status, "stage": self.stage,
                "done": self.done, "total": self.total, "result": self.result, "error": self.error}


@dataclass
class Run:
    id: str
    model: str
    seed: int
    methods: list[MethodRun]
    image: bytes = field(repr=False)
    started: float = field(default_factory=time.monotonic)
    # Cancels the method in flight at once, even while it waits in the server's queue, and the methods after it.
    cancellation: Cancellation = field(default_factory=Cancellation)
    finished: bool = False
    version: int = 0  # bumped on every change: the event stream sends a state only when it changed
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def update(self, method: MethodRun | None = None, **changes: Any) -> None:
        with self.lock:
            for name, value in changes.items():
                setattr(method if method is not None else self, name, value)
            self.version += 1

    def view(self) -> tuple[int, dict[str, Any]]:
        with self.lock:
            done = sum(m.done if m.total else 0 for m in self.methods)
            total = sum(m.total for m in self.methods)
            # Each method is an equal share: whole once it ended (done, or refused: nothing left to do), else
            # its fraction of the forward passes it announced (none before its first event; a cancelled one
            # keeps the fraction it reached).
            shares = [1.0 if m.status in ("done", "error") else m.done / m.total if m.total else 0.0
                      for m in self.methods]
            percent = 100.0 * sum(shares) / len(shares)
            return self.version, {
                "id": self.id, "model": self.model, "seed": self.seed, "finished": self.finished,
                "cancelled": self.cancellation.cancelled, "percent": round(percent, 1),
                "done": done, "total": total, "elapsed_s": round(time.monotonic() - self.started, 3),
                "methods": [m.view() for m in self.methods]}


class RunStore:
    """The runs of this page, bounded by ``Limits``; finished runs expire."""

    def __init__(self, client, limits: Limits) -> None:
        self.client, self.limits = client, limits
        self._runs: dict[str, Run] = {}
        self._lock = threading.Lock()

    def active(self) -> int:
        with self._lock:
            return sum(not run.finished for run in self._runs.values())

    def start(self, model: str, image: bytes, methods: list[tuple[str, dict[str, Any]]], seed: int | None) -> Run:
        self.expire()
        with self._lock:
            check_admission(self.limits, sum(not r.finished for r in self._runs.values()), len(methods))
            # One seed for every method of the run, chosen here when the user gave none, and shown on the page.
            run = Run(uuid.uuid4().hex, model, seed if seed is not None else secrets.randbelow(2**31),
                      [MethodRun(name, params) for name, params in methods], image)
            self._runs[run.id] = run
        threading.Thread(target=self._explain_all, args=(run,), name=f"ui-run-{run.id[:8]}", daemon=True).start()
        return run

    def get(self, run_id: str) -> Run:
        with self._lock:
            run = self._runs.get(run_id)
        if run is None:
            raise Refusal(404, "NOT_FOUND", f"no run {run_id!r} (runs are forgotten after "
                                            f"{self.limits.run_ttl_s:.0f} s)", "run")
        return run

    def cancel(self, run_id: str) -> Run:
        run = self.get(run_id)
        run.cancellation.cancel()
        run.update()
        return run

    def expire(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            finished = sorted((r for r in self._runs.values() if r.finished), key=lambda r: r.started)
            # Sorted by start, the expired runs are a prefix: drop it, or more to keep at most max_kept_runs.
            expired = sum(now - run.started > self.limits.run_ttl_s for run in finished)
            for run in finished[:max(expired, len(finished) - self.limits.max_kept_runs)]:
                del self._runs[run.id]

    # --- the background thread ------------------------------------------------------------------------------
    def _explain_all(self, run: Run) -> None:
        try:
            for method in run.methods:
                if run.cancellation.cancelled:
                    run.update(method, status="cancelled")
                    continue
                self._explain_one(run, method)
        finally:
            run.update(finished=True)
            run.image = b""  # the picture is no longer needed: keep only the results

    def _explain_one(self, run: Run, method: MethodRun) -> None:
        run.update(method, status="running")

        def on_progress(progress) -> None:
            run.update(method, stage=progress.stage, done=progress.done, total=progress.total)

        try:
            explanation = self.client.explain(run.model, run.image, method.name, method.params, seed=run.seed,
                                              metrics=METRICS, on_progress=on_progress, cancel=run.cancellation)
            run.update(method, status="done", result=summary(explanation), done=method.total or 1,
                       total=method.total or 1)
        except grpc.RpcError as error:  # the server's refusal, shown as its status; or the user's cancel
            if run.cancellation.cancelled and error.code() == grpc.StatusCode.CANCELLED:
                run.update(method, status="cancelled")
                return
            run.update(method, status="error", error=refusal_body(error))
        except ValueError as error:  # an image the client cannot send (TensorError): nothing was sent
            run.update(method, status="error", error={"code": "INVALID_ARGUMENT", "message": str(error)})
        except Exception:  # a bug of the page: logged in full here, one line on the page
            log.exception("run %s, method %s", run.id, method.name)
            run.update(method, status="error", error={"code": "INTERNAL",
                                                      "message": "the page failed; its log has the details"})


def summary(explanation) -> dict[str, Any]:
    """What the page shows of one method's explanation: the overlay, the scores, the cost."""
    from service.render import heatmap, overlay
    from service.reports import png_uri

    attribution = explanation.attributions[0]
    precision = attribution.precision
    # A letterbox model's map is in the image's own frame, not the model input's: it is drawn on its own.
    picture = (overlay(explanation.image, attribution.map) if attribution.map.shape == explanation.image.shape[:2]
               else heatmap(attribution.map))
    return {
        "class_index": attribution.class_index, "label": attribution.label, "score": attribution.score,
        "metrics": {name: {"score": m.score, "standard_error": m.standard_error if m.HasField("standard_error")
                           else None} for name, m in attribution.metrics.items()},
        "reliability": precision.reliability if precision else None,
        "samples": precision.samples if precision else None,
        "max_samples": precision.max_samples if precision else None,
        "stop_reason": precision.stop_reason if precision else None,
        "forward_passes": explanation.forward_passes,
        "time_ms": explanation.timings.get("total_ms"),
        "seed": explanation.seed,
        "parameters": explanation.parameters,
        "overlay": png_uri(picture, upscale=OVERLAY_UPSCALE),
    }


def refusal_body(error: grpc.RpcError) -> dict[str, Any]:
    """The page's ``{code, field, message}`` of a server's refusal (the client raises OnnxplainError)."""
    refusal = error if isinstance(error, OnnxplainError) else OnnxplainError.from_rpc_error(error)
    return {"code": refusal.code_name, "field": refusal.field, "message": refusal.message}
