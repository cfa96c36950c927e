"""Invoice fields out of a PDF or an image: text (``text``, or ``ocr`` for scans and images), invoice2data
templates (``templated``), generic labels (``generic``). Template values win; the generic extractor fills
what the template does not give. Structured e-invoices are read before any of this, by ``core.einvoice``.

    from core.extraction import extract_pdf, extract_image, PdfUnreadable, PdfPasswordProtected, ImageRefused
    found = extract_pdf(pdf_bytes)          # raises PdfUnreadable for a damaged/encrypted file
    found.has_text, found.ocr, found.notes, found.extraction.fields, found.extraction.field_info
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from core.extraction import identifiers, regexguard, textquality
from core.extraction.generic import check_totals, extract_fields
from core.extraction.ocr import (
    ImageRefused,
    OcrText,
    OcrUnavailable,
    confidence_factor,
    field_confidence,
    ocr_image_bytes,
    ocr_images,
    ocr_pdf,
    scanned_pages,
)
from core.extraction.result import GENERIC, Extraction, template_source
from core.extraction.templated import (
    TEMPLATES_OUT_OF_TIME,
    TOTAL_SECONDS,
    TemplatesOutOfTime,
    apply_templates,
    load_templates,
    quiet_libraries,
    template_index,
    template_matches,
)
from core.extraction.text import (
    MAX_PAGES,
    PdfPasswordProtected,
    PdfText,
    PdfUnreadable,
    enough_text,
    open_pdf,
    pdftotext_layout,
    read_pdf,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PdfExtraction:
    extraction: Extraction
    has_text: bool  # False: no text layer and OCR gave nothing (or could not run)
    pages: int
    template: str | None  # the invoice2data template that matched, if any
    ocr: bool = False  # the text came from Tesseract
    notes: tuple[str, ...] = ()  # for the reviewer: pages not read, OCR unavailable...
    template_output: dict[str, Any] | None = None  # invoice2data's raw output (benchmarks compare it)
    text: str = ""  # the text the fields were read from (identifiers are looked for in it)


def extract_text_fields(texts: list[str], templates: list[Any] | None = None) -> tuple[Extraction, str | None]:
    """Fields from the texts of one document (best first): a matching template, then the generic extractor.

    ``templates`` defaults to ``load_templates()`` (bundled + ours, loaded once per process).
    """
    extraction, template, _output, _notes = _text_fields(texts, templates)
    return extraction, template


def _text_fields(
    texts: list[str | Callable[[], str]], templates: list[Any] | None = None, pdf: bytes | None = None
) -> tuple[Extraction, str | None, dict[str, Any] | None, tuple[str, ...]]:
    """``texts``: best first; a callable is only called (a text only read) when no template matched before it.

    All the texts together get ``TOTAL_SECONDS`` of template regexes; beyond, the generic extractor reads the
    document and the last value (notes for the reviewer) says why no template did.
    """
    first = next((t for t in texts if isinstance(t, str) and t.strip()), None)
    if first is None:
        return Extraction(), None, None, ()
    result, template, output, notes = Extraction(), None, None, ()
    with regexguard.deadline(TOTAL_SECONDS):  # per document, not per text tried
        for candidate in texts:  # templates were mostly written for pdftotext's layout, some for other readers
            text = candidate() if callable(candidate) else candidate
            if not text or not text.strip():
                continue
            try:
                match = apply_templates(text, templates, pdf)
            except TemplatesOutOfTime:
                logger.warning("invoice2data templates ran out of time on this document: generic extraction")
                notes = (TEMPLATES_OUT_OF_TIME,)
                break
            except Exception:  # a broken template must not cost us the generic extraction
                logger.exception("invoice2data template matching failed")
                match = None
            if match is not None:
                result, template, output = match.extraction, match.name, match.output
                break
    result.fill_from(extract_fields(first))
    check_totals(result)
    return result, template, output, notes


def pages_note(pages: int, max_pages: int) -> str | None:
    if pages <= max_pages:
        return None
    return f"only the first {max_pages} of {pages} pages were read; check the totals on the last pages by hand"


def extract_pdf(
    data: bytes, max_pages: int = MAX_PAGES, ocr: bool = True, templates: list[Any] | None = None
) -> PdfExtraction:
    """Everything we can read from a PDF: its text layer, else (``ocr``) Tesseract's reading of its first
    pages. Raises ``PdfPasswordProtected`` or ``PdfUnreadable`` when it cannot be opened."""
    pdf = read_pdf(data, max_pages)
    notes = tuple(n for n in [pages_note(pdf.pages, max_pages)] if n)
    if pdf.has_text:
        layout = pdf.best
        # Templates are tried on our layout text; when none extracts, on poppler's own layout text (only if
        # some template's keywords were found: see _poppler_layout), then on pypdfium2's reading order.
        texts: list[str | Callable[[], str]] = [layout, lambda: _poppler_layout(data, max_pages, layout, templates)]
        if pdf.text != layout:
            texts.append(pdf.text)
        extraction, template, output, late = _text_fields(texts, templates, data)
        found = PdfExtraction(extraction, True, pdf.pages, template, notes=(*notes, *late), template_output=output,
                              text=pdf.best)
        if ocr and template is None and not extraction.fields.keys() >= WEAK_FIELDS:
            # A weak reading: the text layer may be a scanner's failed OCR (checked only now: the check opens
            # the file again, ~3 ms, and half the text PDFs of the corpora have a share that needs it).
            if _garbage_layer(data, pdf.text):
                by_ocr = _ocr_document(data, pdf.pages, notes, templates)
                if by_ocr.has_text and textquality.reads_better(by_ocr.text, pdf.text):
                    return replace(by_ocr, notes=(*by_ocr.notes, GARBAGE_LAYER_NOTE))
            return _maybe_ocr_images(data, found, templates)
        return found
    if not ocr:
        return PdfExtraction(Extraction(), False, pdf.pages, None, notes=notes)
    return _ocr_document(data, pdf.pages, notes, templates)


GARBAGE_LAYER_NOTE = "the text layer of this scan is unreadable: the page was read by OCR instead"


def _garbage_layer(data: bytes, text: str) -> bool:
    """A text layer over a scan that reads as a failed OCR (``textquality``): ours may do better."""
    if not textquality.is_suspect(text):
        return False
    document = open_pdf(data)
    try:
        return scanned_pages(document) > 0
    finally:
        document.close()


def _ocr_document(data: bytes, pages: int, notes: tuple[str, ...], templates: list[Any] | None) -> PdfExtraction:
    """The first pages of a scanned PDF read by Tesseract."""
    document = open_pdf(data)
    try:
        scanned = ocr_pdf(document)
    except OcrUnavailable as exc:
        logger.warning("OCR unavailable: %s", exc)
        return PdfExtraction(Extraction(), False, pages, None, notes=(*notes, f"OCR failed: {exc}"))
    finally:
        document.close()
    if pages > scanned.pages:
        notes = (*notes, f"OCR read the first {scanned.pages} of {pages} pages")
    return _from_ocr(scanned, pages, notes, templates)


def _poppler_layout(data: bytes, max_pages: int, text: str, templates: list[Any] | None) -> str:
    """``pdftotext -layout``'s text, but only when a template's keywords are in ``text`` and it still did not
    extract: invoice2data's templates were written against poppler's layout, which ours reproduces closely but
    not exactly (a line item one column off). Documents that no template is meant for never pay the
    subprocess (10-30 ms)."""
    index = template_index(templates if templates is not None else load_templates())
    if not any(template_matches(template, text) for template in index.candidates(text)):
        return ""
    return pdftotext_layout(data, max_pages) or ""


WEAK_FIELDS = {"number", "amount"}  # a text layer that gives neither may hide the invoice in its images


def _maybe_ocr_images(data: bytes, found: PdfExtraction, templates: list[Any] | None) -> PdfExtraction:
    """A text layer without a number or a total, on a page with images: some text may be in the images
    (saeco.pdf: the issuer's details are a picture). OCR the pictures only, read them after the text layer
    (exact where it has text: OCR would turn "21 %" into "21%") and keep what reads better."""
    document = open_pdf(data)
    try:
        scanned = ocr_images(document)
    except OcrUnavailable as exc:
        logger.warning("OCR unavailable: %s", exc)
        return found
    finally:
        document.close()
    if not scanned.text.strip():
        return found
    both = OcrText(f"{found.text}\n{scanned.text}", scanned.pages, scanned.words)
    by_ocr = _from_ocr(both, found.pages, found.notes, templates)
    if by_ocr.template is not None or len(by_ocr.extraction.fields) > len(found.extraction.fields):
        return by_ocr
    return found


def extract_image(data: bytes, templates: list[Any] | None = None) -> PdfExtraction:
    """Fields of a photographed or scanned invoice (PNG, JPEG, TIFF...), by OCR.

    Raises ``ImageRefused`` for an image that cannot or must not be decoded (a decompression bomb).
    """
    try:
        scanned = ocr_image_bytes(data)
    except OcrUnavailable as exc:
        logger.warning("OCR unavailable: %s", exc)
        return PdfExtraction(Extraction(), False, 1, None, notes=(f"OCR failed: {exc}",))
    return _from_ocr(scanned, scanned.pages, scanned.notes, templates)


def _from_ocr(scanned: OcrText, pages: int, notes: tuple[str, ...], templates: list[Any] | None) -> PdfExtraction:
    notes = (*notes, *(n for n in scanned.notes if n not in notes))
    if not enough_text(scanned.text):  # a blank page, a photo of a cat
        return PdfExtraction(Extraction(), False, pages, None, ocr=True, notes=notes)
    extraction, template, output, late = _text_fields([scanned.text], templates)
    notes = (*notes, *(n for n in late if n not in notes))
    return PdfExtraction(as_ocr(extraction, scanned), True, pages, template, ocr=True, notes=notes,
                         template_output=output, text=scanned.text)


def as_ocr(extraction: Extraction, scanned: OcrText | None = None) -> Extraction:
    """Fields read from OCR text: sources prefixed ``ocr+``, confidences lowered (a 0 may be an O, a 1 an l),
    the more so as Tesseract was unsure of the words each field was read from (``ocr_confidence``: their mean
    confidence, else the page's)."""
    page = scanned.confidence if scanned is not None and scanned.words else 1.0
    for name, info in extraction.field_info.items():
        info["source"] = f"ocr+{info.get('source', GENERIC)}"[:64]
        words = field_confidence(extraction.fields.get(name), scanned.words, page) if scanned else page
        if scanned is not None and scanned.words:
            info["ocr_confidence"] = round(words, 2)
        info["confidence"] = round(float(info.get("confidence", 0.0)) * confidence_factor(words), 2)
    return extraction


def warm_up() -> None:
    """Load what every job needs once, in the worker's parent process, so forked jobs start warm."""
    quiet_libraries()
    template_index(load_templates())
    extract_fields("Facture N° FA-1\nDate : 23 novembre 2026\nTotal TTC : 1 200,00 €")
    identifiers.load_checkers()
    try:  # invoice2data parses template dates with dateparser, whose language data loads on first use
        from invoice2data.extract import _dates

        _dates.parse_date("23 novembre 2026", (), ())
    except Exception:  # warming up is an optimisation only
        logger.debug("dateparser warm-up failed", exc_info=True)


__all__ = [
    "GENERIC",
    "Extraction",
    "ImageRefused",
    "PdfExtraction",
    "PdfPasswordProtected",
    "PdfText",
    "PdfUnreadable",
    "extract_fields",
    "extract_image",
    "extract_pdf",
    "extract_text_fields",
    "load_templates",
    "read_pdf",
    "template_source",
    "warm_up",
]
