"""Occlusion against closed forms and against captum's reference implementation."""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from onnx_builders import export_torch, image_classifier

from service.explainers import get_method
from service.explainers.baselines import Baseline, BaselineKind
from service.jobs.control import JobControl
from service.jobs.explain import ExplainJob, Targets, run_explain
from service.runtime.loader import load_model

OCCLUSION = get_method("occlusion")


def _required(module: str):
    """A module of the `test` extra: missing, the install is broken, and the reference check must fail, not skip."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        pytest.fail(f"{module} is part of the test extra (pip install -e '.[test]'); without it the reference "
                    f"check cannot run: {error}")


def _explain(model, image, baseline=Baseline(), targets=Targets(), **params):
    job = ExplainJob(OCCLUSION, OCCLUSION.make_params(params), image, targets=targets, baseline=baseline,
                     batch_size=16)
    return run_explain(model, job)


def test_single_pixel_windows_give_each_pixels_exact_contribution():
    # f(x) = sum(w * x) and a black baseline: occluding pixel p drops the score by exactly sum_c w[p, c] x[p, c].
    rng = np.random.default_rng(0)
    shape = (7, 9, 3)
    weights = rng.normal(size=shape).astype(np.float32)
    model = load_model("linear", image_classifier(weights.reshape(-1, 1), shape, layout="NHWC").SerializeToString(),
                       source="test")
    image = rng.random(shape, dtype=np.float32)
    result = _explain(model, image, Baseline(BaselineKind.BLACK), window=[1], stride=[1])
    np.testing.assert_allclose(result.maps[0], (weights * image).sum(axis=2), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size, window, stride", [((20, 24), (5, 5), (3, 3)), ((17, 13), (4, 6), (4, 2)),
                                                  ((16, 16), (16, 3), (1, 3))])
def test_forward_passes_are_counted_exactly(size, window, stride):
    rng = np.random.default_rng(1)
    shape = (*size, 3)
    model = load_model("linear", image_classifier(rng.normal(size=(math.prod(shape), 2)), shape).SerializeToString(),
                       source="test")
    result = _explain(model, rng.random(shape, dtype=np.float32), window=list(window), stride=list(stride))
    windows = math.prod(math.ceil((n - w) / s) + 1 for n, w, s in zip(size, window, stride))
    assert result.forward_passes == windows + 1 + 2  # windows, the reference, clean image and pure baseline
    assert OCCLUSION.forward_passes(OCCLUSION.make_params({"window": list(window), "stride": list(stride)}),
                                    shape) == windows + 1


def test_an_unset_stride_is_half_the_window_and_the_echo_names_it():
    """Windows of 6 x 9 move by (3, 4) when no stride is given: the maps equal those of that stride given, and the
    parameters a response echoes name it rather than null."""
    rng = np.random.default_rng(2)
    shape = (18, 21, 3)
    model = load_model("linear", image_classifier(rng.normal(size=(math.prod(shape), 2)), shape).SerializeToString(),
                       source="test")
    image = rng.random(shape, dtype=np.float32)
    unset, given = _explain(model, image, window=[6, 9]), _explain(model, image, window=[6, 9], stride=[3, 4])
    assert unset.parameters == {"window": (6, 9), "stride": (3, 4)}
    np.testing.assert_array_equal(unset.maps, given.maps)


@pytest.mark.parametrize("window, stride, baseline", [
    ((5, 5), (3, 3), Baseline()),
    ((4, 6), (2, 5), Baseline(BaselineKind.CONSTANT, 0.3)),
    ((7, 3), (7, 3), Baseline(BaselineKind.DATASET_MEAN)),
])
def test_matches_captum_occlusion_on_the_pytorch_source(tmp_path, window, stride, baseline):
    torch, captum = _required("torch"), _required("captum.attr")
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(8, 5),
    ).eval()
    height, width = 20, 22
    mean, std = np.array([0.4, 0.5, 0.6], np.float32), np.array([0.2, 0.25, 0.3], np.float32)
    path = export_torch(net, tmp_path / "net.onnx", (2, 3, height, width))
    model = load_model("net", path.read_bytes(), source="test",
                       overrides={"preprocessing": {"mean": mean.tolist(), "std": std.tolist()}})
    image = np.random.default_rng(2).random((height, width, 3), dtype=np.float32)
    ours = _explain(model, image, baseline=baseline, targets=Targets(top_k=2), window=list(window),
                    stride=list(stride))

    # captum works in the model's input space: normalise the image and the baseline the same way.
    baseline_pixels = baseline.resolve(image, model.info.preprocessing, np.random.default_rng(0)).image
    to_model = lambda pixels: torch.from_numpy(((pixels - mean) / std).transpose(2, 0, 1)[None].copy())
    occlusion = captum.Occlusion(net)
    for target, our_map in zip(ours.targets, ours.maps):
        with torch.no_grad():
            reference = occlusion.attribute(to_model(image), sliding_window_shapes=(3, *window),
                                            strides=(3, *stride), baselines=to_model(baseline_pixels),
                                            target=target.class_index)
        np.testing.assert_allclose(our_map, reference[0, 0].numpy(), rtol=1e-4, atol=1e-4)
        # captum occludes all channels together, so its three channel maps are the same map.
        np.testing.assert_allclose(reference[0, 1].numpy(), reference[0, 0].numpy(), atol=1e-6)


def test_cancelled_job_stops_between_batches():
    from service.errors import Cancelled

    rng = np.random.default_rng(3)
    shape = (32, 32, 3)
    model = load_model("linear", image_classifier(rng.normal(size=(math.prod(shape), 2)), shape).SerializeToString(),
                       source="test")
    seen = []
    control = JobControl(on_progress=lambda p: (seen.append(p.done), control.cancel() if p.done > 0 else None))
    job = ExplainJob(OCCLUSION, OCCLUSION.make_params({"window": [2], "stride": [1]}),
                     rng.random(shape, dtype=np.float32), batch_size=8)
    with pytest.raises(Cancelled):
        run_explain(model, job, control)
    assert max(seen) < OCCLUSION.forward_passes(job.params, shape)  # stopped long before the end


@pytest.mark.parametrize("params, field", [
    ({"window": [0]}, "occlusion.window"),
    ({"window": [99]}, "occlusion.window"),
    ({"stride": [0]}, "occlusion.stride"),
    ({"window": [4], "stride": [5]}, "occlusion.stride"),
    ({"window": [1, 2, 3]}, "occlusion.window"),
])
def test_out_of_range_parameters_name_their_field(params, field):
    from service.errors import InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        OCCLUSION.check(OCCLUSION.make_params(params), (32, 32, 3))
    assert caught.value.field == field
