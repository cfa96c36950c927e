"""Where each invoice starts in a PDF holding several (a scanned batch, a month of invoices in one file).

Every page is read on its own (the text layer, or Tesseract for a scanned page, or for a scan whose text
layer is a failed OCR: ``textquality``) and a page starts a new invoice only on clear evidence:

- a "page 1/N" marker ("Page 1 sur 3", "Seite 1 von 2", "Pagina 1 de 1") starts one; "page 2/3" (or a
  line holding only "2/3") always continues one;
- an invoice-number label with a number other than the current invoice's, on a page that carries an
  invoice title ("Facture", "Invoice", "Rechnung"...) or that follows the totals of the current invoice;
- an invoice title on the page following the totals of the current invoice, even without a number read;
- an invoice title under another issuer than the current invoice's (scans whose number OCR misread).

What keeps an invoice whole (page-continuity signals), whatever else the page says:

- the current invoice's number on a later page (a header repeated on each page; the copies "Original",
  "Duplicado", "Triplicado" of one invoice, each "Pagina 1 de 1", are one document);
- a copy mark ("Duplicado", "Duplicate", "Copie", "Kopie"...) on a page whose number cannot be compared;
- a total carried from the previous page ("Report", "À reporter", "Übertrag", "Carried forward").

Anything else (terms and conditions, a page without a header, the same number repeated on page 2)
continues the current invoice. Conservative on purpose: a missed boundary costs the reviewer one click
("start a new group here"), a wrong one splits an invoice in two documents that must be merged back.

    from core.extraction.split import split_pdf, detect
    found = split_pdf(pdf_bytes)      # raises PdfUnreadable for a damaged/encrypted file
    found.groups                      # [[0, 1], [2], [3, 4]]: page indexes, one list per invoice
    found.boundaries                  # [Boundary(page=2, reason="new invoice number FA-2")...]
"""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import pypdfium2

from core.extraction import textquality
from core.extraction.generic import extract_fields
from core.extraction.ocr import OcrUnavailable, is_scan, ocr_page
from core.extraction.text import MAX_PAGES, enough_text, open_pdf, pdftotext_pages
from core.fields import number_key

logger = logging.getLogger(__name__)

# Scanned pages OCRed to find boundaries (~1.7 s each on one core): beyond, pages continue the last group.
SPLIT_OCR_MAX_PAGES = 20
TOP_LINES = 15  # the "header" of a page: its first non-blank lines

# "Page 2/3", "page 2 of 3", "Page 2 sur 3", "Seite 2 von 3", "p. 2/3", "Pagina 1 de 1", "Pagina 2 di 3"
_MARKER = re.compile(
    r"(?<!\w)(?:page|seite|blatt|p\.|pagina|página|pág\.|pag\.|feuille|folio|blad)\s*(\d{1,3})\s*"
    r"(?:/|sur|of|von|de|di|van)\s*(\d{1,3})\b",
    re.IGNORECASE,
)
_BARE_MARKER = re.compile(r"^\s*(\d{1,2})\s*/\s*(\d{1,2})\s*$", re.MULTILINE)  # a line holding only "2/2"
# A copy of the invoice printed as its own page (Argentine and Spanish invoices come in three).
_COPY = re.compile(
    r"(?<!\w)(?:duplicado|triplicado|cuadruplicado|duplicate|triplicate|copy|copie|duplicata|kopie|duplikat|"
    r"zweitschrift|copia|kopie)(?!\w)",
    re.IGNORECASE,
)
# A total carried from the previous page to the top of this one.
_CARRIED = re.compile(
    r"(?<!\w)(?:report|à\s+reporter|a\s+reporter|reporté|übertrag|carried\s+forward|brought\s+forward|"
    r"transporte|suma\s+y\s+sigue|riporto)(?!\w)",
    re.IGNORECASE,
)
# A title cell: the kind of document, maybe followed by its number label ("Facture N° ...").
_TITLE = re.compile(
    r"^(?:facture(?:\s+d'avoir)?|avoir|note\s+de\s+cr[ée]dit|invoice|tax\s+invoice|credit\s+note|rechnung|"
    r"gutschrift|factura|fattura|factuur)\b",
    re.IGNORECASE,
)
_CELLS = re.compile(r"\s{2,}")


@dataclass(frozen=True)
class PageInfo:
    """What a page tells about where it stands in an invoice."""

    index: int
    has_text: bool
    number: str | None = None  # the invoice number read by its label on this page
    marker: tuple[int, int] | None = None  # "page k/N"
    title: bool = False  # an invoice title among the top lines
    totals: bool = False  # a total amount (the end of an invoice)
    issuer: str | None = None  # folded to letters and digits, for comparison
    copy: bool = False  # a copy mark ("Duplicado", "Copie") among the top lines
    carried: bool = False  # a total carried from the previous page among the top lines


@dataclass(frozen=True)
class Boundary:
    page: int  # the page (0-based) that starts an invoice
    reason: str


@dataclass
class Split:
    pages: int
    groups: list[list[int]]
    boundaries: list[Boundary] = field(default_factory=list)  # one per group after the first
    ocr_pages: int = 0
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, for ``DocumentSource.detection``."""
        return {
            "pages": self.pages,
            "groups": self.groups,
            "boundaries": [{"page": b.page, "reason": b.reason} for b in self.boundaries],
            "ocr_pages": self.ocr_pages,
            "notes": self.notes,
        }


def _fold(text: str) -> str:
    return unicodedata.normalize("NFC", text).casefold()


def _has_title(lines: list[str]) -> bool:
    for line in lines:
        for cell in _CELLS.split(line.strip()):
            if len(cell.split()) <= 6 and _TITLE.match(_fold(cell)):
                return True
    return False


def page_info(index: int, text: str) -> PageInfo:
    if not enough_text(text):
        return PageInfo(index, has_text=False)
    top = [line for line in text.splitlines() if line.strip()][:TOP_LINES]
    marker = _marker(text)
    fields = extract_fields(text).fields
    number = fields.get("number")
    return PageInfo(
        index,
        has_text=True,
        number=str(number) if number else None,
        marker=marker,
        title=_has_title(top),
        totals=fields.get("amount") is not None,
        issuer=_issuer_key(fields.get("issuer")),
        copy=any(_COPY.search(line) for line in top),
        carried=any(_CARRIED.search(line) for line in top[:8]),
    )


def _marker(text: str) -> tuple[int, int] | None:
    """The "page k/N" of a page: a labelled marker anywhere, else a line holding only "k/N"."""
    for pattern in (_MARKER, _BARE_MARKER):
        for found in pattern.finditer(text):
            k, n = int(found.group(1)), int(found.group(2))
            if 1 <= k <= n:
                return k, n
    return None


def _issuer_key(issuer: object) -> str | None:
    key = "".join(c for c in _fold(str(issuer or "")) if c.isalnum())
    return key or None


def detect(texts: list[str]) -> Split:
    """The invoices among pages whose texts are ``texts`` (one string per page, in order)."""
    infos = [page_info(i, t) for i, t in enumerate(texts)]
    return decide(infos)


def decide(infos: list[PageInfo]) -> Split:
    if not infos:
        return Split(pages=0, groups=[])
    groups: list[list[int]] = [[0]]
    boundaries: list[Boundary] = []
    first = infos[0]
    number = number_key(first.number) if first.number else None
    closed = first.totals  # the current invoice's totals were seen: what follows may be a new one
    issuer = first.issuer
    for info in infos[1:]:
        reason = _starts(info, number, closed, issuer)
        if reason is None:
            groups[-1].append(info.index)
            if info.number and number is None:
                number = number_key(info.number)
            closed = closed or info.totals
            issuer = issuer or info.issuer
            continue
        boundaries.append(Boundary(info.index, reason))
        groups.append([info.index])
        number = number_key(info.number) if info.number else None
        closed, issuer = info.totals, info.issuer
    return Split(pages=len(infos), groups=groups, boundaries=boundaries)


# Characters OCR confuses in invoice numbers: two numbers equal once these are folded are the same number.
_OCR_CONFUSABLE = str.maketrans("OQDIL|ZSB", "000111258")


def _ocr_key(key: str) -> str:
    return key.translate(_OCR_CONFUSABLE)


def _starts(info: PageInfo, number: str | None, closed: bool, issuer: str | None = None) -> str | None:
    """Why ``info`` starts a new invoice, or None when it continues the current one."""
    if not info.has_text:
        return None
    if info.number is not None and number is not None and _ocr_key(number_key(info.number)) == _ocr_key(number):
        return None  # the header repeated on each page, or a copy of the same invoice: one document
    if info.marker is not None and info.marker[0] > 1:
        return None  # "page 2/3": the same invoice, whatever else the page says
    if info.carried:
        return None  # a total carried over from the previous page
    if info.copy and (info.number is None or number is None):
        return None  # a copy of the invoice whose number could not be compared
    if info.marker is not None:
        n = info.marker[1]
        if n > 1 or info.title or closed:
            return f"page 1/{n} marker"
    new_number = info.number is not None
    if new_number and number is not None and (info.title or closed):
        return f"new invoice number {info.number}"
    if new_number and number is None and closed and info.title:
        return f"invoice number {info.number} after the totals of the previous invoice"
    if info.title and closed:
        return "invoice title after the totals of the previous invoice"
    if info.title and info.issuer and issuer and info.issuer != issuer:
        return "invoice title with another issuer"
    return None


# Reading the pages ----------------------------------------------------------------------------


def _pdftotext_pages(data: bytes, pages: int) -> list[str] | None:
    """``pdftotext -layout`` per page (it separates pages with form feeds); None when unavailable."""
    output = pdftotext_pages(data, pages)
    if output is None:
        return None
    texts = output.split("\f")
    if len(texts) < pages:
        return None
    return texts[:pages]


def _garbage_scan(document: pypdfium2.PdfDocument, index: int, text: str) -> bool:
    """A scanned page whose text layer reads as a failed OCR (``textquality``): Tesseract may read it better."""
    if not textquality.is_suspect(text):
        return False
    page = document[index]
    try:
        return is_scan(page)
    finally:
        page.close()


def ocr_pdf_page(document: pypdfium2.PdfDocument, index: int) -> str:
    """Tesseract's text of one page of an open PDF, rendered as ``core.extraction.ocr.ocr_pdf`` does."""
    page = document[index]
    try:
        return ocr_page(page)
    finally:
        page.close()


def page_texts(data: bytes, max_pages: int = MAX_PAGES, ocr_max_pages: int = SPLIT_OCR_MAX_PAGES
               ) -> tuple[int, list[str], int]:
    """(pages in the document, one text per page read, pages OCRed). Raises ``PdfUnreadable``."""
    document = open_pdf(data)
    try:
        total = len(document)
        count = min(total, max_pages)
        texts = _pdftotext_pages(data, count)
        if texts is None:
            texts = []
            for index in range(count):
                try:
                    page = document[index]
                    textpage = page.get_textpage()
                    texts.append(textpage.get_text_bounded())
                    textpage.close()
                    page.close()
                except pypdfium2.PdfiumError:
                    texts.append("")
        ocred = 0
        for index, text in enumerate(texts):
            if ocred >= ocr_max_pages or (enough_text(text) and not _garbage_scan(document, index, text)):
                continue
            try:
                ours = ocr_pdf_page(document, index)
            except OcrUnavailable as exc:
                logger.warning("OCR unavailable while splitting: %s", exc)
                break
            ocred += 1
            if not enough_text(text) or textquality.reads_better(ours, text):
                texts[index] = ours
    finally:
        document.close()
    return total, texts, ocred


def split_pdf(data: bytes, max_pages: int = MAX_PAGES) -> Split:
    """The invoices in a PDF. Pages beyond ``max_pages`` (not read) continue the last invoice."""
    document = open_pdf(data)
    try:
        total = len(document)
    finally:
        document.close()
    if total <= 1:  # most emails: one page, nothing to read here (extraction reads it next)
        return Split(pages=total, groups=[list(range(total))])
    total, texts, ocred = page_texts(data, max_pages)
    found = detect(texts)
    found.ocr_pages = ocred
    if total > len(texts):
        found.groups[-1].extend(range(len(texts), total))
        found.pages = total
        found.notes.append(f"only the first {len(texts)} of {total} pages were read to find the invoices")
    return found


__all__ = ["Boundary", "PageInfo", "Split", "decide", "detect", "page_info", "page_texts", "split_pdf"]
