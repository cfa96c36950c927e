"""The XML files embedded in a PDF (PDF/A-3 Factur-X, ZUGFeRD, XRechnung-in-PDF).

pypdf (the library factur-x itself reads PDFs with) lists the attachments directly, because
``facturx.get_xml_from_pdf`` returns the first match in the PDF's own order (ZUGFeRD-invoice.xml before
factur-x.xml when both are present), parses with lxml's default parser, and answers "nothing found"
both for a PDF without XML and for one whose XML is broken; all three matter here.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.generic import DictionaryObject, EmbeddedFile

from core.einvoice.model import EInvoiceError
from core.einvoice.xmlsafe import MAX_XML_BYTES

log = logging.getLogger(__name__)

# The names the standards give the invoice XML, best first: Factur-X / ZUGFeRD 2.1+, ZUGFeRD 2.0 and
# 1.0 (same name, other case), XRechnung in a PDF. A PDF carrying two (ZUGFeRD 1 + Factur-X) is read
# from factur-x.xml, the current standard.
KNOWN_NAMES = ("factur-x.xml", "zugferd-invoice.xml", "xrechnung.xml")


@dataclass(frozen=True)
class EmbeddedXml:
    name: str
    known: bool  # one of KNOWN_NAMES: it claims to be the invoice, so a broken one is an error
    _file: EmbeddedFile

    def read(self) -> bytes:
        try:
            declared = self._file.size
            too_large = isinstance(declared, int) and declared > MAX_XML_BYTES
            content = None if too_large else self._file.content  # an oversized one is not even inflated
        except Exception as exc:  # pypdf raises assorted errors on a damaged or oversized stream
            raise EInvoiceError(f"{self.name} embedded in the PDF cannot be extracted: {exc}") from exc
        if content is None or len(content) > MAX_XML_BYTES:
            size = declared if content is None else len(content)
            raise EInvoiceError(f"{self.name} embedded in the PDF is {size // 1024} KB, over the limit")
        return content


def is_pdf(data: bytes) -> bool:
    # Readers accept the header anywhere in the first KB (some generators prefix junk), so do we.
    return b"%PDF-" in data[:1024]


def embedded_xml_files(data: bytes) -> list[EmbeddedXml]:
    """The PDF's XML attachments, known invoice names first (in ``KNOWN_NAMES`` order), then the others.

    An unreadable PDF has none: it is not ours to judge, the text extraction path will say what is wrong.
    """
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            reader.decrypt("")  # invoices are at most owner-protected; their attachments read with ""
        named = [(_file_name(file), file) for file in _attachments(reader)]
    except Exception as exc:  # a damaged or exotic PDF: pypdf raises many kinds of errors
        log.info("cannot list the attachments of a PDF: %s", exc)
        return []
    found = [
        EmbeddedXml(name=name, known=name.lower() in KNOWN_NAMES, _file=file)
        for name, file in named
        if name.lower().endswith(".xml")
    ]
    return sorted(found, key=_preference)


def _preference(item: EmbeddedXml) -> int:
    lowered = item.name.lower()
    return KNOWN_NAMES.index(lowered) if lowered in KNOWN_NAMES else len(KNOWN_NAMES)


def _attachments(reader: PdfReader) -> Iterator[EmbeddedFile]:
    """The EmbeddedFiles name tree; else the catalog's /AF (associated files) array, which PDF/A-3
    requires for the invoice and a few generators fill without the name tree."""
    listed = list(reader.attachment_list)
    if listed:
        yield from listed
        return
    associated = reader.root_object.get("/AF")
    for ref in associated.get_object() if associated is not None else []:
        spec = ref.get_object()
        if isinstance(spec, DictionaryObject) and "/EF" in spec:
            yield EmbeddedFile(name=str(spec.get("/UF") or spec.get("/F") or ""), pdf_object=spec)


def _file_name(file: EmbeddedFile) -> str:
    """The name tree key or the file spec's /UF or /F (they usually agree), a known name first; a
    path-like name keeps its last part."""
    names = [str(n).replace("\\", "/").rsplit("/", 1)[-1].strip() for n in (file.name, file.alternative_name) if n]
    return next((n for n in names if n.lower() in KNOWN_NAMES), names[0] if names else "")
