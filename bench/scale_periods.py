"""Does WCAM separate the texture periods of the bundled `scale_texture` model, and if not, why?

The model labels a scene by the period of its texture (models/make_scales.py): 2 px ("fine", only in the
Haar level-1 details) or 4 px ("coarse", only in level 2). The README once said WCAM puts 0.68-0.93 of the
importance in the level that holds the period; that was one seed. This study separates three suspects:

1. The model. A direct, non-sampled ablation by level (ground truth for "which level the model uses"): the
   label's logit on each sample with one level of the 3-level Haar transform zeroed (the approximation,
   level 3, 2 or 1), as WCAM's mask 0 on that level does, with both rescalings; and the model's accuracy on
   held-out scenes with one level's details removed.
2. The perturbation: WCAM with ``rescale`` 'clip' (onnxplain's default) and 'minmax' (the reference's), and
   with the approximation held intact (``keep_approximation`` False, the details explained on top of the
   intact coarse image).
3. The estimator: WCAM's level shares per sample over seeds at N = 8, 32, 128 Sobol' points (mean and sd),
   so noise (falls with N) is told from bias (does not).

    python bench/scale_periods.py                   # 5 seeds, N = 8 32 128 (about 5 minutes on 2 idle cores)
    python bench/scale_periods.py --sizes 512 --perturbations clip --samples 0 2 --json out.json

Prints the ablation, the held-out accuracies and one row per (perturbation, N, sample) with every level's share
as mean +- sd over seeds (levels: approximation, 3, 2, 1; the period's level is 1 for "fine", 2 for "coarse").
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))  # conftest.load_samples reads the bundled samples; references.spearman
sys.path.insert(0, str(ROOT / "models"))  # make_scales renders held-out scenes

LEVEL_NAMES = ("approx", "L3", "L2", "L1")  # the order of WCAM's level_importance
PERIOD_LEVEL = {"fine": 3, "coarse": 2}  # index into LEVEL_NAMES of the level that holds the period
PERTURBATIONS = {  # name: WcamParams overrides
    "clip": {"rescale": "clip"},
    "minmax": {"rescale": "minmax"},
    "clip, approx. held": {"rescale": "clip", "keep_approximation": False},
}


def texture_model():
    from service.runtime.loader import load_model

    path = ROOT / "models" / "scale_texture" / "model.onnx"
    return load_model("scale_texture", path.read_bytes(), source=str(path), model_path=path)


def logits(model, images: np.ndarray) -> np.ndarray:
    from service.runtime.scores import ScoreSpace

    return model.predict(np.ascontiguousarray(images, dtype=np.float32), score_space=ScoreSpace.LOGIT,
                         batch_size=256)


def without_level(image: np.ndarray, level: int, rescale: str) -> np.ndarray:
    """The image (H, W, C) rebuilt from its 3-level Haar transform with one level zeroed, as WCAM builds a
    sample whose masks are 0 on that level and 1 elsewhere (same transform, same rescaling). ``level``
    indexes LEVEL_NAMES; None zeroes nothing."""
    from service.explainers.wavelets import forward, inverse, make_layout, subbands
    from service.explainers.wcam import rescale as to_pixels

    layout = make_layout(*image.shape[:2], 3, "haar")
    coefficients = forward(np.moveaxis(image, -1, 0)[None].astype(np.float32), layout)
    bands = subbands(layout)  # approximation, then (H, V, D) for levels 3, 2, 1
    zeroed = [] if level is None else [bands[0]] if level == 0 else bands[3 * level - 2:3 * level + 1]
    for band in zeroed:
        coefficients[..., band.rows, band.cols] = 0.0
    return to_pixels(np.moveaxis(inverse(coefficients, layout), 1, -1), rescale)[0]


def ablation(model, samples: list[dict]) -> list[dict]:
    """Per sample and rescaling: the label's logit drop when each level is zeroed, and those drops' shares
    (of the absolute drops): the model's own answer to "which level does it use here"."""
    rows = []
    for sample in samples:
        image = sample["pixels"].astype(np.float32) / 255
        label = sample["label"]
        for rescale in ("clip", "minmax"):
            # The reference is the whole reconstruction: the image itself with 'clip', stretched with 'minmax'.
            scores = logits(model, np.stack([without_level(image, level, rescale) for level in (None, 0, 1, 2, 3)]))
            clean, scores = scores[0, label], scores[1:]
            drops = clean - scores[:, label]
            margins = scores[:, label] - scores[:, 1 - label]
            rows.append({"sample": sample["image"], "label": sample["label_name"], "rescale": rescale,
                         "clean_logit": float(clean), "drops": drops.tolist(),
                         "drop_shares": (np.abs(drops) / np.abs(drops).sum()).tolist(),
                         "flips": (margins < 0).tolist()})
    return rows


def heldout_accuracy(model, scenes: int, seed: int) -> dict:
    """Accuracy per true period on fresh scenes with one level's Haar details zeroed (the mean colour and the
    other levels kept, no clipping: the model's inputs are not clipped here, as in make_scales' checks)."""
    from make_scales import _haar_keep, make_dataset

    images, labels, _, _ = make_dataset("texture", scenes, seed)
    x = images.astype(np.float64) / 255
    variants = {"clean": x}
    for level in (1, 2, 3):
        variants[f"no L{level}"] = _haar_keep(x, lambda kept, level=level: kept != level, levels=3)
    result = {}
    for name, data in variants.items():
        predicted = logits(model, data).argmax(1)
        result[name] = {period: float((predicted[labels == k] == k).mean()) for k, period in
                        enumerate(("fine", "coarse"))}
    return result


def wcam_shares(model, samples: list[dict], sizes: list[int], seeds: int, perturbations: list[str]):
    """WCAM's level shares of the label, per perturbation, N, sample and seed (grid 8, 3 Haar levels): yields
    the rows of one (perturbation, N) at a time."""
    from service.explainers.wcam import METHOD, WcamParams

    for perturbation in perturbations:
        overrides = PERTURBATIONS[perturbation]
        for n in sizes:
            started, rows = time.perf_counter(), []
            for sample in samples:
                image = sample["pixels"].astype(np.float32) / 255
                label = sample["label"]
                predict = lambda x, label=label: logits(model, x)[:, label:label + 1]
                shares = []
                for seed in range(seeds):
                    params = WcamParams(num_designs=n, sufficient_image=False, target_reliability=0.0, **overrides)
                    output = METHOD.attribute(predict, image, params, baseline=None, batch_size=256,
                                              rng=np.random.default_rng(seed))
                    shares.append(output.details[0]["level_importance"])
                rows.append({"perturbation": perturbation, "n": n, "sample": sample["image"],
                             "label": sample["label_name"], "shares": shares})
            print(f"  ({perturbation}, N = {n}: {time.perf_counter() - started:.0f} s)", flush=True)
            yield rows


def report_model(ablations: list[dict], accuracy: dict) -> None:
    print("\nDirect ablation: the label's logit drop with one level zeroed (approx, L3, L2, L1); * = class flips")
    for row in ablations:
        drops = "  ".join(f"{d:+6.2f}{'*' if f else ' '}" for d, f in zip(row["drops"], row["flips"]))
        print(f"  {row['sample']} {row['label']:6s} {row['rescale']:6s} clean {row['clean_logit']:+6.2f}   {drops}")
    print("\nHeld-out accuracy with one level's details removed (fine / coarse):")
    for name, by_period in accuracy.items():
        print(f"  {name:6s}  {by_period['fine']:.3f} / {by_period['coarse']:.3f}")
    print("\nWCAM level shares, mean +- sd over seeds (approx, L3, L2, L1); period: share of the period's level; "
          "rank: Spearman of the mean shares with the ablation's drop shares over the four levels / over the three "
          "detail levels; top: WCAM's top detail level (mean shares) is the ablation's", flush=True)


def report_wcam(ablations: list[dict], rows: list[dict]) -> None:
    from references import spearman  # average ranks: ties (shares of 0.000) count once

    truth = {(r["sample"], r["rescale"]): np.array(r["drop_shares"]) for r in ablations}
    for row in rows:
        shares = np.array(row["shares"])
        mean, sd = shares.mean(0), shares.std(0, ddof=1)
        cells = "  ".join(f"{m:.3f}+-{s:.3f}" for m, s in zip(mean, sd))
        period = shares[:, PERIOD_LEVEL[row["label"]]]
        rescale = "minmax" if row["perturbation"] == "minmax" else "clip"
        drops = truth[(row["sample"], rescale)]
        rank, rank_details = spearman(mean, drops), spearman(mean[1:], drops[1:])
        top = np.argmax(mean[1:]) == np.argmax(drops[1:])
        print(f"  {row['perturbation']:18s} N={row['n']:4d} {row['sample']} {row['label']:6s} {cells}   "
              f"period {period.mean():.3f}+-{period.std(ddof=1):.3f} (min {period.min():.3f})   "
              f"rank {rank:+.2f} / {rank_details:+.2f}   top {'yes' if top else 'no'}", flush=True)
    # bench/README's column: per seed, over every (sample, level) pair of this (perturbation, N); with the
    # approximation held only the detail levels, since WCAM does not vary it.
    held = PERTURBATIONS[rows[0]["perturbation"]].get("keep_approximation") is False
    levels = slice(1, None) if held else slice(None)
    shares = np.array([row["shares"] for row in rows])[..., levels]  # (samples, seeds, levels)
    drops = np.array([truth[(row["sample"], "minmax" if row["perturbation"] == "minmax" else "clip")]
                      for row in rows])[:, levels]
    pooled = [spearman(shares[:, seed].ravel(), drops.ravel()) for seed in range(shares.shape[1])]
    print(f"  pooled rank vs ablation, per seed: {np.mean(pooled):.2f} +- {np.std(pooled, ddof=1):.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--perturbations", nargs="+", choices=list(PERTURBATIONS), default=list(PERTURBATIONS))
    parser.add_argument("--samples", type=int, nargs="+", help="sample indices (default: all four)")
    parser.add_argument("--scenes", type=int, default=1000, help="held-out scenes for the accuracy check")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    args = parser.parse_args()
    from conftest import load_samples

    model = texture_model()
    samples = load_samples("scale_texture")
    samples = [samples[i] for i in args.samples] if args.samples else samples
    started = time.perf_counter()
    ablations = ablation(model, samples)
    accuracy = heldout_accuracy(model, args.scenes, seed=2026)
    report_model(ablations, accuracy)
    wcam = []
    for rows in wcam_shares(model, samples, args.sizes, args.seeds, args.perturbations):
        report_wcam(ablations, rows)
        wcam += rows
        if args.json:  # after every N, so a long run leaves what it has measured
            args.json.write_text(json.dumps({"ablation": ablations, "heldout_accuracy": accuracy, "wcam": wcam}))
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
