"""Sound upper bounds of class margins over pixel boxes: what EVA asks of a verifier.

Boxes arrive in pixel space ([0, 1], H x W x C, as every method sees images). The model's preprocessing is
a per-channel affine map with a positive scale (std > 0), so it maps a pixel box onto a model-input box
corner to corner; the mirror is bounded on that box with auto_LiRPA, for the margins f_j - f_c given by a
specification matrix C with rows e_j - e_c, upper bounds only.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from service.runtime.model import LoadedModel
from service.verify.lirpa_compat import available_methods, compute_upper_bounds
from service.verify.mirror import Mirror

# EVA's parameter values (proto enum names) to the compat layer's method names.
METHODS = {"ibp": "IBP", "crown_ibp": "CROWN-IBP", "crown": "CROWN", "alpha_crown": "alpha-CROWN"}


def margin_spec(batch: int, classes: int, target: int, competitors: Sequence[int]) -> np.ndarray:
    """C (batch, k, classes) with row i = e_{competitors[i]} - e_target."""
    spec = np.zeros((batch, len(competitors), classes), dtype=np.float32)
    spec[:, np.arange(len(competitors)), list(competitors)] = 1.0
    spec[:, :, target] = -1.0
    return spec


class MarginBounds:
    """``bound_margins`` for EVA on a model's mirror; ``on_chunk(regions)`` runs after every call (progress,
    cancellation)."""

    certified = True

    def __init__(self, model: LoadedModel, mirror: Mirror, method: str,
                 on_chunk: Callable[[int], None] | None = None) -> None:
        from service.errors import FailedPrecondition

        self.model, self.mirror, self.method = model, mirror, METHODS[method]
        if self.method not in available_methods():
            raise FailedPrecondition(f"bound_method {method} is not supported by the installed auto_LiRPA on this "
                                     f"model; use one of {[k for k, v in METHODS.items() if v in available_methods()]}",
                                     field="method.eva.bound_method")
        self.on_chunk = on_chunk or (lambda regions: None)

    def model_inputs(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.info.preprocessing.apply(pixels, channels_first=self.mirror.channels_first)

    def __call__(self, lower: np.ndarray, upper: np.ndarray, target: int, competitors: Sequence[int]) -> np.ndarray:
        import torch

        device = self.mirror.device
        low = torch.from_numpy(self.model_inputs(lower)).to(device)
        high = torch.from_numpy(self.model_inputs(upper)).to(device)
        spec = torch.from_numpy(margin_spec(len(lower), self.model.info.num_classes, target, competitors)).to(device)
        with self.mirror.lock, torch.set_grad_enabled(self.method == "alpha-CROWN"):
            bounds = compute_upper_bounds(self.mirror.bounded, (low + high) / 2, low, high, spec, self.method)
        self.on_chunk(len(lower))
        return bounds.detach().cpu().numpy().astype(np.float64)
