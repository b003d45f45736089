"""Enum mappings between xai.v1 and the service's own types, and reading typed proto fields."""

from __future__ import annotations

from typing import Any

from onnxplain_client._proto.xai.v1 import explain_service_pb2 as ex
from onnxplain_client._proto.xai.v1 import methods_pb2
from onnxplain_client._proto.xai.v1 import model_service_pb2 as ms

from service.errors import InvalidArgument
from service.corruptions import Corruption
from service.ensembles.aggregate import AGGREGATORS as AGGREGATOR_NAMES
from service.ensembles.normalise import NORMALISATIONS as NORMALISATION_NAMES
from service.jobs.measure import MEASURES as MEASURE_NAMES
from service.explainers.baselines import BaselineKind
from service.explainers.precision import StopReason
from service.runtime.preprocessing import ChannelOrder, PixelRange, ResizePolicy
from service.runtime.scores import ScoreSpace
from service.runtime.signature import Layout, OutputKind

LAYOUTS = {Layout.NCHW: ms.LAYOUT_NCHW, Layout.NHWC: ms.LAYOUT_NHWC}
OUTPUT_KINDS = {OutputKind.LOGITS: ms.OUTPUT_KIND_LOGITS, OutputKind.PROBABILITIES: ms.OUTPUT_KIND_PROBABILITIES,
                OutputKind.LOG_PROBABILITIES: ms.OUTPUT_KIND_LOG_PROBABILITIES,
                OutputKind.SIGMOID: ms.OUTPUT_KIND_SIGMOID}
PIXEL_RANGES = {PixelRange.ZERO_ONE: ms.PIXEL_RANGE_0_1, PixelRange.ZERO_255: ms.PIXEL_RANGE_0_255,
                PixelRange.MINUS_ONE_ONE: ms.PIXEL_RANGE_MINUS_1_1}
CHANNEL_ORDERS = {ChannelOrder.RGB: ms.CHANNEL_ORDER_RGB, ChannelOrder.BGR: ms.CHANNEL_ORDER_BGR,
                  ChannelOrder.GRAY: ms.CHANNEL_ORDER_GRAY}
RESIZE_POLICIES = {ResizePolicy.REJECT: ms.RESIZE_POLICY_REJECT, ResizePolicy.STRETCH: ms.RESIZE_POLICY_STRETCH,
                   ResizePolicy.CENTER_CROP: ms.RESIZE_POLICY_CENTER_CROP,
                   ResizePolicy.LETTERBOX: ms.RESIZE_POLICY_LETTERBOX}
MAP_FRAMES = {"model_input": ex.MAP_FRAME_MODEL_INPUT, "image": ex.MAP_FRAME_IMAGE}
# Map domains are the metrics' own names: "pixel", "wavelet".
MAP_DOMAINS = {"pixel": ex.MAP_DOMAIN_PIXEL, "wavelet": ex.MAP_DOMAIN_WAVELET}
# Score spaces share their names: SCORE_SPACE_LOG_PROBABILITY <-> ScoreSpace.LOG_PROBABILITY.
SCORE_SPACES = {space: ex.ScoreSpace.Value(f"SCORE_SPACE_{space.name}") for space in ScoreSpace}
# Baseline kinds share their names: KIND_BLUR <-> BaselineKind.BLUR.
BASELINE_KINDS = {kind: methods_pb2.Baseline.Kind.Value(f"KIND_{kind.name}") for kind in BaselineKind}
# Stop reasons share their names: STOP_REASON_RELIABILITY <-> StopReason.RELIABILITY.
STOP_REASONS = {reason: ex.StopReason.Value(f"STOP_REASON_{reason.name}") for reason in StopReason}
CORRUPTIONS = {corruption: ex.Corruption.Value(f"CORRUPTION_{corruption.name}") for corruption in Corruption}
# Ensemble choices share their names: NORMALISATION_MAX_ABS <-> "max_abs", AGGREGATOR_UCB <-> "ucb".
NORMALISATIONS = {name: ex.Normalisation.Value(f"NORMALISATION_{name.upper()}") for name in NORMALISATION_NAMES}
AGGREGATORS = {name: ex.Aggregator.Value(f"AGGREGATOR_{name.upper()}") for name in AGGREGATOR_NAMES}
SALIENCE_MEASURES = {name: ex.SalienceMeasure.Value(f"SALIENCE_MEASURE_{name.upper()}") for name in MEASURE_NAMES}


def _inverse(mapping: dict) -> dict:
    return {v: k for k, v in mapping.items()}


def from_enum(mapping: dict, value: int, field: str, default: Any = None, *, required: bool = False) -> Any:
    """A proto enum value as the domain enum; UNSPECIFIED (0) gives ``default``, or is refused if ``required``."""
    inverse = _inverse(mapping)
    if value == 0 and not required:
        return default
    if value not in inverse:
        names = ", ".join(sorted(str(getattr(k, "name", k)).upper() for k in mapping))
        said = "is unspecified" if value == 0 else f"has unknown enum value {value}"
        raise InvalidArgument(f"{said}; use one of {names}", field=field)
    return inverse[value]
