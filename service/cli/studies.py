"""The studies: ``onnxplain consistency`` (baselines and parameters) and ``onnxplain scales`` (WCAM under
corruptions and zoom)."""

from __future__ import annotations

import argparse
import json

from service.cli.common import (baseline, connect, existing_files, fail, json_or_text, method_params, parse_params,
                                progress_bar)
from service.cli.explain import precision_line


def consistency(args: argparse.Namespace) -> None:
    import itertools

    import numpy as np
    from google.protobuf import json_format
    from onnxplain_client import from_tensor, precision

    from service import render

    shared = method_params(args.method, args.param)
    grid = {}
    for item in args.grid:
        key, _, raw = item.partition("=")
        if not key or not raw:
            fail(f"{item!r}: write NAME=V1,V2", "--grid")
        grid[key] = [json_or_text(v) for v in raw.split(",") if v]
    baselines = args.baseline or ["black", "dataset_mean", "blur"]
    settings = []
    for kind in baselines:
        for values in itertools.product(*grid.values()):
            varied = dict(zip(grid, values))
            label = " ".join([kind, *(f"{k}={v}" for k, v in varied.items())])
            settings.append({"method": args.method, "params": {**shared, **varied}, "baseline": baseline(kind),
                             "label": label})
    metric_baselines = [baseline(b) for b in (args.metric_baseline or ["black", "dataset_mean", "blur"])]
    existing_files(args.image)
    with connect(args, args.model) as (client, name), progress_bar("consistency") as on_progress:
        result = client.consistency(name, args.image.read_bytes(), settings, metric=(args.metric, {}),
                                    metric_baselines=metric_baselines, class_index=args.class_index, seed=args.seed,
                                    top_fraction=args.top_fraction, probabilities=args.probabilities,
                                    return_maps=True, on_progress=on_progress)
    size = len(result.settings)
    spearman = np.array(result.spearman.values).reshape(size, size)
    args.out.mkdir(parents=True, exist_ok=True)
    figure = render.consistency_figure(list(result.settings), [from_tensor(m) for m in result.maps], spearman,
                                       args.out / f"{args.image.stem}.consistency.png")
    summary = json_format.MessageToDict(result, preserving_proto_field_name=True)
    summary.pop("maps", None)
    for entry in summary.get("setting_precision", []):
        entry.pop("standard_error", None)  # a map per setting: the figure shows the maps, the JSON the numbers
    (args.out / f"{args.image.stem}.consistency.json").write_text(json.dumps(summary, indent=2))
    off_diagonal = spearman[~np.eye(size, dtype=bool)]
    print(f"{size} settings of {args.method} on {result.label} (class {result.class_index}); "
          f"{result.forward_passes} forward passes")
    print(f"Spearman between maps: mean {off_diagonal.mean():.3f}, min {off_diagonal.min():.3f}")
    for label, message in zip(result.settings, result.setting_precision):
        known = precision(message)
        if known is not None:  # a randomized method's setting: how far its own map would move with another seed
            print(f"  {label}: {precision_line(known)}")
    for ranking in result.rankings:
        order = ", ".join(result.settings[i] for i in np.argsort(ranking.ranks))
        print(f"{result.metric} under {ranking.baseline} baseline ranks: {order}")
    tau = np.array(result.kendall_tau.values).reshape(len(result.rankings), -1)
    if len(tau) > 1:
        print(f"Kendall tau between those rankings: mean {tau[~np.eye(len(tau), dtype=bool)].mean():.3f}")
    print(f"figure: {figure}")
    if args.json:
        print(json.dumps(summary, indent=2))


def scales(args: argparse.Namespace) -> None:
    from google.protobuf import json_format
    from onnxplain_client import from_tensor, precision

    from service import render

    wcam = parse_params(args.param)
    existing_files(args.image)
    with connect(args, args.model) as (client, name), progress_bar("scales") as on_progress:
        result = client.analyze_scales(name, args.image.read_bytes(), corruptions=args.corruption,
                                       severities=args.severity, zooms=args.zoom, wcam=wcam,
                                       class_index=args.class_index, seed=args.seed,
                                       probabilities=args.probabilities, return_maps=True, on_progress=on_progress)
    args.out.mkdir(parents=True, exist_ok=True)
    figure = render.scales_figure(
        [v.name for v in result.variants], [from_tensor(v.image) for v in result.variants],
        [from_tensor(v.map) for v in result.variants], [list(v.level_importance) for v in result.variants],
        [f"{v.predicted.label} ({v.target_score:.2f})" for v in result.variants],
        args.out / f"{args.image.stem}.scales.png")
    summary = json_format.MessageToDict(result, preserving_proto_field_name=True)
    for variant in summary["variants"]:
        for heavy in ("image", "map"):
            variant.pop(heavy, None)
        # WCAM's numbers (share intervals, resolved flags) and the precision stay; their pictures go.
        for heavy in ("wavelet_map", "sufficient_image"):
            variant.get("wcam", {}).pop(heavy, None)
        variant.get("precision", {}).pop("standard_error", None)
    (args.out / f"{args.image.stem}.scales.json").write_text(json.dumps(summary, indent=2))
    print(f"explaining {result.label} (class {result.class_index}); {result.forward_passes} forward passes")
    for variant in result.variants:
        profile = " ".join(f"{share:.2f}" for share in variant.level_importance)
        print(f"{variant.name:20} predicted {variant.predicted.label:12} score {variant.target_score:8.3f}  "
              f"importance per level (approximation, coarse -> fine): {profile}")
        resolved = "resolved" if variant.wcam.dominant_level_resolved else "not resolved"
        print(f"  {precision_line(precision(variant.precision))}; dominant level {resolved}")
    print(f"figure: {figure}")
    if args.json:
        print(json.dumps(summary, indent=2))
