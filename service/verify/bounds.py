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
from service.verify.mirror import Mirror, holding

# Points through the head at once in hybrid mode.
BATCH = 64
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
    cancellation), ``checkpoint`` inside it, between auto_LiRPA's backward walks (a CROWN call takes seconds)."""

    certified = True

    def __init__(self, model: LoadedModel, mirror: Mirror, method: str,
                 on_chunk: Callable[[int], None] | None = None,
                 checkpoint: Callable[[], None] | None = None) -> None:
        from service.errors import FailedPrecondition

        self.model, self.mirror, self.method = model, mirror, METHODS[method]
        if self.method not in available_methods():
            raise FailedPrecondition(f"bound_method {method} is not supported by the installed auto_LiRPA on this "
                                     f"model; use one of {[k for k, v in METHODS.items() if v in available_methods()]}",
                                     field="eva.bound_method")
        self.on_chunk = on_chunk or (lambda regions: None)
        self.checkpoint = checkpoint

    def model_inputs(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.info.preprocessing.apply(pixels, channels_first=self.mirror.channels_first)

    def __call__(self, lower: np.ndarray, upper: np.ndarray, target: int, competitors: Sequence[int]) -> np.ndarray:
        import torch

        device = self.mirror.device
        low = torch.from_numpy(self.model_inputs(lower)).to(device)
        high = torch.from_numpy(self.model_inputs(upper)).to(device)
        spec = torch.from_numpy(margin_spec(len(lower), self.model.info.num_classes, target, competitors)).to(device)
        with holding(self.mirror.lock, self.checkpoint or (lambda: None)), \
                torch.set_grad_enabled(self.method == "alpha-CROWN"):
            bounds = compute_upper_bounds(self.mirror.bounded, (low + high) / 2, low, high, spec, self.method,
                                          self.checkpoint)
        self.on_chunk(len(lower))
        return bounds.detach().cpu().numpy().astype(np.float64)


class HybridBounds:
    """Margin bounds for a model cut at ``layer`` (EVA on models too large to bound end to end; Fel et al. 2023,
    Fig. 3): the head's output box over a pixel box is taken empirically, as the element-wise min and max of
    the head's outputs at ``samples`` points of the box (half uniform, half corners) and at points a
    signed-gradient (PGD) attack on the largest margin reaches in ``attack_steps`` steps; the tail is bounded
    on that box with auto_LiRPA. The box under-approximates what the head can reach, so the bounds are not
    certified: ``certified`` is False."""

    certified = False

    def __init__(self, model: LoadedModel, mirror: Mirror, method: str, layer: str, *, samples: int,
                 attack_steps: int, rng: np.random.Generator, on_chunk: Callable[[int], None] | None = None,
                 checkpoint: Callable[[], None] | None = None) -> None:
        self.margin_bounds = MarginBounds(model, mirror, method, on_chunk, checkpoint)
        self.parts = mirror.hybrid(layer)
        self.head, self.tail = self.parts.head, self.parts.tail
        self.samples, self.attack_steps, self.rng = samples, attack_steps, rng

    def _values(self, pixels):
        """Pixels (B, H, W, C) -> model inputs, in torch (differentiable, for the attack)."""
        import torch

        preprocessing, mirror = self.margin_bounds.model.info.preprocessing, self.margin_bounds.mirror
        scale, offset = (torch.from_numpy(v).to(pixels.device) for v in preprocessing.affine())
        if preprocessing.channel_order.value == "BGR":
            pixels = pixels.flip(-1)
        values = pixels * scale + offset
        return values.permute(0, 3, 1, 2) if mirror.channels_first else values

    def _attack(self, low, high, target: int, competitors: Sequence[int], starts: int):
        import torch

        generator = torch.Generator(device=low.device).manual_seed(int(self.rng.integers(2**31)))
        x = low + (high - low) * torch.rand((starts, *low.shape), generator=generator, device=low.device)
        step = float((high - low).max()) / 4
        path = [x.detach()]
        for _ in range(self.attack_steps):
            x.requires_grad_(True)
            logits = self.tail(self.head(self._values(x)))
            objective = (logits[:, list(competitors)] - logits[:, [target]]).max(dim=1).values.sum()
            (gradient,) = torch.autograd.grad(objective, x)
            x = torch.minimum(torch.maximum(x.detach() + step * gradient.sign(), low), high)
            path.append(x)
        return torch.cat(path)

    def feature_box(self, lower: np.ndarray, upper: np.ndarray, target: int, competitors: Sequence[int]):
        """(low, high, points): the head's output box over one pixel box (H, W, C), from the points seen (pixels,
        (P, H, W, C)): the box's centre, the samples, and every step of the attack."""
        import torch

        device = self.margin_bounds.mirror.device
        low, high = torch.from_numpy(lower).to(device), torch.from_numpy(upper).to(device)
        half = self.samples // 2
        uniform = self.rng.random((half, *lower.shape), dtype=np.float32)
        corners = (self.rng.random((self.samples - half, *lower.shape)) < 0.5).astype(np.float32)
        draws = torch.from_numpy(np.concatenate([uniform, corners])).to(device)
        centre = ((low + high) / 2)[None]
        points = torch.cat([centre, low + (high - low) * draws,
                            self._attack(low, high, target, competitors, starts=2)]).detach()
        with torch.no_grad():
            features = torch.cat([self.head(self._values(points[i:i + BATCH])) for i in range(0, len(points), BATCH)])
        return features.min(dim=0).values, features.max(dim=0).values, points

    def bound_tail(self, boxes: Sequence[tuple], target: int, competitors: Sequence[int]) -> np.ndarray:
        """Upper bounds (R, k) of the margins over the tail's input boxes [(low, high), ...]."""
        import torch

        low = torch.stack([box[0] for box in boxes])
        high = torch.stack([box[1] for box in boxes])
        mirror = self.margin_bounds.mirror
        spec = torch.from_numpy(margin_spec(len(boxes), self.margin_bounds.model.info.num_classes, target,
                                            competitors)).to(mirror.device)
        method = self.margin_bounds.method
        with holding(mirror.lock, self.margin_bounds.checkpoint or (lambda: None)), \
                torch.set_grad_enabled(method == "alpha-CROWN"):
            bounds = compute_upper_bounds(self.parts.bounded_tail, (low + high) / 2, low, high, spec, method,
                                          self.margin_bounds.checkpoint)
        return bounds.detach().cpu().numpy().astype(np.float64)

    def __call__(self, lower: np.ndarray, upper: np.ndarray, target: int, competitors: Sequence[int]) -> np.ndarray:
        boxes = [self.feature_box(lo, hi, target, competitors)[:2] for lo, hi in zip(lower, upper)]
        bounds = self.bound_tail(boxes, target, competitors)
        self.margin_bounds.on_chunk(len(lower))
        return bounds
