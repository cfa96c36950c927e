"""Invoice fields out of a PDF: text (``text``), invoice2data templates (``templated``), generic labels
(``generic``). Template values win; the generic extractor fills what the template does not give.

    from core.extraction import extract_pdf, PdfUnreadable
    found = extract_pdf(pdf_bytes)          # raises PdfUnreadable for a damaged/encrypted file
    found.has_text, found.extraction.fields, found.extraction.field_info, found.extraction.source
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from core.extraction.generic import check_totals, extract_fields
from core.extraction.result import GENERIC, Extraction, template_source
from core.extraction.templated import apply_templates, load_templates, quiet_libraries
from core.extraction.text import MAX_PAGES, PdfText, PdfUnreadable, read_pdf

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PdfExtraction:
    extraction: Extraction
    has_text: bool  # False: a scan without a text layer (no OCR yet)
    pages: int
    template: str | None  # the invoice2data template that matched, if any


def extract_text_fields(texts: list[str], templates: list[Any] | None = None) -> tuple[Extraction, str | None]:
    """Fields from the texts of one document (best first): a matching template, then the generic extractor.

    ``templates`` defaults to ``load_templates()`` (bundled + ours, loaded once per process).
    """
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        return Extraction(), None
    result, template = Extraction(), None
    for text in texts:  # templates were mostly written for pdftotext's layout, some for other readers
        try:
            match = apply_templates(text, templates)
        except Exception:  # a broken template must not cost us the generic extraction
            logger.exception("invoice2data template matching failed")
            match = None
        if match is not None:
            result, template = match.extraction, match.name
            break
    result.fill_from(extract_fields(texts[0]))
    check_totals(result)
    return result, template


def extract_pdf(data: bytes, max_pages: int = MAX_PAGES) -> PdfExtraction:
    """Everything we can read from a PDF. Raises ``PdfUnreadable`` when it cannot be opened."""
    pdf = read_pdf(data, max_pages)
    if not pdf.has_text:
        return PdfExtraction(Extraction(), False, pdf.pages, None)
    extraction, template = extract_text_fields([pdf.best, pdf.text] if pdf.layout else [pdf.text])
    return PdfExtraction(extraction, True, pdf.pages, template)


def warm_up() -> None:
    """Load what every job needs once, in the worker's parent process, so forked jobs start warm."""
    quiet_libraries()
    load_templates()
    extract_fields("Facture N° FA-1\nDate : 23 novembre 2026\nTotal TTC : 1 200,00 €")
    try:  # invoice2data parses template dates with dateparser, whose language data loads on first use
        from invoice2data.extract import _dates

        _dates.parse_date("23 novembre 2026", (), ())
    except Exception:  # warming up is an optimisation only
        logger.debug("dateparser warm-up failed", exc_info=True)


__all__ = [
    "GENERIC",
    "Extraction",
    "PdfExtraction",
    "PdfText",
    "PdfUnreadable",
    "extract_fields",
    "extract_pdf",
    "extract_text_fields",
    "load_templates",
    "read_pdf",
    "template_source",
    "warm_up",
]
