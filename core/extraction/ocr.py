"""Text out of images and scanned PDF pages with Tesseract (the Debian ``tesseract-ocr`` binary).

Why the binary through ``subprocess`` rather than a binding: a hung or crashing OCR dies alone and is
bounded by ``OCR_TIMEOUT``; pytesseract would do the same with temporary files. The image goes in through
stdin (PNG) and the text comes back on stdout: no temporary file to clean up.

Limits, because every input here comes from a stranger:

- ``MAX_PIXELS`` per image (Pillow's own decompression-bomb guard is set to the same number): a 20,000 x
  20,000 PNG of a few KB must be refused before it is decoded, not after it has taken 1.2 GB.
- ``OCR_MAX_PAGES`` scanned pages per PDF, rendered at ``OCR_DPI`` (300 dpi, what Tesseract is tuned
  for), the scale lowered for oversized pages so that a page never exceeds ``MAX_PIXELS``.
- ``OCR_TIMEOUT`` seconds per page.

``preserve_interword_spaces`` keeps Tesseract's runs of spaces, so columns stay apart as in
``pdftotext -layout`` and the generic extractor reads OCR text with the same rules.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import subprocess
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from PIL import Image

logger = logging.getLogger(__name__)

OCR_LANGUAGES = "fra+eng+deu"
OCR_DPI = 300
OCR_MAX_PAGES = 3  # an invoice's fields are on its first pages; each page costs ~1-3 s
OCR_TIMEOUT = 60  # seconds per page: well under the extraction job's timeout
MAX_PIXELS = 50_000_000  # ~ an A3 page at 400 dpi; 4 bytes a pixel once decoded = 200 MB at most
OCR_CONFIDENCE = 0.75  # factor applied to the extractor's confidence on OCR text
OCR_MAX_IMAGES = 6  # pictures OCRed in a PDF that has a text layer (each costs up to a page's time)

Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow warns above this and raises above twice this
# Tesseract's OpenMP threads fight each other (and the other jobs) on small machines: measured on 2 cores,
# one A4 page at 300 dpi takes 6.1 s with the default threads and 1.7 s with one.
_TESSERACT_ENV = {**os.environ, "OMP_THREAD_LIMIT": "1"}


class OcrUnavailable(Exception):
    """Tesseract is not installed (or failed): the document goes to review without fields."""


class ImageRefused(Exception):
    """The image cannot or must not be decoded (damaged, unknown format, too many pixels)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


@dataclass(frozen=True)
class OcrText:
    text: str
    pages: int  # pages (or frames) OCRed


@lru_cache(maxsize=1)
def tesseract_binary() -> str | None:
    return shutil.which("tesseract")


def open_image(data: bytes) -> Image.Image:
    """The first frame of ``data``, checked against ``MAX_PIXELS`` before its pixels are decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # reads the header only
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageRefused(f"the image has too many pixels to be read safely ({width} x {height})")
            image.load()
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused("the image has too many pixels to be read safely") from exc
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError... on damaged files
        raise ImageRefused(f"the image cannot be decoded ({type(exc).__name__})") from exc
    return image


def ocr_image(image: Image.Image, timeout: float = OCR_TIMEOUT) -> str:
    """Tesseract's text for one image; ``OcrUnavailable`` when Tesseract is missing or fails."""
    binary = tesseract_binary()
    if binary is None:
        raise OcrUnavailable("tesseract is not installed")
    if image.mode not in ("L", "RGB", "1"):
        image = image.convert("RGB")
    png = io.BytesIO()
    image.save(png, format="PNG", compress_level=1)  # fast: the bytes only cross a pipe
    try:
        proc = subprocess.run(
            [binary, "stdin", "stdout", "-l", OCR_LANGUAGES, "--psm", "3", "--dpi", str(OCR_DPI),
             "-c", "preserve_interword_spaces=1"],
            input=png.getvalue(),
            capture_output=True,
            timeout=timeout,
            env=_TESSERACT_ENV,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise OcrUnavailable(f"OCR took longer than {timeout:.0f} s") from exc
    except OSError as exc:
        raise OcrUnavailable(f"tesseract could not run ({type(exc).__name__})") from exc
    if proc.returncode != 0:
        # stderr names the problem (missing language data...), never the document's text.
        raise OcrUnavailable(f"tesseract failed: {proc.stderr.decode(errors='replace')[-200:].strip()}")
    return proc.stdout.decode("utf-8", errors="replace")


def ocr_image_bytes(data: bytes) -> OcrText:
    """The text of an image file (PNG, JPEG, TIFF...); raises ``ImageRefused`` or ``OcrUnavailable``."""
    image = open_image(data)
    try:
        return OcrText(ocr_image(image), 1)
    finally:
        image.close()


def ocr_pdf(document: object, max_pages: int = OCR_MAX_PAGES) -> OcrText:
    """The text of the first ``max_pages`` pages of an open ``pypdfium2.PdfDocument``, rendered at 300 dpi."""
    import pypdfium2

    assert isinstance(document, pypdfium2.PdfDocument)
    texts: list[str] = []
    count = min(len(document), max_pages)
    for index in range(count):
        page = document[index]
        try:
            texts.append(ocr_page(page))
        finally:
            page.close()
    return OcrText("\n".join(texts), count)


def ocr_page(page: Any) -> str:
    """The text of an open ``pypdfium2.PdfPage``, rendered at ``OCR_DPI``."""
    width, height = page.get_size()  # in points (1/72 inch)
    return _ocr_rendered(page, width, height)


def _ocr_rendered(page: Any, width: float, height: float, crop: tuple[float, float, float, float] = (0, 0, 0, 0)
                  ) -> str:
    """Tesseract's text of ``page`` (or of what ``crop`` leaves of it: points cut off the left, bottom, right
    and top), ``width`` x ``height`` points rendered at ``OCR_DPI``."""
    scale = OCR_DPI / 72
    pixels = width * height * scale * scale
    if pixels > MAX_PIXELS:  # a poster-sized page: render it smaller rather than not at all
        scale *= (MAX_PIXELS / pixels) ** 0.5
    bitmap = page.render(scale=scale, crop=crop, grayscale=True)
    image = bitmap.to_pil()
    try:
        return ocr_image(image)
    finally:
        image.close()
        bitmap.close()


def _image_boxes(page: object, min_share: float) -> list[tuple[float, float, float, float]]:
    """The boxes (left, bottom, right, top, in points) of the images covering at least ``min_share`` of a page."""
    from pypdfium2 import raw as pdfium_c

    page_left, page_bottom, page_right, page_top = page.get_cropbox()  # type: ignore[attr-defined]
    area = max((page_right - page_left) * (page_top - page_bottom), 1.0)
    boxes = []
    for obj in page.get_objects(filter=[pdfium_c.FPDF_PAGEOBJ_IMAGE], max_depth=2):  # type: ignore[attr-defined]
        left, bottom, right, top = obj.get_bounds()
        left, bottom = max(left, page_left), max(bottom, page_bottom)
        right, top = min(right, page_right), min(top, page_top)
        if right > left and top > bottom and (right - left) * (top - bottom) / area >= min_share:
            boxes.append((left, bottom, right, top))
    return boxes


def ocr_images(document: object, max_pages: int = OCR_MAX_PAGES, min_share: float = 0.03,
               max_images: int = OCR_MAX_IMAGES) -> OcrText:
    """The text of the pictures on the first pages of a PDF that has a text layer (a letterhead or company
    details pasted as an image), top to bottom: each picture's area is rendered at ``OCR_DPI`` and OCRed
    alone. Where the text layer has text it is exact (Tesseract reads "21 %" as "21%", "SCONL0" as
    "SCONLO"), so only what is not in it is OCRed; the caller puts both texts together."""
    import pypdfium2

    assert isinstance(document, pypdfium2.PdfDocument)
    texts: list[str] = []
    done = 0
    count = min(len(document), max_pages)
    for index in range(count):
        page = document[index]
        try:
            page_left, page_bottom, page_right, page_top = page.get_cropbox()
            boxes = sorted(_image_boxes(page, min_share), key=lambda b: -b[3])  # y goes up: highest first
            if boxes and page.get_rotation():  # crops apply to the turned page: read it whole instead
                boxes = [(page_left, page_bottom, page_right, page_top)]
            for left, bottom, right, top in boxes:
                if done >= max_images:
                    break
                done += 1
                crop = (left - page_left, bottom - page_bottom, page_right - right, page_top - top)
                texts.append(_ocr_rendered(page, right - left, top - bottom, crop))
        finally:
            page.close()
    return OcrText("\n".join(t for t in texts if t.strip()), count)
