"""WCAM through the API and the CLI: its details, wavelet metrics inline, and the scale analyses."""

from __future__ import annotations

import json

import grpc
import numpy as np
import onnxruntime as ort
import pytest
import pywt
from across_seeds import FIXED_COUNT, SEEDS, WCAM_MEASURED, lower_bound, upper_bound
from conftest import MODELS, load_samples
from onnxplain_client import from_tensor
from references import spearman
from test_server import assert_status, still_serving

from service.cli import main

QUICK = {"num_designs": 2}  # 2 x (8^2 + 2) = 132 passes on the 64-pixel shapes model


def test_explain_returns_the_wavelet_map_and_the_scale_profile(client):
    sample = load_samples("shapes")[0]
    explanation = client.explain("shapes", sample["path"], "wcam", QUICK, seed=0,
                                 metrics={"wavelet_deletion": {}, "wavelet_insertion": {}})
    attribution = explanation.response.attributions[0]
    wcam = attribution.wcam
    assert attribution.class_index == sample["label"] and wcam.levels == 3 and wcam.wavelet == "haar"
    assert from_tensor(wcam.wavelet_map).shape == (64, 64) and explanation.map.shape == (64, 64)
    assert sum(wcam.level_importance) == pytest.approx(1.0) and len(wcam.level_importance) == 4
    assert sum(b.importance for b in wcam.subbands) == pytest.approx(1.0) and len(wcam.subbands) == 10
    assert wcam.approximation_share == pytest.approx(wcam.level_importance[0])
    grid = wcam.grid_size
    assert 1 <= wcam.sufficient_depth <= grid * grid  # always one here: see the test below
    assert from_tensor(wcam.sufficient_image).shape == (64, 64, 3)
    metrics = explanation.attributions[0].metrics
    assert metrics["wavelet_deletion"].score < metrics["wavelet_insertion"].score
    # Passes: clean + baseline, the Sobol design, the sufficient-image search (1 to grid^2), the two metrics.
    fixed = 2 + 2 * (grid * grid + 2) + sum(m.forward_passes for m in metrics.values())
    assert fixed < explanation.forward_passes <= fixed + grid * grid


def test_the_sufficient_image_scores_at_least_the_whole_image_on_five_seeds(client):
    """Depth k keeps the top k cells and must score at least the reconstruction with every cell kept, which
    is the image itself (the DWT is inverted exactly). Jansen's indices are means of squares, positive for every
    cell that moves the score, as all do on this CNN; so when no smaller depth suffices the answer is all grid^2
    cells, the image again, and a depth always exists. Measured on sample 0, seeds 0-4:
    depths 64, 21, 26, 32, 64, scores 4.503 (the image's) to 4.605. The image comes back as UINT8, which may
    move the logit by rounding: 0.01 of slack."""
    sample = load_samples("shapes")[0]
    label = sample["label"]
    whole = client.predict("shapes", sample["path"])[0].scores[label]
    for seed in range(5):
        wcam = client.explain("shapes", sample["path"], "wcam", QUICK, seed=seed).response.attributions[0].wcam
        grid = wcam.grid_size
        assert 1 <= wcam.sufficient_depth <= grid * grid, seed
        sufficient = from_tensor(wcam.sufficient_image)
        assert sufficient.dtype == np.uint8 and sufficient.shape == (64, 64, 3)
        assert client.predict("shapes", sufficient)[0].scores[label] >= whole - 0.01, seed


def test_wavelet_metrics_need_a_wavelet_map(client):
    sample = load_samples("shapes")[0]
    assert_status(lambda: client.explain("shapes", sample["path"], "occlusion", {}, metrics={"wavelet_deletion": {}}),
                  grpc.StatusCode.INVALID_ARGUMENT, "metrics", "wavelet domain")


def test_blur_empties_the_finest_level_on_five_seeds(client):
    """A sigma-6 blur leaves nothing in the finest details: perturbing them cannot move the score.
    Measured on shapes sample 1 (2 designs, seeds 0-7; level_importance[-1] is level 1): blurred, level 1 holds
    0.0017 (sd 0.0018, max 0.0052); it falls from the clean image's by 0.042 (sd 0.034, positive on all 8 seeds).
    The approximation's share does not reliably grow at this N: +0.03 (sd 0.16) with 2 designs, +0.07 with 8,
    so nothing is claimed about it."""
    sample = load_samples("shapes")[1]
    blurred_finest, drops = [], []
    for seed in SEEDS:
        result = client.analyze_scales("shapes", sample["path"], corruptions=["gaussian_blur"], severities=[5],
                                       zooms=[2.0], wcam={**QUICK, **FIXED_COUNT}, seed=seed)
        assert [v.name for v in result.variants] == ["clean", "gaussian_blur 5", "zoom 2x"]
        clean, blurred, zoomed = result.variants
        assert clean.predicted.class_index == sample["label"] == result.class_index
        for variant in result.variants:
            assert sum(variant.level_importance) == pytest.approx(1.0)
        assert 0 <= zoomed.zoom - 2.0 < 1e-6
        blurred_finest.append(blurred.level_importance[-1])
        drops.append(clean.level_importance[-1] - blurred.level_importance[-1])
    assert upper_bound(blurred_finest) < 0.01, blurred_finest
    # The drop's size varies with the seed more than its sign: with the two-scramble design (issue 12) it measured
    # 0.043, 0.010, 0.003, 0.014, 0.003 on seeds 0-4, so the claim is its sign on every seed (a sign test: 5 of 5,
    # p = 1/32), not a mean over 2 SE.
    assert min(drops) > 0, drops


def haar_level_removed(pixels: np.ndarray, level: int) -> np.ndarray:
    """The image (H, W, 3) in [0, 1] rebuilt by pywt from its 3-level Haar transform (periodization) with one
    level zeroed (0: the approximation, 1-3: that level's details) and clipped: the sample WCAM draws when its
    masks are 0 on that level and 1 elsewhere, computed apart from the service."""
    coefficients = pywt.wavedec2(pixels, "haar", mode="periodization", level=3, axes=(0, 1))
    if level == 0:
        coefficients[0] = np.zeros_like(coefficients[0])
    else:
        coefficients[4 - level] = tuple(np.zeros_like(d) for d in coefficients[4 - level])
    return np.clip(pywt.waverec2(coefficients, "haar", mode="periodization", axes=(0, 1)), 0, 1)


def ablation_by_level(model: str, sample: dict) -> np.ndarray:
    """|logit drop| of the sample's label with each level removed, in WCAM's order (approximation, levels 3, 2,
    1): the model's own, unsampled answer to "which level does it use here", from onnxruntime on the graph."""
    session = ort.InferenceSession(str(MODELS / model / "model.onnx"), providers=["CPUExecutionProvider"])
    pixels = sample["pixels"].astype(np.float64) / 255
    images = np.stack([pixels] + [haar_level_removed(pixels, level) for level in (0, 3, 2, 1)])
    inputs = ((images - 0.5) / 0.25).transpose(0, 3, 1, 2).astype(np.float32)  # the model's preprocessing
    logits = session.run(None, {session.get_inputs()[0].name: inputs})[0][:, sample["label"]]
    return np.abs(logits[0] - logits[1:])


def test_level_profile_tells_a_texture_model_from_a_shape_model_on_five_seeds(client):
    """The two bundled scale models see the same scenes and differ only in what their label follows
    (models/make_scales.py): the texture's period (2 px: Haar level 1 alone; 4 px: level 2 alone) or the
    large soft shape (nothing finer than the approximation). WCAM's level profile must say which.

    Measured at the defaults (grid 8, 8 designs, clip), seeds 0-7; level_importance is [approximation, level 3,
    level 2, level 1]. Shape: the approximation holds 0.996-0.999 per sample (sd <= 0.005). Texture: the
    approximation and the period's level share nearly all of it, in proportions that change from seed to seed
    (sample 00: 0.56 / 0.43, sd 0.30 each with the former single-scramble design; 0.71 / 0.29, sd 0.06, with
    the two-scramble one); the model does use both (bench/scale_periods.py). What holds on every sample is that
    the other detail levels get almost nothing: the period's level holds 0.988, 0.997, 0.853 and 0.996 of the
    detail levels' share (sd 0.007, 0.002, 0.086, 0.003; sample 02 measured again with the two-scramble design of
    issue 12, seeds 0-4: 0.78, sd 0.12). With the approximation held intact (keep_approximation False, 32 designs:
    the least that gives intervals) the period's level leads the other period's level by 0.91, 0.99, 0.22 and
    0.996 (sd 0.012, 0.003, 0.22, 0.001; seeds 0-4, two-scramble design). Thresholds: 0.6 of the details, a
    margin of 0.5 where the model's own level ablation agrees (not sample 02),
    0.95 of the approximation; each is 3 SE (sd / sqrt 5) or more under the worst sample's measured mean.
    """
    texture_labels = ["fine", "coarse"]
    margins = {}
    for sample in load_samples("scale_texture"):
        period = 3 if texture_labels[sample["label"]] == "fine" else 2  # index of level 1 or level 2
        other = 5 - period
        of_details, held_margin = [], []
        for seed in SEEDS:
            default = client.explain("scale_texture", sample["path"], "wcam",
                                     {"sufficient_image": False, **WCAM_MEASURED},
                                     seed=seed).response.attributions[0].wcam.level_importance
            of_details.append(default[period] / sum(default[1:]))
            held = client.explain("scale_texture", sample["path"], "wcam",
                                  {"sufficient_image": False, "keep_approximation": False, **FIXED_COUNT,
                                   "num_designs": 32},
                                  seed=seed).response.attributions[0].wcam.level_importance
            held_margin.append(held[period] - held[other])
        assert lower_bound(of_details) >= 0.6, (sample["image"], of_details)
        margins[sample["image"]] = held_margin
    # Sample 02 is left out of the margin claim: removing its level 2 costs more logit than removing its period's
    # level 1 (2.39 against 1.77, bench/scale_periods.py), and WCAM's margin there is 0.22 (sd 0.22) at 32
    # designs: the model uses both levels, and which leads is not resolved.
    for image in ("sample_00.png", "sample_01.png", "sample_03.png"):
        assert lower_bound(margins[image]) > 0.5, (image, margins[image])
    for sample in load_samples("scale_shape"):
        shares = [client.explain("scale_shape", sample["path"], "wcam", {"sufficient_image": False, **WCAM_MEASURED},
                                 seed=seed).response.attributions[0].wcam.approximation_share for seed in SEEDS]
        assert lower_bound(shares) >= 0.95, (sample["image"], shares)


def test_level_shares_rank_the_levels_as_removing_them_does_on_five_seeds(client):
    """Ground truth for "which level the model uses": remove each level whole (approximation, 3, 2, 1) and
    measure the label's logit drop, no sampling. WCAM's level shares (defaults, clip) must order the levels as
    those drops do. Per seed, the Spearman correlation between WCAM's shares and the drops over the 16 (sample,
    level) pairs of the four scale_texture samples; measured on seeds 0-7: 0.81, sd 0.05 (0.74-0.89); the
    threshold 0.6 is 3 sd under it. And a level whose removal moves the logit by less than 0.1 (level 3 of
    samples 00 and 03, level 1 of sample 01: 0.02-0.06 logits, against 4-6 for the period's level) gets at most
    0.001 on average (measured). Not claimed: which of the approximation and the period's level comes first on
    a fine sample (sample 00: removing them costs 5.03 and 4.97 logits, WCAM's shares 0.56 and 0.43 with sd 0.30
    each over seeds), nor the order of the two detail levels on sample 02, where removal ranks level 2 above
    level 1 (2.39 and 1.77 logits) and WCAM the reverse (0.03 and 0.32)."""
    samples = load_samples("scale_texture")
    drops = np.array([ablation_by_level("scale_texture", sample) for sample in samples])  # (samples, levels)
    shares = np.array([[client.explain("scale_texture", sample["path"], "wcam",
                                       {"sufficient_image": False, **WCAM_MEASURED},
                                       seed=seed).response.attributions[0].wcam.level_importance
                        for sample in samples] for seed in SEEDS])  # (seeds, samples, levels)
    rank = [spearman(per_seed.ravel(), drops.ravel()) for per_seed in shares]
    assert lower_bound(rank) >= 0.6, (np.round(rank, 3), np.round(drops, 2))
    ignored = drops < 0.1
    assert ignored.sum() == 3, np.round(drops, 2)
    assert upper_bound(shares[:, ignored].mean(axis=1)) < 0.01, shares[:, ignored]


def test_cli_writes_wcam_pictures_and_scale_profiles(tmp_path, capsys):
    sample = load_samples("shapes")[2]
    assert main(["explain", str(MODELS / "shapes"), str(sample["path"]), "--method", "wcam", "-p", "num_designs=2",
                 "--seed", "0", "--out", str(tmp_path), "--json"]) == 0
    summary = json.loads((tmp_path / "sample_02.wcam.json").read_text())
    target = summary["targets"][0]
    assert (tmp_path / f"sample_02.wcam.{target['class_index']}.wcam.png").stat().st_size > 10_000
    assert len(target["level_importance"]) == 4
    assert main(["scales", str(MODELS / "shapes"), str(sample["path"]), "--corruption", "jpeg", "--severity", "3",
                 "-p", "num_designs=2", "--seed", "0", "--out", str(tmp_path)]) == 0
    scales = json.loads((tmp_path / "sample_02.scales.json").read_text())
    assert [v["name"] for v in scales["variants"]] == ["clean", "jpeg 3"]
    assert (tmp_path / "sample_02.scales.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "importance per level" in printed
    for variant in scales["variants"]:  # the numbers of WCAM's precision and intervals stay, the pictures go
        assert "standard_error" not in variant["precision"] and "wavelet_map" not in variant["wcam"]
        assert len(variant["wcam"]["level_importance_lower"]) == 4
        assert f"reliability {variant['precision'].get('reliability', 0.0):.2f} (target 0.90)" in printed


def test_scale_analysis_needs_a_variant(client):
    sample = load_samples("shapes")[0]
    assert_status(lambda: client.analyze_scales("shapes", sample["path"], wcam=QUICK),
                  grpc.StatusCode.INVALID_ARGUMENT, "corruptions")
    assert_status(lambda: client.analyze_scales("shapes", sample["path"], zooms=[0.5], wcam=QUICK),
                  grpc.StatusCode.INVALID_ARGUMENT, "zooms")
    still_serving(client)
