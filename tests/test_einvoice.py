"""The e-invoice reader against every einvoice/ row of the shared corpus manifest, plus hostile input.

No database: ``core.einvoice`` is pure. The corpus lives in ``shared/corpus`` beside the repository
(``INVOICE_CORPUS`` overrides); the manifest tests are skipped, with a reason, where it is absent.
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, NameObject
from reportlab.pdfgen.canvas import Canvas

from core.einvoice import EInvoice, EInvoiceError, VatLine, profile_level, read_einvoice, to_fields
from core.einvoice.reader import is_credit_note
from core.einvoice.xmlsafe import MAX_XML_BYTES, _parser
from core.fields import check_complete, coerce
from tests.corpus import CORPUS as SHARED

REPO = Path(__file__).resolve().parents[1]
CORPUS = SHARED
MANIFEST = CORPUS / "MANIFEST.tsv"

# Manifest column -> EInvoice attribute, in the order the benchmark prints them.
COMPARED = {
    "invoice_number": "number",
    "type_code": "type_code",
    "is_credit_note": "is_credit_note",
    "issue_date": "issue_date",
    "due_date": "due_date",
    "currency": "currency",
    "seller_name": "seller_name",
    "buyer_name": "buyer_name",
    "total_without_tax": "net_total",
    "tax_total": "tax_total",
    "grand_total": "grand_total",
    "due_payable": "amount_due",
    "vat_breakdown": "vat_breakdown",
    "profile": "profile",
}
_DATES = {"issue_date", "due_date"}
_AMOUNTS = {"total_without_tax", "tax_total", "grand_total", "due_payable"}


# Manifest ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    file: str
    kind: str  # "ok", "error" (must raise EInvoiceError) or "none" (not an e-invoice)
    expected: dict[str, Any]
    note: str

    @property
    def path(self) -> Path:
        return CORPUS / self.file


def load_rows() -> list[Row]:
    """The manifest's einvoice/ rows, with typed expectations."""
    with MANIFEST.open(newline="", encoding="utf-8") as handle:
        raw = [r for r in csv.DictReader(handle, delimiter="\t") if r["file"].startswith("einvoice/")]
    return [Row(r["file"], _kind(r), {col: parse_expected(col, r[col]) for col in COMPARED}, r["note"]) for r in raw]


def _kind(row: dict[str, str]) -> str:
    if row["format"].endswith("ERROR"):
        return "error"
    if "no-XML" in row["format"]:
        return "none"
    return "ok"


def parse_expected(column: str, value: str) -> Any:
    """A manifest cell as the typed value ``read_einvoice`` must give ('' is None)."""
    if value == "":
        return [] if column == "vat_breakdown" else None
    if column == "is_credit_note":
        return value == "True"
    if column in _DATES:
        return date.fromisoformat(value)
    if column in _AMOUNTS:
        return Decimal(value)
    if column == "vat_breakdown":
        return [_vat_row(part) for part in value.split(";")]
    return value


def _vat_row(text: str) -> VatLine:
    # "S:7.00%:275.00->19.25"; ZUGFeRD 1.0 has no category: "None:19.00%:198.00->37.62".
    category, rate, amounts = text.split(":")
    base, tax = amounts.split("->")
    return VatLine(None if category == "None" else category, Decimal(rate.rstrip("%")), Decimal(base), Decimal(tax))


def actual_value(einv: EInvoice, column: str) -> Any:
    value = getattr(einv, COMPARED[column])
    return [VatLine(*row) for row in value] if column == "vat_breakdown" else value


def field_matches(einv: EInvoice, row: Row, column: str) -> bool:
    """Decimals compare by value (473 == 473.00), and so do the rows of the VAT breakdown."""
    return actual_value(einv, column) == row.expected[column]


ROWS = load_rows() if MANIFEST.is_file() else []
needs_corpus = pytest.mark.skipif(not ROWS, reason=f"corpus manifest not found at {MANIFEST}")


def _row_params() -> list[Any]:
    return [pytest.param(row, id=row.file.removeprefix("einvoice/")) for row in ROWS] or [
        pytest.param(None, id="no-corpus")
    ]


@needs_corpus
def test_manifest_has_every_corpus_file() -> None:
    on_disk = {f"einvoice/{p.name}" for p in (CORPUS / "einvoice").iterdir()}
    assert on_disk == {row.file for row in ROWS}
    assert len(ROWS) >= 38


@needs_corpus
@pytest.mark.parametrize("row", _row_params())
def test_manifest_row(row: Row) -> None:
    data = row.path.read_bytes()
    if row.kind == "error":
        with pytest.raises(EInvoiceError) as caught:
            read_einvoice(data, row.path.name)
        assert "factur-x.xml" in caught.value.reason and "not well-formed XML" in caught.value.reason
        return
    einv = read_einvoice(data, row.path.name)
    if row.kind == "none":
        assert einv is None, row.note
        return
    assert einv is not None
    wrong = {col: (actual_value(einv, col), row.expected[col]) for col in COMPARED if not field_matches(einv, row, col)}
    assert wrong == {}, row.note
    _assert_types(einv)


@needs_corpus
def test_two_xmls_in_one_pdf_reads_factur_x_and_says_so() -> None:
    # The manifest expects the values of factur-x.xml (Factur-X EXTENDED), not those of the ZUGFeRD 1 twin.
    einv = read_einvoice((CORPUS / "einvoice/zc_FAIL_MustangRE-20171118_506_ZUGFeRD1and2.pdf").read_bytes())
    assert einv is not None and einv.attachment == "factur-x.xml" and einv.format == "factur-x"
    assert einv.warnings == ["the PDF carries 2 invoice XMLs (factur-x.xml, ZUGFeRD-invoice.xml); read factur-x.xml"]


@needs_corpus
@pytest.mark.parametrize(
    ("name", "fmt", "attachment", "level", "lines"),
    [
        ("zc_EN16931_Einfach.pdf", "factur-x", "factur-x.xml", "en16931", 2),
        ("zc_EN16931_Einfach.cii.xml", "cii", None, "en16931", 2),
        ("zc_EN16931_Einfach.ubl.xml", "ubl", None, "en16931", 2),
        ("zc_ZUGFeRD_1p0_BASIC_Einfach.pdf", "zugferd-1", "ZUGFeRD-invoice.xml", "basic", 1),
        ("zc_zugferd_2p0_MINIMUM.pdf", "factur-x", "zugferd-invoice.xml", "minimum", 0),
        ("zc_zugferd_2p1_BASIC-WL_Einfach.pdf", "factur-x", "factur-x.xml", "basicwl", 0),
        ("zc_zugferd_2p0_EXTENDED_Rechnungskorrektur.pdf", "factur-x", "zugferd-invoice.xml", "extended", 2),
        ("kosit_01.20a-INVOICE_uncefact.xml", "cii", None, "xrechnung", 2),
        ("cef_ubl-tc434-creditnote1.xml", "ubl", None, "en16931", 1),
        ("oasis_UBL-Invoice-2.1-Example.xml", "ubl", None, None, 5),
    ],
)
def test_format_profile_and_lines(name: str, fmt: str, attachment: str | None, level: str | None, lines: int) -> None:
    einv = read_einvoice((CORPUS / "einvoice" / name).read_bytes(), name)
    assert einv is not None
    assert (einv.format, einv.attachment, einv.level, len(einv.lines)) == (fmt, attachment, level, lines)


@needs_corpus
def test_lines_payment_and_parties_of_a_full_invoice() -> None:
    einv = read_einvoice((CORPUS / "einvoice/akx_invoice_EN16931.pdf").read_bytes())
    assert einv is not None
    # The payee's IBAN, not the direct-debit payer account listed next to it; spaces removed.
    assert einv.iban == "FR2012542547256985425874698"
    assert einv.payment_reference == "F20260023BUYER"
    assert einv.seller_vat_id == "FR11123456782" and einv.buyer_vat_id == "FR05987654321"
    assert all(isinstance(line.net_amount, Decimal) for line in einv.lines)
    # The lines sum to BT-106 (95.00); document-level charges (14.00) and allowances (9.00) make BT-109.
    assert sum(line.net_amount for line in einv.lines) == Decimal("95.00") == einv.net_total - 14 + 9


@needs_corpus
def test_zugferd_1_payment_details() -> None:
    einv = read_einvoice((CORPUS / "einvoice/zc_ZUGFeRD_1p0_BASIC_Einfach.pdf").read_bytes())
    assert einv is not None
    assert (einv.iban, einv.payment_reference, einv.seller_vat_id) == (
        "DE08700901001234567890",
        "2013-471102",
        "DE123456789",
    )
    assert einv.lines[0].quantity == Decimal("20") and einv.lines[0].net_amount == Decimal("198.00")


def _assert_types(einv: EInvoice) -> None:
    for name in ("net_total", "tax_total", "grand_total", "amount_due"):
        assert getattr(einv, name) is None or isinstance(getattr(einv, name), Decimal), name
    for row in einv.vat_breakdown:
        assert all(isinstance(v, Decimal) for v in (row.rate, row.base, row.tax))
    for line in einv.lines:
        assert all(v is None or isinstance(v, Decimal) for v in (line.quantity, line.unit_price, line.net_amount))


# to_fields -----------------------------------------------------------------------------------


@needs_corpus
def test_to_fields_of_an_invoice() -> None:
    einv = read_einvoice((CORPUS / "einvoice/zc_EN16931_Einfach_DueDate.pdf").read_bytes())
    assert einv is not None
    fields = to_fields(einv)
    info = fields.pop("field_info")
    assert fields == {
        "doc_type": "invoice",
        "number": "471102",
        "title": None,
        "client": "Kunden AG Mitte",  # the buyer: our users issue these invoices
        "issuer": "Lieferant GmbH",
        "amount": Decimal("529.87"),
        "net_amount": Decimal("473.00"),
        "tax_amount": Decimal("56.87"),
        "currency": "EUR",
        "issue_date": date(2018, 3, 5),
        "due_date": date(2019, 3, 5),
    }
    assert set(info) == set(fields) - {"title"}
    assert all(v == {"source": "einvoice:factur-x", "confidence": 1.0} for v in info.values())
    values, errors = coerce(fields)
    assert errors == {} and check_complete(values) == {}


@needs_corpus
@pytest.mark.parametrize(
    ("name", "amount", "net", "tax"),
    [
        ("zc_FNFE_Avoir_FR_type381_BASIC.pdf", "233.47", "218.48", "14.99"),  # 381, positive amounts
        ("cef_ubl-tc434-creditnote1.xml", "100.11", "100.11", "0.00"),  # UBL CreditNote root
        ("zc_EN16931_Rechnungskorrektur.pdf", "8.79", "7.67", "1.12"),  # 384 with negative amounts
    ],
)
def test_to_fields_of_a_credit_note_stores_positive_amounts(name: str, amount: str, net: str, tax: str) -> None:
    einv = read_einvoice((CORPUS / "einvoice" / name).read_bytes(), name)
    assert einv is not None
    fields = to_fields(einv)
    assert fields["doc_type"] == "credit_note"
    amounts = (fields["amount"], fields["net_amount"], fields["tax_amount"])
    assert amounts == (Decimal(amount), Decimal(net), Decimal(tax))
    values, errors = coerce(fields)
    assert errors == {} and check_complete(values) == {}


@needs_corpus
def test_to_fields_leaves_missing_fields_out_of_field_info() -> None:
    einv = read_einvoice((CORPUS / "einvoice/zc_EN16931_Einfach.pdf").read_bytes())
    assert einv is not None
    fields = to_fields(einv)
    assert fields["due_date"] is None and "due_date" not in fields["field_info"]


# Credit-note rule and profile ids -------------------------------------------------------------


@pytest.mark.parametrize(
    ("type_code", "grand_total", "root", "expected"),
    [
        ("380", Decimal("10"), False, False),
        ("380", Decimal("-10"), False, True),  # a credit note written as a negative invoice
        ("381", Decimal("10"), False, True),  # a credit note with positive amounts
        ("384", Decimal("-8.79"), False, False),  # a corrected invoice stays an invoice (corpus)
        ("389", Decimal("-5"), False, False),  # a self-billed invoice ("Gutschrift") too
        ("751", Decimal("10"), False, False),
        (None, None, True, True),  # UBL CreditNote without a type code
        ("261", Decimal("1"), False, True),
    ],
)
def test_credit_note_rule(type_code: str | None, grand_total: Decimal | None, root: bool, expected: bool) -> None:
    assert is_credit_note(type_code, grand_total, root) is expected


@pytest.mark.parametrize(
    ("profile", "level"),
    [
        ("urn:cen.eu:en16931:2017", "en16931"),
        ("urn:cen.eu:en16931:2017#compliant#urn:zugferd.de:2p0:basic", "basic"),
        ("urn:cen.eu:en16931:2017:compliant:factur-x.eu:1p0:basic", "basic"),
        ("urn:cen.eu:en16931:2017#conformant#urn:zugferd.de:2p0:extended", "extended"),
        ("urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended", "extended"),
        ("urn:factur-x.eu:1p0:minimum", "minimum"),
        ("urn:zugferd.de:2p0:minimum", "minimum"),
        ("urn:factur-x.eu:1p0:basicwl", "basicwl"),
        ("urn:ferd:CrossIndustryDocument:invoice:1p0:comfort", "en16931"),
        ("urn:cen.eu:en16931:2017#compliant#urn:xeinkauf.de:kosit:xrechnung_3.0", "xrechnung"),
        ("urn:cen.eu:en16931:2017#compliant#urn:xoev-de:kosit:standard:xrechnung_2.1", "xrechnung"),
        ("urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu:2017:poacc:billing:3.0", "en16931"),
        ("", None),
        (None, None),
    ],
)
def test_profile_level(profile: str | None, level: str | None) -> None:
    assert profile_level(profile) == level


# Synthetic documents -------------------------------------------------------------------------

CII = """<?xml version="1.0" encoding="UTF-8"?>
{doctype}<rsm:CrossIndustryInvoice xmlns:rsm="urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100"
 xmlns:ram="urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100"
 xmlns:udt="urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100">
 <rsm:ExchangedDocumentContext><ram:GuidelineSpecifiedDocumentContextParameter>
  <ram:ID>urn:cen.eu:en16931:2017</ram:ID></ram:GuidelineSpecifiedDocumentContextParameter></rsm:ExchangedDocumentContext>
 <rsm:ExchangedDocument><ram:ID>{number}</ram:ID><ram:TypeCode>380</ram:TypeCode>
  <ram:IssueDateTime><udt:DateTimeString format="102">20260105</udt:DateTimeString></ram:IssueDateTime>
 </rsm:ExchangedDocument>
 <rsm:SupplyChainTradeTransaction>
  <ram:ApplicableHeaderTradeAgreement>
   <ram:SellerTradeParty><ram:Name>Seller SARL</ram:Name></ram:SellerTradeParty>
   <ram:BuyerTradeParty><ram:Name>Buyer GmbH</ram:Name></ram:BuyerTradeParty>
  </ram:ApplicableHeaderTradeAgreement>
  <ram:ApplicableHeaderTradeSettlement>
   <ram:InvoiceCurrencyCode>EUR</ram:InvoiceCurrencyCode>
   <ram:TaxCurrencyCode>SEK</ram:TaxCurrencyCode>
   <ram:ApplicableTradeTax><ram:CalculatedAmount>20.00</ram:CalculatedAmount><ram:TypeCode>VAT</ram:TypeCode>
    <ram:BasisAmount>100.00</ram:BasisAmount><ram:CategoryCode>S</ram:CategoryCode>
    <ram:RateApplicablePercent>20</ram:RateApplicablePercent></ram:ApplicableTradeTax>
   <ram:SpecifiedTradeSettlementHeaderMonetarySummation>
    <ram:TaxBasisTotalAmount>100.00</ram:TaxBasisTotalAmount>
    {tax_totals}
    <ram:GrandTotalAmount>{grand}</ram:GrandTotalAmount>
    <ram:DuePayableAmount>120.00</ram:DuePayableAmount>
   </ram:SpecifiedTradeSettlementHeaderMonetarySummation>
  </ram:ApplicableHeaderTradeSettlement>
 </rsm:SupplyChainTradeTransaction>
</rsm:CrossIndustryInvoice>
"""
EUR_TAX = '<ram:TaxTotalAmount currencyID="EUR">20.00</ram:TaxTotalAmount>'


def cii(number: str = "INV-1", grand: str = "120.00", doctype: str = "", tax_totals: str = EUR_TAX) -> bytes:
    return CII.format(number=number, grand=grand, doctype=doctype, tax_totals=tax_totals).encode()


UBL = """<?xml version="1.0" encoding="UTF-8"?>
<{root} xmlns="urn:oasis:names:specification:ubl:schema:xsd:{root}-2"
 xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2"
 xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">
 <cbc:ID>CN-7</cbc:ID><cbc:IssueDate>2026-02-01</cbc:IssueDate>{type_code}
 <cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode><cbc:TaxCurrencyCode>SEK</cbc:TaxCurrencyCode>
 <cac:AccountingSupplierParty><cac:Party><cac:PartyName><cbc:Name>Trading name</cbc:Name></cac:PartyName>
  <cac:PartyTaxScheme><cbc:CompanyID>FR 11 999999998</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme>
  </cac:PartyTaxScheme></cac:Party></cac:AccountingSupplierParty>
 <cac:AccountingCustomerParty><cac:Party><cac:PartyLegalEntity><cbc:RegistrationName>Client SA</cbc:RegistrationName>
  </cac:PartyLegalEntity></cac:Party></cac:AccountingCustomerParty>
 <cac:TaxTotal><cbc:TaxAmount currencyID="SEK">230.00</cbc:TaxAmount></cac:TaxTotal>
 <cac:TaxTotal><cbc:TaxAmount currencyID="EUR">20.00</cbc:TaxAmount>
  <cac:TaxSubtotal><cbc:TaxableAmount currencyID="EUR">100.00</cbc:TaxableAmount>
   <cbc:TaxAmount currencyID="EUR">20.00</cbc:TaxAmount><cac:TaxCategory><cbc:ID>S</cbc:ID><cbc:Percent>20</cbc:Percent>
   <cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:TaxCategory></cac:TaxSubtotal></cac:TaxTotal>
 <cac:LegalMonetaryTotal><cbc:TaxExclusiveAmount currencyID="EUR">100.00</cbc:TaxExclusiveAmount>
  <cbc:TaxInclusiveAmount currencyID="EUR">120.00</cbc:TaxInclusiveAmount>
  <cbc:PayableAmount currencyID="EUR">120.00</cbc:PayableAmount></cac:LegalMonetaryTotal>
</{root}>
"""


def ubl(root: str = "CreditNote", type_code: str = "") -> bytes:
    return UBL.format(root=root, type_code=type_code).encode()


def pdf(attachments: dict[str, bytes] | None = None) -> bytes:
    """A real one-page PDF made with reportlab, with ``attachments`` embedded by pypdf."""
    out = io.BytesIO()
    canvas = Canvas(out)
    canvas.drawString(72, 720, "Invoice INV-1 - total 120.00 EUR")
    canvas.save()
    if not attachments:
        return out.getvalue()
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(out.getvalue())))
    for name, content in attachments.items():
        writer.add_attachment(name, content)
    result = io.BytesIO()
    writer.write(result)
    return result.getvalue()


def test_tax_total_in_the_invoice_currency_cii() -> None:
    both = '<ram:TaxTotalAmount currencyID="SEK">230.00</ram:TaxTotalAmount>' + EUR_TAX
    einv = read_einvoice(cii(tax_totals=both), "x.xml")
    assert einv is not None and einv.tax_total == Decimal("20.00") and einv.warnings == []


def test_ubl_credit_note_without_type_code() -> None:
    einv = read_einvoice(ubl(), "cn.xml")
    assert einv is not None
    assert (einv.type_code, einv.is_credit_note, einv.format) == (None, True, "ubl")
    assert einv.tax_total == Decimal("20.00")  # the EUR TaxTotal, not the SEK one listed first
    assert einv.vat_breakdown == [VatLine("S", Decimal("20"), Decimal("100.00"), Decimal("20.00"))]
    assert einv.seller_name == "Trading name" and einv.seller_vat_id == "FR11999999998"
    assert einv.buyer_name == "Client SA"
    assert to_fields(einv)["doc_type"] == "credit_note"


def test_negative_380_is_a_credit_note() -> None:
    einv = read_einvoice(cii(grand="-120.00"), "x.xml")
    assert einv is not None and einv.is_credit_note
    assert to_fields(einv)["amount"] == Decimal("120.00")


def test_peppol_envelope() -> None:
    wrapped = (
        b'<StandardBusinessDocument xmlns="http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader">'
        + ubl(root="Invoice", type_code="<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>").split(b"?>", 1)[1]
        + b"</StandardBusinessDocument>"
    )
    einv = read_einvoice(wrapped, "sbd.xml")
    assert einv is not None and einv.number == "CN-7" and not einv.is_credit_note


def test_embedded_in_a_pdf_under_each_known_name() -> None:
    for name in ("factur-x.xml", "zugferd-invoice.xml", "ZUGFeRD-invoice.xml", "xrechnung.xml"):
        einv = read_einvoice(pdf({name: cii()}), "invoice.pdf")
        assert einv is not None and einv.attachment == name and einv.format == "factur-x", name


def test_factur_x_preferred_over_other_names() -> None:
    einv = read_einvoice(pdf({"ZUGFeRD-invoice.xml": cii(number="OLD"), "factur-x.xml": cii(number="NEW")}))
    assert einv is not None and einv.number == "NEW" and len(einv.warnings) == 1


def test_unusual_attachment_name_is_read_only_if_it_is_an_invoice() -> None:
    einv = read_einvoice(pdf({"notes.xml": b"<notes/>", "invoice.xml": cii()}))
    assert einv is not None and einv.attachment == "invoice.xml"
    assert read_einvoice(pdf({"notes.xml": b"<notes/>", "broken.xml": b"<a"})) is None


def test_invoice_listed_only_in_the_associated_files() -> None:
    # PDF/A-3 requires the catalog's /AF entry; a few generators leave the EmbeddedFiles name tree out.
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf())))
    spec = writer.add_attachment("factur-x.xml", cii()).pdf_object
    writer.root_object[NameObject("/AF")] = ArrayObject([writer._add_object(spec)])
    del writer.root_object["/Names"]
    out = io.BytesIO()
    writer.write(out)
    einv = read_einvoice(out.getvalue(), "af.pdf")
    assert einv is not None and (einv.number, einv.attachment) == ("INV-1", "factur-x.xml")


def test_plain_pdf_is_not_an_einvoice() -> None:
    assert read_einvoice(pdf(), "scan.pdf") is None


@pytest.mark.parametrize(
    "data",
    [b"", b"hello", b"\x89PNG\r\n\x1a\n" + bytes(100), b"<html><body>CrossIndustryInvoice</body>", b"<a><b/></a>"],
    ids=["empty", "text", "png", "html", "other-xml"],
)
def test_other_bytes_are_not_einvoices(data: bytes) -> None:
    assert read_einvoice(data, "file.xml") is None


def test_corrupt_pdf_is_not_an_einvoice() -> None:
    assert read_einvoice(b"%PDF-1.7\n" + bytes(500), "x.pdf") is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (cii()[:-40], "not well-formed XML"),
        (cii(grand="NaN"), "GrandTotalAmount is not a number"),
        (cii(grand="1.234,56"), "GrandTotalAmount is not a number"),
        (cii(number=""), "lacks the mandatory BT-1 invoice number"),
    ],
    ids=["truncated", "nan", "comma", "no-number"],
)
def test_broken_einvoice_raises_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(EInvoiceError) as caught:
        read_einvoice(data, "x.xml")
    assert reason in caught.value.reason


def test_invoice_root_in_an_unknown_namespace_raises() -> None:
    data = cii().replace(b"CrossIndustryInvoice:100", b"CrossIndustryInvoice:999")
    with pytest.raises(EInvoiceError, match="not an invoice in a known format"):
        read_einvoice(data, "x.xml")


def test_broken_xml_in_a_pdf_raises() -> None:
    with pytest.raises(EInvoiceError, match="factur-x.xml embedded in the PDF is not well-formed XML"):
        read_einvoice(pdf({"factur-x.xml": b"<rsm:CrossIndustryInvoice"}))
    with pytest.raises(EInvoiceError, match="not an invoice"):
        read_einvoice(pdf({"factur-x.xml": b"<order/>"}))


# Hostile XML -----------------------------------------------------------------------------------

XXE = '<!DOCTYPE rsm:CrossIndustryInvoice [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
XXE_NET = '<!DOCTYPE rsm:CrossIndustryInvoice SYSTEM "http://127.0.0.1:9/evil.dtd">\n'
LAUGHS = (
    '<!DOCTYPE rsm:CrossIndustryInvoice [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    + "]>\n"
)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("doctype", "number"),
    [(XXE, "&xxe;"), (XXE_NET, "INV-1"), (LAUGHS, "&lol9;")],
    ids=["xxe-file", "external-dtd", "billion-laughs"],
)
def test_entities_and_dtds_are_refused(doctype: str, number: str) -> None:
    data = cii(number=number, doctype=doctype)
    for sample, name in ((data, "x.xml"), (pdf({"factur-x.xml": data}), "x.pdf")):
        started = time.monotonic()
        with pytest.raises(EInvoiceError) as caught:
            read_einvoice(sample, name)
        assert time.monotonic() - started < 5
        assert "DTD" in caught.value.reason
        assert "root:" not in caught.value.reason and "lollol" not in caught.value.reason


def test_parser_expands_nothing_even_when_asked() -> None:
    # Below the DTD refusal, the parser itself resolves no entity: the reference stays a reference.
    root = etree.fromstring(XXE.replace("rsm:CrossIndustryInvoice", "r").encode() + b"<r>&xxe;</r>", _parser())
    assert "root:" not in etree.tostring(root).decode()


def test_utf16_dtd_is_refused_too() -> None:
    data = cii(number="&xxe;", doctype=XXE).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    with pytest.raises(EInvoiceError, match="DTD"):
        read_einvoice(data.encode("utf-16"), "x.xml")


def test_passwd_content_never_appears() -> None:
    # Whatever the outcome, nothing read from the file system may come back.
    try:
        result = read_einvoice(cii(number="&xxe;", doctype=XXE), "x.xml")
    except EInvoiceError as exc:
        result = exc.reason
    assert "root:" not in repr(result)


def test_oversized_xml_is_refused() -> None:
    padding = "<!--" + "x" * (MAX_XML_BYTES + 10) + "-->"
    big = cii().replace(b"<rsm:ExchangedDocument>", padding.encode() + b"<rsm:ExchangedDocument>")
    with pytest.raises(EInvoiceError, match="larger than"):
        read_einvoice(big, "big.xml")
    with pytest.raises(EInvoiceError, match="over the limit"):
        read_einvoice(pdf({"factur-x.xml": big}), "big.pdf")
