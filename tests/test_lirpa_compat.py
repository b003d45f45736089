"""The auto_LiRPA compatibility module: each shim does what it claims, and importing it leaves the service's
logging and warnings as they were."""

from __future__ import annotations

import importlib
import logging
import warnings

import numpy as np
import pytest
import torch

from service.verify import lirpa_compat


def test_imports_auto_lirpa_without_touching_logging_or_warning_filters():
    root_handlers, filters = list(logging.getLogger().handlers), list(warnings.filters)
    lirpa = lirpa_compat.auto_lirpa()
    assert lirpa.__version__ and logging.getLogger().handlers == root_handlers and warnings.filters == filters
    assert logging.getLogger("auto_LiRPA").getEffectiveLevel() >= logging.WARNING


def test_the_numpy_and_torch_shims_behave_like_what_they_replace():
    lirpa_compat.auto_lirpa()
    arraysetops = importlib.import_module("numpy.lib.arraysetops")
    np.testing.assert_array_equal(arraysetops.isin([1, 2, 3], [2]), [False, True, False])
    symbolic_helper = importlib.import_module("torch.onnx.symbolic_helper")
    globals_ = lirpa_compat._exporter_globals()
    before = globals_.export_onnx_opset_version
    try:
        symbolic_helper._set_opset_version(12)
        assert globals_.export_onnx_opset_version == 12
    finally:
        globals_.export_onnx_opset_version = before
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.trace's deprecation
        graph = torch.jit.trace(torch.nn.Flatten(1), torch.zeros(1, 2, 2)).graph
    constants = [node for node in graph.nodes() if node.kind() == "prim::Constant" and node.hasAttribute("value")]
    assert constants and constants[0]["value"] == symbolic_helper._node_get(constants[0], "value")


def test_bounded_module_takes_torchs_remove_duplicate_argument():
    bounded = lirpa_compat.bounded_module(torch.nn.Linear(3, 2), torch.zeros(1, 3), "cpu")
    names = [name for name, _ in bounded.named_parameters()]  # torch passes remove_duplicate=True
    assert len(names) == 2


def test_alpha_crown_is_offered_only_from_0_4():
    """0.3's alpha-CROWN breaks on MaxPool, which the bundled models have."""
    assert ("alpha-CROWN" in lirpa_compat.available_methods()) == (lirpa_compat.version() >= (0, 4))


@pytest.mark.parametrize("method", ["IBP", "CROWN-IBP", "CROWN"])
def test_upper_bounds_of_a_linear_map_are_exact(method):
    layer = torch.nn.Linear(4, 3)
    bounded = lirpa_compat.bounded_module(layer, torch.zeros(1, 4), "cpu")
    x = torch.tensor([[0.1, -0.2, 0.3, 0.0]])
    spec = torch.tensor([[[1.0, -1.0, 0.0], [0.0, -1.0, 1.0]]])
    with torch.no_grad():
        upper = lirpa_compat.compute_upper_bounds(bounded, x, x - 0.1, x + 0.1, spec, method)
    rows = spec[0] @ layer.weight
    expected = spec[0] @ layer(x)[0] + 0.1 * rows.abs().sum(dim=1)
    torch.testing.assert_close(upper[0], expected.detach(), atol=1e-5, rtol=1e-5)
