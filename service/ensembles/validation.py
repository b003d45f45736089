"""Held-out validation of an ensemble search: choose on some images, score on others.

A combination chosen as the best of many on a set of images and scored on those same images is optimistic (the
winner's curse): its in-sample gain over the best member includes the luck of the choice. A split separates the
two. The combination *and* the best single member are both chosen on the *selection* images, and both are scored
on the *held-out* images, so the held-out gain compares two choices made under the same rules. Repeated random
splits give the held-out gain's spread. Everything here works on per-image scores, (images, members) and (images,
combinations), computed once: a split costs no forward pass and no explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.errors import InvalidArgument

# Random splits when the caller gives a fraction and no count: ten splits put the standard error of the mean
# held-out gain at about a third of its spread over splits (sd / sqrt(10)), enough to tell a gain of one
# standard deviation from none, and splitting is free (scores are computed once per image).
DEFAULT_SPLITS = 10
MAX_SPLITS = 1000  # each split is a table of (combinations x 2) numbers in the response


@dataclass(frozen=True)
class SplitSpec:
    """How the images are split; no fraction and no indices: no split (in-sample only)."""

    validation_fraction: float | None = None  # the share of images held out by each random split, in (0, 1)
    selection: tuple[int, ...] = ()  # or explicit images (one split): given one side, the other is the rest
    held_out: tuple[int, ...] = ()
    num_splits: int = 0  # random splits with validation_fraction; 0: DEFAULT_SPLITS
    seed: int | None = None  # the splits' seed; None: the job's

    @property
    def enabled(self) -> bool:
        return self.validation_fraction is not None or bool(self.selection) or bool(self.held_out)


@dataclass(frozen=True)
class SplitScore:
    selection: np.ndarray  # image indices, sorted
    held_out: np.ndarray
    selection_scores: np.ndarray  # (combinations,): the metric averaged over the selection images
    held_out_scores: np.ndarray  # (combinations,): over the held-out images
    member_selection_scores: np.ndarray  # (members,)
    member_held_out_scores: np.ndarray  # (members,)
    chosen: int  # the combination best on the selection images
    best_member: int  # the member best on the selection images
    selection_gain: float  # chosen - best member on the selection images (in-sample), > 0 is better
    held_out_gain: float  # the same two, scored on the held-out images


@dataclass(frozen=True)
class Spread:
    mean: float
    sd: float  # over splits, ddof 1 (0 with one split)
    standard_error: float  # sd / sqrt(splits): the mean's, counting splits as independent (they share images,
    # so it understates the uncertainty about new images; the sd is the honest spread)
    minimum: float
    maximum: float
    count: int


def _indices(values: tuple[int, ...], images: int, name: str) -> np.ndarray:
    indices = np.array(values, dtype=np.int64)
    if len(indices) and (indices.min() < 0 or indices.max() >= images):
        raise InvalidArgument(f"image indices must be in 0..{images - 1} (the request has {images} images)",
                              field=name)
    if len(set(values)) != len(values):
        raise InvalidArgument("an image is named twice", field=name)
    return np.sort(indices)


def check_split(spec: SplitSpec, images: int) -> None:
    """Refuses a split that cannot score both sides, naming the field."""
    if not spec.enabled:
        if spec.num_splits:
            raise InvalidArgument("num_splits goes with validation_fraction", field="num_splits")
        return
    explicit = bool(spec.selection) or bool(spec.held_out)
    if explicit and spec.validation_fraction is not None:
        raise InvalidArgument("give validation_fraction (random splits) or selection/held_out (one split), not both",
                              field="validation_fraction")
    if explicit:
        if spec.num_splits > 1:
            raise InvalidArgument("explicit selection/held_out images make one split", field="num_splits")
        selection, held_out = explicit_split(spec, images)
        if not len(selection) or not len(held_out):
            raise InvalidArgument("a split needs at least one image on each side: the held-out images are all "
                                  "the images", field="held_out" if spec.held_out else "selection")
        return
    if not (np.isfinite(spec.validation_fraction) and 0 < spec.validation_fraction < 1):
        raise InvalidArgument(f"must be in (0, 1), not {spec.validation_fraction}", field="validation_fraction")
    held = held_out_count(spec.validation_fraction, images)
    if not 1 <= held <= images - 1:
        raise InvalidArgument(f"{spec.validation_fraction} of {images} images holds out {held}: a split needs at "
                              "least one image on each side (send more images or change the fraction)",
                              field="validation_fraction")
    if not 0 <= spec.num_splits <= MAX_SPLITS:
        raise InvalidArgument(f"must be in 0..{MAX_SPLITS} (0: {DEFAULT_SPLITS})", field="num_splits")


def held_out_count(fraction: float, images: int) -> int:
    return int(round(fraction * images))


def explicit_split(spec: SplitSpec, images: int) -> tuple[np.ndarray, np.ndarray]:
    selection = _indices(spec.selection, images, "selection")
    held_out = _indices(spec.held_out, images, "held_out")
    if len(np.intersect1d(selection, held_out)):
        raise InvalidArgument("an image is both in selection and held_out", field="held_out")
    everything = np.arange(images)
    if not len(selection):
        selection = np.setdiff1d(everything, held_out)
    if not len(held_out):
        held_out = np.setdiff1d(everything, selection)
    return selection, held_out


def draw_splits(spec: SplitSpec, images: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(selection, held_out) image indices per split, each sorted; random splits are drawn from ``seed``."""
    if spec.selection or spec.held_out:
        return [explicit_split(spec, images)]
    held = held_out_count(spec.validation_fraction, images)
    rng = np.random.default_rng(seed)
    splits = []
    for _ in range(spec.num_splits or DEFAULT_SPLITS):
        order = rng.permutation(images)
        splits.append((np.sort(order[held:]), np.sort(order[:held])))
    return splits


def score_split(member_scores: np.ndarray, row_scores: np.ndarray, higher_is_better: bool,
                selection: np.ndarray, held_out: np.ndarray) -> SplitScore:
    """``member_scores`` (images, members) and ``row_scores`` (images, combinations): the best combination and the
    best member on ``selection``, and what they score on ``held_out``."""
    sign = 1.0 if higher_is_better else -1.0
    rows_in, rows_out = row_scores[selection].mean(axis=0), row_scores[held_out].mean(axis=0)
    members_in, members_out = member_scores[selection].mean(axis=0), member_scores[held_out].mean(axis=0)
    chosen, best_member = int(np.argmax(sign * rows_in)), int(np.argmax(sign * members_in))
    return SplitScore(selection=selection, held_out=held_out, selection_scores=rows_in, held_out_scores=rows_out,
                      member_selection_scores=members_in, member_held_out_scores=members_out, chosen=chosen,
                      best_member=best_member,
                      selection_gain=float(sign * (rows_in[chosen] - members_in[best_member])),
                      held_out_gain=float(sign * (rows_out[chosen] - members_out[best_member])))


def spread(values) -> Spread:
    values = np.asarray(values, dtype=np.float64)
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return Spread(mean=float(values.mean()), sd=sd, standard_error=sd / np.sqrt(len(values)),
                  minimum=float(values.min()), maximum=float(values.max()), count=len(values))
