"""Behaviour at scale: ``onnxplain measure`` (the five salience measures over images) and ``onnxplain aggregate``
(an ensemble of explanations, scored against its members)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from service.cli.common import connect, existing_files, fail, method_params, parse_params, progress_bar
from service.cli.explain import reliability_line


def _others(client, args: argparse.Namespace) -> list[str]:
    """The stability models' names on the server; in-process, each local model is loaded from the main model's
    folder."""
    if args.server:
        return list(args.stability_model)
    parent = Path(args.model).resolve().parent
    names = []
    for other in args.stability_model:
        path = Path(other).resolve()
        if path.parent != parent:
            fail(f"{other} must sit beside {args.model} (one models directory) without --server", "--stability-model")
        names.append(client.load_model(path.name).name)
    return names


def measure(args: argparse.Namespace) -> None:
    from google.protobuf import json_format

    from service import render

    params = method_params(args.method, args.param)
    existing_files(*args.images)
    with connect(args, args.model) as (client, name), progress_bar("measure") as on_progress:
        result = client.measure(name, [image.read_bytes() for image in args.images], args.method,
                                params, measures=args.measure,
                                stability_models=_others(client, args), seed=args.seed,
                                probabilities=args.probabilities, on_progress=on_progress)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{Path(args.model).stem}.{args.method}.measures"
    summary = json_format.MessageToDict(result, preserving_proto_field_name=True)
    (args.out / f"{stem}.json").write_text(json.dumps(summary, indent=2))
    figure = render.measures_figure(result, args.out / f"{stem}.png")
    print(f"{len(args.images)} images, {args.method}; {result.forward_passes} forward passes")
    for group in ("entropy", "out_of_set", "transforms", "stability", "degradation"):
        for series in getattr(result, group):
            print(f"  {group:12s} {series.name:28s} mean {series.summary.mean:8.4f}  std {series.summary.std:.4f}")
    if result.reliability.count:  # a randomized method: how noisy the maps measured were
        clean = [p.reliability for p in result.clean_precision]
        print(f"  clean maps: {reliability_line(clean)}; every map measured: reliability mean "
              f"{result.reliability.mean:.2f}, min {result.reliability.min:.2f} over {result.reliability.count} maps")
    print(f"figure: {figure}; values: {args.out / f'{stem}.json'}")


def aggregate(args: argparse.Namespace) -> None:
    import numpy as np
    from google.protobuf import json_format
    from onnxplain_client import from_tensor
    from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
    from onnxplain_client.enums import short_name

    from service import render

    methods = []
    for item in args.method:  # NAME or NAME:key=value,key=value (commas inside [...] belong to the value)
        name, _, raw = item.partition(":")
        methods.append((name, parse_params([p for p in re.split(r",(?![^\[]*\])", raw) if p])))
    existing_files(*args.images)
    with connect(args, args.model) as (client, name), progress_bar("aggregate") as on_progress:
        result = client.aggregate(name, [image.read_bytes() for image in args.images], methods=methods,
                                  normalisation=args.normalisation, aggregator=args.aggregator, kappa=args.kappa,
                                  absolute=args.absolute, metric=(args.metric, {}), search=args.search,
                                  seed=args.seed, probabilities=args.probabilities, return_members=True,
                                  validation_fraction=args.validation_fraction, num_splits=args.splits,
                                  split_seed=args.split_seed, on_progress=on_progress)
    args.out.mkdir(parents=True, exist_ok=True)
    members = from_tensor(result.member_maps)
    member_scores = from_tensor(result.member_scores)
    chosen = result.chosen
    normalisation = short_name("Normalisation", ex.Normalisation.Name(chosen.normalisation))
    aggregator = short_name("Aggregator", ex.Aggregator.Name(chosen.aggregator))
    label = f"{normalisation} / {aggregator}" + (f", kappa {chosen.kappa:g}" if aggregator in ("ucb", "lcb") else "")
    for i, image in enumerate(args.images):
        render.aggregate_figure(list(result.members), list(members[i]),
                                [*member_scores[i].tolist(), result.aggregate_scores[i]],
                                from_tensor(result.aggregates[i]), f"{result.metric}: {label}",
                                args.out / f"{image.stem}.aggregate.png")
        np.save(args.out / f"{image.stem}.aggregate.npy", from_tensor(result.aggregates[i]))
    summary = json_format.MessageToDict(result, preserving_proto_field_name=True)
    for key in ("member_maps", "aggregates"):
        summary.pop(key, None)
    (args.out / "aggregate.json").write_text(json.dumps(summary, indent=2))
    better = "higher" if result.higher_is_better else "lower"
    print(f"{result.metric} ({better} is better), mean over {len(args.images)} images:")
    # Per member, its maps' reliability over the images (nothing for a given map or a deterministic method).
    for column, (member, score) in enumerate(zip(result.members, member_scores.mean(axis=0))):
        entries = result.member_precision[column::len(result.members)]  # row-major [images, members]
        reliability = reliability_line([p.reliability for p in entries if p.max_samples])
        print(f"  {member:16s} {score:.4f}" + (f"  {reliability}" if reliability else ""))
    print(f"  aggregate        {chosen.score:.4f}  ({label}; in-sample gain over the best member {result.gain:+.4f})")
    if result.splits:  # chosen on selection images, scored on held-out ones
        held, inside = result.held_out_gain, result.selection_gain
        print(f"  held out over {held.splits} splits: gain {held.mean:+.4f} (sd {held.sd:.4f}); on the selection "
              f"images {inside.mean:+.4f} (sd {inside.sd:.4f})")
    if args.search:
        print(f"{len(result.table)} combinations scored; table in {args.out / 'aggregate.json'}")
