"""The audit's JSON summary, from the stored results: per model and method, accuracy, the mean of every metric
overall and per true class, and the cases worth a look (confidently wrong; worst by each metric)."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Iterable

import numpy as np

from service.audit.engine import PRECISION_DETAILS

WORST = 5


def summarise(rows: Iterable[dict[str, Any]], higher_is_better: dict[str, bool]) -> dict[str, Any]:
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for row in rows:
        groups[(row["model"], row["method"])].append(row)
    summary = []
    for (model, method), results in sorted(groups.items()):
        labelled = [r for r in results if r["correct"] is not None]
        metric_names = sorted({name for r in results for name in r["metrics"]})
        per_class = defaultdict(list)
        for r in labelled:
            per_class[r["label"]].append(r)
        wrong = sorted((r for r in labelled if not r["correct"]), key=lambda r: -r["score"])
        summary.append({
            "model": model, "method": method, "items": len(results),
            "accuracy": float(np.mean([r["correct"] for r in labelled])) if labelled else None,
            "metrics": {name: _mean(results, name) for name in metric_names},
            "per_class": {str(label): {"items": len(rs), "accuracy": float(np.mean([r["correct"] for r in rs])),
                                       "metrics": {name: _mean(rs, name) for name in metric_names}}
                          for label, rs in sorted(per_class.items())},
            "confidently_wrong": [_case(r) for r in wrong[:WORST]],
            "worst_by_metric": {name: [_case(r) for r in sorted(
                (r for r in results if name in r["metrics"] and np.isfinite(r["metrics"][name])),
                key=lambda r: r["metrics"][name] * (1 if higher_is_better.get(name, True) else -1))[:WORST]]
                for name in metric_names},
            "measures": _measures(results),
            **_precision(results),
            "certification": _certification(results),
            "seconds_per_item": float(np.mean([r["seconds"] for r in results])),
        })
    return {"groups": summary, "stability": _stability(groups)}


def _measures(results: list[dict]) -> dict[str, dict[str, float]]:
    """The summary of every per-image measure the results carry (their details, WCAM's and EVA's aside)."""
    from service.measures import summary as stats

    skipped = {"approximation_share", "adversarial_overlap", "epsilon", *PRECISION_DETAILS}
    names = sorted({k for r in results for k, v in r["details"].items() if isinstance(v, float) and k not in skipped})
    found = {name: stats([r["details"][name] for r in results if name in r["details"]]) for name in names}
    return {name: values for name, values in found.items() if values["count"]}  # none finite: nothing to say


def _certification(results: list[dict]) -> dict[str, Any] | None:
    """EVA's certified rate at the audit's radius: of the items whose ball the verifier bounded (whole model), how
    many it proved no perturbation in the ball can change the class; null for other methods. Every EVA result of
    an audit has one radius (calibrate_radius is refused), so the rate answers "at radius r, which images cannot
    change class?"."""
    found = [r for r in results if "ball_certified" in r["details"] and r["details"].get("certified")]
    if not found:
        return None
    radii = sorted({float(r["details"]["epsilon"]) for r in found})
    certified = sum(bool(r["details"]["ball_certified"]) for r in found)
    return {"radius": radii[0] if len(radii) == 1 else radii, "certified": certified, "items": len(found),
            "rate": certified / len(found)}


def _precision(results: list[dict]) -> dict[str, Any]:
    """The maps' reliability (mean, std, min, max, count over the results of a randomized method) and why their
    sampling stopped (how many reached the target, spent the cap, ran out of time); null and empty for a
    deterministic method, or a store written before results kept their precision."""
    from service.measures import summary as stats

    found = [r["details"]["reliability"] for r in results if "reliability" in r["details"]]
    reasons = Counter(r["details"]["stop_reason"] for r in results if "stop_reason" in r["details"])
    return {"reliability": stats(found) if found else None, "stop_reasons": dict(sorted(reasons.items()))}


def _stability(groups: dict[tuple[str, str], list[dict]]) -> dict[str, Any]:
    """Per method run on two models or more: SSIM between the maps of every pair of models, per image (the
    salience stability measure, over the audit's own models)."""
    from service.measures import summary as stats
    from service.measures.stability import stability

    by_method: dict[str, dict[str, dict[str, np.ndarray]]] = defaultdict(dict)
    for (model, method), results in groups.items():
        by_method[method][model] = {r["item"]: r["map"] for r in results}
    found = {}
    for method, models in sorted(by_method.items()):
        shapes = {next(iter(maps.values())).shape for maps in models.values() if maps}
        if len(models) < 2 or len(shapes) != 1:
            continue  # one model, or models of different input sizes: their maps do not compare pixel by pixel
        names = sorted(models)
        items = sorted(set.intersection(*(set(maps) for maps in models.values())))
        maps = np.stack([[models[name][item] for item in items] for name in names])  # (models, items, H, W)
        pairs = stability(maps)
        found[method] = {"models": names, "pairs_per_image": pairs.shape[1], **stats(pairs.ravel())}
    return found


def _mean(rows: list[dict], name: str) -> float | None:
    values = [r["metrics"][name] for r in rows if name in r["metrics"] and np.isfinite(r["metrics"][name])]
    return float(np.mean(values)) if values else None


def _case(row: dict) -> dict[str, Any]:
    """One result for the summary; a metric that is undefined for it (NaN: e.g. localisation of a map with no
    positive relevance) is null, so the summary stays valid JSON."""
    case = {key: row[key] for key in ("item", "label", "predicted", "score")}
    case["metrics"] = {k: (v if np.isfinite(v) else None) for k, v in row["metrics"].items()}
    return case
