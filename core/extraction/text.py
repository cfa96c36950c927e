"""Text out of a PDF, in-process with pypdfium2 and layout-preserving with poppler's ``pdftotext -layout``.

Why both (measured on this machine, invoice2data 1.0.1's own sample PDFs and our generated invoices):

- pypdfium2 opens the file in-process in 2-13 ms per document and tells a damaged or encrypted PDF apart
  (it raises), so it is the reader of record: it decides "unreadable" and "no text layer".
- Its text keeps no columns ("Émetteur Client" on one line, values mixed underneath). With it the bundled
  invoice2data templates extract 5 of 11 samples; with ``pdftotext -layout`` (8-26 ms, one subprocess)
  10 of 11 (the 11th is a scan), and the generic extractor reads column headings with their values. So
  the layout text feeds template matching and the generic extractor, and pypdfium2's text is the fallback
  when poppler is missing or fails.

Both are capped at ``MAX_PAGES``: invoices are short, and a 2,000-page PDF must not hold a worker.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

import pypdfium2

logger = logging.getLogger(__name__)

MAX_PAGES = 50
PDFTOTEXT_TIMEOUT = 60  # seconds; a pathological file must not hold the job until its RQ timeout
MIN_TEXT_CHARS = 20  # fewer non-blank characters than this: a scan, no usable text layer


class PdfUnreadable(Exception):
    """The file is not a PDF we can open (damaged, truncated, encrypted, not a PDF at all)."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class PdfPasswordProtected(PdfUnreadable):
    """The PDF needs a user password to be opened (an owner password alone does not stop reading)."""

    def __init__(self) -> None:
        super().__init__("password-protected")


@dataclass(frozen=True)
class PdfText:
    pages: int  # pages in the document (text is read from the first MAX_PAGES only)
    text: str  # pypdfium2's text
    layout: str | None  # pdftotext -layout's text; None when unavailable

    @property
    def has_text(self) -> bool:
        return len(re.sub(r"\s+", "", self.text)) >= MIN_TEXT_CHARS

    @property
    def best(self) -> str:
        """The text to read fields from: the layout text when there is one."""
        return self.layout if self.layout and self.layout.strip() else self.text


def _short(exc: Exception) -> str:
    message = " ".join(str(exc).split()) or type(exc).__name__
    inner = re.search(r"\(PDFium: ([^)]*)\)", message)  # "Failed to load document (PDFium: Data format error)."
    return (inner.group(1) if inner else message)[:160]


def open_pdf(data: bytes) -> pypdfium2.PdfDocument:
    """``data`` opened with pypdfium2; ``PdfPasswordProtected`` or ``PdfUnreadable`` when it cannot be."""
    try:
        return pypdfium2.PdfDocument(data)
    except pypdfium2.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise PdfPasswordProtected() from exc
        raise PdfUnreadable(_short(exc)) from exc


def read_pdf(data: bytes, max_pages: int = MAX_PAGES, layout_first: bool = False) -> PdfText:
    """The text of ``data``; raises ``PdfUnreadable`` with a short detail a person can understand.

    ``layout_first``: when ``pdftotext -layout`` gives a text layer, skip pypdfium2's text (``text`` is then
    the layout text; ``pdfium_text`` reads the other one if it is needed after all). pypdfium2 still opens
    the file: it alone tells an encrypted or damaged PDF apart.
    """
    document = open_pdf(data)
    try:
        pages = len(document)
        if pages == 0:
            raise PdfUnreadable("the document has no pages")
        if layout_first:
            layout = layout_text(data, max_pages)
            if layout is not None and PdfText(pages, layout, layout).has_text:
                return PdfText(pages=pages, text=layout, layout=layout)
        texts: list[str] = []
        errors = 0
        for index in range(min(pages, max_pages)):
            try:
                page = document[index]
                textpage = page.get_textpage()
                texts.append(textpage.get_text_bounded())
                textpage.close()
                page.close()
            except pypdfium2.PdfiumError:
                errors += 1  # one damaged page: keep the others
        if errors and not texts:
            raise PdfUnreadable("no page could be read")
    finally:
        document.close()
    text = "\n".join(texts).replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "").replace("\ufffe", "")
    result = PdfText(pages=pages, text=text, layout=None)
    if not result.has_text:
        return result
    return PdfText(pages=pages, text=text, layout=layout_text(data, max_pages))


def pdfium_text(data: bytes, max_pages: int = MAX_PAGES) -> str:
    """pypdfium2's text alone (another reading order than pdftotext's, that some templates were written for)."""
    try:
        return read_pdf(data, max_pages).text
    except PdfUnreadable:
        return ""


@lru_cache(maxsize=1)
def _pdftotext() -> str | None:
    return shutil.which("pdftotext")


def layout_text(data: bytes, max_pages: int = MAX_PAGES) -> str | None:
    """``pdftotext -layout`` on ``data`` (through stdin: no temporary file); None when it is not possible."""
    binary = _pdftotext()
    if binary is None:
        return None
    try:
        proc = subprocess.run(
            [binary, "-layout", "-enc", "UTF-8", "-l", str(max_pages), "-q", "-", "-"],
            input=data,
            capture_output=True,
            timeout=PDFTOTEXT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        logger.warning("pdftotext failed: %s", type(exc).__name__)
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", errors="replace").replace("\f", "\n")
