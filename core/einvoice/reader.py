"""``read_einvoice``: bytes (a PDF or an XML file) to an ``EInvoice``, None, or ``EInvoiceError``."""

from __future__ import annotations

from decimal import Decimal

from lxml import etree

from core.einvoice.cii import DIALECTS, ZUGFERD1, read_cii
from core.einvoice.model import EInvoice, EInvoiceError
from core.einvoice.pdf import EmbeddedXml, embedded_xml_files, is_pdf
from core.einvoice.ubl import CREDIT_NOTE_ROOT, INVOICE_ROOT, read_ubl
from core.einvoice.xmlsafe import looks_like_invoice_xml, parse_xml

# UNTDID 1001 codes that EN 16931 lists as credit notes. 384 (corrected invoice) and 389 (self-billed
# invoice, the German "Gutschrift") are invoices, even with negative amounts: see to_fields for those.
CREDIT_NOTE_TYPE_CODES = frozenset({"81", "83", "261", "262", "296", "308", "381", "396", "420", "458", "532"})
_UBL_ROOTS = (INVOICE_ROOT, CREDIT_NOTE_ROOT)


def read_einvoice(data: bytes, filename: str = "") -> EInvoice | None:
    """The structured invoice in ``data``: a PDF with an embedded invoice XML or a standalone XML file.

    None when the bytes are neither (a plain PDF, an image, some other XML): the caller then reads the
    document as text. ``EInvoiceError`` with a reason a person can act on when the bytes are, or claim
    to be, an e-invoice that cannot be read (broken XML, a DTD, too large, mandatory fields missing).
    """
    data = bytes(data)
    if not _starts_like_xml(data):
        return _read_pdf(data) if is_pdf(data) else None
    what = filename or "the XML file"
    claimed = looks_like_invoice_xml(data)  # an invoice root or namespace in the first bytes
    try:
        root = parse_xml(data, what)
    except EInvoiceError:
        if claimed:
            raise
        return None  # some other broken XML (or HTML): not ours to report
    return _read_root(root, what=what, in_pdf=None, claimed=claimed)


def _starts_like_xml(data: bytes) -> bool:
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"<") or head.startswith((b"\xff\xfe<", b"\xfe\xff\x00<"))


def _read_pdf(data: bytes) -> EInvoice | None:
    files = embedded_xml_files(data)
    known = [f for f in files if f.known]
    if known:
        # The preferred one only: a second invoice XML (ZUGFeRD 1 next to Factur-X) is reported, not merged.
        einv = _read_embedded(known[0], claimed=True)
        if einv is not None and len(known) > 1:
            names = ", ".join(f.name for f in known)
            einv.warnings.append(f"the PDF carries {len(known)} invoice XMLs ({names}); read {known[0].name}")
        return einv
    for other in files:  # an unusual name: use it only if it turns out to be an invoice
        try:
            einv = _read_embedded(other, claimed=False)
        except EInvoiceError:
            continue
        if einv is not None:
            return einv
    return None


def _read_embedded(file: EmbeddedXml, claimed: bool) -> EInvoice | None:
    what = f"{file.name} embedded in the PDF"
    return _read_root(parse_xml(file.read(), what), what=what, in_pdf=file.name, claimed=claimed)


def _read_root(document: etree._Element, what: str, in_pdf: str | None, claimed: bool) -> EInvoice | None:
    """``in_pdf`` is the attachment's name, None for a standalone file. A ``claimed`` document (a known
    attachment name, invoice markers in the first bytes) that is no invoice is an error; any other is
    simply not ours (None)."""
    root = _invoice_root(document)
    if root is None:
        if claimed:
            raise EInvoiceError(f"{what} is not an invoice in a known format")
        return None
    einv = _parse_root(root, in_pdf is not None)
    einv.attachment = in_pdf
    _check_mandatory(einv, what)
    einv.is_credit_note = is_credit_note(einv.type_code, einv.grand_total, root.tag == CREDIT_NOTE_ROOT)
    einv.warnings.extend(consistency_warnings(einv))
    return einv


def _invoice_root(root: etree._Element) -> etree._Element | None:
    """The invoice element: the root, or a direct child of an envelope (Peppol's StandardBusinessDocument)."""
    for candidate in (root, *root.iterchildren(tag=etree.Element)):
        if candidate.tag in DIALECTS or candidate.tag in _UBL_ROOTS:
            return candidate
    return None


def _parse_root(root: etree._Element, in_pdf: bool) -> EInvoice:
    if root.tag in _UBL_ROOTS:
        return read_ubl(root, "ubl")
    dialect = DIALECTS[root.tag]
    fmt = "zugferd-1" if dialect is ZUGFERD1 else ("factur-x" if in_pdf else "cii")
    return read_cii(root, dialect, fmt)


_MANDATORY = (
    ("number", "BT-1 invoice number"),
    ("issue_date", "BT-2 issue date"),
    ("currency", "BT-5 currency"),
    ("grand_total", "BT-112 grand total"),
)


def _check_mandatory(einv: EInvoice, what: str) -> None:
    # Mandatory in every profile, MINIMUM included: without them the record would be a guess.
    missing = [label for name, label in _MANDATORY if getattr(einv, name) is None]
    if missing:
        raise EInvoiceError(f"{what} lacks the mandatory {', '.join(missing)}")


def is_credit_note(type_code: str | None, grand_total: Decimal | None, credit_note_root: bool) -> bool:
    """A UBL CreditNote root or a credit-note type code; or a plain invoice (380, or no code) whose grand
    total is negative, which is how some generators write a credit note."""
    if credit_note_root or type_code in CREDIT_NOTE_TYPE_CODES:
        return True
    return type_code in (None, "380") and grand_total is not None and grand_total < 0


def consistency_warnings(einv: EInvoice) -> list[str]:
    """Sums that should agree and do not: kept as warnings for review, the values stay as written."""
    warnings: list[str] = []
    net, tax, grand = einv.net_total, einv.tax_total, einv.grand_total
    if net is not None and tax is not None and grand is not None and net + tax != grand:
        warnings.append(f"net {net} + tax {tax} is {net + tax}, not the grand total {grand}")
    if einv.vat_breakdown:
        tax_sum = sum((row.tax for row in einv.vat_breakdown), Decimal("0"))
        if tax is not None and tax_sum != tax:
            warnings.append(f"the VAT breakdown sums to {tax_sum}, not the tax total {tax}")
    due = einv.amount_due
    if due is not None and grand is not None and due * grand < 0:
        warnings.append(f"the amount due {due} and the grand total {grand} differ in sign")
    return warnings
