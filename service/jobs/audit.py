"""The Audit job as the server runs it: loaded models, a dataset inside the data directory, the embedded engine,
progress per result, cancellation between results."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from service.audit.dataset import Item
from service.audit.engine import AuditPlan
from service.audit.run import AuditOutcome, audit
from service.jobs.control import JobControl
from service.runtime.model import LoadedModel

STAGE = "audit"


@dataclass(frozen=True)
class AuditJob:
    models: tuple[LoadedModel, ...]
    items: tuple[Item, ...]
    plan: AuditPlan
    out: Path
    dataset: str  # as the caller named it


def run_audit_job(job: AuditJob, control: JobControl) -> AuditOutcome:
    return audit(list(job.models), list(job.items), job.plan, job.out, job.dataset, control=control,
                 on_result=lambda done, total: control.report(STAGE, done, total), out_field="name")
