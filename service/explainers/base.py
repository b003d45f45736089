"""The small common base of the explanation methods.

A method is one module in this package that defines a frozen dataclass of
parameters and a module-level ``METHOD = Method(...)``. Its ``attribute``
function is a plain function of numpy arrays and a batched ``predict``::

    attribute(predict, image, params, *, baseline, batch_size, rng) -> maps (T, H, W)

- ``predict(images (N, H, W, C) float32 in [0, 1]) -> scores (N, T)`` returns the
  scores of the T explained classes; the caller counts passes, reports progress
  and stops the work between calls (cancellation, deadlines).
- ``image`` (H, W, C) is in pixel space; the model's preprocessing is applied
  inside ``predict``. ``baseline`` is a ``baselines.Fill``: perturbations are
  ``baselines.perturb(image, keep_masks, baseline)``.
- ``rng`` is the only source of randomness: the same seed gives the same map.
- Methods call ``predict`` with at most ``batch_size`` images at a time and
  accumulate, so memory stays bounded whatever the number of perturbations.
- A ``randomized`` method also returns its precision (``Output.precision``): it samples in rounds from two
  independent halves of ``rng`` and stops at its ``target_reliability`` (``precision``).
- A ``verified`` method (EVA) bounds the model instead of sampling it: it gets a
  ``bound_margins`` callable from the job and stays free of torch itself.

What a method may cost is known before it runs, and it stops when asked:

- ``forward_passes(params, (H, W, C))`` and ``memory(params, (H, W, C), targets, batch_size)``
  (bytes at the peak, the returned maps included, beyond the arguments) are checked by the job
  against the server's ``Budget`` before anything is drawn (``service.jobs.costs``). The estimates
  are upper bounds within a small factor of what ``tracemalloc`` measures (tests/test_budget.py);
  ``footprint`` holds the shared terms (perturbed batches, scores, resized maps).
- ``attribute`` also takes ``checkpoint``, a callable of no argument that raises when the job was
  cancelled or its deadline passed (the job's ``control.checkpoint``; ``no_checkpoint`` by default).
  ``predict`` already checkpoints, so a method calls ``checkpoint`` only in loops that run without
  ``predict`` and grow with a parameter: HSIC's p x p kernels per class, the chunks of LIME's and
  KernelSHAP's regressions, the per-class resizing of grid maps. Work that cannot be interrupted (a
  segmentation, one LAPACK solve) is bounded up front instead: its size is capped by ``check``.
  Passing a callable, as ``predict`` is passed, keeps methods plain functions that know nothing of jobs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

from service.declared import Declared, param  # noqa: F401 - param is how methods declare parameters
from service.explainers.baselines import Fill
from service.explainers.precision import Precision

Predict = Callable[[np.ndarray], np.ndarray]
# Raises (Cancelled, DeadlineExceeded) when the work must stop; called between steps that do not call ``predict``.
Checkpoint = Callable[[], None]


def no_checkpoint() -> None:
    """The ``checkpoint`` of work that nobody can cancel (direct calls, tests)."""


@dataclass(frozen=True)
class Output:
    """What ``attribute`` returns when a method has more to say than one map per class.

    ``maps`` (T, H, W) are the pixel-space maps every method returns (a plain ndarray also
    works); ``details[t]`` holds method-specific results for target t (WCAM: the map in the
    wavelet layout, importance per scale, the sufficient image), which the API layer sends
    in the method's own typed message.
    """

    maps: np.ndarray
    details: list[dict[str, Any]]
    # Randomized methods: how precise the maps are and how many samples they took (``precision``).
    precision: "Precision | None" = None


def as_output(result: "Output | np.ndarray") -> Output:
    """What ``attribute`` returned, as an ``Output`` (plain maps get empty details)."""
    return result if isinstance(result, Output) else Output(result, [{} for _ in result])


class Attribute(Protocol):
    def __call__(self, predict: Predict, image: np.ndarray, params: Any, *, baseline: Fill,
                 batch_size: int, rng: np.random.Generator, checkpoint: Checkpoint = no_checkpoint) -> np.ndarray: ...


@dataclass(frozen=True)
class Method(Declared):
    name: str
    summary: str
    # The paper the method and its defaults come from.
    reference: str
    params: type
    attribute: Attribute
    # Forward passes for one image of shape (H, W, C) under the given parameters.
    forward_passes: Callable[[Any, tuple[int, int, int]], int]
    # Raises InvalidArgument when the parameters do not fit an image of shape (H, W, C).
    check: Callable[[Any, tuple[int, int, int]], None]
    # The cost formula, for people.
    cost: str
    # Peak host memory in bytes of ``attribute`` for (params, image shape (H, W, C), explained classes,
    # batch size): an upper bound of what it allocates, its maps included (see the module docstring).
    memory: Callable[[Any, tuple[int, int, int], int, int], int]
    # The parameter the cost grows with, named when the budget refuses a request (e.g. "num_masks").
    cost_parameter: str = ""
    randomized: bool = False
    # Bounds the model's PyTorch mirror instead of only calling ``predict``: ``attribute`` also takes
    # ``bound_margins`` (service.verify), ``all_scores`` (the clean scores of every class) and ``targets``.
    verified: bool = False
    # Maps in ``Output.details`` that metrics of another domain can score, e.g. ("wavelet_map",).
    detail_maps: tuple[str, ...] = ()


def batched(items: list, size: int):
    for start in range(0, len(items), size):
        yield items[start:start + size]
