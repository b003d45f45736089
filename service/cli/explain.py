"""``onnxplain explain``: maps as .npy, overlays, WCAM's pictures, EVA's bounds, and a JSON summary."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from service.cli.common import baseline, connect, existing_files, method_params, progress_bar


def explain(args: argparse.Namespace) -> None:
    import numpy as np

    from service import render

    params = method_params(args.method, args.param)
    existing_files(args.image)
    with connect(args, args.model) as (client, name), progress_bar(args.method) as on_progress:
        explanation = client.explain(name, args.image.read_bytes(), args.method, params, classes=args.classes,
                                     top_k=args.top_k, seed=args.seed, baseline=baseline(args.baseline),
                                     probabilities=args.probabilities, batch_size=args.batch_size,
                                     on_progress=on_progress)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{args.image.stem}.{explanation.method}"
    maps_path = args.out / f"{stem}.npy"
    np.save(maps_path, np.stack([a.map for a in explanation.attributions]))
    # A letterbox model's maps come in the image's own frame: drawn over the image as given.
    background = explanation.image if explanation.map_frame == "model_input" else _own_image(args.image)
    targets = []
    # With --json stdout is the JSON document alone (for jq and json.load); the lines for people go to stderr.
    with contextlib.redirect_stdout(sys.stderr if args.json else sys.stdout):
        for attribution in explanation.attributions:
            picture = render.save_png(render.overlay(background, attribution.map),
                                      args.out / f"{stem}.{attribution.class_index}.png", upscale=4)
            target = {"class_index": attribution.class_index, "label": attribution.label,
                      "score": attribution.score, "overlay": str(picture)}
            details = explanation.response.attributions[len(targets)]
            if details.HasField("wcam"):
                target.update(_wcam_outputs(explanation.image, attribution, details.wcam,
                                            args.out / f"{stem}.{attribution.class_index}"))
            if details.HasField("eva"):
                target.update(_eva_outputs(details.eva))
            if attribution.precision is not None:
                target["precision"] = _precision_summary(attribution.precision)
            targets.append(target)
            print(f"{attribution.label} (class {attribution.class_index}, score {attribution.score:.4f}): {picture}")
            if attribution.precision is not None:
                print(f"  {precision_line(attribution.precision)}")
        print(f"{explanation.forward_passes} forward passes in {explanation.timings.get('total_ms', 0):.0f} ms on "
              f"{explanation.provider}; seed {explanation.seed}; maps: {maps_path}")
    if args.json:
        summary = {"image": str(args.image), "method": explanation.method, "parameters": explanation.parameters,
                   "seed": explanation.seed, "forward_passes": explanation.forward_passes,
                   "provider": explanation.provider, "timings": explanation.timings, "baseline": explanation.baseline,
                   "maps": str(maps_path), "map_frame": explanation.map_frame, "targets": targets}
        (args.out / f"{stem}.json").write_text(json.dumps(summary, indent=2))
        print(json.dumps(summary, indent=2))


def _precision_summary(precision) -> dict[str, Any]:
    """A randomized method's precision for the JSON summary: everything but the standard error map, which is
    summarised by its mean and maximum (the maps' .npy holds the maps only)."""
    return {"reliability": precision.reliability, "target_reliability": precision.target_reliability,
            "samples": precision.samples, "max_samples": precision.max_samples,
            "forward_passes": precision.forward_passes, "rounds": precision.rounds,
            "stop_reason": precision.stop_reason, "samples_for_target": precision.samples_for_target,
            "standard_error_mean": float(precision.standard_error.mean()),
            "standard_error_max": float(precision.standard_error.max())}


STOPPED = {"reliability": "target reached", "samples": "cap spent", "time": "time limit",
           "exact": "exact, nothing sampled"}


def precision_line(precision) -> str:
    """One line: "reliability 0.91 (target 0.90); 1536/4000 samples; stopped: target reached"."""
    line = (f"reliability {precision.reliability:.2f} (target {precision.target_reliability:.2f}); "
            f"{precision.samples}/{precision.max_samples} samples; "
            f"stopped: {STOPPED.get(precision.stop_reason, precision.stop_reason)}")
    if precision.stop_reason != "reliability" and precision.samples_for_target > precision.samples:
        line += f" (about {precision.samples_for_target} would reach the target)"
    return line


def reliability_line(values: list[float]) -> str:
    """Several maps' reliability in ``precision_line``'s words: "reliability 0.91" for one map, "reliability
    mean 0.88, min 0.80 over 3 maps" for several; "" when none (a deterministic method)."""
    if not values:
        return ""
    if len(values) == 1:
        return f"reliability {values[0]:.2f}"
    return f"reliability mean {sum(values) / len(values):.2f}, min {min(values):.2f} over {len(values)} maps"


def _own_image(path: Path):
    import numpy as np
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _wcam_outputs(image, attribution, wcam, stem: Path) -> dict[str, Any]:
    """WCAM's pictures and numbers: the map over the transform, the scale profile, the sufficient image."""
    from onnxplain_client import from_tensor

    from service import render

    view, bands = render.wavelet_layout(image, wcam.levels, wcam.wavelet)
    bounds = [(b.rows.start, b.cols.start, b.rows.stop - b.rows.start, b.cols.stop - b.cols.start) for b in bands]
    figure = render.wcam_figure(image, view, from_tensor(wcam.wavelet_map), attribution.map,
                                list(wcam.level_importance), bounds,
                                f"{attribution.label}: {100 * wcam.approximation_share:.0f}% of the importance in "
                                "the approximation", Path(f"{stem}.wcam.png"))
    outputs = {"wcam_figure": str(figure), "level_importance": list(wcam.level_importance),
               "approximation_share": wcam.approximation_share, "sufficient_depth": wcam.sufficient_depth}
    if wcam.HasField("sufficient_image"):
        outputs["sufficient_image"] = str(render.save_png(from_tensor(wcam.sufficient_image),
                                                          Path(f"{stem}.sufficient.png"), upscale=4))
    print(f"  importance per level (approximation, coarse -> fine): "
          f"{' '.join(f'{v:.2f}' for v in wcam.level_importance)}; figure: {figure}")
    return outputs


def _eva_outputs(eva) -> dict[str, Any]:
    """EVA's numbers: the verified overlap of the whole ball and of each group held, and whether it is certified."""
    outputs = {"adversarial_overlap": eva.adversarial_overlap, "group_overlaps": list(eva.group_overlaps),
               "group_importance": list(eva.group_importance), "competitors": list(eva.competitors),
               "certified": eva.certified, "epsilon": eva.epsilon, "ball_certified": eva.ball_certified,
               "radius_source": eva.radius_source}
    if eva.ball_certified:
        verdict = "certified: no competitor can win"
    elif eva.adversarial_overlap >= 0:
        verdict = "not certified robust"
    else:
        verdict = "no competitor won (hybrid: not a proof)"
    print(f"  adversarial overlap bound {eva.adversarial_overlap:.4g} over the ball of radius "
          f"{eva.epsilon * 255:.3g}/255 ({eva.radius_source}; {verdict}); "
          f"bounds {'verified' if eva.certified else 'partly empirical (hybrid)'}")
    return outputs
