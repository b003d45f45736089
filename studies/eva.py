"""EVA understood (issue 14; Fel et al., CVPR 2023): is its weak result a property of EVA on the bundled models or of
our choices, and at which radius does its certificate mean something?

On ``models/digits`` (32 x 32 greyscale digits, the paper's MNIST-like setting) and ``models/shapes`` (64 x 64 RGB
scenes with ground-truth object masks), per image and for the predicted class, in process (``service.explainers.eva``
with the service's ``MarginBounds`` on the model's auto_LiRPA mirror):

- **Radius**: fixed radii 0.25/255 .. 8/255 (pixel units) and the calibrated per-image radius (twice the radius the
  verifier certifies, the pre-issue-14 default). At each radius the **certification rate**: the share of images whose
  whole ball has a sound upper bound of the adversarial overlap AO below 0 (no perturbation in the ball changes the
  class), per bound method.
- **Grid** 4 x 4 and 8 x 8 groups; **bound method** IBP and CROWN-IBP on every image, CROWN on ``crown_images``.
- **Our choices** at 1/255 and the calibrated radius, CROWN-IBP, 8 x 8: the margin overlap (the service's, rows
  e_j - e_c) against the logit overlap (max_j ub f_j - lb f_c, eva.md 1.2 (A)), and the ball clipped to [0, 1] (the
  service's) against unclipped.
- **Next to** occlusion (8 x 8 window, stride 4, the service's defaults) and a random map on the same 8 x 8 grid
  (``random_seeds`` seeds: the spread of a map that knows nothing).

Scores per map: deletion and insertion (RISE's, 16 steps, dataset-mean baseline; deletion lower is better),
mu-fidelity (Xplique's, 9 x 9 grid, 200 subsets, Spearman) and the relevance mass (positive relevance on the object
over all positive relevance; shapes: the shipped masks; digits ship none, so the digit's ink, pixels above 0.5, is
the proxy mask). A map with no positive relevance (EVA where fixing no group lowers AO's bound) has no relevance mass
and, its pixels all tied, a deletion/insertion order by position: counted as "flat" per setting.

Every number is a mean over images; differences against occlusion and random are paired per image (mean +- SE over
images; random: its seeds averaged per image first, and the sd over seeds of the per-seed image means reported).

    PYTHONPATH=. python studies/eva.py --quick --out studies/eva.quick.json     # about 5 min on 2 shared cores
    PYTHONPATH=. python studies/eva.py --out studies/eva.json                   # 8 images per model, CROWN on 2
    PYTHONPATH=. python studies/eva.py --report studies/eva.json                # the tables again
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.explainers import eva, occlusion
from service.explainers.baselines import Baseline, BaselineKind
from service.metrics import get_metric
from service.metrics.localisation import relevance_mass
from service.runtime import images

MODELS = ("digits", "shapes")
RADII = (0.25 / 255, 1 / 255, 2 / 255, 4 / 255, 8 / 255)
CALIBRATED = "calibrated"
SERVICE_RADIUS = 1 / 255  # EvaParams.epsilon 0: the radius shared by every image of a request or audit
METRICS = {"deletion": {"steps": 16}, "insertion": {"steps": 16}, "mu_fidelity": {}}
INK = 0.5  # digits: pixels brighter than this are the stroke (the proxy mask)


@dataclass(frozen=True)
class Size:
    images: int = 8
    grids: tuple[int, ...] = (4, 8)
    methods: tuple[str, ...] = ("ibp", "crown_ibp")
    radii: tuple = (*RADII, CALIBRATED)
    random_seeds: int = 5
    crown_images: int = 2  # CROWN: certification at every radius, maps at 1/255 on a 4 x 4 grid
    models: tuple[str, ...] = MODELS
    variants: bool = True


QUICK = Size(images=4, random_seeds=3, crown_images=1)


def load(name: str):
    from service.runtime.loader import load_model

    path = ROOT / "models" / name / "model.onnx"
    return load_model(name, path.read_bytes(), source=str(path), model_path=path)


def samples(model, name: str, count: int) -> list[dict]:
    from PIL import Image

    folder = ROOT / "models" / name / "samples"
    listed = json.loads((folder / "manifest.json").read_text())["samples"][:count]
    out = []
    for entry in listed:
        image = model.fit_image(images.decode((folder / entry["image"]).read_bytes()))
        if entry.get("mask"):
            mask, source = np.asarray(Image.open(folder / entry["mask"])) > 127, "shipped mask"
        else:
            mask, source = image.mean(axis=2) > INK, "ink (proxy)"
        out.append({"name": entry["image"], "image": image, "mask": mask, "mask_source": source,
                    "label": entry["label"]})
    return out


def unclipped_boxes(image, labels, fixed, epsilon):
    free = (labels[None] != fixed[:, None, None])[..., None]
    radius = np.float32(epsilon) * free
    return image - radius, image + radius


def logit_overlap(bounds, lower, upper, target, competitors) -> np.ndarray:
    """eva.md 1.2 (A): max_j ub f_j - lb f_c, from per-logit bounds (rows e_j and -e_c)."""
    import torch

    low = torch.from_numpy(bounds.model_inputs(lower))
    high = torch.from_numpy(bounds.model_inputs(upper))
    classes = bounds.model.info.num_classes
    spec = np.zeros((len(lower), len(competitors) + 1, classes), dtype=np.float32)
    spec[:, np.arange(len(competitors)), list(competitors)] = 1.0
    spec[:, -1, target] = -1.0
    upper_bounds = bounds._upper_bounds(bounds.mirror.bounded, low, high, torch.from_numpy(spec))
    return upper_bounds[:, :-1].max(axis=1) + upper_bounds[:, -1]


def eva_overlaps(bounds, image, labels, count, target, competitors, epsilon, chunk, *, clip=True, logits=False):
    fixed_all = np.arange(-1, count)
    values = np.empty(len(fixed_all))
    for start in range(0, len(fixed_all), chunk):
        fixed = fixed_all[start:start + chunk]
        lower, upper = (eva.region_boxes if clip else unclipped_boxes)(image, labels, fixed, epsilon)
        values[start:start + len(fixed)] = (logit_overlap(bounds, lower, upper, target, competitors) if logits else
                                            bounds(lower, upper, target, competitors).max(axis=1))
    return values


def grid_labels(shape, grid: int) -> np.ndarray:
    return eva.groups(np.zeros(shape, np.float32), eva.EvaParams(grid_size=grid)).labels


class Scorer:
    """Deletion, insertion, mu-fidelity and relevance mass of maps of one image and class."""

    def __init__(self, model, sample: dict, target: int) -> None:
        self.model, self.sample, self.target = model, sample, target
        self.fill = Baseline(BaselineKind.DATASET_MEAN).resolve(sample["image"], model.info.preprocessing,
                                                                np.random.default_rng(0))
        self.metrics = {name: (get_metric(name), get_metric(name).params(**values)) for name, values in METRICS.items()}

    def score(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.predict(pixels)[:, self.target]

    def __call__(self, attribution: np.ndarray) -> dict:
        out = {}
        for name, (metric, params) in self.metrics.items():
            result = metric.evaluate(self.score, self.sample["image"], attribution, params, baseline=self.fill,
                                     mask=None, batch_size=64, rng=np.random.default_rng(0))
            out[name] = float(result.score)
        out["relevance_mass"] = relevance_mass(attribution, self.sample["mask"])
        out["flat"] = bool(np.ptp(attribution) == 0 or np.nanmax(attribution) <= 0)
        return out


def radius_value(radius, certified: float) -> float:
    return min(eva.RADIUS_FACTOR * (certified or eva.SMALLEST_RADIUS), 1.0) if radius == CALIBRATED else radius


def run_image(model, sample: dict, size: Size, crown: bool) -> dict:
    from service.verify.bounds import MarginBounds
    from service.verify.mirror import mirror_for

    image = sample["image"]
    scores = model.predict(image[None])[0]
    target = int(np.argmax(scores))
    competitors = eva.competitors_of(scores, target, 9)
    scorer = Scorer(model, sample, target)
    row = {"image": sample["name"], "label": sample["label"], "target": target, "mask": sample["mask_source"],
           "certified_radius": {}, "certified": {}, "maps": {}}
    predict = lambda pixels: model.predict(pixels)[:, [target]]  # noqa: E731
    started = time.perf_counter()
    occluded = occlusion.attribute(predict, image, occlusion.OcclusionParams(), baseline=scorer.fill, batch_size=64,
                                   rng=np.random.default_rng(0))[0]
    row["maps"]["occlusion"] = scorer(occluded)
    labels8 = grid_labels(image.shape, 8)
    for seed in range(size.random_seeds):
        cells = np.random.default_rng(seed).random(64)
        row["maps"][f"random|{seed}"] = scorer(cells[labels8].astype(np.float32))
    methods = list(size.methods) + (["crown"] if crown else [])
    for method in methods:
        bounds = MarginBounds(model, mirror_for(model), method)
        chunk = eva.DEFAULT_CHUNKS[method]
        certified = None  # the ladder costs 2 x 16 balls: only where the calibrated radius is studied
        if CALIBRATED in size.radii:
            certified = eva.certified_radius(bounds, image, target, competitors, chunk)
            row["certified_radius"][method] = certified
        for radius in size.radii:
            epsilon = radius_value(radius, certified)
            key = f"{method}|{radius if radius == CALIBRATED else round(radius * 255, 3)}"
            grids = size.grids if method != "crown" else ((4,) if radius == SERVICE_RADIUS else ())
            ball = None
            for grid in grids:
                labels = grid_labels(image.shape, grid)
                ao = eva_overlaps(bounds, image, labels, grid * grid, target, competitors, epsilon, chunk)
                ball = ao[0]
                row["maps"][f"{key}|{grid}"] = scorer((ao[0] - ao[1:])[labels].astype(np.float32)) | {
                    "epsilon": epsilon}
            if ball is None:
                ball = bounds(*eva.region_boxes(image, labels8, np.array([-1]), epsilon), target, competitors).max()
            row["certified"][key] = bool(ball < 0)
            if size.variants and method == "crown_ibp" and radius in (SERVICE_RADIUS, CALIBRATED):
                for variant, options in (("logit_overlap", {"logits": True}), ("unclipped", {"clip": False})):
                    ao = eva_overlaps(bounds, image, labels8, 64, target, competitors, epsilon, chunk, **options)
                    row["maps"][f"{key}|8|{variant}"] = scorer((ao[0] - ao[1:])[labels8].astype(np.float32))
    row["seconds"] = time.perf_counter() - started
    return row


def run(size: Size) -> dict:
    out = {"size": asdict(size), "models": {}}
    for name in size.models:
        model = load(name)
        rows = []
        for index, sample in enumerate(samples(model, name, size.images)):
            rows.append(run_image(model, sample, size, crown=index < size.crown_images))
            print(f"{name} {sample['name']}: {rows[-1]['seconds']:.0f} s, certified radius "
                  f"{ {k: round(v * 255, 3) for k, v in rows[-1]['certified_radius'].items()} } /255", flush=True)
        out["models"][name] = rows
    out["summary"] = summarise(out)
    return out


def mean_se(values) -> dict:
    values = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if len(values) == 0:
        return {"mean": None, "se": None, "n": 0}
    se = float(values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else None
    return {"mean": float(values.mean()), "se": se, "n": int(len(values))}


SCORES = ("deletion", "insertion", "mu_fidelity", "relevance_mass")


def random_mean(row: dict, score: str) -> float:
    values = [v[score] for k, v in row["maps"].items() if k.startswith("random|")]
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def summarise(result: dict) -> dict:
    """Per model and setting: each score's mean +- SE over images, and paired differences against occlusion and the
    seed-averaged random map; certification rates per method and radius; random's spread over seeds."""
    summary = {}
    for name, rows in result["models"].items():
        settings = sorted({k for row in rows for k in row["maps"] if not k.startswith("random|")})
        model_summary = {"settings": {}, "certification": {}, "certified_radius_255": {}, "random": {}}
        for setting in settings:
            present = [row for row in rows if setting in row["maps"]]
            entry = {"images": len(present), "flat": sum(row["maps"][setting]["flat"] for row in present)}
            for score in SCORES:
                entry[score] = mean_se([row["maps"][setting][score] for row in present])
                entry[f"{score}_minus_random"] = mean_se([row["maps"][setting][score] - random_mean(row, score)
                                                          for row in present])
                entry[f"{score}_minus_occlusion"] = mean_se([row["maps"][setting][score] -
                                                             row["maps"]["occlusion"][score] for row in present])
            model_summary["settings"][setting] = entry
        seeds = result["size"]["random_seeds"]
        for score in SCORES:
            per_seed = [np.nanmean([row["maps"][f"random|{s}"][score] for row in rows]) for s in range(seeds)]
            model_summary["random"][score] = {"mean": float(np.mean(per_seed)), "sd_over_seeds":
                                              float(np.std(per_seed, ddof=1)) if seeds > 1 else None}
        keys = sorted({k for row in rows for k in row["certified"]})
        for key in keys:
            present = [row["certified"][key] for row in rows if key in row["certified"]]
            model_summary["certification"][key] = {"certified": int(sum(present)), "items": len(present),
                                                   "rate": float(np.mean(present))}
        for method in sorted({m for row in rows for m in row["certified_radius"]}):
            radii = [row["certified_radius"][method] * 255 for row in rows if method in row["certified_radius"]]
            model_summary["certified_radius_255"][method] = {"median": float(np.median(radii)),
                                                              "min": float(np.min(radii)), "max": float(np.max(radii))}
        summary[name] = model_summary
    return summary


def fmt(entry: dict, digits: int = 3) -> str:
    if entry["mean"] is None:
        return "n/a"
    se = f" +- {entry['se']:.{digits}f}" if entry["se"] is not None else ""
    return f"{entry['mean']:.{digits}f}{se}"


def report(result: dict) -> None:
    for name, model_summary in result["summary"].items():
        print(f"\n## {name}  (certified radius x 255: {model_summary['certified_radius_255']})")
        print("certification (upper bound of AO < 0 on the whole ball):")
        for key, entry in model_summary["certification"].items():
            print(f"  {key:22s} {entry['certified']}/{entry['items']}")
        print("random (8 x 8 grid): " + ", ".join(f"{s} {v['mean']:.3f} (sd over seeds {v['sd_over_seeds']})"
                                                  for s, v in model_summary["random"].items()))
        print(f"{'setting':34s} " + " ".join(f"{s:>18s}" for s in SCORES)
              + "  flat  | minus random: del, ins, mu, mass")
        for setting, entry in model_summary["settings"].items():
            print(f"{setting:34s} " + " ".join(f"{fmt(entry[s]):>18s}" for s in SCORES) + f"  {entry['flat']}/"
                  f"{entry['images']} | " + ", ".join(fmt(entry[f'{s}_minus_random']) for s in SCORES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--report", type=Path, help="print the tables of a saved run")
    parser.add_argument("--models", nargs="+", choices=MODELS, help="only these models")
    parser.add_argument("--crown-images", type=int, help="images per model with CROWN (0: none)")
    args = parser.parse_args()
    if args.report:
        report(json.loads(args.report.read_text()))
        return
    size = QUICK if args.quick else Size()
    if args.models:
        size = replace(size, models=tuple(args.models))
    if args.crown_images is not None:
        size = replace(size, crown_images=args.crown_images)
    result = run(size)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=float))
    report(result)


if __name__ == "__main__":
    main()
