"""Parsing untrusted XML: no entity expansion, no DTD, no network, bounded size."""

from __future__ import annotations

import re

from lxml import etree

from core.einvoice.model import EInvoiceError

MAX_XML_BYTES = 10 * 1024 * 1024  # real e-invoices are well under 1 MB, even EXTENDED with many lines

# An invoice root element (CII, ZUGFeRD 1.0) or a UBL namespace declaration, looked for in the first
# bytes to tell a broken e-invoice (an error to report) from some other XML or text (not ours: None).
_INVOICE_MARKERS = re.compile(
    rb"<(?:[\w.-]+:)?Cross(?:IndustryInvoice|IndustryDocument)[\s>/]"
    rb"|xmlns(?::[\w.-]+)?\s*=\s*[\"']urn:oasis:names:specification:ubl:schema:xsd:(?:Invoice|CreditNote)-2[\"']"
)
_DTD_MARKERS = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
_SNIFF_BYTES = 64 * 1024  # past long licence comments at the top of many samples


def _parser() -> etree.XMLParser:
    # A new parser per call: lxml parsers are not thread-safe, and the worker may read in threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def looks_like_invoice_xml(data: bytes) -> bool:
    """Whether the first bytes name an invoice root (UTF-16 documents are decoded first)."""
    head = data[:_SNIFF_BYTES]
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head.decode("utf-16", errors="ignore").encode()
    return bool(_INVOICE_MARKERS.search(head))


def parse_xml(data: bytes, what: str) -> etree._Element:
    """The root element of ``data``; ``EInvoiceError`` if it is too large, not well-formed or declares a DTD.

    ``what`` names the document in the error (e.g. "factur-x.xml embedded in the PDF").
    """
    if len(data) > MAX_XML_BYTES:
        raise EInvoiceError(f"{what} is {len(data) // 1024} KB, larger than the {MAX_XML_BYTES // 1024} KB limit")
    if _DTD_MARKERS.search(data[:_SNIFF_BYTES]):
        raise EInvoiceError(_dtd_refused(what))  # before parsing: a billion-laughs file costs nothing
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise EInvoiceError(f"{what} is not well-formed XML: {exc}") from exc
    except ValueError as exc:  # e.g. a str with an encoding declaration, or an empty document
        raise EInvoiceError(f"{what} cannot be parsed as XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:  # one the byte scan missed (UTF-16, far down)
        raise EInvoiceError(_dtd_refused(what))
    return root


def _dtd_refused(what: str) -> str:
    # No invoice format uses a DTD; one here is at best noise and at worst an entity attack (XXE).
    return f"{what} declares a DTD or entities (<!DOCTYPE>), which e-invoices never do; refused"
