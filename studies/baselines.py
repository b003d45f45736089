"""Baseline effects (issue 14; Brunke et al., ECCV-W 2020): do "neutral" baselines move maps and metric rankings?

Runs the service's Consistency job (``service.jobs.consistency``) in process on the bundled models, under
common random numbers (settings that differ only in their baseline draw identical masks), for three claims:

(a) **Baselines move maps beyond noise.** Per method, the maps of one image under the baselines black,
    dataset_mean, blur, uniform_noise and inpaint (the service's ``BaselineKind`` names) at one seed (CRN): their
    pairwise Spearman / SSIM, against the noise floor, the same method's seed-to-seed agreement at one baseline
    (two Consistency runs with different seeds) and its own ``Precision.reliability`` (the split-half estimate
    of that agreement). Effect = seed-to-seed Spearman - across-baseline Spearman, per image (averaged over
    seeds and pairs); mean +- SE over images.
(b) **The metric's baseline changes method rankings.** The methods (at the service's default explanation
    baseline, dataset_mean) ranked by deletion and insertion under each metric baseline: Kendall tau between
    the rankings of two metric baselines at one seed, against tau between two seeds at one metric baseline.
(c) **"Neutral" baselines are not neutral.** The service's baseline report (``ExplainResult.baseline_scores``,
    ``baseline_predicted``: the model on the pure baseline image), with the probability of the image's class
    on the pure baseline against the clean image's and against chance 1/C.

    PYTHONPATH=.:clients/python python studies/baselines.py --quick --out /tmp/baselines.json
    PYTHONPATH=.:clients/python python studies/baselines.py --out studies/baselines.json   # full

Quick: 3 images per model, 3 seeds, reduced sample counts (16 minutes on 2 cores shared with 4 engineers). Full: 4
images per model, 5 seeds, larger sample counts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# whole_cap: fixed sample counts (target_reliability 0), so CRN holds for the whole run, not a shared prefix
from bench.consistency_crn import whole_cap
from service.explainers.baselines import Baseline, BaselineKind
from service.jobs.consistency import ConsistencyJob, Setting, baseline_label, run_consistency
from service.jobs.evaluate import MetricRequest
from service.jobs.streams import Streams
from service.metrics import agreement, get_metric
from service.runtime import images
from service.runtime.repository import ModelRepository
from service.runtime.scores import ScoreSpace

MODELS = ("shapes", "digits", "scale_texture", "scale_shape")
BASELINES = (Baseline(BaselineKind.BLACK), Baseline(BaselineKind.DATASET_MEAN), Baseline(BaselineKind.BLUR),
             Baseline(BaselineKind.UNIFORM_NOISE), Baseline(BaselineKind.INPAINT))
DEFAULT_BASELINE = 1  # dataset_mean: the service's default explanation baseline
# Sample counts: quick keeps a (model, image, seed) under ~30 s on 2 shared cores; full doubles them.
METHODS = {
    "quick": {"occlusion": {"window": (8, 8), "stride": (4, 4)}, "rise": {"num_masks": 500},
              "sobol": {"num_designs": 32, "grid_size": 6}, "hsic": {"num_designs": 256, "grid_size": 6},
              "lime": {"num_samples": 200}, "kernel_shap": {"num_samples": 200}},
    "full": {"occlusion": {"window": (8, 8), "stride": (4, 4)}, "rise": {"num_masks": 1000},
             "sobol": {"num_designs": 64, "grid_size": 6}, "hsic": {"num_designs": 512, "grid_size": 6},
             "lime": {"num_samples": 400}, "kernel_shap": {"num_samples": 400}},
}
STEPS = 16  # deletion/insertion curve points - 1: 16 keeps 5 metric baselines x settings affordable


def sample_images(model, name: str, count: int) -> list[tuple[str, np.ndarray]]:
    folder = ROOT / "models" / name / "samples"
    paths = sorted(p for p in folder.glob("sample_*.png") if ".mask" not in p.name)[:count]
    return [(p.stem, model.fit_image(images.decode(p.read_bytes()))) for p in paths]


def settings_for(methods: dict, baselines) -> list[Setting]:
    out = []
    for name, values in methods.items():
        method, params = whole_cap(name, values)
        out += [Setting(f"{name}|{baseline_label(b)}", method, params, b) for b in baselines]
    return out


def nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def mean_se(values) -> tuple[float, float, int]:
    values = np.asarray([v for v in values if np.isfinite(v)], dtype=np.float64)
    if len(values) < 2:
        return (float(values.mean()) if len(values) else float("nan")), float("nan"), len(values)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values))), len(values)


def run_image(model, image: np.ndarray, methods: dict, seeds, metrics: dict) -> dict:
    """Every seed's Consistency runs on one image: maps per (method, baseline, seed), reliabilities, metric scores
    of the default-baseline settings per metric, and the baseline report."""
    all_settings = settings_for(methods, BASELINES)
    default_settings = [s for s in all_settings if s.baseline == BASELINES[DEFAULT_BASELINE]]
    runs = []
    for seed in seeds:
        first_metric, *other_metrics = metrics
        main = run_consistency(model, ConsistencyJob(image, tuple(all_settings), metrics[first_metric],
                                                     metric_baselines=BASELINES, seed=seed, top_fraction=0.1))
        columns = [main.labels.index(s.label) for s in default_settings]
        scores = {first_metric: main.scores[:, columns]}
        for name in other_metrics:  # the default-baseline settings only: their maps equal main's (same seed, CRN)
            extra = run_consistency(model, ConsistencyJob(image, tuple(default_settings), metrics[name],
                                                          metric_baselines=BASELINES, seed=seed,
                                                          class_index=main.class_index))
            assert np.array_equal(extra.maps, main.maps[columns]), "CRN: same seed, same maps"
            scores[name] = extra.scores
        runs.append({"seed": seed, "result": main, "scores": scores})
    return {"runs": runs, "labels": runs[0]["result"].labels, "class_index": runs[0]["result"].class_index}


def map_effects(image_runs: dict, methods: dict) -> dict:
    """(a) per method: across-baseline agreement at one seed vs seed-to-seed agreement at one baseline."""
    labels = image_runs["labels"]
    runs = image_runs["runs"]
    out = {}
    for name in methods:
        idx = [labels.index(f"{name}|{baseline_label(b)}") for b in BASELINES]
        across = {"spearman": [], "ssim": []}
        for run in runs:
            res = run["result"]
            pairs = list(itertools.combinations(idx, 2))
            across["spearman"].append(nanmean([res.spearman[i, j] for i, j in pairs]))
            across["ssim"].append(nanmean([res.ssim[i, j] for i, j in pairs]))
        seed_to_seed = {"spearman": [], "ssim": []}
        for first, second in itertools.combinations(runs, 2):
            seed_to_seed["spearman"].append(nanmean([agreement.spearman(first["result"].maps[i],
                                                                        second["result"].maps[i]) for i in idx]))
            seed_to_seed["ssim"].append(nanmean([agreement.ssim(first["result"].maps[i], second["result"].maps[i])
                                                 for i in idx]))
        # Across baselines *and* seeds: under "the baseline has no effect" this equals the seed-to-seed agreement in
        # expectation, with no shared noise to flatter it (CRN raises the one-seed comparison above, most for RISE,
        # whose noise is its masks').
        across_seeds = [nanmean([agreement.spearman(first["result"].maps[idx[a]], second["result"].maps[idx[b]])
                                 for a, b in itertools.permutations(range(len(idx)), 2)])
                        for first, second in itertools.combinations(runs, 2)]
        precision = [run["result"].explanations[i].precision for run in runs for i in idx]
        reliability = [float(p.reliability[0]) for p in precision if p is not None]
        # Per baseline pair at one seed (which pairs move most), averaged over seeds.
        per_pair = {f"{baseline_label(BASELINES[a])}~{baseline_label(BASELINES[b])}":
                    nanmean([run["result"].spearman[idx[a], idx[b]] for run in runs])
                    for a, b in itertools.combinations(range(len(BASELINES)), 2)}
        out[name] = {
            "across_spearman": nanmean(across["spearman"]), "across_ssim": nanmean(across["ssim"]),
            "seed_spearman": nanmean(seed_to_seed["spearman"]), "seed_ssim": nanmean(seed_to_seed["ssim"]),
            "across_seeds_spearman": nanmean(across_seeds),
            "reliability": nanmean(reliability) if reliability else float("nan"),
            "per_pair_spearman": per_pair,
        }
    return out


def ranking_effects(image_runs: dict) -> dict:
    """(b) per metric: Kendall tau between metric baselines at one seed vs between seeds at one metric baseline."""
    runs = image_runs["runs"]
    out = {}
    for metric in runs[0]["scores"]:
        across = [nanmean(agreement.kendall_matrix(run["scores"][metric])[np.triu_indices(len(BASELINES), 1)])
                  for run in runs]
        seed_to_seed = [nanmean([agreement.kendall_matrix(np.stack([first["scores"][metric][b],
                                                                   second["scores"][metric][b]]))[0, 1]
                                 for b in range(len(BASELINES))])
                        for first, second in itertools.combinations(runs, 2)]
        out[metric] = {"across_tau": nanmean(across), "seed_tau": nanmean(seed_to_seed)}
    return out


def neutrality(model, image: np.ndarray, image_runs: dict) -> dict:
    """(c) The service's baseline report for each baseline (its default-method setting, seed by seed), with the
    probability of the explained class on the pure baseline, recomputed from the same pure baseline image."""
    labels, class_index = image_runs["labels"], image_runs["class_index"]
    num_classes = model.info.num_classes
    clean_probability = float(model.predict(image[None], score_space=ScoreSpace.PROBABILITY)[0, class_index])
    out = {}
    for baseline in BASELINES:
        i = next(k for k, label in enumerate(labels) if label.endswith(f"|{baseline_label(baseline)}"))
        rows = []
        for run in image_runs["runs"]:
            explanation = run["result"].explanations[i]
            pure = pure_baseline(model, image, baseline, run["seed"])
            probabilities = model.predict(pure[None], score_space=ScoreSpace.PROBABILITY)[0]
            rows.append({"target_logit": explanation.baseline_scores[0],
                         "clean_logit": explanation.targets[0].score,
                         "predicted": explanation.baseline_predicted.class_index,
                         "p_target": float(probabilities[class_index]),
                         "tv_from_uniform": float(0.5 * np.abs(probabilities - 1.0 / num_classes).sum())})
        out[baseline_label(baseline)] = {
            "p_target": nanmean([r["p_target"] for r in rows]),
            "p_clean": clean_probability,
            "chance": 1.0 / num_classes,
            "logit_drop": nanmean([r["clean_logit"] - r["target_logit"] for r in rows]),
            "kept_class": nanmean([r["predicted"] == class_index for r in rows]),
            "tv_from_uniform": nanmean([r["tv_from_uniform"] for r in rows]),
        }
    return out


def pure_baseline(model, image: np.ndarray, baseline: Baseline, seed: int) -> np.ndarray:
    """The pure baseline image as the job resolved it (the seed's baseline stream: the same noise image)."""
    return baseline.resolve(image, model.info.preprocessing, Streams(seed).baseline()).image


def study(mode: str, models=MODELS, image_count: int | None = None, seed_count: int | None = None,
          methods: dict | None = None, with_insertion: bool = True, steps: int = STEPS, log=print) -> dict:
    image_count = image_count or (3 if mode == "quick" else 4)
    seeds = list(range(seed_count or (3 if mode == "quick" else 5)))
    methods = methods or METHODS[mode]
    # Insertion's default start is a blur of the image whatever the metric baseline (RISE's); blur_sigma 0 starts
    # it from the metric baseline, the setting whose baseline dependence claim (b) is about.
    metric_values = {"deletion": {"steps": steps}, "insertion": {"steps": steps, "blur_sigma": 0.0}}
    metrics = {name: MetricRequest(get_metric(name), get_metric(name).make_params(metric_values[name]))
               for name in (("deletion", "insertion") if with_insertion else ("deletion",))}
    repository = ModelRepository(ROOT / "models")
    records = []
    for model_name in models:
        model = repository.load_path(model_name)
        for image_name, image in sample_images(model, model_name, image_count):
            started = time.perf_counter()
            image_runs = run_image(model, image, methods, seeds, metrics)
            records.append({"model": model_name, "image": image_name, "class_index": image_runs["class_index"],
                            "maps": map_effects(image_runs, methods), "rankings": ranking_effects(image_runs),
                            "neutrality": neutrality(model, image, image_runs)})
            log(f"  {model_name}/{image_name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return {"mode": mode, "seeds": seeds, "images_per_model": image_count, "methods": methods,
            "baselines": [baseline_label(b) for b in BASELINES], "steps": steps, "records": records}


def fmt(mean: float, se: float) -> str:
    if not np.isfinite(mean):
        return "—"
    return f"{mean:.3f} ± {se:.3f}" if np.isfinite(se) else f"{mean:.3f}"


def tables(result: dict) -> str:
    records = result["records"]
    models = list(dict.fromkeys(r["model"] for r in records))
    methods = list(result["methods"])
    lines = ["### (a) Map agreement across baselines (one seed, CRN) vs across seeds (one baseline)", "",
             ("Mean ± SE over images (each image averaged over seeds and the 10 baseline pairs / seed pairs). "
             "Effect = seed-to-seed Spearman − across-baseline Spearman (> 0: the baseline moves the map more than "
             "reseeding)."), "",
             ("Effect (independent) = seed-to-seed Spearman − Spearman across baselines *and* seeds (no shared "
             "noise: 0 in expectation when the baseline has no effect)."), "",
             ("| model | method | Spearman across baselines (CRN) | Spearman seed-to-seed | reliability (Precision) | "
             "effect (CRN) | Spearman across baselines and seeds | effect (independent) | SSIM across baselines | "
             "SSIM seed-to-seed | images |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for model in models + ["all"]:
        rows = [r for r in records if model in ("all", r["model"])]
        for method in methods:
            m = [r["maps"][method] for r in rows]
            effect = [x["seed_spearman"] - x["across_spearman"] for x in m]
            independent = [x["seed_spearman"] - x["across_seeds_spearman"] for x in m]
            lines.append(f"| {model} | {method} | {fmt(*mean_se([x['across_spearman'] for x in m])[:2])} | "
                         f"{fmt(*mean_se([x['seed_spearman'] for x in m])[:2])} | "
                         f"{fmt(*mean_se([x['reliability'] for x in m])[:2])} | {fmt(*mean_se(effect)[:2])} | "
                         f"{fmt(*mean_se([x['across_seeds_spearman'] for x in m])[:2])} | "
                         f"{fmt(*mean_se(independent)[:2])} | "
                         f"{fmt(*mean_se([x['across_ssim'] for x in m])[:2])} | "
                         f"{fmt(*mean_se([x['seed_ssim'] for x in m])[:2])} | {len(m)} |")
    pairs = list(records[0]["maps"][methods[0]]["per_pair_spearman"])
    lines += ["", "Spearman per baseline pair (one seed, CRN), all models, mean ± SE over images:", "",
              "| method | " + " | ".join(pairs) + " |", "|---|" + "---|" * len(pairs)]
    for method in methods:
        lines.append(f"| {method} | " + " | ".join(
            fmt(*mean_se([r["maps"][method]["per_pair_spearman"][p] for r in records])[:2]) for p in pairs) + " |")
    lines += ["", ("### (b) Ranking of the methods (default baseline) by the metric, across metric baselines vs "
              "across seeds"), "",
              "Kendall tau, mean ± SE over images. Effect = seed-to-seed tau − across-metric-baseline tau.", "",
              "| model | metric | tau across metric baselines | tau seed-to-seed | effect | images |",
              "|---|---|---|---|---|---|"]
    for model in models + ["all"]:
        rows = [r for r in records if model in ("all", r["model"])]
        for metric in rows[0]["rankings"]:
            k = [r["rankings"][metric] for r in rows]
            lines.append(f"| {model} | {metric} | {fmt(*mean_se([x['across_tau'] for x in k])[:2])} | "
                         f"{fmt(*mean_se([x['seed_tau'] for x in k])[:2])} | "
                         f"{fmt(*mean_se([x['seed_tau'] - x['across_tau'] for x in k])[:2])} | {len(k)} |")
    lines += ["", "### (c) Neutrality of the baselines (the service's baseline report)", "",
              ("p(class | pure baseline) vs the clean image's and chance 1/C; the fraction of images whose pure "
              "baseline is still predicted as the image's class; total-variation distance of the baseline's "
              "prediction from uniform (0 = neutral); logit drop clean − baseline. Mean ± SE over images."), "",
              ("| model | baseline | p(class) baseline | p(class) clean | chance | kept class | TV from uniform | "
              "logit drop |"), "|---|---|---|---|---|---|---|---|"]
    for model in models:
        rows = [r for r in records if r["model"] == model]
        for label in result["baselines"]:
            n = [r["neutrality"][label] for r in rows]
            lines.append(f"| {model} | {label} | {fmt(*mean_se([x['p_target'] for x in n])[:2])} | "
                         f"{fmt(*mean_se([x['p_clean'] for x in n])[:2])} | {n[0]['chance']:.3f} | "
                         f"{fmt(*mean_se([x['kept_class'] for x in n])[:2])} | "
                         f"{fmt(*mean_se([x['tv_from_uniform'] for x in n])[:2])} | "
                         f"{fmt(*mean_se([x['logit_drop'] for x in n])[:2])} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 images per model, 3 seeds, fewer samples")
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    parser.add_argument("--images", type=int, default=None)
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None, help="write the per-image records as JSON")
    args = parser.parse_args()
    started = time.perf_counter()
    result = study("quick" if args.quick else "full", args.models, args.images, args.seeds)
    result["seconds"] = time.perf_counter() - started
    print(tables(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=float))


if __name__ == "__main__":
    main()
