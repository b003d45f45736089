"""An uploaded image, checked before it travels: PNG or JPEG, decodable, within the size and pixel caps.

The server checks images too; checking here names the form field and answers at once, without a round trip.
"""

from __future__ import annotations

import io
import warnings

from service.ui.guard import Limits, Refusal, check_upload_size

FORMATS = ("PNG", "JPEG")


def validate_image(data: bytes, limits: Limits, field: str = "image") -> tuple[int, int]:
    """The image's (width, height); a ``Refusal`` (400, INVALID_ARGUMENT, naming ``field``) when it is not a
    PNG or JPEG that decodes, or 413 when it is over the byte cap."""
    from PIL import Image

    check_upload_size(limits, len(data), field)
    if not data:
        raise Refusal(400, "INVALID_ARGUMENT", "the file is empty; choose a PNG or JPEG image", field)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as picture:
                kind, (width, height) = picture.format, picture.size
                if kind not in FORMATS:
                    raise Refusal(400, "INVALID_ARGUMENT", f"a {kind} image; send PNG or JPEG", field)
                if width * height > limits.max_pixels:
                    raise Refusal(400, "INVALID_ARGUMENT",
                                  f"{width}x{height} pixels; at most {limits.max_pixels} pixels", field)
                picture.load()  # decodes every pixel: a truncated or corrupt file fails here
    except Refusal:
        raise
    except Image.UnidentifiedImageError:  # Pillow's message names an in-memory buffer, not the upload
        raise Refusal(400, "INVALID_ARGUMENT", "not a PNG or JPEG image (nor any format Pillow reads)",
                      field) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise Refusal(400, "INVALID_ARGUMENT", f"not a PNG or JPEG image that decodes ({error})", field) from None
    return width, height
