"""Issue 14, CYBORG: do Crum et al.'s five salience measures tell salience-guided models from plain ones?

Two families of the bundled ``shapes`` CNN, five runs each, seed-paired (run k of each family starts from the
same weights and sees the same batches; only the loss differs): plain cross-entropy (``shapes``,
``shapes_run1..4``) and CYBORG's salience-guided loss (``shapes_guided_run1..5``, ``models/make_shapes.py
--family guided``). Every model is measured by the service's Measure job (``service.jobs.measure.run_measure``)
on the same held-out scenes, with occlusion maps; each run is reduced to one number per measure (its mean over
the scenes), and the families are compared over their 5 runs: mean and sd per family, the guided - plain
difference with Welch's t test and an exact permutation test over the 252 ways to split 10 runs into two groups
of 5, and the seed-paired differences (mean - 2 standard errors). Stability compares the maps of two models, so
it is one value per pair of runs: every pair of the 10 models is measured on each scene, and the within-family
mean SSIM (10 pairs each) is compared by the same permutation test, permuting run labels. Relevance mass on
the object (the share of positive relevance inside the object mask, ``service.metrics.localisation``) is the
paper's "maps more on the object" claim.

    python studies/cyborg.py --quick --jobs 5           # 8 scenes, occlusion window 16 stride 8: ~4 min busy
    python studies/cyborg.py --jobs 5 --out /tmp/cyborg.json   # 24 scenes, window 8 stride 4 (the default)

Why occlusion: the Measure job has no default method (a request must name one), Crum et al. used Grad-CAM,
which is not black-box, and occlusion is the black-box method closest to it that is deterministic: every
difference between two maps is then the model's (or the image's), never the sampler's, which matters for
stability and for the run-to-run spread that the comparison rests on. RISE would add its sampling noise to
every measure.
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "models")]

from scenes import make_dataset

from service.explainers import get_method
from service.jobs.explain import ExplainJob, Targets, run_explain
from service.jobs.measure import MeasureJob, run_measure
from service.metrics.localisation import relevance_mass
from service.runtime.loader import load_model

PLAIN = ("shapes", "shapes_run1", "shapes_run2", "shapes_run3", "shapes_run4")
GUIDED = tuple(f"shapes_guided_run{k}" for k in range(1, 6))  # run k pairs with PLAIN[k - 1] (same seed)
# Fresh scenes, drawn from none of the training (1), held-out (2) or sample (3) generator seeds of make_shapes.
SCENE_SEED = 1402
FULL = {"scenes": 24, "occlusion": {"window": (8, 8), "stride": (4, 4)}}
QUICK = {"scenes": 8, "occlusion": {"window": (16, 16), "stride": (8, 8)}}
IMAGE_MEASURES = ("entropy", "out_of_set", "transforms", "degradation")
# name -> the paper's (reference note §4) predicted sign of guided - plain; 0 where it states no direction.
PREDICTED = {"relevance_mass": 1, "histogram_entropy": -1, "spatial_entropy": -1, "out_of_set_score_auc": 0,
             "out_of_set_ssim_auc": 0, "transforms_ssim": 1, "degradation_object_drop": 1,
             "degradation_background_drop": 0, "degradation_gap": 1, "degradation_gap_relative": 1,
             "stability_ssim": 1}


def load(name: str):
    path = ROOT / "models" / name / "model.onnx"
    return load_model(name, path.read_bytes(), source=str(path), model_path=path)


def scenes(count: int, seed: int = SCENE_SEED) -> tuple[list[np.ndarray], np.ndarray]:
    """``count`` held-out scenes as (H, W, 3) float32 in [0, 1], and their object masks."""
    images, _, masks = make_dataset(count, seed)
    return [np.ascontiguousarray(image, dtype=np.float32) / 255 for image in images], masks


def clean_maps(model, images: list[np.ndarray], occlusion: dict,
               class_indices: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Occlusion maps (images, H, W) of the given classes (default: the model's predictions, as the Measure
    job's clean maps) and the explained scores (logits)."""
    method = get_method("occlusion")
    params = method.make_params(occlusion)
    maps, scores = [], []
    for i, image in enumerate(images):
        targets = Targets(() if class_indices is None else (class_indices[i],))
        explained = run_explain(model, ExplainJob(method, params, image, targets, seed=0))
        maps.append(explained.maps[0])
        scores.append(explained.targets[0].score)
    return np.stack(maps), np.array(scores)


def run_values(model, images: list[np.ndarray], masks: np.ndarray, occlusion: dict) -> dict[str, float]:
    """One model's per-measure values, each its mean over the scenes (the class is the model's prediction)."""
    method = get_method("occlusion")
    params = method.make_params(occlusion)
    result = run_measure(model, MeasureJob(images=tuple(images), method=method, params=params,
                                           measures=IMAGE_MEASURES, seed=0))
    values = result.values
    maps, clean = clean_maps(model, images, occlusion, result.class_indices)
    mass = [relevance_mass(attribution, mask) for attribution, mask in zip(maps, masks)]
    degradation = values["degradation"]
    object_drop = np.array(degradation["object"]["score_drop"])
    background_drop = np.array(degradation["background"]["score_drop"])
    clean = np.array(clean)
    return {
        "relevance_mass": float(np.nanmean(mass)),
        "histogram_entropy": values["entropy"]["histogram_summary"]["mean"],
        "spatial_entropy": values["entropy"]["spatial_summary"]["mean"],
        "out_of_set_score_auc": values["out_of_set"]["score_auc_summary"]["mean"],
        "out_of_set_ssim_auc": values["out_of_set"]["ssim_auc_summary"]["mean"],
        "transforms_ssim": float(np.mean([t["summary"]["mean"] for t in values["transforms"].values()])),
        "degradation_object_drop": float(object_drop.mean()),
        "degradation_background_drop": float(background_drop.mean()),
        "degradation_gap": float((object_drop - background_drop).mean()),
        # The gap in units of the clean logit: the two families' logits differ in scale (the guided ones are
        # about 1.5 times larger, studies/cyborg.md), so a raw logit drop mixes scale with salience.
        "degradation_gap_relative": float(((object_drop - background_drop) / np.abs(clean)).mean()),
        "clean_logit": float(clean.mean()),
    }


def pair_ssim(models: list, images: list[np.ndarray], occlusion: dict) -> np.ndarray:
    """(models, models) mean SSIM over the scenes between every pair of models' maps, from the Measure job's
    stability (the class: the first model's prediction, as the job does)."""
    method = get_method("occlusion")
    result = run_measure(models[0], MeasureJob(images=tuple(images), method=method,
                                               params=method.make_params(occlusion), measures=("stability",),
                                               others=tuple(models[1:]), seed=0))
    per_pair = np.array(result.values["stability"]["pairs"]).mean(axis=0)  # pairs in triu order
    matrix = np.full((len(models), len(models)), np.nan)
    upper = np.triu_indices(len(models), k=1)
    matrix[upper] = per_pair
    matrix.T[upper] = per_pair
    return matrix


def splits(n: int = 10, k: int = 5):
    """Every way to call k of n runs "guided" (252 for 10 choose 5)."""
    return [np.isin(np.arange(n), chosen) for chosen in itertools.combinations(range(n), k)]


def permutation_p(plain: np.ndarray, guided: np.ndarray) -> float:
    """Exact two-sided permutation p of the difference of means over all relabellings of the 10 runs."""
    both = np.concatenate([plain, guided])
    observed = guided.mean() - plain.mean()
    differences = np.array([both[s].mean() - both[~s].mean() for s in splits(len(both), len(guided))])
    return float(np.mean(np.abs(differences) >= abs(observed) - 1e-12))


def within_family(matrix: np.ndarray, members: np.ndarray) -> np.ndarray:
    """The SSIM of every pair of runs inside one family (10 pairs for 5 runs)."""
    index = np.flatnonzero(members)
    return np.array([matrix[i, j] for i, j in itertools.combinations(index, 2)])


def stability_p(matrix: np.ndarray) -> float:
    """Permutation p of (guided within-family mean SSIM - plain's), relabelling runs (the 10 models: 5 plain
    then 5 guided)."""
    def statistic(guided: np.ndarray) -> float:
        return within_family(matrix, guided).mean() - within_family(matrix, ~guided).mean()
    observed = statistic(np.arange(10) >= 5)
    null = np.array([statistic(s) for s in splits()])
    return float(np.mean(np.abs(null) >= abs(observed) - 1e-12))


def compare(plain: np.ndarray, guided: np.ndarray) -> dict:
    paired = guided - plain
    se = paired.std(ddof=1) / np.sqrt(len(paired))
    return {"plain_mean": float(plain.mean()), "plain_sd": float(plain.std(ddof=1)),
            "guided_mean": float(guided.mean()), "guided_sd": float(guided.std(ddof=1)),
            "difference": float(guided.mean() - plain.mean()),
            "paired_difference_se": float(se),
            "welch_p": float(stats.ttest_ind(guided, plain, equal_var=False).pvalue),
            "permutation_p": permutation_p(plain, guided)}


def measure_run(name: str, scene_count: int, occlusion: dict) -> dict[str, float]:
    """``run_values`` of the bundled model ``name`` on the study's scenes, with its held-out accuracy."""
    started = time.perf_counter()
    images, masks = scenes(scene_count)
    values = run_values(load(name), images, masks, occlusion)
    config = json.loads((ROOT / "models" / name / "config.json").read_text())
    values["heldout_accuracy"] = config["metrics"]["heldout_accuracy"]  # 2,000 scenes, from make_shapes.py
    values["seconds"] = time.perf_counter() - started
    return values


def study(scene_count: int, occlusion: dict, plain_names=PLAIN, guided_names=GUIDED, jobs: int = 1,
          log=print) -> dict:
    """``jobs`` > 1 measures that many models at once, each in its own process (a model's measures are
    independent of the others'; only stability needs them together)."""
    images, _ = scenes(scene_count)
    names = (*plain_names, *guided_names)
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        runs = dict(zip(names, pool.map(measure_run, names, [scene_count] * len(names),
                                        [occlusion] * len(names))))
    for name, values in runs.items():
        log(f"{name}: {values['seconds']:.0f} s")
    models = {name: load(name) for name in names}
    matrix = pair_ssim(list(models.values()), images, occlusion)
    n_plain = len(plain_names)
    members = np.arange(len(models)) >= n_plain
    comparisons = {}
    for measure, sign in PREDICTED.items():
        if measure == "stability_ssim":
            plain, guided = within_family(matrix, ~members), within_family(matrix, members)
            row = {"plain_mean": float(plain.mean()), "plain_sd": float(plain.std(ddof=1)),
                   "guided_mean": float(guided.mean()), "guided_sd": float(guided.std(ddof=1)),
                   "difference": float(guided.mean() - plain.mean()), "paired_difference_se": None,
                   "welch_p": None, "permutation_p": stability_p(matrix) if len(models) == 10 else None}
        else:
            row = compare(np.array([runs[n][measure] for n in plain_names]),
                          np.array([runs[n][measure] for n in guided_names]))
        comparisons[measure] = {**row, "predicted_sign": sign}
    return {"scenes": scene_count, "scene_seed": SCENE_SEED, "method": "occlusion", "occlusion": occlusion,
            "runs": runs, "pair_ssim": matrix.tolist(), "models": list(models), "comparisons": comparisons}


def table(result: dict) -> str:
    lines = [("| measure | plain (mean ± sd) | guided (mean ± sd) | guided − plain | paired SE | Welch p | "
              "perm. p | predicted |"),
             "|---|---|---|---|---|---|---|---|"]
    for measure, row in result["comparisons"].items():
        fmt = lambda v: "–" if v is None else f"{v:.3g}"
        sign = {1: "guided higher", -1: "guided lower", 0: "no direction"}[row["predicted_sign"]]
        lines.append(f"| {measure} | {row['plain_mean']:.3f} ± {row['plain_sd']:.3f} | {row['guided_mean']:.3f} ± "
                     f"{row['guided_sd']:.3f} | {row['difference']:+.3f} | {fmt(row['paired_difference_se'])} | "
                     f"{fmt(row['welch_p'])} | {fmt(row['permutation_p'])} | {sign} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="8 scenes, occlusion window 16 stride 8")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--scenes", type=int, help="override the mode's number of scenes")
    parser.add_argument("--jobs", type=int, default=1, help="models measured at once, one process each")
    args = parser.parse_args()
    settings = QUICK if args.quick else FULL
    started = time.perf_counter()
    result = study(args.scenes or settings["scenes"], settings["occlusion"], jobs=args.jobs)
    result["seconds"] = time.perf_counter() - started
    print(table(result))
    for name, values in result["runs"].items():
        print(f"{name}: held-out accuracy {values['heldout_accuracy']:.4f}, relevance mass "
              f"{values['relevance_mass']:.3f}, clean logit {values['clean_logit']:.2f}")
    print(f"{result['scenes']} scenes, occlusion {settings['occlusion']}, {result['seconds']:.0f} s")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
