"""What a verified method (EVA) needs from the job besides ``predict``: margin bounds on the model's mirror,
with progress per chunk of regions and cancellation between chunks."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from service.errors import FailedPrecondition
from service.explainers import eva
from service.jobs.control import JobControl
from service.runtime.model import LoadedModel
from service.runtime.signature import OutputKind

STAGE = "verify"


def verified_inputs(model: LoadedModel, params: eva.EvaParams, control: JobControl, clean: np.ndarray,
                    targets: Sequence[int], rng: np.random.Generator,
                    image_shape: tuple[int, ...] | None = None) -> dict[str, Any]:
    """``attribute``'s extra arguments; builds (or reuses) the mirror and resolves ``split_layer`` (the whole
    model, or a cut for hybrid bounds), raising FailedPrecondition when the model cannot be verified or the
    bound method runs on no part of it. ``rng`` draws hybrid mode's samples and attack starts."""
    from service.verify.bounds import METHODS, HybridBounds, MarginBounds
    from service.verify.mirror import mirror_for

    if model.info.output_kind is OutputKind.SIGMOID:
        raise FailedPrecondition(f"model {model.info.name!r} has a sigmoid head: its classes are scored independently, "
                                 "and EVA bounds the margins between competing classes of one softmax; explain it "
                                 "with a black-box method", field="method")
    if image_shape is not None and tuple(image_shape) != model.info.image_shape:
        # A dynamic-size model's mirror is built and its bound methods checked at the load probe's size only.
        size = "x".join(map(str, model.info.image_shape[:2]))
        raise FailedPrecondition(f"model {model.info.name!r} takes images of any size, and its verification mirror is "
                                 f"checked at {size} only; send a {size} image, or load the model with a fixed "
                                 "height and width (overrides or --set height=..., width=...)", field="image")
    total = len(targets) * eva.regions_per_class(params, model.info.image_shape)
    done = [0]

    def on_chunk(regions: int) -> None:
        done[0] += regions
        control.report(STAGE, done[0], max(total, done[0]))
        control.checkpoint()

    control.checkpoint()
    mirror = mirror_for(model, control.checkpoint)
    parts = mirror.resolve(params.split_layer, METHODS[params.bound_method], control.checkpoint)
    if parts is None:
        bounds = MarginBounds(model, mirror, params.bound_method, on_chunk, control.checkpoint)
    else:
        bounds = HybridBounds(model, mirror, params.bound_method, parts, samples=params.hybrid_samples,
                              attack_steps=params.attack_steps, rng=rng, on_chunk=on_chunk,
                              checkpoint=control.checkpoint)
    control.report(STAGE, 0, total)
    return {"bound_margins": bounds, "all_scores": clean, "targets": list(targets)}
