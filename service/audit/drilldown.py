"""The report's per-image drill-down: which images it shows and what it shows of each.

A report of a 10,000-image audit cannot show every image and stay a file one opens: it shows the first ``CAP``
images (in item order) and, beyond them, every image the summary names (confidently wrong, worst by a metric),
so each link of the worst-maps tables lands on an entry. The page says how many it shows of how many.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from service.audit.pictures import Pictures

CAP = 200  # images shown beyond the ones the summary names


@dataclass
class Drilldown:
    entries: list[dict[str, Any]]
    anchors: dict[str, str]  # item id -> the id of its entry, for the links of the galleries and tables
    total: int  # images audited
    named: int  # images shown because the summary names them, beyond the first CAP


def anchor(index: int) -> str:
    """An entry's element id: from the item's position, since an item id is a user's path, not a safe id."""
    return f"item-{index}"


def named_items(summary: dict[str, Any]) -> set[str]:
    """Every item a summary names: confidently wrong or worst by a metric, in any group."""
    found = set()
    for group in summary["groups"]:
        found.update(case["item"] for case in group["confidently_wrong"])
        for cases in group["worst_by_metric"].values():
            found.update(case["item"] for case in cases)
    return found


def class_name(labels: list[str], index: int | None) -> str:
    if index is None:
        return "unlabelled"
    return labels[index] if 0 <= index < len(labels) else str(index)


def values(row: dict[str, Any]) -> list[tuple[str, Any]]:
    """Every metric and every scalar measure of one result, in name order; an undefined metric (NaN) is None."""
    metrics = [(name, None if isinstance(v, float) and not math.isfinite(v) else v)
               for name, v in sorted(row["metrics"].items())]
    details = [(name, v) for name, v in sorted(row["details"].items())
               if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    return metrics + details


def build(rows: list[dict], summary: dict[str, Any], labels: dict[str, list[str]], pictures: Pictures,
          cap: int = CAP) -> Drilldown:
    """The entries of the chosen images: each with its thumbnail, true class and, per model (side by side), the
    prediction and, per method, the overlay and every value."""
    by_item: dict[str, dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_item[row["item"]][row["model"]].append(row)
    items = sorted(by_item)
    named = named_items(summary)
    chosen = [(index, item) for index, item in enumerate(items) if index < cap or item in named]
    entries = []
    for index, item in chosen:
        models = by_item[item]
        first = next(iter(models.values()))[0]
        names = labels.get(first["model"], [])
        entries.append({
            "anchor": anchor(index), "item": item, "thumbnail": pictures.thumbnail(item),
            "label": class_name(names, first["label"]),
            "models": [_model_entry(model, results, labels.get(model, []), pictures)
                       for model, results in sorted(models.items())],
        })
    return Drilldown(entries, {item: anchor(index) for index, item in chosen}, len(items),
                     sum(1 for index, _ in chosen if index >= cap))


def _model_entry(model: str, results: list[dict], names: list[str], pictures: Pictures) -> dict[str, Any]:
    first = results[0]  # the prediction is the model's, the same for every method
    return {"model": model, "predicted": class_name(names, first["predicted"]), "score": first["score"],
            "correct": first["correct"],
            "methods": [{"method": r["method"], "overlay": pictures.overlay(r), "values": values(r)}
                        for r in sorted(results, key=lambda r: r["method"])]}
