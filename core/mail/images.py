"""Tell a photographed or scanned invoice from a signature logo, a tracking pixel or a social icon.

Judged by byte size *and* pixel dimensions, read from the image header only (Pillow's ``Image.open`` is
lazy: no pixel is decoded), with Pillow's decompression-bomb guard and our own ``MAX_IMAGE_PIXELS`` refusing bombs.
"""

from __future__ import annotations

import io
import logging
import warnings

logger = logging.getLogger(__name__)

MIN_IMAGE_BYTES = 10 * 1024  # smaller files are logos and icons, not a readable page
MIN_IMAGE_SIDE = 300  # pixels; a page photographed by a phone is thousands of pixels on each side
MAX_IMAGE_PIXELS = 80_000_000  # ~ a 9000 x 9000 scan; beyond that a header is lying or a bomb


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header; None when it cannot be read.

    A header claiming more than ``MAX_IMAGE_PIXELS`` raises ``ImageTooLarge`` (a bomb, or a lie).
    """
    from PIL import Image

    # Pillow's global guard (``Image.MAX_IMAGE_PIXELS``, set by the OCR module) is left as it is: it is
    # process-wide. Its warning is made an error here, and our own limit is checked on the header's size.
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # over the limit: refuse
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(str(exc)[:200]) from None
    except Exception as exc:  # unreadable header, unknown format: not for us to judge further
        logger.info("image header unreadable: %s", type(exc).__name__)
        return None
    if int(width) * int(height) > MAX_IMAGE_PIXELS:
        raise ImageTooLarge(f"{width} x {height} pixels")
    return int(width), int(height)


class ImageTooLarge(Exception):
    """The image header claims more pixels than any invoice page needs."""


def is_document_image(data: bytes) -> bool:
    """True for an image that may be an invoice page; False for logos, icons and tracking pixels.

    An image whose header cannot be read, or claims more pixels than we decode, is kept when it is large
    in bytes: extraction then refuses it with a reason a person sees, rather than it vanishing here.
    """
    if len(data) < MIN_IMAGE_BYTES:
        return False
    try:
        size = image_size(data)
    except ImageTooLarge:
        return True
    if size is None:
        return True
    width, height = size
    return min(width, height) >= MIN_IMAGE_SIDE
