"""Sound upper bounds of class margins over pixel boxes: what EVA asks of a verifier.

Boxes arrive in pixel space ([0, 1], H x W x C, as every method sees images). The model's preprocessing is
a per-channel affine map with a positive scale (std > 0), so it maps a pixel box onto a model-input box
corner to corner; the mirror is bounded on that box with auto_LiRPA, for the margins f_j - f_c given by a
specification matrix C with rows e_j - e_c, upper bounds only.
"""

from __future__ import annotations

import logging
from typing import Callable, Sequence

import numpy as np

from service.errors import FailedPrecondition, ServiceError
from service.runtime.model import LoadedModel
from service.verify.capability import one_line
from service.verify.cones import reached, settled
from service.verify.lirpa_compat import compute_upper_bounds, intermediate_bounds, relu_inputs
from service.verify.mirror import WHOLE, HybridParts, Mirror, holding

log = logging.getLogger(__name__)

# Points through the head at once in hybrid mode.
BATCH = 64
# EVA's parameter values (proto enum names) to the compat layer's method names.
METHODS = {"ibp": "IBP", "crown_ibp": "CROWN-IBP", "crown": "CROWN", "alpha_crown": "alpha-CROWN"}
# The methods whose intermediate bounds come from backward walks of their own, worth sharing between a box and
# the boxes inside it (``MarginBounds``); IBP and CROWN-IBP take theirs from IBP, which costs nothing to redo.
SHARED_METHODS = ("CROWN",)
# A box shares the enclosing box's bounds when it differs from it on less than this share of the input elements
# (an EVA region of an 8 x 8 grid: 1/64); a box that differs more is bounded alone and encloses the next ones.
SHARE_BELOW = 0.5


def margin_spec(batch: int, classes: int, target: int, competitors: Sequence[int]) -> np.ndarray:
    """C (batch, k, classes) with row i = e_{competitors[i]} - e_target."""
    spec = np.zeros((batch, len(competitors), classes), dtype=np.float32)
    spec[:, np.arange(len(competitors)), list(competitors)] = 1.0
    spec[:, :, target] = -1.0
    return spec


class _Bounds:
    """What both kinds share: the model, its mirror, the method, progress and cancellation, and the refusal of a
    bound computation that fails."""

    certified = True
    split_layer, verified, head_runtime = "", "whole model", ""

    def __init__(self, model: LoadedModel, mirror: Mirror, method: str, on_chunk: Callable[[int], None] | None,
                 checkpoint: Callable[[], None] | None) -> None:
        if method not in METHODS:
            raise FailedPrecondition(f"unknown bound_method {method!r}; one of {list(METHODS)}",
                                     field="eva.bound_method")
        self.model, self.mirror, self.method_name, self.method = model, mirror, method, METHODS[method]
        self.on_chunk = on_chunk or (lambda regions: None)
        self.checkpoint = checkpoint

    def model_inputs(self, pixels: np.ndarray) -> np.ndarray:
        return self.model.info.preprocessing.apply(pixels, channels_first=self.mirror.channels_first)

    def _upper_bounds(self, bounded, low, high, spec, shared=None, keep: Callable | None = None) -> np.ndarray:
        """``compute_upper_bounds`` under the mirror's lock (``shared`` as it takes it; ``keep``, if given, is
        called on the bounded module right after, still under the lock); a failure of auto_LiRPA (the capability
        probe ran on a tiny box, a request's box or batch may still hit a case it does not handle) is
        FailedPrecondition naming the method, never INTERNAL."""
        import torch

        try:
            with holding(self.mirror.lock, self.checkpoint or (lambda: None)), \
                    torch.set_grad_enabled(self.method == "alpha-CROWN"):
                bounds = compute_upper_bounds(bounded, (low + high) / 2, low, high, spec, self.method, self.checkpoint,
                                              shared)
                if keep is not None:
                    keep(bounded)
        except ServiceError:
            raise
        except Exception as error:
            reason = one_line(error)
            log.warning("bounds failed: %s", reason, extra={"model": self.model.info.name, "method": self.method})
            raise FailedPrecondition(f"{self.method_name} failed on this model's {self.verified}: "
                                     f"{reason}", field="eva.bound_method") from error
        return bounds.detach().cpu().numpy().astype(np.float64)


class MarginBounds(_Bounds):
    """``bound_margins`` for EVA on a model's whole mirror; ``on_chunk(regions)`` runs after every call (progress,
    cancellation), ``checkpoint`` inside it, between auto_LiRPA's backward walks (a CROWN call takes seconds).
    FailedPrecondition when the capability probe found the method not running on the whole model.

    With CROWN (``SHARED_METHODS``), boxes inside the last box bounded alone (EVA's full ball, which its map
    bounds first) take that box's intermediate bounds outside the forward cone of the elements where they differ
    from it (``cones``), and auto_LiRPA bounds only the rest: on the 8 x 8 grid of the bundled shapes CNN a
    group reaches about half of the last conv layer's neurons, where CROWN spends most of its time (bench/eva.py).
    Sound whatever the cone: the enclosing box's bounds hold on every box inside it. Inside the cone the
    bounds are computed as without sharing; outside it they are those the box would get, since a neuron's bounds
    depend only on the box inside its own cone (``cones``); the one difference is auto_LiRPA's choice of
    bounding a node sparsely (by CROWN only where IBP leaves a neuron unstable, IBP elsewhere) or densely (CROWN
    everywhere, when IBP leaves over 90 % unstable), taken on the neurons left to bound: sharing can make a
    node sparse, giving IBP-stable neurons their IBP bounds rather than CROWN's (tests/test_eva_cost.py
    compares both ways). ``share=False`` bounds every box alone."""

    def __init__(self, model: LoadedModel, mirror: Mirror, method: str,
                 on_chunk: Callable[[int], None] | None = None,
                 checkpoint: Callable[[], None] | None = None, *, share: bool = True) -> None:
        super().__init__(model, mirror, method, on_chunk, checkpoint)
        mirror.resolve(WHOLE, self.method, checkpoint or (lambda: None))
        self.share = share and self.method in SHARED_METHODS
        # (low, high, intermediate bounds) of the last box bounded alone, one row each.
        self.enclosing: tuple | None = None

    def __call__(self, lower: np.ndarray, upper: np.ndarray, target: int, competitors: Sequence[int]) -> np.ndarray:
        import torch

        device = self.mirror.device
        low = torch.from_numpy(self.model_inputs(lower)).to(device)
        high = torch.from_numpy(self.model_inputs(upper)).to(device)
        spec = torch.from_numpy(margin_spec(len(lower), self.model.info.num_classes, target, competitors)).to(device)
        if not self.share:
            bounds = self._upper_bounds(self.mirror.bounded, low, high, spec)
        else:
            bounds = np.concatenate([self._shared_bounds(low[i:j], high[i:j], spec[i:j])
                                     for i, j in self._runs(low, high)])
        self.on_chunk(len(lower))
        return bounds

    def _inside(self, low, high):
        """Per row, whether it takes the enclosing box's bounds: its box lies inside that box and differs from it
        on less than ``SHARE_BELOW`` of the elements (a ball inside a larger one differs everywhere: no neuron
        would keep a shared bound, and it makes a tighter enclosing box for what follows)."""
        if self.enclosing is None:
            return np.zeros(len(low), dtype=bool)
        outer_low, outer_high, _ = self.enclosing
        inside = ((low >= outer_low) & (high <= outer_high)).flatten(1).all(dim=1)
        changed = ((low != outer_low) | (high != outer_high)).flatten(1).float().mean(dim=1)
        return (inside & (changed < SHARE_BELOW)).cpu().numpy()

    def _runs(self, low, high) -> list[tuple[int, int]]:
        """The rows cut into runs bounded together: a row outside the enclosing box alone (it becomes the
        enclosing box), then the rows inside it together, and so on."""
        runs, start = [], 0
        while start < len(low):
            if not self._inside(low[start:start + 1], high[start:start + 1])[0]:
                runs.append((start, start + 1))
                start += 1
                continue
            inside = self._inside(low[start:], high[start:])
            stop = start + (int(np.argmin(inside)) if not inside.all() else len(inside))
            runs.append((start, stop))
            start = stop
        return runs

    def _shared_bounds(self, low, high, spec) -> np.ndarray:
        if not self._inside(low[:1], high[:1])[0]:  # a box of its own: bounded alone, and kept
            def keep(bounded):
                self.enclosing = (low, high, intermediate_bounds(bounded))
            self.enclosing = None
            return self._upper_bounds(self.mirror.bounded, low, high, spec, keep=keep)
        outer_low, outer_high, known = self.enclosing
        changed = (low != outer_low) | (high != outer_high)
        bounded = self.mirror.bounded
        try:
            cones = reached(bounded, changed, [name for name in relu_inputs(bounded) if name in known])
            stable = settled(bounded, known)
            shared = {name: (known[name][0].expand_as(mask), known[name][1].expand_as(mask), mask & ~stable[name])
                      for name, mask in cones.items()}
        except Exception as error:  # a graph the cones do not read: every box alone, as sound and only slower
            log.warning("no shared bounds: %s", one_line(error), extra={"model": self.model.info.name})
            self.share, shared = False, None
        return self._upper_bounds(bounded, low, high, spec, shared)


class HybridBounds(_Bounds):
    """Margin bounds for a model cut at a layer (EVA on models that cannot be bounded whole; Fel et al. 2023,
    Fig. 3): the head's output box over a pixel box is taken empirically, as the element-wise min and max of
    the head's outputs at ``samples`` points of the box (half uniform, half corners) and, where the head runs in
    PyTorch, at points a signed-gradient (PGD) attack on the largest margin reaches in ``attack_steps`` steps
    (a head on onnxruntime has no gradient: samples only); the tail is bounded on that box with auto_LiRPA.
    The box under-approximates what the head can reach, so the bounds are not certified: ``certified`` is
    False. ``layer``: the cut (``Mirror.resolve``'s parts) or a node name.

    Calling it samples every box at once from ``rng`` (EVA's calibration of epsilon); EVA's map samples in
    rounds instead, with ``sample_boxes`` (draws given by the caller, shared by the regions) and
    ``bound_boxes``, so that it can measure and reach its precision (``eva.hybrid``)."""

    certified = False

    def __init__(self, model: LoadedModel, mirror: Mirror, method: str, layer: "str | HybridParts", *, samples: int,
                 attack_steps: int, rng: np.random.Generator, on_chunk: Callable[[int], None] | None = None,
                 checkpoint: Callable[[], None] | None = None) -> None:
        super().__init__(model, mirror, method, on_chunk, checkpoint)
        self.parts = layer if isinstance(layer, HybridParts) else mirror.resolve(layer, self.method,
                                                                                  checkpoint or (lambda: None))
        if self.parts is None:
            raise FailedPrecondition("split_layer names the whole model; use the whole model's bounds",
                                     field="eva.split_layer")
        self.head, self.tail = self.parts.head, self.parts.tail
        self.split_layer, self.verified, self.head_runtime = (self.parts.layer, self.parts.verified,
                                                               self.parts.head_runtime)
        self.samples, self.rng = samples, rng
        self.attack_steps = attack_steps if self.parts.differentiable else 0
        self.head_passes = 0  # points through the head (attack steps included), for EVA's precision report

    def _values(self, pixels):
        """Pixels (B, H, W, C) -> model inputs, in torch (differentiable, for the attack)."""
        import torch

        preprocessing = self.model.info.preprocessing
        scale, offset = (torch.from_numpy(v).to(pixels.device) for v in preprocessing.affine())
        if preprocessing.channel_order.value == "BGR":
            pixels = pixels.flip(-1)
        values = pixels * scale + offset
        return values.permute(0, 3, 1, 2) if self.mirror.channels_first else values

    def _attack(self, low, high, target: int, competitors: Sequence[int], starts: int):
        import torch

        if not self.attack_steps:
            return low[None][:0]
        generator = torch.Generator(device=low.device).manual_seed(int(self.rng.integers(2**31)))
        x = low + (high - low) * torch.rand((starts, *low.shape), generator=generator, device=low.device)
        step = float((high - low).max()) / 4
        path = [x.detach()]
        for _ in range(self.attack_steps):
            x.requires_grad_(True)
            logits = self.tail(self.head(self._values(x)))
            objective = (logits[:, list(competitors)] - logits[:, [target]]).max(dim=1).values.sum()
            (gradient,) = torch.autograd.grad(objective, x)
            self.head_passes += starts
            x = torch.minimum(torch.maximum(x.detach() + step * gradient.sign(), low), high)
            path.append(x)
        return torch.cat(path)

    def feature_box(self, lower: np.ndarray, upper: np.ndarray, target: int, competitors: Sequence[int]):
        """(low, high, points): the head's output box over one pixel box (H, W, C), from the points seen (pixels,
        (P, H, W, C)): the box's centre, the samples, and every step of the attack."""
        import torch

        device = self.mirror.device
        low, high = torch.from_numpy(lower).to(device), torch.from_numpy(upper).to(device)
        half = self.samples // 2
        uniform = self.rng.random((half, *lower.shape), dtype=np.float32)
        corners = (self.rng.random((self.samples - half, *lower.shape)) < 0.5).astype(np.float32)
        draws = torch.from_numpy(np.concatenate([uniform, corners])).to(device)
        centre = ((low + high) / 2)[None]
        points = torch.cat([centre, low + (high - low) * draws,
                            self._attack(low, high, target, competitors, starts=2)]).detach()
        features = self._features(points)
        return features.min(dim=0).values, features.max(dim=0).values, points

    def bound_tail(self, boxes: Sequence[tuple], target: int, competitors: Sequence[int]) -> np.ndarray:
        """Upper bounds (R, k) of the margins over the tail's input boxes [(low, high), ...]."""
        import torch

        low = torch.stack([box[0] for box in boxes])
        high = torch.stack([box[1] for box in boxes])
        spec = torch.from_numpy(margin_spec(len(boxes), self.model.info.num_classes, target,
                                            competitors)).to(self.mirror.device)
        return self._upper_bounds(self.parts.bounded_tail, low, high, spec)

    def _features(self, points):
        """The head's outputs at pixel points (P, H, W, C), BATCH at a time, counted in ``head_passes``."""
        import torch

        with torch.no_grad():
            features = [self.head(self._values(points[i:i + BATCH])) for i in range(0, len(points), BATCH)]
        self.head_passes += len(points)
        return torch.cat(features)

    def sample_boxes(self, lower: np.ndarray, upper: np.ndarray, units: np.ndarray, starts: np.ndarray | None,
                     target: int, competitors: Sequence[int], *, centre: bool) -> FeatureBoxes:
        """One round of one half of EVA's hybrid sampling, for the regions of ``lower``/``upper`` (R, H, W, C):
        per region, the element-wise min and max of the head's outputs at low + (high - low) * u for every unit
        draw u of ``units`` (n, H, W, C), at the box's centre when ``centre``, and along a PGD path from every
        start of ``starts`` (s, H, W, C, unit draws too; ignored when the head has no gradient). The draws are
        the same in every region (common random numbers, reference note section 1): two regions' points differ
        only in the group one of them holds at its clean value, so their importances differ by the group, not
        by the sampler."""
        import torch

        device = self.mirror.device
        low, high = torch.from_numpy(lower).to(device), torch.from_numpy(upper).to(device)
        draws = torch.from_numpy(np.asarray(units, dtype=np.float32)).to(device)
        regions, count = len(low), len(draws)
        rows = torch.arange(regions * count, device=device)
        found = FeatureBoxes.empty()
        for batch in rows.split(BATCH):
            region, draw = batch // count, batch % count
            found.absorb(self._features(low[region] + (high[region] - low[region]) * draws[draw]), region, regions)
            if self.checkpoint:
                self.checkpoint()
        if centre:
            found.absorb(self._features((low + high) / 2), torch.arange(regions, device=device), regions)
        if starts is not None and len(starts) and self.attack_steps:
            begin = torch.from_numpy(np.asarray(starts, dtype=np.float32)).to(device)
            rows = torch.arange(regions * len(begin), device=device)
            for batch in rows.split(BATCH):
                region, start = batch // len(begin), batch % len(begin)
                for features in self._attack_path(low[region], high[region], begin[start], target, competitors):
                    found.absorb(features, region, regions)
                if self.checkpoint:
                    self.checkpoint()
        return found

    def _attack_path(self, low, high, unit, target: int, competitors: Sequence[int]):
        """The head's outputs along signed-gradient ascent on the largest margin, one row per (box, start): from
        low + (high - low) * unit, ``attack_steps`` steps of a quarter of each box's widest side."""
        import torch

        x = low + (high - low) * unit
        step = (high - low).flatten(1).max(dim=1).values.view(-1, *[1] * (low.dim() - 1)) / 4
        for _ in range(self.attack_steps):
            x.requires_grad_(True)
            features = self.head(self._values(x))
            logits = self.tail(features)
            objective = (logits[:, list(competitors)] - logits[:, [target]]).max(dim=1).values.sum()
            (gradient,) = torch.autograd.grad(objective, x)
            self.head_passes += len(x)
            yield features.detach()
            x = torch.minimum(torch.maximum(x.detach() + step * gradient.sign(), low), high)
        yield self._features(x.detach())

    def bound_boxes(self, boxes: FeatureBoxes, target: int, competitors: Sequence[int], chunk: int) -> np.ndarray:
        """Upper bounds (R, k) of the margins over the tail's input boxes, ``chunk`` regions per computation."""
        return np.concatenate([self.bound_tail(list(zip(boxes.low[i:i + chunk], boxes.high[i:i + chunk])), target,
                                               competitors) for i in range(0, len(boxes), chunk)])

    def __call__(self, lower: np.ndarray, upper: np.ndarray, target: int, competitors: Sequence[int]) -> np.ndarray:
        boxes = []
        for lo, hi in zip(lower, upper):
            boxes.append(self.feature_box(lo, hi, target, competitors)[:2])
            if self.checkpoint:
                self.checkpoint()
        bounds = self.bound_tail(boxes, target, competitors)
        self.on_chunk(len(lower))
        return bounds


class FeatureBoxes:
    """Per region, the element-wise min and max of the head's outputs seen so far (torch, (R, *features)):
    the empirical box hybrid EVA bounds the tail on. ``extend``/``union`` only ever widen it: more points never
    shrink what the head was seen to reach."""

    def __init__(self, low=None, high=None) -> None:
        self.low, self.high = low, high

    @classmethod
    def empty(cls) -> FeatureBoxes:
        return cls()

    def __len__(self) -> int:
        return 0 if self.low is None else len(self.low)

    def absorb(self, features, region, regions: int) -> None:
        """Widen the boxes of ``region`` (one index per row of ``features``) to hold those rows."""
        import torch

        flat = features.reshape(len(features), -1)
        index = region[:, None].expand(-1, flat.shape[1])
        if self.low is None:
            shape = (regions, *features.shape[1:])
            self.low = torch.full(shape, torch.inf, dtype=features.dtype, device=features.device)
            self.high = torch.full(shape, -torch.inf, dtype=features.dtype, device=features.device)
        low, high = self.low.view(regions, -1), self.high.view(regions, -1)
        low.scatter_reduce_(0, index, flat, reduce="amin")
        high.scatter_reduce_(0, index, flat, reduce="amax")

    def union(self, other: FeatureBoxes) -> FeatureBoxes:
        import torch

        if self.low is None or other.low is None:
            return FeatureBoxes(other.low, other.high) if self.low is None else FeatureBoxes(self.low, self.high)
        return FeatureBoxes(torch.minimum(self.low, other.low), torch.maximum(self.high, other.high))
