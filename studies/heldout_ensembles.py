"""Held-out ensembles (issue 14): is an aggregate of saliency maps more faithful than its best member on images
it was not chosen on? (Mahlau & Nolde 2022, arXiv 2207.01565.)

    python studies/heldout_ensembles.py --quick            # minutes: 12 images per model, deletion only
    python studies/heldout_ensembles.py --out out.json     # 24 images per model, deletion and insertion

For each model, the Aggregate job (``service/jobs/aggregate.py``, in process) explains every image once with
occlusion, RISE and Sobol, scores every member and every normalisation x aggregator x kappa (91 combinations) by
the metric, and then splits the images ``SPLITS`` times at random into halves: the combination and the best single
member are chosen on one half (selection) and scored on the other (held out). Reported per model and metric:

- **in-sample gain**: the search's own gain on all the images (chosen and scored on them, as the README's);
- **selection gain**: per split, the same on the selection half (mean and sd over splits);
- **held-out gain**: per split, the half's choices scored on the other half (mean, sd, and the share of splits
  where it is > 0). Gains are signed so that > 0 means the aggregate is better than the best member.

Models: the bundled ``shapes``, ``digits``, ``scale_texture``, ``scale_shape`` on freshly generated images
(``models/scenes.py``, the sklearn digits, ``models/make_scales.py``: seeds apart from training), and the shapes
CNN exported at 224 x 224 (``bench/precision.py``'s ``shapes_at_224``) on 224^2 scenes. Nothing downloads.
Prints a markdown table; ``--out`` writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "models"))
from precision import bundled, shapes_at_224  # noqa: E402 - bench/precision.py: bundled models, the 224^2 CNN

from service.ensembles.validation import SplitSpec  # noqa: E402
from service.explainers import get_method  # noqa: E402
from service.jobs.aggregate import AggregateJob, AggregateResult, run_aggregate  # noqa: E402
from service.jobs.evaluate import MetricRequest  # noqa: E402
from service.metrics import get_metric  # noqa: E402

MODELS = ("shapes", "digits", "scale_texture", "scale_shape", "shapes224")
# Members at fixed counts (target_reliability 0: the same cost on every image), as tests/test_aggregate.py's.
METHODS = {64: {"occlusion": {"window": 8, "stride": 4}, "rise": {"num_masks": 500, "target_reliability": 0},
                "sobol": {"num_designs": 8, "target_reliability": 0}},
           224: {"occlusion": {"window": 28, "stride": 14}, "rise": {"num_masks": 500, "target_reliability": 0},
                 "sobol": {"num_designs": 8, "target_reliability": 0}}}
STEPS = 16  # deletion/insertion steps: as tests/test_aggregate.py's search
SPLITS = 10
VALIDATION_FRACTION = 0.5
IMAGE_SEED = 14_014  # apart from the models' training seeds


def images_for(name: str, model, count: int) -> list[np.ndarray]:
    """``count`` fresh images the model was built for, at its input size, pixels in [0, 1]."""
    if name in ("shapes", "shapes224"):
        from scenes import make_dataset

        raw = make_dataset(count, IMAGE_SEED, size=224 if name == "shapes224" else 64)[0]
    elif name == "digits":
        from make_digits import load_images

        raw = load_images()[0][-count:]  # the last digits of sklearn's set
    else:
        from make_scales import make_dataset

        raw = make_dataset(name.removeprefix("scale_"), count, IMAGE_SEED)[0]
    return [model.fit_image(np.asarray(image)) for image in raw]


def load(name: str, folder: Path):
    return shapes_at_224(folder) if name == "shapes224" else bundled(name)


def aggregate_job(images: list[np.ndarray], metric: str, seed: int, splits: int,
                  fraction: float = VALIDATION_FRACTION) -> AggregateJob:
    size = 224 if images[0].shape[0] >= 224 else 64
    definition = get_metric(metric)
    methods = tuple((get_method(name), get_method(name).make_params(params))
                    for name, params in METHODS[size].items())
    scored_by = MetricRequest(definition, definition.make_params({"steps": STEPS}))
    return AggregateJob(images=tuple(images), metric=scored_by,
                        methods=methods, search=True, seed=seed, batch_size=32,
                        split=SplitSpec(validation_fraction=fraction, num_splits=splits, seed=seed))


def summarise(model: str, result: AggregateResult, seconds: float) -> dict:
    label = lambda row: f"{row.normalisation}/{row.aggregator}" + (f"/{row.kappa:g}" if row.kappa else "")
    held = [s.held_out_gain for s in result.splits]
    chosen = Counter(label(result.table[s.chosen]) for s in result.splits).most_common(1)[0]
    best_member = Counter(result.member_labels[s.best_member] for s in result.splits).most_common(1)[0]
    sign = 1.0 if result.higher_is_better else -1.0
    member_means = result.member_scores.mean(axis=0)
    return {
        "model": model, "metric": result.metric, "images": len(result.class_indices), "splits": len(result.splits),
        "higher_is_better": result.higher_is_better,
        "members": dict(zip(result.member_labels, member_means.tolist())),
        "best_member_in_sample": result.member_labels[int(np.argmax(sign * member_means))],
        "chosen_in_sample": label(result.chosen), "chosen_score_in_sample": result.chosen.score,
        "in_sample_gain": result.gain,
        "selection_gain_mean": result.selection_gain.mean, "selection_gain_sd": result.selection_gain.sd,
        "held_out_gain_mean": result.held_out_gain.mean, "held_out_gain_sd": result.held_out_gain.sd,
        "held_out_gain_se": result.held_out_gain.standard_error,
        "held_out_positive": float(np.mean(np.array(held) > 0)),
        "held_out_gains": held, "selection_gains": [s.selection_gain for s in result.splits],
        "most_chosen": f"{chosen[0]} ({chosen[1]}/{len(result.splits)})",
        "most_best_member": f"{best_member[0]} ({best_member[1]}/{len(result.splits)})",
        "forward_passes": result.forward_passes, "seconds": seconds,
    }


def run_model(name: str, model, images: list[np.ndarray], metrics: tuple[str, ...], seed: int,
              splits: int) -> list[dict]:
    rows = []
    for metric in metrics:  # same seed: the same member maps under each metric
        started = time.perf_counter()
        result = run_aggregate(model, aggregate_job(images, metric, seed, splits))
        rows.append(summarise(name, result, time.perf_counter() - started))
        print(f"  {name} {metric}: {rows[-1]['seconds']:.0f} s", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| model | metric | images | best member (in sample) | in-sample gain | selection gain (sd) | "
             "held-out gain (sd) [SE] | held-out > 0 | most chosen (splits) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['metric']} | {r['images']} | {r['best_member_in_sample']} "
                     f"{r['members'][r['best_member_in_sample']]:.3f} | {r['in_sample_gain']:+.4f} | "
                     f"{r['selection_gain_mean']:+.4f} ({r['selection_gain_sd']:.4f}) | "
                     f"{r['held_out_gain_mean']:+.4f} ({r['held_out_gain_sd']:.4f}) [{r['held_out_gain_se']:.4f}] | "
                     f"{r['held_out_positive']:.0%} | {r['most_chosen']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="12 images per model, deletion only")
    parser.add_argument("--images", type=int, help="images per model (default 24, 12 with --quick)")
    parser.add_argument("--splits", type=int, default=SPLITS)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--metrics", nargs="+", choices=("deletion", "insertion"),
                        help="default deletion and insertion (deletion only with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    count = args.images or (12 if args.quick else 24)
    metrics = tuple(args.metrics or (("deletion",) if args.quick else ("deletion", "insertion")))
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            model = load(name, Path(folder))
            rows += run_model(name, model, images_for(name, model, count), metrics, args.seed, args.splits)
            if args.out:  # after every model: a long run interrupted keeps what it measured
                args.out.write_text(json.dumps(rows, indent=2))
    print(table(rows))


if __name__ == "__main__":
    main()
