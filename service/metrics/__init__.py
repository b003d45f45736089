"""Scores of explanations: plain functions of maps, masks and (for fidelity) a batched score.

Each metric is one module found by its ``METRIC`` attribute (see ``base``);
helper modules (``curves``, ``regions``) and the map-to-map statistics of
``agreement`` define none.
"""

from __future__ import annotations

from service.declared import discover, lookup
from service.metrics.base import Metric

METRICS: dict[str, Metric] = discover(__name__, __path__, "METRIC", Metric)


def get_metric(name: str) -> Metric:
    return lookup(METRICS, name, "metric")
