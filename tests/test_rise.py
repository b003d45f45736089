"""RISE against its closed-form expectation on a linear model, and its engineering promises."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from skimage.transform import resize

from service.errors import InvalidArgument
from service.explainers import get_method
from service.explainers.baselines import Baseline, BaselineKind
from service.explainers.rise import MaskSampler, RiseParams, attribute, upsampler
from service.runtime.preprocessing import Preprocessing

RISE = get_method("rise")
SHAPE = (18, 14, 3)  # not square: catches swapped axes


def _fill(image, kind=BaselineKind.BLACK):
    return Baseline(kind).resolve(image, Preprocessing(), np.random.default_rng(0))


def _linear_problem(seed=0):
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=SHAPE).astype(np.float32)
    image = rng.random(SHAPE, dtype=np.float32)
    predict = lambda images: np.einsum("bhwc,hwc->b", images, weights)[:, None]
    return weights, image, predict


def closed_form(weights, image, baseline, params: RiseParams) -> np.ndarray:
    """E[f(x_M) M] / p for f(x) = sum w x: f(b) + p sum(c) + (1 - p) Ky C Kx^T, with c = sum_ch w (x - b).

    A mask pixel is a weighted sum of independent Bernoulli(p) cells, so E[M_q M_p] = p^2 + p(1-p) <a_p, a_q>;
    the interpolation weights factor over rows and columns and the shifts are independent and uniform.
    """
    height, width, _ = image.shape
    p = params.keep_probability
    contribution = (weights * (image - baseline)).sum(axis=2)
    kernels = []
    for size in (height, width):
        cell = int(np.ceil(size / params.grid_size))
        full = upsampler(params.grid_size, cell)
        kernels.append(np.mean([full[s:s + size] @ full[s:s + size].T for s in range(cell)], axis=0))
    on_baseline = float((weights * baseline).sum())
    return on_baseline + p * contribution.sum() + (1 - p) * kernels[0] @ contribution @ kernels[1].T


@pytest.mark.parametrize("cells, size", [((7, 7), (48, 48)), ((5, 5), (30, 42))])
def test_upsampler_is_scikit_image_bilinear_resize(cells, size):
    grid = np.random.default_rng(0).random(cells)
    rows, cols = (upsampler(cells[0], size[0] // cells[0]), upsampler(cells[1], size[1] // cells[1]))
    expected = resize(grid, (rows.shape[0], cols.shape[0]), order=1, mode="edge", anti_aliasing=False)
    np.testing.assert_allclose(rows @ grid @ cols.T, expected, atol=1e-6)


def test_converges_to_the_closed_form_on_a_linear_model():
    weights, image, predict = _linear_problem()
    fill = _fill(image, BaselineKind.UNIFORM_NOISE)
    errors = []
    for masks in (250, 4000, 64000):
        params = RiseParams(num_masks=masks, grid_size=4, keep_probability=0.4)
        expected = closed_form(weights, image, fill.image, params)
        ours = attribute(predict, image, params, baseline=fill, batch_size=512, rng=np.random.default_rng(1))[0]
        errors.append(np.abs(ours - expected).mean() / np.abs(expected - expected.mean()).mean())
    # Monte Carlo error shrinks like 1/sqrt(N): 16x the masks, about 4x smaller (measured 1.11, 0.29, 0.050).
    assert errors[1] < errors[0] / 3 and errors[2] < errors[1] / 3, errors
    assert errors[2] < 0.08, errors


def test_same_seed_same_map_whatever_the_batch_size():
    _, image, predict = _linear_problem(1)
    params = RiseParams(num_masks=300)
    fill = _fill(image)
    first = attribute(predict, image, params, baseline=fill, batch_size=7, rng=np.random.default_rng(5))
    second = attribute(predict, image, params, baseline=fill, batch_size=512, rng=np.random.default_rng(5))
    other = attribute(predict, image, params, baseline=fill, batch_size=512, rng=np.random.default_rng(6))
    np.testing.assert_array_equal(first, second)
    assert not np.allclose(first, other)


def test_each_mask_has_its_own_shift():
    sampler = MaskSampler(RiseParams(num_masks=64), 64, 64, np.random.default_rng(0))
    assert len({(y, x) for y, x in zip(sampler.shift_y, sampler.shift_x)}) > 20
    masks = sampler.masks(0, 64)
    assert masks.shape == (64, 64, 64) and masks.min() >= 0 and masks.max() <= 1
    assert abs(masks.mean() - 0.5) < 0.05  # bilinear weights sum to one: E[M] = p


def test_forward_passes_and_memory_do_not_grow_with_the_number_of_masks():
    _, image, predict = _linear_problem(2)
    calls = []
    counted = lambda images: (calls.append(len(images)), predict(images))[1]
    peaks = []
    for masks in (1000, 8000):
        calls.clear()
        tracemalloc.start()
        attribute(counted, image, RiseParams(num_masks=masks), baseline=_fill(image), batch_size=100,
                  rng=np.random.default_rng(0))
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        assert sum(calls) == masks == RISE.forward_passes(RiseParams(num_masks=masks), SHAPE)
        assert max(calls) <= 100
    # Only the drawn grids grow (N x 49 booleans, drawn as float32): 7000 more masks cost about 1.5 MB at the
    # peak, where 7000 more 18 x 14 x 3 images would cost 21 MB.
    assert peaks[1] - peaks[0] < 2.0e6, peaks


@pytest.mark.parametrize("params, field", [({"num_masks": 0}, "rise.num_masks"), ({"grid_size": 1}, "rise.grid_size"),
                                           ({"grid_size": 40}, "rise.grid_size"),
                                           ({"keep_probability": 1.0}, "rise.keep_probability")])
def test_bad_parameters_name_their_field(params, field):
    with pytest.raises(InvalidArgument) as caught:
        RISE.check(RISE.make_params(params), SHAPE)
    assert caught.value.field == field


def test_centered_map_is_the_map_minus_the_mean_score():
    weights, image, predict = _linear_problem(3)
    fill = _fill(image)
    plain = attribute(predict, image, RiseParams(num_masks=20000), baseline=fill, batch_size=1000,
                      rng=np.random.default_rng(0))[0]
    centered = attribute(predict, image, RiseParams(num_masks=20000, centered=True), baseline=fill,
                         batch_size=1000, rng=np.random.default_rng(0))[0]
    mean_score = predict(np.stack([image * 0.5]))[0, 0]  # E[f(x_M)] = f(b + p (x - b)) for a linear f, b = 0
    np.testing.assert_allclose(plain - centered, mean_score, rtol=0.02)
