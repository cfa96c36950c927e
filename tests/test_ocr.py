"""OCR with the real Tesseract binary (Debian tesseract-ocr with fra/deu data): images and scanned PDFs."""

from __future__ import annotations

import io
import os
from datetime import date
from decimal import Decimal

import pytest
from PIL import Image

from core.extraction import ImageRefused, extract_image, extract_pdf
from core.extraction.ocr import MAX_PIXELS, OCR_MAX_PAGES, open_image, tesseract_binary
from tests.invoicegen import make_invoice_pdf, make_scanned_pdf, render_png

# `make test` installs Tesseract; in CI (CI set) its absence fails the tests instead of skipping them.
pytestmark = pytest.mark.skipif(
    tesseract_binary() is None and not os.environ.get("CI"), reason="tesseract-ocr is not installed"
)


def test_german_image_invoice():
    png = render_png(make_invoice_pdf(language="de", number="RE-2026-0099", net=Decimal("840.00"),
                                      tax=Decimal("159.60")))
    found = extract_image(png)
    fields = found.extraction.fields
    assert found.ocr and found.has_text
    assert (fields["number"], fields["amount"], fields["issue_date"]) == (
        "RE-2026-0099", Decimal("999.60"), date(2026, 11, 23))
    assert found.extraction.field_info["amount"]["source"] == "ocr+generic"
    assert all(info["confidence"] < 0.8 for info in found.extraction.field_info.values())


def test_scanned_pdf_is_read_by_ocr_from_its_first_pages_only():
    scan = make_scanned_pdf(make_invoice_pdf(language="fr", layout=1, number="FA-SCAN-5"), copies=OCR_MAX_PAGES + 1)
    found = extract_pdf(scan)
    assert found.ocr and found.pages == OCR_MAX_PAGES + 1
    assert found.extraction.fields["number"] == "FA-SCAN-5"
    assert found.extraction.fields["amount"] == Decimal("1200.00")
    assert any(f"first {OCR_MAX_PAGES} of {OCR_MAX_PAGES + 1} pages" in note for note in found.notes)


def test_scanned_pdf_without_ocr_has_no_text():
    found = extract_pdf(make_scanned_pdf(make_invoice_pdf()), ocr=False)
    assert not found.has_text and found.extraction.fields == {}


def test_blank_image_gives_no_fields():
    out = io.BytesIO()
    Image.new("L", (1200, 1600), color=255).save(out, format="PNG")
    found = extract_image(out.getvalue())
    assert not found.has_text and found.extraction.fields == {}


def test_pixel_cap_is_checked_before_decoding():
    out = io.BytesIO()
    side = int(MAX_PIXELS**0.5) + 100
    Image.new("1", (side, side)).save(out, format="PNG")
    with pytest.raises(ImageRefused) as caught:
        open_image(out.getvalue())
    assert "too many pixels" in caught.value.detail


def test_pillow_bomb_guard_is_set_to_our_cap():
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS
