"""The layout text rebuilt in-process from pypdfium2's word boxes (``core.extraction.text``): columns, reading
order, pages, turned pages, regions for invoice2data ``area`` fields, no text layer, and how close it is to
poppler's ``pdftotext -layout`` that invoice2data's templates were written against."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from core.extraction import extract_pdf, load_templates
from core.extraction import text as text_module
from core.extraction.ocr import tesseract_binary
from core.extraction.text import AreaReader, read_pdf
from tests.corpus import CORPUS as SHARED
from tests.invoicegen import LANGUAGES, LAYOUTS, make_invoice_pdf, make_scanned_pdf
from tests.test_extraction import _plain

I2D_CORPUS = SHARED / "invoice2data"
POPPLER = shutil.which("pdftotext")
# `make test` installs poppler-utils; in CI (CI set) its absence fails the tests instead of skipping them.
needs_poppler = pytest.mark.skipif(POPPLER is None and not os.environ.get("CI"), reason="poppler-utils missing")


def _pdf(pages: list[list[tuple[float, float, str]]], rotation: int = 0, font_size: float = 10) -> bytes:
    """Pages of text drawn at (x, y from the top) *as displayed*, in the order given. With ``rotation``, the
    page carries /Rotate and the text is drawn turned the other way, as scanners and printers write
    landscape pages: it reads upright on screen."""
    buffer = io.BytesIO()
    width, height = A4
    canvas = Canvas(buffer, pagesize=A4, invariant=True)
    for items in pages:
        if rotation:
            canvas.setPageRotation(rotation)
        canvas.setFont("Helvetica", font_size)
        for x, y, text in items:
            canvas.saveState()
            # displayed (x, y down) -> PDF user space, and the turn that makes the text upright once displayed
            if rotation == 0:
                canvas.translate(x, height - y)
            elif rotation == 90:
                canvas.translate(y, x)
                canvas.rotate(90)
            elif rotation == 180:
                canvas.translate(width - x, y)
                canvas.rotate(180)
            else:
                canvas.translate(width - y, height - x)
                canvas.rotate(270)
            canvas.drawString(0, 0, text)
            canvas.restoreState()
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _lines(layout: str | None) -> list[str]:
    return [line.rstrip() for line in (layout or "").splitlines() if line.strip()]


def test_two_columns_stay_apart_and_values_sit_under_their_headings():
    pdf = _pdf([[(50, 80, "Émetteur"), (320, 80, "Client"), (50, 95, "Dupont Conseil SARL"), (320, 95, "Acme SAS"),
                 (50, 110, "12 rue de la Paix"), (320, 110, "5 avenue Foch")]])
    layout = read_pdf(pdf).layout
    headings, names, streets = _lines(layout)
    assert re.fullmatch(r"Émetteur\s{2,}Client", headings.strip())
    assert re.fullmatch(r"Dupont Conseil SARL\s{2,}Acme SAS", names.strip())  # words of a cell: one space
    assert names.index("Acme SAS") == headings.index("Client") == streets.index("5 avenue Foch")
    # pypdfium2's own text keeps its reading order beside it
    assert "Dupont Conseil SARL" in read_pdf(pdf).text


def test_reading_order_is_top_to_bottom_then_left_to_right_whatever_the_drawing_order():
    # drawn bottom line first, right column before left
    pdf = _pdf([[(300, 300, "Total TTC : 1 200,00 €"), (50, 300, "Merci"), (300, 100, "Date : 23/11/2026"),
                 (50, 100, "Facture N° FA-9"), (50, 60, "Dupont Conseil SARL")]])
    lines = [" ".join(line.split()) for line in _lines(read_pdf(pdf).layout)]
    assert lines == ["Dupont Conseil SARL", "Facture N° FA-9 Date : 23/11/2026", "Merci Total TTC : 1 200,00 €"]
    fields = extract_pdf(pdf).extraction.fields
    assert (fields["number"], fields["amount"]) == ("FA-9", Decimal("1200.00"))


def test_vertical_gaps_become_blank_lines_at_most_four():
    pdf = _pdf([[(50, 100, "first"), (50, 112, "second"), (50, 150, "after a gap"), (50, 700, "far below")]])
    lines = read_pdf(pdf).layout.splitlines()
    first, second, gap, far = (lines.index(w) for w in ("first", "second", "after a gap", "far below"))
    assert second == first + 1  # consecutive lines: no blank line
    assert 1 <= gap - second - 1 <= 3  # 38 pt at 10 pt: a few blank lines
    assert far - gap - 1 == 4  # a half-empty page does not become 50 blank lines


def test_pages_follow_each_other_and_the_page_cap_holds():
    pdf = _pdf([[(50, 60, f"Page {n}/3"), (50, 80, f"Texte de la page {n} pour avoir assez de caractères")]
                for n in (1, 2, 3)])
    full = read_pdf(pdf)
    order = [full.layout.index(f"Page {n}/3") for n in (1, 2, 3)]
    assert order == sorted(order)
    capped = read_pdf(pdf, max_pages=2)
    assert capped.pages == 3 and "Page 2/3" in capped.layout and "Page 3/3" not in capped.layout


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_turned_page_reads_like_an_upright_one(rotation: int):
    items = [(60, 80, "Facture N° FA-TURN-1"), (60, 100, "Date : 23/11/2026"), (300, 100, "Client : Acme SAS"),
             (300, 130, "Total TTC : 1 200,00 €")]
    upright, turned = read_pdf(_pdf([items])), read_pdf(_pdf([items], rotation=rotation))
    assert [" ".join(line.split()) for line in _lines(turned.layout)] == [
        "Facture N° FA-TURN-1", "Date : 23/11/2026 Client : Acme SAS", "Total TTC : 1 200,00 €"]
    assert _lines(turned.layout) == _lines(upright.layout)
    fields = extract_pdf(_pdf([items], rotation=rotation), ocr=False).extraction.fields
    assert (fields["number"], fields["amount"], fields["issue_date"]) == (
        "FA-TURN-1", Decimal("1200.00"), date(2026, 11, 23))


def test_area_reader_crops_a_region_like_pdftotext_bbox():
    pdf = _pdf([[(50, 60, "Date : 01/02/2026"), (400, 60, "Ref 77"), (50, 400, "Date : 09/09/2099")]])
    reader = AreaReader(pdf)
    # invoice2data areas: pixels at r dpi from the top-left corner (r=72: points)
    assert reader.to_text("", {"f": 1, "l": 1, "r": 72, "x": 0, "y": 40, "W": 300, "H": 40}) == "Date : 01/02/2026"
    assert reader.to_text("", {"f": 1, "l": 1, "r": 144, "x": 0, "y": 80, "W": 1190, "H": 80}) == (
        "Date : 01/02/2026 Ref 77")
    assert reader.to_text("", {"f": 2, "l": 2, "r": 72, "x": 0, "y": 0, "W": 595, "H": 842}) == ""  # no page 2
    reader.close()


@pytest.mark.skipif(tesseract_binary() is None and not os.environ.get("CI"), reason="tesseract-ocr is not installed")
def test_no_text_layer_means_no_layout_and_the_ocr_path():
    scan = make_scanned_pdf(make_invoice_pdf(number="FA-SCAN-7"))
    pdf = read_pdf(scan)
    assert not pdf.has_text and pdf.layout is None
    found = extract_pdf(scan)
    assert found.ocr and found.extraction.fields["number"] == "FA-SCAN-7"


@needs_poppler
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("language", LANGUAGES)
def test_same_words_on_the_same_lines_as_pdftotext(language: str, layout: int):
    pdf = make_invoice_pdf(language=language, layout=layout, pages=2)
    ours = [" ".join(line.split()) for line in _lines(read_pdf(pdf).layout)]
    poppler = [" ".join(line.split()) for line in _lines(text_module.pdftotext_layout(pdf))]
    assert ours == poppler


def _expected(path: Path) -> dict:
    expected = json.loads(path.with_suffix(".json").read_text())[0]
    expected.pop("template_name", None)
    return expected


I2D_TEXT_PDFS = sorted(p for p in I2D_CORPUS.glob("*.pdf") if p.stem != "saeco") if I2D_CORPUS.is_dir() else []


@pytest.fixture
def no_poppler(monkeypatch: pytest.MonkeyPatch):
    """No ``pdftotext`` on the PATH (tesseract stays reachable by its full path)."""
    monkeypatch.setenv("PATH", "/nonexistent")
    text_module._pdftotext.cache_clear()
    yield
    text_module._pdftotext.cache_clear()


@pytest.mark.skipif(not I2D_TEXT_PDFS, reason="the shared corpus is not mounted")
@pytest.mark.parametrize("path", I2D_TEXT_PDFS, ids=lambda p: p.stem)
def test_invoice2data_samples_give_their_expected_json_without_poppler(path: Path, no_poppler):
    assert text_module.pdftotext_layout(path.read_bytes()) is None
    found = extract_pdf(path.read_bytes())
    assert _plain(dict(found.template_output or {})) == _plain(_expected(path))


def _spy_pdftotext(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``pdftotext`` first on the PATH that notes each call, then runs poppler's."""
    marker = tmp_path / "calls"
    script = tmp_path / "bin" / "pdftotext"
    script.parent.mkdir()
    script.write_text(f'#!/bin/sh\necho "$@" >> {marker}\nexec {POPPLER} "$@"\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{script.parent}:{os.environ['PATH']}")
    text_module._pdftotext.cache_clear()
    return marker


@needs_poppler
def test_poppler_runs_only_for_a_template_whose_keywords_match_but_that_did_not_extract(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "t.yml").write_text(
        "issuer: Dupont Conseil SARL\nkeywords: ['SIRET 123 456 789 00012']\n"
        "fields:\n  invoice_number: 'Bon de commande (\\d+)'\n  amount: 'Total TTC\\s+(\\S+)'\n"
        "  date: 'Date : (\\S+)'\n", encoding="utf-8")
    templates = load_templates([folder])
    marker = _spy_pdftotext(tmp_path, monkeypatch)
    try:
        found = extract_pdf(make_invoice_pdf(issuer="Someone Else Ltd", language="en"), ocr=False,
                            templates=templates)
        assert found.template is None and not marker.exists()  # no keyword of any template: no subprocess
        found = extract_pdf(make_invoice_pdf(), ocr=False, templates=templates)
        assert found.template is None and marker.read_text().count("-layout") == 1  # keywords, no fields
        assert found.extraction.fields["number"] == "FA-2026-0042"  # the generic extractor still reads it
    finally:
        text_module._pdftotext.cache_clear()


def test_damaged_pdf_is_an_error_not_an_empty_text():
    from core.extraction import PdfUnreadable
    from tests.invoicegen import corrupt_pdf

    with pytest.raises(PdfUnreadable):
        read_pdf(corrupt_pdf())
    with pytest.raises(PdfUnreadable):
        extract_pdf(corrupt_pdf())


@pytest.mark.skipif(not (I2D_CORPUS / "saeco.pdf").exists(), reason="the shared corpus is not mounted")
@pytest.mark.skipif(tesseract_binary() is None and not os.environ.get("CI"), reason="tesseract-ocr is not installed")
def test_saeco_text_layer_plus_ocr_of_its_pictures_gives_the_expected_fields():
    """The text layer is exact where it has text ("21 %", "SCONL0..."); only the pictures are OCRed."""
    path = I2D_CORPUS / "saeco.pdf"
    found = extract_pdf(path.read_bytes())
    assert found.ocr and found.template == "nl.saeco.philips.eluscious.yml"
    got, expected = _plain(dict(found.template_output or {})), _plain(_expected(path))
    assert {k: v for k, v in got.items() if k != "lines"} == {k: v for k, v in expected.items() if k != "lines"}
    # invoice2data 1.0.1 adds unece_code (H87 for PCS) to every line itself; saeco.json predates that.
    assert [{k: v for k, v in line.items() if k != "unece_code"} for line in got["lines"]] == expected["lines"]
    assert {line["unece_code"] for line in got["lines"]} == {"H87"}
    assert found.extraction.fields["tax_amount"] == Decimal("8.68")
