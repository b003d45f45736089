"""HSIC attribution: localisation, seed, and its precision (issue 12): half-sampling SE against the spread over
seeds, split-half reliability against two independent full runs, and the stopping rule.

The precision oracle is a dense model on an 8 x 8 image explained on an 8 x 8 grid: one pixel per cell, so the
bicubic resize is the identity and the map is the cells' HSIC itself. Block-sparse models are a poor oracle for
the Sobol' sampler: rounded to {0, 1}, a scrambled Sobol' net is the same net up to flipped columns, so the HSIC
of a few relevant cells hardly changes with the seed (see ``hsic.attribute``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from service.explainers import get_method
from service.explainers.base import as_output
from service.explainers.baselines import Baseline, BaselineKind
from service.explainers.precision import StopReason
from service.runtime.preprocessing import Preprocessing
from test_sensitivity import FILL, IMAGE, SHAPE, BlockModel, assert_localised

HSIC = get_method("hsic")
SEEDS = range(10)


def explain(model, image, fill, seed=0, batch_size=64, **params):
    parameters = HSIC.make_params(params)
    HSIC.check(parameters, image.shape)
    return as_output(HSIC.attribute(model, image, parameters, baseline=fill, batch_size=batch_size,
                                    rng=np.random.default_rng(seed)))


# --- what the method computes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", ["sobol", "latin_hypercube"])
def test_hsic_localises_the_block_each_target_reads(sampler):
    model = BlockModel()
    out = explain(model, IMAGE, FILL, sampler=sampler, num_designs=500, target_reliability=0)
    # The biased estimator leaves a small positive floor on unrelated cells, about 1 / (2 p) for p designs; the map
    # is the mean of two halves of p / 2, so the floor is twice the one-design estimator's (0.75 before issue 12;
    # measured 0.73 with the Latin hypercube, seed 0).
    assert_localised(out.maps, 0.7)
    # Target 0: the whole cap (Xplique's 500, the default before issue 12).
    assert model.passes == 500 == HSIC.forward_passes(HSIC.make_params({"num_designs": 500}), SHAPE) \
        == out.precision.samples
    assert out.precision.stop_reason is StopReason.SAMPLES


def test_hsic_depends_on_the_seed_only():
    run = lambda seed, batch_size=64: explain(BlockModel(), IMAGE, FILL, seed=seed, batch_size=batch_size,
                                              num_designs=100, sampler="latin_hypercube", target_reliability=0)
    first = run(1, batch_size=7)
    np.testing.assert_array_equal(first.maps, run(1, batch_size=512).maps)
    np.testing.assert_array_equal(first.precision.standard_error, run(1, batch_size=512).precision.standard_error)
    assert not np.array_equal(first.maps, run(2).maps)


# --- precision ------------------------------------------------------------------------------------------------

G = 8
DENSE_IMAGE = np.random.default_rng(3).uniform(0.2, 0.8, (G, G, 3)).astype(np.float32)
DENSE_FILL = Baseline(BaselineKind.BLACK).resolve(DENSE_IMAGE, Preprocessing(), np.random.default_rng(0))
# Target 0 reads every cell with a random weight; target 1 a Gaussian bump: a clearer ranking, more reliable.
WEIGHTS = np.random.default_rng(4).normal(size=(2, G, G))
WEIGHTS[1] *= np.exp(-((np.arange(G)[:, None] - 3) ** 2 + (np.arange(G)[None] - 4) ** 2) / 8)


class DenseModel:
    def __init__(self) -> None:
        self.passes = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        self.passes += len(images)
        return np.tanh(np.einsum("nhwc,thw->nt", images.astype(np.float64), WEIGHTS) / G)


def dense_runs(sampler: str, designs: int):
    outs = [explain(DenseModel(), DENSE_IMAGE, DENSE_FILL, seed=seed, batch_size=256, grid_size=G,
                    num_designs=designs, sampler=sampler, target_reliability=0) for seed in SEEDS]
    maps = np.array([out.maps.reshape(2, -1) for out in outs], dtype=np.float64)  # one pixel per cell
    errors = np.array([out.precision.standard_error.reshape(2, -1) for out in outs], dtype=np.float64)
    return outs, maps, errors


@pytest.mark.parametrize("sampler", ["latin_hypercube", "sobol"])
def test_half_sampling_se_matches_the_spread_over_seeds(sampler):
    _, maps, errors = dense_runs(sampler, 200)
    spread = maps.std(axis=0, ddof=1)
    # RMS over cells of the empirical SD over 10 seeds against the mean reported SE. Measured 0.74-0.83 (the
    # half-sampling SE is a little conservative, as any MC-type error of a quasi-random design); a factor of 1.6
    # either way leaves room for the SD's own sampling error with 10 seeds (~23%).
    ratio = np.sqrt((spread**2).mean(axis=1) / (errors.mean(axis=0) ** 2).mean(axis=1))
    assert np.all((1 / 1.6 < ratio) & (ratio < 1.6)), ratio


@pytest.mark.parametrize("sampler", ["latin_hypercube", "sobol"])
def test_reliability_predicts_the_agreement_of_two_independent_full_runs(sampler):
    outs, maps, _ = dense_runs(sampler, 200)
    reported = np.mean([out.precision.reliability for out in outs], axis=0)
    agreement = np.mean([[spearmanr(maps[i, t], maps[i + 1, t]).statistic for t in range(2)]
                         for i in range(0, len(maps), 2)], axis=0)
    # Measured: reported 0.35/0.32 vs 0.36/0.27 (LHS), 0.54/0.56 vs 0.42/0.56 (Sobol'); five pairs of runs.
    np.testing.assert_allclose(reported, agreement, atol=0.2)


def cell_model(cell_weights: np.ndarray):
    """A score reading the cells of a 4 x 4 grid (2 x 2 pixels each) of the 8 x 8 image with these weights."""
    weights = np.kron(cell_weights.reshape(4, 4), np.ones((2, 2)))
    scale = 0.3 * weights.sum()
    return lambda images: np.tanh(np.einsum("nhwc,hw->n", images.astype(np.float64), weights) / scale)[:, None]


def test_sampling_stops_at_the_target_and_earlier_on_an_easier_map():
    # Cell weights 0, 1, ..., 15 give HSICs far apart at the top of the ranking; weights sqrt(1..16) crowd them
    # together, so their ranks take far more designs to settle. Measured (seeds 0-2): 726, 582, 192 designs
    # against 2000 (the cap) each.
    run = lambda weights: explain(cell_model(weights), DENSE_IMAGE, DENSE_FILL, num_designs=2000, grid_size=4,
                                  sampler="latin_hypercube", target_reliability=0.9).precision
    easy, hard = run(np.arange(16.0)), run(np.sqrt(np.arange(1.0, 17.0)))
    assert easy.stop_reason is StopReason.RELIABILITY and np.all(easy.reliability >= 0.9) and easy.rounds >= 5
    assert easy.samples < 1000 < hard.samples <= 2000


def test_the_cap_and_max_seconds_bound_the_sampling():
    model = DenseModel()
    capped = explain(model, DENSE_IMAGE, DENSE_FILL, num_designs=150, grid_size=G, target_reliability=0.99)
    assert capped.precision.stop_reason is StopReason.SAMPLES and model.passes == 150 == capped.precision.samples
    assert capped.precision.samples_for_target > 150  # how many more the prophecy says the target needs
    model = DenseModel()
    timed = explain(model, DENSE_IMAGE, DENSE_FILL, num_designs=2000, grid_size=G, target_reliability=0.99,
                    max_seconds=1e-9)
    # One round (32 designs a half on 64 cells) and the clock has run out.
    assert timed.precision.stop_reason is StopReason.TIME and model.passes == 64 == timed.precision.samples
