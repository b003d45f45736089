"""Scores of explanations: plain functions of maps, masks and (for fidelity) a batched score.

Each metric is one module found by its ``METRIC`` attribute (see ``base``);
helper modules (``curves``, ``regions``) and the map-to-map statistics of
``agreement`` define none.
"""

from __future__ import annotations

import importlib
import pkgutil

from service.errors import NotFound
from service.metrics.base import Metric


def _discover() -> dict[str, Metric]:
    metrics = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        metric = getattr(module, "METRIC", None)
        if isinstance(metric, Metric):
            metrics[metric.name] = metric
    return dict(sorted(metrics.items()))


METRICS: dict[str, Metric] = _discover()


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        raise NotFound(f"no metric {name!r}; available: {', '.join(METRICS)}", field="metric")
    return METRICS[name]
