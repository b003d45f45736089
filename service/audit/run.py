"""One audit from start to files: open (or resume) the store, run an engine, then write the summary and the
report. The CLI and the Audit RPC both call ``audit``."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from service.audit.dataset import Item
from service.audit.engine import AuditPlan, check_labels, run_audit
from service.audit.ensemble import EnsemblePlan, add_ensembles
from service.audit.report import write_report
from service.audit.store import ResultStore
from service.audit.summary import summarise
from service.errors import FailedPrecondition
from service.jobs.control import JobControl
from service.runtime.model import LoadedModel


@dataclass
class AuditOutcome:
    summary: dict[str, Any]
    results: Path
    summary_path: Path
    report: Path
    computed: int
    total: int


def audit(models: list[LoadedModel], items: list[Item], plan: AuditPlan, out: Path, dataset_label: str, *,
          engine: str = "embedded", model_files: list[Path] | None = None, address: str | None = None,
          workers: int = 2, control: JobControl | None = None,
          on_result: Callable[[int, int], None] | None = None, out_field: str = "out") -> AuditOutcome:
    check_labels(models, items)
    folder = out.resolve()
    with _writing_lock:
        if folder in _writing:
            raise FailedPrecondition(f"an audit is already writing to {out.name}; wait for it or use another",
                                     field=out_field)
        _writing.add(folder)
    try:
        return _audit(models, items, plan, out, dataset_label, engine=engine, model_files=model_files,
                      address=address, workers=workers, control=control, on_result=on_result, out_field=out_field)
    finally:
        with _writing_lock:
            _writing.discard(folder)


# Output folders an audit of this process is writing: a second audit into one is refused, not interleaved.
_writing: set[Path] = set()
_writing_lock = threading.Lock()


def _audit(models, items, plan, out, dataset_label, *, engine, model_files, address, workers, control, on_result,
           out_field) -> AuditOutcome:
    from service.metrics import METRICS

    store = ResultStore(out / "results.sqlite", plan.describe(models, items), out_field)
    try:
        if engine == "ray":
            from service.audit.ray_engine import run_audit_ray

            computed = run_audit_ray([(m.info.name, path) for m, path in zip(models, model_files or [])], items,
                                     plan, store, address=address, workers=workers, on_result=on_result)
        else:
            computed = run_audit(models, items, plan, store, control, on_result)
        if plan.ensemble is not None:
            computed += add_ensembles(models, items, [AuditPlan.label(n, p) for n, p in plan.methods],
                                      EnsemblePlan(*plan.ensemble), plan.metrics, plan.seed, store, control)
        rows = list(store.rows())
    finally:
        store.close()
    summary = summarise(rows, {name: metric.higher_is_better for name, metric in METRICS.items()})
    summary.update({"dataset": dataset_label, "computed_now": computed})
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(summary, indent=2, allow_nan=False))
    report = write_report(out / "report.html", summary, rows, {item.item_id: item.path for item in items},
                          {model.info.name: list(model.info.labels) for model in models})
    return AuditOutcome(summary, out / "results.sqlite", summary_path, report, computed, len(rows))
