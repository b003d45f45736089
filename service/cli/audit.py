"""``onnxplain audit``: a plan over a whole dataset, in-process, resumable, with a JSON summary."""

from __future__ import annotations

import argparse
import json
import re

from service.cli.common import parse_params


def _specs(items: list[str]) -> list[tuple[str, dict]]:
    """NAME or NAME:key=value,key=value (commas inside [...] belong to the value)."""
    specs = []
    for item in items:
        name, _, raw = item.partition(":")
        specs.append((name, parse_params([p for p in re.split(r",(?![^\[]*\])", raw) if p])))
    return specs


def audit(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from service.audit.dataset import load_dataset
    from service.audit.engine import AuditPlan, run_audit
    from service.audit.report import write_report
    from service.audit.store import ResultStore
    from service.audit.summary import summarise
    from service.metrics import METRICS
    from service.errors import NotFound
    from service.runtime.model import load_model

    items = load_dataset(args.dataset)
    models, paths = [], []
    for path in args.model:  # with their sidecars: preprocessing and labels
        path = (path / "model.onnx" if path.is_dir() else path).resolve()
        paths.append(path)
        if not path.is_file():
            raise NotFound(f"no model file at {str(path)!r}", field="model")
        name = path.parent.name if path.name == "model.onnx" else path.stem
        models.append(load_model(name, path.read_bytes(), source=str(path), model_path=path))
    plan = AuditPlan.build(_specs(args.method or ["occlusion"]), _specs(args.metric), args.seed)
    store = ResultStore(args.out / "results.sqlite",
                        plan.describe([m.info.name for m in models], [item.item_id for item in items]))
    try:
        with tqdm(total=len(models) * len(plan.methods) * len(items), desc="audit", unit="result",
                  disable=None) as bar:
            def on_result(done: int, total: int) -> None:
                bar.n = done
                bar.refresh()

            if args.engine == "ray":
                from service.audit.ray_engine import run_audit_ray

                computed = run_audit_ray([(m.info.name, path) for m, path in zip(models, paths)], items, plan,
                                         store, address=args.address, workers=args.workers, on_result=on_result)
            else:
                computed = run_audit(models, items, plan, store, on_result=on_result)
        rows = list(store.rows())
    finally:
        store.close()
    summary = summarise(rows, {name: metric.higher_is_better for name, metric in METRICS.items()})
    summary.update({"dataset": str(args.dataset), "computed_now": computed})
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    report = write_report(args.out / "report.html", summary, rows, {item.item_id: item.path for item in items},
                          {model.info.name: list(model.info.labels) for model in models})
    for group in summary["groups"]:
        accuracy = "n/a" if group["accuracy"] is None else f"{group['accuracy']:.3f}"
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in group["metrics"].items() if v is not None)
        print(f"{group['model']} / {group['method']}: {group['items']} items, accuracy {accuracy}; {metrics}")
    print(f"{computed} results computed now; {args.out / 'results.sqlite'}, {args.out / 'summary.json'}, {report}")
