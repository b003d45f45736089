"""Images in, pixel arrays out: decoding, validation, channels and resizing to the model's input.

Everything downstream works on float32 pixels in [0, 1], H x W x C, with C the
model's channel count (RGB order for three).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from service.errors import InvalidArgument, ResourceExhausted, ServiceError
from service.runtime.preprocessing import LUMA_WEIGHTS, ResizePolicy

def decode(data: bytes, field: str = "image.encoded", max_pixels: int | None = None) -> np.ndarray:
    """PNG/JPEG (or any format Pillow reads) bytes to uint8 H x W x C, C in {1, 3}.

    The size is read from the header and checked against ``max_pixels`` before any pixel is decoded, so
    a few kilobytes of PNG cannot make the server allocate gigabytes.
    """
    if not data:
        raise InvalidArgument("is empty; send PNG or JPEG bytes", field=field)
    try:
        with Image.open(io.BytesIO(data)) as image:
            check_size(image.height, image.width, field=field, max_pixels=max_pixels)
            array = _to_uint8(image, field)
    except ServiceError:
        raise
    except Image.UnidentifiedImageError as error:  # its message names an in-memory buffer, not the client's image
        raise InvalidArgument("is not an image format Pillow reads; send PNG or JPEG bytes", field=field) from error
    except Image.DecompressionBombError as error:  # Pillow's own limit, above ours: the same cause, the same code
        raise ResourceExhausted(f"the image is too large to decode ({error}); send a smaller image",
                                field=field) from error
    except Exception as error:  # noqa: BLE001 - Pillow's decoders raise many types (SyntaxError, EOFError,
        # zlib.error, struct.error ...) on hostile bytes: each is the caller's bad image, reported as such
        raise InvalidArgument(f"cannot decode the image ({error.__class__.__name__}: {error}); send PNG or JPEG "
                              "bytes", field=field) from error
    return array[..., None] if array.ndim == 2 else array


def _to_uint8(image: Image.Image, field: str) -> np.ndarray:
    """A decoded image as uint8 grey or RGB. Pillow's own conversion clips 16-bit grey to 255 (a mid-grey
    16-bit PNG would turn white), so 16-bit values are scaled instead; float images are refused."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise InvalidArgument("holds 32-bit integer pixels; send 8- or 16-bit images", field=field)
        return (values.astype(np.uint32) >> 8).astype(np.uint8)
    if image.mode == "F":
        raise InvalidArgument("holds floating-point pixels; send 8- or 16-bit images, or a FLOAT32 pixels tensor "
                              "in [0, 1]", field=field)
    return np.asarray(image.convert("L" if image.mode in ("1", "L") else "RGB"))


def check_size(height: int, width: int, *, field: str, max_pixels: int | None) -> None:
    """An image must have pixels, and no more than the server's budget allows."""
    if height < 1 or width < 1:
        raise InvalidArgument(f"is {height}x{width} (height x width); send an image with pixels", field=field)
    if max_pixels is not None and height * width > max_pixels:
        raise ResourceExhausted(f"{height}x{width} is {height * width} pixels, over this server's limit of "
                                f"{max_pixels} per image (ONNXPLAIN_MAX_IMAGE_PIXELS); send a smaller image",
                                field=field)


def to_unit_pixels(array: np.ndarray, field: str = "image.pixels") -> np.ndarray:
    """A uint8 [0, 255] or float [0, 1] H x W x C array as float32 in [0, 1], checked."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InvalidArgument(f"has shape {list(array.shape)}; send H x W x C with C = 1, 3 or 4", field=field)
    check_size(array.shape[0], array.shape[1], field=field, max_pixels=None)
    if array.shape[2] == 4:
        array = array[..., :3]  # alpha carries no class evidence for these models
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255.0)
    if not np.issubdtype(array.dtype, np.floating):
        raise InvalidArgument(f"has dtype {array.dtype}; send UINT8 in [0, 255] or FLOAT32 in [0, 1]", field=field)
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise InvalidArgument(f"holds {bad} NaN or infinite values; send finite pixels in [0, 1]", field=field)
    low, high = float(array.min()), float(array.max())
    if low < 0.0 or high > 1.0:
        raise InvalidArgument(f"float pixels span [{low:g}, {high:g}]; scale them to [0, 1]", field=field)
    return array.astype(np.float32)


def match_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    if pixels.shape[2] == channels:
        return pixels
    if channels == 1:
        return (pixels @ LUMA_WEIGHTS)[..., None].astype(np.float32)
    return np.repeat(pixels, 3, axis=2)


@dataclass(frozen=True)
class Placement:
    """Where an image lies in the model's input after a letterbox: the image was ``image_height`` x
    ``image_width``; it fills rows ``top`` .. ``top + height`` and columns ``left`` .. ``left + width`` of the
    input, the rest is padding."""

    image_height: int
    image_width: int
    top: int
    left: int
    height: int
    width: int


def letterbox_placement(image_height: int, image_width: int, height: int, width: int) -> Placement:
    """The largest box of the image's aspect ratio inside height x width, centred (an odd leftover pixel goes
    below and to the right, as torchvision's and OpenCV-based letterboxes put it)."""
    scale = min(height / image_height, width / image_width)
    inner_h = min(height, max(1, round(image_height * scale)))
    inner_w = min(width, max(1, round(image_width * scale)))
    return Placement(image_height, image_width, (height - inner_h) // 2, (width - inner_w) // 2, inner_h, inner_w)


def fit(pixels: np.ndarray, height: int, width: int, policy: ResizePolicy, field: str = "image",
        pad_value: np.ndarray | float = 0.0) -> np.ndarray:
    """Bring pixels to height x width as the model's resize policy says; ``pad_value`` (one value, or one per
    channel, in [0, 1]) fills a letterbox's padding."""
    h, w = pixels.shape[:2]
    if (h, w) == (height, width):
        return pixels
    if policy is ResizePolicy.REJECT:
        raise InvalidArgument(
            f"is {h}x{w} (height x width) but the model takes {height}x{width}; resize it or load the model "
            "with a resize policy",
            field=field,
        )
    if policy is ResizePolicy.CENTER_CROP:
        scale = max(height / h, width / w)
        resized = _resize(pixels, max(height, round(h * scale)), max(width, round(w * scale)))
        top = (resized.shape[0] - height) // 2
        left = (resized.shape[1] - width) // 2
        return resized[top:top + height, left:left + width]
    if policy is ResizePolicy.LETTERBOX:
        box = letterbox_placement(h, w, height, width)
        canvas = np.empty((height, width, pixels.shape[2]), dtype=np.float32)
        canvas[...] = np.broadcast_to(np.asarray(pad_value, dtype=np.float32), (pixels.shape[2],))
        canvas[box.top:box.top + box.height, box.left:box.left + box.width] = _resize(pixels, box.height, box.width)
        return canvas
    return _resize(pixels, height, width)


def to_image_frame(attribution: np.ndarray, box: Placement) -> np.ndarray:
    """A map over the model's input as a map over the original image: the padding cut off, the rest resized
    (bilinear, values not re-summed) to the image's height and width."""
    inner = attribution[box.top:box.top + box.height, box.left:box.left + box.width]
    return resize_map(inner, box.image_height, box.image_width)


def from_image_frame(attribution: np.ndarray, box: Placement, height: int, width: int) -> np.ndarray:
    """A map over the original image as a map over the model's input: resized into the image's box, the
    padding 0 (it is no part of the image, so it holds no attribution)."""
    out = np.zeros((height, width), dtype=np.float32)
    out[box.top:box.top + box.height, box.left:box.left + box.width] = resize_map(attribution, box.height, box.width)
    return out


def resize_map(attribution: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of an H x W float map, unclipped (attributions are signed and unbounded)."""
    if attribution.shape == (height, width):
        return attribution.astype(np.float32)
    return np.asarray(Image.fromarray(np.ascontiguousarray(attribution, dtype=np.float32), mode="F")
                      .resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32)


def _resize(pixels: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize in float, channel by channel (Pillow's "F" mode keeps precision)."""
    channels = [
        np.asarray(Image.fromarray(pixels[..., c], mode="F").resize((width, height), Image.Resampling.BILINEAR))
        for c in range(pixels.shape[2])
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 1.0).astype(np.float32)
