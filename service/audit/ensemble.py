"""Ensembles in an audit: after the engine, each image's stored maps of the plan's methods are normalised and
aggregated (Mahlau & Nolde 2022), scored with the plan's metrics like any member, and stored as one more
method row, so the summary and the report compare the ensemble with its members. Runs in the driver, which
holds the store; like every result, a stored ensemble row is not computed again."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from service.audit.dataset import Item
from service.audit.engine import item_placement, item_seed, read_image
from service.audit.store import ResultStore
from service.ensembles.aggregate import AGGREGATORS, aggregate
from service.ensembles.normalise import NORMALISATIONS, normalise
from service.errors import InvalidArgument
from service.jobs.control import JobControl
from service.jobs.evaluate import EvaluateJob, MetricRequest, run_evaluate
from service.metrics import get_metric
from service.runtime.model import LoadedModel


@dataclass(frozen=True)
class EnsemblePlan:
    normalisation: str = "max_abs"
    aggregator: str = "mean"
    kappa: float = 1.0

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise InvalidArgument(f"{self.normalisation!r} is not one of {list(NORMALISATIONS)}", field="ensemble")
        if self.aggregator not in AGGREGATORS:
            raise InvalidArgument(f"{self.aggregator!r} is not one of {list(AGGREGATORS)}", field="ensemble")

    @property
    def label(self) -> str:
        kappa = f" kappa={self.kappa:g}" if self.aggregator in ("ucb", "lcb") else ""
        return f"ensemble {self.normalisation}/{self.aggregator}{kappa}"


def add_ensembles(models: list[LoadedModel], items: list[Item], members: list[str], ensemble: EnsemblePlan,
                  metrics: tuple[tuple[str, tuple], ...], seed: int, store: ResultStore,
                  control: JobControl | None = None) -> int:
    """Store the ensemble row of every (model, item) whose members are all stored; returns how many."""
    control = control or JobControl()
    requests = tuple(MetricRequest(get_metric(name), get_metric(name).make_params(dict(params)))
                     for name, params in metrics)
    done, added = store.done(), 0
    for model in models:
        for item in items:
            if (model.info.name, ensemble.label, item.item_id) in done:
                continue
            rows = store.member_rows(model.info.name, item.item_id, members)
            if len(rows) != len(members):
                continue
            control.checkpoint()
            started = time.perf_counter()
            first = rows[0]
            aggregated = aggregate(normalise(np.stack([r["map"] for r in rows]), ensemble.normalisation),
                                   ensemble.aggregator, kappa=ensemble.kappa)
            image, mask = read_image(model, item)
            wanted = tuple(r for r in requests if mask is not None or not r.metric.needs_mask)
            scored = run_evaluate(model, EvaluateJob(
                image, aggregated.astype(np.float32), wanted, first["predicted"], mask,
                seed=item_seed(seed, item.item_id),  # the members' seed: scored on their metric draws
                placement=item_placement(model, item)), control).scored if wanted else []
            store.add(model=model.info.name, method=ensemble.label, item=item.item_id, label=first["label"],
                      predicted=first["predicted"], score=first["score"],
                      metrics={s.result.name: s.result.score for s in scored},
                      curves={s.result.name: s.result.curve.tolist() for s in scored if s.result.curve is not None},
                      details={}, attribution=aggregated.astype(np.float32), seconds=time.perf_counter() - started)
            added += 1
    return added
