"""Which bound methods run on a bounded module, found by running each on a tiny box before it is offered.

Building a ``BoundedModule`` and bounding points with IBP proves little about CROWN: auto_LiRPA 0.3 builds
CROWN's backward pass per operator and can fail there (e.g. ``add_constant_node``: a size mismatch on a
broadcast constant) on graphs whose IBP runs. So each method the installation offers is run on a box of
radius ``RADIUS`` around ``BATCH`` inputs with a ``ROWS``-row specification, and must give finite bounds that
hold at the box's centre, its two extreme corners and random points inside it, and that are not vacuous
(``VACUOUS``). A method that fails is kept
with its reason (one line) for GetModel and for the refusal of a request that asks for it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from service.errors import Cancelled, DeadlineExceeded
from service.verify.lirpa_compat import BOUND_METHODS, auto_lirpa, available_methods, compute_upper_bounds

log = logging.getLogger(__name__)

RADIUS, BATCH, ROWS, POINTS = 1e-3, 2, 2, 8
# A method that needs longer than this on a 2-region box would need hours on an EVA map of 65 regions: it is
# not offered. (CROWN on a 224-px ResNet-18 on CPU takes tens of seconds per region.)
SECONDS = 120.0
TOLERANCE = 1e-4  # relative and absolute, for float32 rounding between the bound graph and the module
# Bounds this many times above the margins' own scale on a box of radius RADIUS say nothing about the model (IBP
# through a deep network multiplies the box's width at every layer: 1e28 on a random-weight MnasNet): the method is
# not offered there, so that auto EVA cuts the model instead of returning a map of noise marked as verified.
VACUOUS = 1e3
REASON_CHARS = 200


@dataclass(frozen=True)
class MethodCheck:
    runs: bool
    reason: str = ""  # why not, one line


def one_line(error: BaseException) -> str:
    """An exception as one line: its type and message, whitespace collapsed, cut to ``REASON_CHARS``."""
    text = f"{type(error).__name__}: {' '.join(str(error).split())}"
    return text if len(text) <= REASON_CHARS else text[:REASON_CHARS - 3] + "..."


class _TooSlow(Exception):
    pass


class MethodChecks(Mapping[str, MethodCheck]):
    """Each of ``BOUND_METHODS`` on one bounded module, checked the first time it is asked for rather than all at
    once: CROWN's check of a 224-pixel CNN takes tens of seconds that a job asking for IBP should not wait for.

    ``check(name, checkpoint)`` runs ``bounded`` over a small box around ``centre[:BATCH]`` and checks it against
    ``forward`` (the module it wraps) at points of the box; ``checkpoint`` (the job's) runs between auto_LiRPA's
    backward steps, and a check it stops decides nothing. The caller serialises checks with the module's other
    bound computations (``Mirror.check``). Reading it as a mapping checks every method not yet decided."""

    def __init__(self, bounded: Any, forward: Callable[[Any], Any], centre: Any) -> None:
        self._bounded, self._forward, self._centre = bounded, forward, centre
        self._box: tuple[Any, Any, Any, Any, np.ndarray] | None = None  # centre, low, high, spec, reached
        self._decided: dict[str, MethodCheck] = {}

    @classmethod
    def refused(cls, reason: str) -> "MethodChecks":
        """Every method refused for the same reason (a module that cannot be bounded at all)."""
        checks = cls(None, lambda x: x, None)
        checks._decided = {name: MethodCheck(False, reason) for name in BOUND_METHODS}
        return checks

    def decided(self, name: str) -> MethodCheck | None:
        return self._decided.get(name)

    def check(self, name: str, checkpoint: Callable[[], None] = lambda: None) -> MethodCheck:
        if name not in BOUND_METHODS:
            raise KeyError(name)
        if name not in self._decided:
            if name not in available_methods():
                decided = MethodCheck(False, f"not offered with auto_LiRPA {auto_lirpa().__version__} "
                                             "(this project offers alpha-CROWN from auto_LiRPA 0.4)")
            else:
                started = time.monotonic()
                decided = _run(self._bounded, name, *self._box_around_centre(), checkpoint)
                log.info("bound method checked", extra={"method": name, "runs": decided.runs, "reason": decided.reason,
                                                        "seconds": round(time.monotonic() - started, 3)})
            self._decided[name] = decided
        return self._decided[name]

    def __getitem__(self, name: str) -> MethodCheck:
        return self.check(name)

    def __contains__(self, name: object) -> bool:  # without checking it, as Mapping's would
        return name in BOUND_METHODS

    def __iter__(self) -> Iterator[str]:
        return iter(BOUND_METHODS)

    def __len__(self) -> int:
        return len(BOUND_METHODS)

    def _box_around_centre(self) -> tuple[Any, Any, Any, Any, np.ndarray]:
        """The box, the specification (both directions of a margin) and the largest value each row reaches at the
        box's centre, extreme corners and random points: computed once, for the first method checked."""
        if self._box is None:
            import torch

            centre = self._centre[:BATCH].detach()
            low, high = centre - RADIUS, centre + RADIUS
            with torch.no_grad():
                classes = self._forward(centre).shape[1]
                generator = torch.Generator(device="cpu").manual_seed(0)
                draws = torch.rand((POINTS, *centre.shape), generator=generator).to(centre.device)
                points = [centre, low, high, *(low + (high - low) * draw for draw in draws)]
                outputs = torch.stack([self._forward(point) for point in points])  # (P, B, K)
            spec = np.zeros((len(centre), ROWS, classes), dtype=np.float32)
            if classes >= 2:  # f_1 - f_0 and f_0 - f_1: both directions of a margin
                spec[:, 0, 1], spec[:, 0, 0], spec[:, 1, 0], spec[:, 1, 1] = 1, -1, 1, -1
            else:
                spec[:, 0, 0], spec[:, 1, 0] = 1, -1
            spec_t = torch.from_numpy(spec).to(centre.device)
            reached = torch.einsum("bsk,pbk->pbs", spec_t, outputs).amax(dim=0).cpu().numpy()
            self._box = (centre, low, high, spec_t, reached)
        return self._box


def probe(bounded: Any, forward: Callable[[Any], Any], centre: Any,
          checkpoint: Callable[[], None] = lambda: None) -> dict[str, MethodCheck]:
    """Every method's check at once (see ``MethodChecks``)."""
    checks = MethodChecks(bounded, forward, centre)
    return {name: checks.check(name, checkpoint) for name in BOUND_METHODS}


def _run(bounded, name, centre, low, high, spec, reached, checkpoint) -> MethodCheck:
    import torch

    deadline = time.monotonic() + SECONDS

    def timed() -> None:
        checkpoint()
        if time.monotonic() > deadline:
            raise _TooSlow()

    try:
        with torch.set_grad_enabled(name == "alpha-CROWN"):
            bounds = compute_upper_bounds(bounded, centre, low, high, spec, name, timed)
        bounds = bounds.detach().cpu().numpy()
    except (Cancelled, DeadlineExceeded):
        raise
    except _TooSlow:
        return MethodCheck(False, f"slower than {SECONDS:g} s on a box of {len(centre)} regions")
    except Exception as error:  # auto_LiRPA on an operator or shape it cannot take
        return MethodCheck(False, one_line(error))
    if bounds.shape != reached.shape or not np.isfinite(bounds).all():
        return MethodCheck(False, f"bounds of shape {bounds.shape} not finite or not one per specification row")
    gap, scale = float((bounds - reached).max()), max(1.0, float(np.abs(reached).max()))
    if gap > VACUOUS * scale:
        return MethodCheck(False, f"vacuous: bounds {gap:.3g} above the margins reached on a box of radius {RADIUS:g}, "
                                  f"over {VACUOUS:g} times their scale {scale:.3g}")
    slack = TOLERANCE * (1 + np.abs(reached))
    if (reached > bounds + slack).any():
        worst = int(np.argmax(reached - bounds))
        return MethodCheck(False, f"unsound: a point of the box reaches {float(reached.flat[worst]):.6g} above "
                                  f"its bound {float(bounds.flat[worst]):.6g}")
    return MethodCheck(True)
