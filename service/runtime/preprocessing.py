"""Per-model preprocessing: from pixels in [0, 1] to the model's input values.

Explainers perturb images in *pixel space* (RGB or grey in [0, 1], the space a
user thinks in and where "black" means black); the model's own preprocessing is
applied afterwards, so a baseline means the same thing whatever the model's
normalisation (Brunke et al. 2020 show how much the baseline's space matters).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any, Mapping

import numpy as np

from service.errors import InvalidArgument

# ITU-R BT.601 luma, the weights PIL uses for mode "L".
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class PixelRange(StrEnum):
    ZERO_ONE = "0_1"
    ZERO_255 = "0_255"
    MINUS_ONE_ONE = "-1_1"

    def from_unit(self, pixels: np.ndarray) -> np.ndarray:
        """Map values in [0, 1] to this range."""
        if self is PixelRange.ZERO_255:
            return pixels * np.float32(255.0)
        if self is PixelRange.MINUS_ONE_ONE:
            return pixels * np.float32(2.0) - np.float32(1.0)
        return pixels

    def to_unit(self, values: np.ndarray) -> np.ndarray:
        """Map values in this range back to [0, 1]."""
        if self is PixelRange.ZERO_255:
            return values / np.float32(255.0)
        if self is PixelRange.MINUS_ONE_ONE:
            return (values + np.float32(1.0)) / np.float32(2.0)
        return values


class ChannelOrder(StrEnum):
    RGB = "RGB"
    BGR = "BGR"
    GRAY = "GRAY"


class ResizePolicy(StrEnum):
    REJECT = "reject"
    STRETCH = "stretch"
    CENTER_CROP = "center_crop"
    # Keep the aspect ratio, scale to fit inside the input, pad the rest with ``pad_value`` (OCR and detection
    # pipelines, and classifiers trained on padded images).
    LETTERBOX = "letterbox"


# A letterbox's padding, in pixel units [0, 1]: mid-grey by default, the value YOLO's and PaddleOCR's
# letterboxes use (114/255 and 0.5 after scaling) and the one nearest the mean of natural images, so the
# padding shifts the model's input statistics least; zero (black) would read as a dark border.
DEFAULT_PAD_VALUE = (0.5,)


@dataclass(frozen=True)
class Preprocessing:
    """How pixels in [0, 1] become model input: order channels, scale, normalise.

    ``mean`` and ``std`` are in ``pixel_range`` units, one value per model
    channel (or one value for all), as torchvision and Hugging Face state them.
    """

    pixel_range: PixelRange = PixelRange.ZERO_ONE
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    channel_order: ChannelOrder = ChannelOrder.RGB
    resize: ResizePolicy = ResizePolicy.STRETCH
    # What fills a letterbox's padding, in pixel units [0, 1] (before the normalisation), in the model's
    # channel order as given: one value for every channel, or one per channel.
    pad_value: tuple[float, ...] = DEFAULT_PAD_VALUE

    @property
    def channels(self) -> int:
        return 1 if self.channel_order is ChannelOrder.GRAY else 3

    def validate(self, model_channels: int, field_prefix: str = "preprocessing",
                 fields: Mapping[str, str] | None = None) -> "Preprocessing":
        """Check against the model's channels; ``fields`` names where each key was set
        ("channel_order" -> "sidecar.preprocessing.channel_order"), else ``field_prefix.<key>``."""
        def field_of(key: str) -> str:
            return (fields or {}).get(key) or f"{field_prefix}.{key}"

        if self.channels != model_channels:
            raise InvalidArgument(
                f"channel_order {self.channel_order.value} gives {self.channels} channel(s) but the model "
                f"takes {model_channels}; use {'GRAY' if model_channels == 1 else 'RGB or BGR'}",
                field=field_of("channel_order"),
            )
        for name in ("mean", "std", "pad_value"):
            values = getattr(self, name)
            if len(values) not in (1, model_channels):
                raise InvalidArgument(
                    f"has {len(values)} values; give 1 or {model_channels} (one per channel)",
                    field=field_of(name),
                )
            with np.errstate(over="ignore"):
                as_float32 = np.asarray(values, dtype=np.float32)
            if not np.all(np.isfinite(as_float32)):
                raise InvalidArgument("must be finite (as float32)", field=field_of(name))
        if not all(0.0 <= v <= 1.0 for v in self.pad_value):
            raise InvalidArgument("is in pixel units: give values in [0, 1] (0.5 is mid-grey)",
                                  field=field_of("pad_value"))
        if any(s <= 0 for s in self.std):
            raise InvalidArgument("every value must be > 0", field=field_of("std"))
        with np.errstate(over="ignore"):
            scale, offset = self.affine()
        if not (np.all(np.isfinite(scale)) and np.all(np.isfinite(offset))):
            raise InvalidArgument("std is so small that the normalisation overflows float32", field=field_of("std"))
        return self

    def affine(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (scale, offset) with model value = pixel * scale + offset, in model channel order."""
        low, high = {PixelRange.ZERO_ONE: (0.0, 1.0), PixelRange.ZERO_255: (0.0, 255.0),
                     PixelRange.MINUS_ONE_ONE: (-1.0, 1.0)}[self.pixel_range]
        mean = np.broadcast_to(np.asarray(self.mean, dtype=np.float64), (self.channels,))
        std = np.broadcast_to(np.asarray(self.std, dtype=np.float64), (self.channels,))
        return ((high - low) / std).astype(np.float32), ((low - mean) / std).astype(np.float32)

    def apply(self, pixels: np.ndarray, channels_first: bool = False) -> np.ndarray:
        """Pixels (N, H, W, C) in [0, 1], RGB or grey, to model values, float32, C-contiguous,
        (N, H, W, C) or with ``channels_first`` (N, C, H, W).

        One fused multiply-add written straight into the output layout: on a 224-pixel model
        this is the only per-image work besides the forward pass itself.
        """
        values = pixels[..., ::-1] if self.channel_order is ChannelOrder.BGR else pixels
        scale, offset = self.affine()
        if channels_first:
            values = values.transpose(0, 3, 1, 2)
            scale, offset = scale[:, None, None], offset[:, None, None]
        out = np.empty(values.shape, dtype=np.float32)
        np.multiply(values, scale, out=out, casting="unsafe")
        out += offset
        return out

    def pad_pixel(self, channels: int) -> np.ndarray:
        """The letterbox fill as one pixel in [0, 1] of ``channels`` channels, in the order images are held
        (RGB): a per-channel value given in BGR order for a BGR model is reversed."""
        fill = np.broadcast_to(np.asarray(self.pad_value, dtype=np.float32), (channels,))
        return fill[::-1].copy() if self.channel_order is ChannelOrder.BGR else fill.copy()

    def dataset_mean_pixel(self) -> np.ndarray:
        """The mean the normalisation subtracts, as a pixel in [0, 1] RGB (or grey).

        Grey (0.5) when the preprocessing subtracts nothing: a model without a
        stated mean gives no dataset colour to fall back on.
        """
        channels = self.channels
        mean = np.broadcast_to(np.asarray(self.mean, dtype=np.float32), (channels,))
        if not np.any(mean):
            return np.full(channels, 0.5, dtype=np.float32)
        unit = np.clip(self.pixel_range.to_unit(mean), 0.0, 1.0)
        return unit[::-1].copy() if self.channel_order is ChannelOrder.BGR else unit

    @classmethod
    def from_mapping(cls, spec: Any, base: "Preprocessing | None" = None,
                     field_prefix: str = "preprocessing") -> "Preprocessing":
        """Read the sidecar's ``preprocessing`` object; absent keys keep ``base``."""
        return replace(base or cls(), **cls.parse_updates(spec, field_prefix))

    @staticmethod
    def parse_updates(spec: Any, field_prefix: str = "preprocessing") -> dict[str, Any]:
        """The keys of one ``preprocessing`` object (untrusted JSON or overrides) as checked values."""
        if not isinstance(spec, Mapping):
            raise InvalidArgument(f"must be an object, not {type(spec).__name__}", field=field_prefix)
        updates: dict[str, Any] = {}
        enums = {"pixel_range": PixelRange, "channel_order": ChannelOrder, "resize": ResizePolicy}
        for key, value in spec.items():
            if key in enums:
                if isinstance(value, enums[key]):
                    updates[key] = value
                    continue
                choices = ", ".join(e.value for e in enums[key])
                if not isinstance(value, str):
                    raise InvalidArgument(f"must be one of {choices}", field=f"{field_prefix}.{key}")
                try:
                    updates[key] = enums[key](value)
                except ValueError:
                    raise InvalidArgument(f"{value[:40]!r} is not one of {choices}",
                                          field=f"{field_prefix}.{key}") from None
            elif key in ("mean", "std", "pad_value"):
                updates[key] = _numbers(value, f"{field_prefix}.{key}")
            else:
                raise InvalidArgument(
                    f"unknown key {str(key)[:40]!r}; known: pixel_range, mean, std, channel_order, resize, "
                    "pad_value",
                    field=field_prefix,
                )
        return updates

    def to_mapping(self) -> dict[str, Any]:
        return {
            "pixel_range": self.pixel_range.value,
            "mean": list(self.mean),
            "std": list(self.std),
            "channel_order": self.channel_order.value,
            "resize": self.resize.value,
            "pad_value": list(self.pad_value),
        }


def _numbers(value: Any, field_name: str) -> tuple[float, ...]:
    """One number or a list of numbers, finite: JSON can carry null, strings, true and 1e400."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if not values or not all(isinstance(v, numbers.Real) and not isinstance(v, (bool, np.bool_)) for v in values):
        given = ("an empty list" if not values else "a list holding other values"
                 if isinstance(value, (list, tuple)) else "null" if value is None else type(value).__name__)
        raise InvalidArgument(f"must be a number or a non-empty list of numbers, not {given}", field=field_name)
    try:
        parsed = tuple(float(v) for v in values)
    except OverflowError:  # an integer beyond float's range
        raise InvalidArgument("must be finite", field=field_name) from None
    if not all(math.isfinite(v) for v in parsed):
        raise InvalidArgument("must be finite", field=field_name)
    return parsed


def default_preprocessing(channels: int) -> Preprocessing:
    return Preprocessing(channel_order=ChannelOrder.GRAY if channels == 1 else ChannelOrder.RGB)

