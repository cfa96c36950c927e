"""Thin e-invoices (Factur-X MINIMUM, BASIC WL, any profile that leaves fields out) completed from their page.

A MINIMUM XML gives the number, dates, totals and parties but no due date; the PDF it rides in often
prints one ("Date d'échéance 13/12/2017"). Fields the XML leaves empty are read from the PDF's text layer
with the generic extractor, marked as read from the page (``source`` ``page+...``, a note, a confidence
under the review page's check mark), so a person checks them. The XML's own values stay exact and always
win: nothing it gives is ever replaced. The page is not OCRed: these PDFs are generated with text.
"""

from __future__ import annotations

import logging
from typing import Any

from core.extraction import PdfUnreadable, extract_pdf
from core.extraction.result import GENERIC
from core.fields import FIELDS
from core.i18n import N_

logger = logging.getLogger(__name__)

PAGE_NOTE = N_("not in the e-invoice's XML: read from the PDF's page, check it")
PAGE_CONFIDENCE = 0.7  # below the review page's 0.8 mark: always shown with "check"
# What an e-invoice's XML can carry; the title is free text no XML gives, so it is not "missing" from it.
FILLABLE = tuple(name for name in FIELDS if name not in ("title", "doc_type"))


def fill_from_page(fields: dict[str, Any], data: bytes) -> list[str]:
    """Fill ``fields`` (``to_fields``'s output, its ``field_info`` included) where the XML gave nothing,
    from the text of the PDF ``data``; the names filled."""
    missing = [name for name in FILLABLE if fields.get(name) is None]
    if not missing:
        return []
    try:
        found = extract_pdf(data, ocr=False)
    except PdfUnreadable:
        return []
    except Exception:  # the XML was read: a page the extractor trips on must not cost the invoice
        logger.exception("reading the page of an e-invoice failed")
        return []
    page, page_info = found.extraction.fields, found.extraction.field_info
    filled: list[str] = []
    for name in missing:
        value = page.get(name)
        if value is None or not _consistent(name, value, fields):
            continue
        info = page_info.get(name, {})
        fields[name] = value
        fields["field_info"][name] = {
            "source": f"page+{info.get('source', GENERIC)}"[:64],
            "confidence": round(min(float(info.get("confidence", 0.0)), PAGE_CONFIDENCE), 2),
            "note": PAGE_NOTE,
        }
        filled.append(name)
    return filled


def _consistent(name: str, value: Any, fields: dict[str, Any]) -> bool:
    """A value read from the page that contradicts the XML is not taken (a due date before the issue date,
    an amount that breaks net + tax = total)."""
    if name == "due_date" and fields.get("issue_date") is not None:
        return bool(value >= fields["issue_date"])
    totals = {"amount": ("net_amount", "tax_amount"), "net_amount": ("amount", "tax_amount"),
              "tax_amount": ("amount", "net_amount")}
    if name in totals:
        others = [fields.get(other) for other in totals[name]]
        if all(other is not None for other in others):
            amount, net, tax = (value if n == name else fields.get(n) for n in ("amount", "net_amount", "tax_amount"))
            return bool(net + tax == amount)
    return True
