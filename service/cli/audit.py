"""``onnxplain audit``: a plan over a whole dataset, in-process, resumable, with a JSON summary."""

from __future__ import annotations

import argparse
import re

from service.cli.common import fail, new_bar, parse_params


def _specs(items: list[str]) -> list[tuple[str, dict]]:
    """NAME or NAME:key=value,key=value (commas inside [...] belong to the value)."""
    specs = []
    for item in items:
        name, _, raw = item.partition(":")
        specs.append((name, parse_params([p for p in re.split(r",(?![^\[]*\])", raw) if p])))
    return specs


def audit(args: argparse.Namespace) -> None:
    from service.audit.dataset import load_dataset
    from service.audit.engine import AuditPlan
    from service.audit.ensemble import EnsemblePlan
    from service.audit.run import audit as run
    from service.cli.overrides import parse_overrides
    from service.runtime.loader import load_model

    overrides = parse_overrides(args.overrides)
    if overrides and args.engine == "ray":
        from service.errors import InvalidArgument

        raise InvalidArgument("is not passed to Ray actors, which load each model with its sidecar; put the "
                              "overrides in the model's sidecar", field="--set")
    if not args.dataset.exists():
        fail(f"{args.dataset}: No such file or directory", "DATASET")
    items = load_dataset(args.dataset)
    models, paths = [], []
    for path in args.model:  # with their sidecars: preprocessing and labels
        path = (path / "model.onnx" if path.is_dir() else path).resolve()
        if not path.is_file():
            fail(f"no model file at {str(path)!r}", "--model")
        name = path.parent.name if path.name == "model.onnx" else path.stem
        models.append(load_model(name, path.read_bytes(), source=str(path), model_path=path,
                                 overrides=overrides))
        paths.append(path)
    ensemble = None
    if args.ensemble:  # NORMALISATION/AGGREGATOR[/KAPPA]
        parts = args.ensemble.split("/")
        ensemble = (parts[0], parts[1] if len(parts) > 1 else "mean", float(parts[2]) if len(parts) > 2 else 1.0)
        EnsemblePlan(*ensemble)  # checks the names before any work
    scales = None
    if args.corruption or args.zoom:
        scales = (tuple(args.corruption), tuple(args.severity or [3]), tuple(args.zoom), args.scale_designs)
    plan = AuditPlan.build(_specs(args.method or ["occlusion"]), _specs(args.metric), args.seed, args.measure,
                           ensemble, scales)
    with new_bar("audit", total=len(models) * len(plan.methods) * len(items), unit="result") as bar:
        def on_result(done: int, total: int) -> None:
            bar.total, bar.n = total, done  # the engine knows the total, scale analyses included
            bar.refresh()

        outcome = run(models, items, plan, args.out, str(args.dataset), engine=args.engine, model_files=paths,
                      address=args.address, workers=args.workers, on_result=on_result)
    for group in outcome.summary["groups"]:
        accuracy = "n/a" if group["accuracy"] is None else f"{group['accuracy']:.3f}"
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in group["metrics"].items() if v is not None)
        found = group.get("reliability")  # a randomized method's maps, over the items (explain's wording)
        reliability = "" if not found else (f"; reliability mean {found['mean']:.2f}, min {found['min']:.2f} "
                                            f"over {found['count']} maps")
        print(f"{group['model']} / {group['method']}: {group['items']} items, accuracy {accuracy}; {metrics}"
              f"{reliability}")
    print(f"{outcome.computed} results computed now; {outcome.results}, {outcome.summary_path}, {outcome.report}")
