"""WCAM's three uses (Kasmi et al. 2023), tested on the bundled scale models (issue 14).

The paper uses WCAM's scale profile to (1) explain why a prediction fails under a corruption, (2) find the
sufficient information (the fewest wavelet coefficients, ranked by WCAM, that keep the prediction) and (3)
explain what zooming in does. The bundled models have a known truth (models/make_scales.py): `scale_texture`
labels a texture's period, 2 px ("fine": Haar level 1 only) or 4 px ("coarse": level 2 only); `scale_shape`
labels a large soft shape (disc or bar: the approximation and level 3). Every WCAM here is the service's own
scale analysis (``service.jobs.scales.run_scales``: the clean image and its variants explained for the clean
prediction with one seed), on fresh scenes rendered by make_scales (a different set per seed).

1. Corruption. Per (model, corruption, class) where the corruption flips part of the class (measured on a pool
   of scenes first), equal numbers of flipped and unflipped scenes are explained clean and corrupted; reported:
   the shift of each level's share (corrupted - clean) and of the mean level (the shares' weighted level, 4 =
   approximation ... 1 = finest), flipped vs unflipped, and the clean shares of both groups.
2. Sufficient image. Its share of the coefficients (depth / grid^2: on the sub-band-aligned grid every cell
   holds as many coefficients) and how often it keeps the clean arg-max, against the same number of random
   cells (random_draws draws per image) and against a random order's own sufficient depth (same criterion as
   WCAM's: the class's logit reaches its logit on the whole reconstruction).
3. Zoom. The scale job's zoom (the central 1/z resized back): each level's share and the mean level before and
   after, per class, and the accuracy before and after on a larger pool (for `scale_texture`, also against the
   period after zoom: 2 px becomes 2z px).

Every number is a mean over images within a seed, then mean +- sd over seeds.

    python studies/wcam_uses.py --quick                  # a few minutes on 2 idle cores
    python studies/wcam_uses.py --out studies/wcam_uses.json   # about 9 minutes under contention
    python studies/wcam_uses.py --models shape --held-approximation --out studies/wcam_uses_shape_held.json
    python studies/wcam_uses.py --report studies/wcam_uses.json   # the tables again, from a saved run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models"))  # make_scales renders the scenes
sys.path.insert(0, str(ROOT / "bench"))  # scale_periods: the level names and the logits helper

from make_scales import PERIODS, make_dataset
from scale_periods import LEVEL_NAMES, logits

from service.corruptions import Corruption, corrupt, zoom
from service.explainers.sensitivity import upsample_nearest
from service.explainers.wavelets import make_layout
from service.explainers.wcam import WcamParams, reconstruction, resolved_grid
from service.jobs.scales import ScaleJob, Variant, run_scales

MODELS = {"texture": "scale_texture", "shape": "scale_shape"}
LEVEL_DEPTH = np.array([4.0, 3.0, 2.0, 1.0])  # LEVEL_NAMES' order: approximation, L3, L2, L1 (1 = finest)
# (model, corruption, severity, class explained): the settings where the corruption flips part of one class,
# measured on 200 scenes per model (seed 1000): texture blur 1 flips 38% of "coarse" and no "fine"; noise 2 flips
# 51% of "coarse"; shape blur 5 flips 36% of bars, noise 5 28% of discs and 49% of bars, contrast 1 64% of bars
# (contrast scales every level alike: the control). JPEG flips at most 13% of a class at severity 5: too few.
CORRUPTIONS = (
    ("texture", Corruption.GAUSSIAN_BLUR, 1, 1),
    ("texture", Corruption.GAUSSIAN_NOISE, 2, 1),
    ("shape", Corruption.GAUSSIAN_BLUR, 5, 1),
    ("shape", Corruption.GAUSSIAN_NOISE, 5, 1),
    ("shape", Corruption.CONTRAST, 1, 1),
)
ZOOM = 2.0
CLASSES = (("texture", 0), ("texture", 1), ("shape", 0), ("shape", 1))
POOL = 96  # scenes per seed from which the flipped and unflipped ones are drawn


@dataclass(frozen=True)
class Size:
    seeds: int
    per_group: int  # flipped (and unflipped) scenes per corruption setting and seed
    per_class: int  # scenes per (model, class) and seed for the sufficient image and the zoom
    designs: int
    zoom_pool: int  # scenes per seed for the zoom accuracy
    corruptions: tuple = CORRUPTIONS
    classes: tuple = CLASSES  # (model, class) explained for the sufficient image and the zoom
    random_draws: int = 8  # random cell sets (and random orders) per image for the sufficient image
    # False holds the approximation intact (WCAM's keep_approximation): the shares are then over the details only,
    # which is the condition under which a model whose class lives in the coarse scales gets a profile at all (at
    # grid 8 the 8x8 approximation block of a 64-px image is one cell, and removing it removes the whole picture).
    keep_approximation: bool = True


FULL = Size(seeds=3, per_group=3, per_class=3, designs=16, zoom_pool=400)
QUICK = Size(seeds=3, per_group=2, per_class=2, designs=8, zoom_pool=200,
             corruptions=CORRUPTIONS[:1] + CORRUPTIONS[2:3])


def load(task: str):
    from service.runtime.loader import load_model

    path = ROOT / "models" / MODELS[task] / "model.onnx"
    return load_model(MODELS[task], path.read_bytes(), source=str(path), model_path=path)


def scenes(task: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` fresh scenes of ``task`` as float32 (N, 64, 64, 3) in [0, 1], and their labels."""
    images, labels, _, _ = make_dataset(task, n, 1000 + seed)
    return images.astype(np.float32) / 255, labels


def params(size: Size, sufficient: bool = False) -> WcamParams:
    # target_reliability 0: every image gets the whole num_designs, so the seeds compare at one N.
    return WcamParams(num_designs=size.designs, target_reliability=0.0, sufficient_image=sufficient,
                      keep_approximation=size.keep_approximation)


def detail_level(shares) -> float:
    """The detail levels' share-weighted level (3 = coarsest detail ... 1 = finest), the approximation left
    out: where along the details the importance sits. NaN when the details hold no importance."""
    details = np.asarray(shares)[1:]
    total = details.sum()
    return float(details @ LEVEL_DEPTH[1:] / total) if total > 1e-6 else float("nan")


def profiles(model, image: np.ndarray, variant: Variant, size: Size, seed: int, sufficient: bool = False):
    """The scale job on (clean, variant): its rows (clean first)."""
    return run_scales(model, ScaleJob(image, params(size, sufficient), (Variant("clean"), variant), seed=seed)).rows


# --- 1. corruption ------------------------------------------------------------------------------------------

def corruption_use(models: dict, size: Size, seed: int) -> list[dict]:
    """Per corruption setting: level-share shifts of ``per_group`` flipped and unflipped scenes of the class."""
    found = []
    for task, corruption, severity, label in size.corruptions:
        model = models[task]
        images, labels = scenes(task, POOL, seed)
        rng = np.random.default_rng(seed)
        corrupted = np.stack([corrupt(image, corruption, severity, rng) for image in images])
        clean_pred, corrupted_pred = logits(model, images).argmax(1), logits(model, corrupted).argmax(1)
        eligible = (labels == label) & (clean_pred == label)
        flipped = np.flatnonzero(eligible & (corrupted_pred != label))[:size.per_group]
        kept = np.flatnonzero(eligible & (corrupted_pred == label))[:size.per_group]
        variant = Variant(f"{corruption.value} {severity}", corruption, severity)
        # The job corrupts from its own stream (noise differs from the pool's draw): a scene's group is whether
        # the job's own corrupted picture flips.
        measured = {True: ([], []), False: ([], [])}
        for index in np.concatenate([flipped, kept]):
            rows = profiles(model, images[index], variant, size, seed)
            before, after = (np.array(row.details["level_importance"]) for row in rows)
            clean, shift = measured[rows[1].predicted.class_index != rows[0].predicted.class_index]
            clean.append(before)
            shift.append(after - before)
        groups = {name: {"n": len(measured[flip][0]),
                         "clean_shares": np.mean(measured[flip][0], 0).tolist() if measured[flip][0] else None,
                         "shift": np.mean(measured[flip][1], 0).tolist() if measured[flip][1] else None}
                  for name, flip in (("flipped", True), ("unflipped", False))}
        found.append({"model": task, "corruption": corruption.value, "severity": severity, "label": label,
                      "flip_rate": float(np.mean(corrupted_pred[eligible] != label)), **groups})
    return found


# --- 2. sufficient image ------------------------------------------------------------------------------------

def random_baseline(model, image: np.ndarray, label: int, depth: int, size: Size, rng: np.random.Generator):
    """(arg-max kept by ``depth`` random cells, their logit reaching the whole reconstruction's, a random
    order's sufficient depth), each averaged over random_draws draws."""
    settings = params(size)
    grid = resolved_grid(settings, image.shape)
    images = reconstruction(image, make_layout(*image.shape[:2], settings.levels, settings.wavelet), settings)
    cells = grid * grid
    reference = logits(model, images(np.ones((1, *image.shape[:2]), np.float32)))[0, label]
    orders = np.stack([rng.permutation(cells) for _ in range(size.random_draws)])  # (R, g^2): rank of each cell
    # Every depth 1 ... g^2 of every order: keep the cells whose rank is below the depth.
    depths = np.arange(1, cells + 1)
    keep = (orders[:, None, :] < depths[None, :, None]).reshape(-1, grid, grid).astype(np.float32)
    scores = logits(model, images(upsample_nearest(keep, image.shape[:2]))).reshape(size.random_draws, cells, -1)
    at_depth = scores[:, depth - 1]
    reaching = scores[:, :, label] >= reference
    random_depth = np.where(reaching.any(1), reaching.argmax(1) + 1, cells)
    return (float(np.mean(at_depth.argmax(1) == label)), float(np.mean(at_depth[:, label] >= reference)),
            float(np.mean(random_depth)) / cells)


# --- 3. zoom ------------------------------------------------------------------------------------------------

def zoom_truth(task: str, labels: np.ndarray) -> np.ndarray | None:
    """For ``texture``, the class of the period after zoom (-1 where 2z px is neither period); else None."""
    if task != "texture":
        return None
    zoomed = np.array(PERIODS)[labels] * ZOOM
    return np.array([PERIODS.index(int(p)) if p in PERIODS else -1 for p in zoomed])


def zoom_and_sufficient_use(models: dict, size: Size, seed: int) -> list[dict]:
    """Per model and class: level shares before and after zoom, the sufficient image against random cells,
    and the accuracy on ``zoom_pool`` scenes before and after zoom."""
    found = []
    rng = np.random.default_rng(10_000 + seed)
    for task, label in size.classes:
        model = models[task]
        images, labels = scenes(task, size.zoom_pool, seed)
        zoomed = np.stack([zoom(image, ZOOM) for image in images])
        clean_pred, zoom_pred = logits(model, images).argmax(1), logits(model, zoomed).argmax(1)
        truth = zoom_truth(task, labels)
        of_class = labels == label
        row = {"model": task, "label": label, "accuracy": float(np.mean(clean_pred[of_class] == label)),
               "zoom_accuracy": float(np.mean(zoom_pred[of_class] == label))}
        if truth is not None:
            defined = of_class & (truth >= 0)
            row["zoom_accuracy_vs_zoomed_period"] = (float(np.mean(zoom_pred[defined] == truth[defined]))
                                                     if defined.any() else None)
        before, after, share, kept, random_kept, random_reached, random_share = ([] for _ in range(7))
        for index in np.flatnonzero(of_class & (clean_pred == label))[:size.per_class]:
            rows = profiles(model, images[index], Variant(f"zoom {ZOOM:g}x", zoom=ZOOM), size, seed,
                            sufficient=True)
            before.append(rows[0].details["level_importance"])
            after.append(rows[1].details["level_importance"])
            details = rows[0].details
            depth, grid = details["sufficient_depth"], details["grid_size"]
            if depth < 1:  # no sufficient set among the positive cells: counted as every coefficient
                share.append(1.0)
                kept.append(0.0)
                continue
            share.append(depth / grid**2)
            kept.append(float(logits(model, details["sufficient_image"][None]).argmax(1)[0] == label))
            measured = random_baseline(model, images[index], label, depth, size, rng)
            for values, value in zip((random_kept, random_reached, random_share), measured):
                values.append(value)
        row.update({"n": len(before), "shares": np.mean(before, 0).tolist(),
                    "zoom_shares": np.mean(after, 0).tolist(), "sufficient_share": float(np.mean(share)),
                    "sufficient_kept": float(np.mean(kept)),
                    "random_kept": float(np.mean(random_kept)), "random_reached": float(np.mean(random_reached)),
                    "random_order_share": float(np.mean(random_share))})
        found.append(row)
    return found


# --- summary ------------------------------------------------------------------------------------------------

def spread(values) -> tuple[float, float]:
    values = np.asarray([v for v in values if v is not None and not np.isnan(v)], dtype=np.float64)
    if not len(values):
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def fmt(values, digits: int = 2) -> str:
    mean, sd = spread(values)
    return f"{mean:+.{digits}f} ± {sd:.{digits}f}"


def fmt_shares(vectors) -> str:
    vectors = np.asarray(vectors)
    return " / ".join(f"{m:.2f}±{s:.2f}" for m, s in zip(vectors.mean(0), vectors.std(0, ddof=1)))


def detail_shift(group: dict) -> float:
    """The detail level of a group's mean corrupted profile minus its mean clean profile's."""
    clean = np.asarray(group["clean_shares"])
    return detail_level(clean + np.asarray(group["shift"])) - detail_level(clean)


def corruption_effects(runs: list[list[dict]]) -> list[dict]:
    """Per corruption setting, one value per seed (seeds with both groups): the approximation's share shift of the
    flipped and unflipped scenes and their difference, the detail-level shifts, and the clean profiles."""
    effects = []
    for position in range(len(runs[0])):
        per_seed = [run[position] for run in runs]
        first = per_seed[0]
        usable = [r for r in per_seed if r["flipped"]["n"] and r["unflipped"]["n"]]
        # The approximation's share: what a move of importance "from fine to coarse" raises.
        flipped = [r["flipped"]["shift"][0] for r in usable]
        unflipped = [r["unflipped"]["shift"][0] for r in usable]
        setting = f"{first['model']}: {first['corruption']} {first['severity']}, class {first['label']}"
        effects.append({"setting": setting,
                        "flip_rate": [r["flip_rate"] for r in per_seed], "seeds": len(usable),
                        "n": (sum(r["flipped"]["n"] for r in usable), sum(r["unflipped"]["n"] for r in usable)),
                        "shift_flipped": [r["flipped"]["shift"] for r in usable],
                        "shift_unflipped": [r["unflipped"]["shift"] for r in usable],
                        "clean_flipped": [r["flipped"]["clean_shares"] for r in usable],
                        "clean_unflipped": [r["unflipped"]["clean_shares"] for r in usable],
                        "approximation_shift_flipped": flipped, "approximation_shift_unflipped": unflipped,
                        "approximation_difference": [f - u for f, u in zip(flipped, unflipped)],
                        "detail_shift_flipped": [detail_shift(r["flipped"]) for r in usable],
                        "detail_shift_unflipped": [detail_shift(r["unflipped"]) for r in usable],
                        "clean_approximation_difference": [
                            r["flipped"]["clean_shares"][0] - r["unflipped"]["clean_shares"][0] for r in usable]})
    return effects


def zoom_detail_shift(group: list[dict]) -> list[float]:
    """Per seed: the detail level after zoom minus before (positive: importance moved to coarser details)."""
    return [detail_level(g["zoom_shares"]) - detail_level(g["shares"]) for g in group]


def report(corruption_runs: list[list[dict]], zoom_runs: list[list[dict]]) -> dict:
    levels = " / ".join(LEVEL_NAMES)
    effects = corruption_effects(corruption_runs)
    print(f"\n### 1. Corruption: level-share shift (corrupted - clean), {levels}; "
          "Δ approx = the approximation's share\n")
    print("| setting | flip rate | flipped / unflipped | shift, flipped | shift, unflipped | Δ approx, flipped "
          "| Δ approx, unflipped | flipped - unflipped | Δ detail level, flipped | Δ detail level, unflipped "
          "| clean approx share, flipped - unflipped |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for e in effects:
        print(f"| {e['setting']} | {fmt(e['flip_rate'])} | {e['n'][0]} / {e['n'][1]} "
              f"| {fmt_shares(e['shift_flipped'])} | {fmt_shares(e['shift_unflipped'])} "
              f"| {fmt(e['approximation_shift_flipped'])} | {fmt(e['approximation_shift_unflipped'])} "
              f"| {fmt(e['approximation_difference'])} "
              f"| {fmt(e['detail_shift_flipped'])} | {fmt(e['detail_shift_unflipped'])} "
              f"| {fmt(e['clean_approximation_difference'])} |")
    print(f"\nClean level shares ({levels}), flipped vs unflipped:\n")
    print("| setting | clean shares, flipped | clean shares, unflipped |")
    print("|---|---|---|")
    for e in effects:
        print(f"| {e['setting']} | {fmt_shares(e['clean_flipped'])} | {fmt_shares(e['clean_unflipped'])} |")

    rows = [list(group) for group in zip(*zoom_runs)]  # per (model, label): one row per seed
    print("\n### 2. Sufficient image (clean scenes): share of the coefficients and arg-max kept\n")
    print("| model | class | images | sufficient share (WCAM order) | kept, WCAM top cells | kept, as many random "
          "cells | random cells reach the logit | random order's sufficient share |")
    print("|---|---|---|---|---|---|---|---|")
    for group in rows:
        r = group[0]
        print(f"| {r['model']} | {r['label']} | {sum(g['n'] for g in group)} "
              f"| {fmt([g['sufficient_share'] for g in group])} | {fmt([g['sufficient_kept'] for g in group])} "
              f"| {fmt([g['random_kept'] for g in group])} | {fmt([g['random_reached'] for g in group])} "
              f"| {fmt([g['random_order_share'] for g in group])} |")
    print(f"\n### 3. Zoom {ZOOM:g}x: level shares ({levels}) and accuracy\n")
    print("| model | class | shares, clean | shares, zoomed | detail level, clean | Δ detail level | accuracy clean "
          "| accuracy zoomed | zoomed vs the zoomed period |")
    print("|---|---|---|---|---|---|---|---|---|")
    for group in rows:
        r = group[0]
        shift = zoom_detail_shift(group)
        period = [g.get("zoom_accuracy_vs_zoomed_period") for g in group]
        print(f"| {r['model']} | {r['label']} | {fmt_shares([g['shares'] for g in group])} "
              f"| {fmt_shares([g['zoom_shares'] for g in group])} "
              f"| {fmt([detail_level(g['shares']) for g in group])} | {fmt(shift)} "
              f"| {fmt([g['accuracy'] for g in group])} | {fmt([g['zoom_accuracy'] for g in group])} "
              f"| {fmt(period) if any(p is not None for p in period) else 'n/a'} |")
    return {"corruption": effects, "zoom_and_sufficient": rows}


def run(size: Size, models: dict | None = None) -> dict:
    models = models or {task: load(task) for task in MODELS}
    corruption_runs, zoom_runs = [], []
    for seed in range(size.seeds):
        started = time.perf_counter()
        corruption_runs.append(corruption_use(models, size, seed))
        zoom_runs.append(zoom_and_sufficient_use(models, size, seed))
        print(f"(seed {seed}: {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    return {"corruption_runs": corruption_runs, "zoom_runs": zoom_runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="two corruption settings, 2 scenes per group, N = 8")
    parser.add_argument("--seeds", type=int, help="override the seeds (at least 3 for a spread)")
    parser.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    parser.add_argument("--held-approximation", action="store_true",
                        help="hold the approximation intact (keep_approximation false): shares over the details")
    parser.add_argument("--out", type=Path, help="write every measurement here as JSON")
    parser.add_argument("--report", type=Path, help="print the tables of a JSON written by --out, measuring nothing")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(args.report.read_text())
        report(saved["corruption_runs"], saved["zoom_runs"])
        return
    size = QUICK if args.quick else FULL
    size = dataclasses.replace(size, keep_approximation=not args.held_approximation,
                               corruptions=tuple(c for c in size.corruptions if c[0] in args.models),
                               classes=tuple(c for c in size.classes if c[0] in args.models))
    if args.seeds:
        size = dataclasses.replace(size, seeds=args.seeds)
    started = time.perf_counter()
    measured = run(size, {task: load(task) for task in args.models})
    summary = report(measured["corruption_runs"], measured["zoom_runs"])
    print(f"\n{size.seeds} seeds, {size.per_group} scenes per group, N = {size.designs} Sobol' points, grid 8, "
          f"3 Haar levels, approximation {'explained' if size.keep_approximation else 'held'}; "
          f"{time.perf_counter() - started:.0f} s", flush=True)
    if args.out:
        args.out.write_text(json.dumps({"size": size.__dict__ | {"corruptions": [
            [t, c.value, s, k] for t, c, s, k in size.corruptions]}, **measured, "summary": summary}, default=float))


if __name__ == "__main__":
    main()
