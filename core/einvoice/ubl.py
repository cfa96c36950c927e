"""OASIS UBL 2.1 ``Invoice`` and ``CreditNote`` (EN 16931 / Peppol / XRechnung UBL, or plain UBL 2.1)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from lxml import etree

from core.einvoice.model import AllowanceCharge, EInvoice, InvoiceLine, VatLine
from core.einvoice.values import Namespaces, decimal_of, find_decimal, find_name, find_text, or_zero, parse_date

_UBL = "urn:oasis:names:specification:ubl:schema:xsd:"
INVOICE_ROOT = f"{{{_UBL}Invoice-2}}Invoice"
CREDIT_NOTE_ROOT = f"{{{_UBL}CreditNote-2}}CreditNote"
NS: Namespaces = {
    "cac": f"{_UBL}CommonAggregateComponents-2",
    "cbc": f"{_UBL}CommonBasicComponents-2",
}


def read_ubl(root: etree._Element, fmt: str) -> EInvoice:
    """Everything but the credit-note decision, which the caller makes the same way for all formats."""
    credit = root.tag == CREDIT_NOTE_ROOT
    currency = find_text(root, "cbc:DocumentCurrencyCode", NS)
    seller = root.find("cac:AccountingSupplierParty/cac:Party", NS)
    buyer = root.find("cac:AccountingCustomerParty/cac:Party", NS)
    totals = root.find("cac:LegalMonetaryTotal", NS)
    tax_total = _tax_total_element(root, currency)
    return EInvoice(
        format=fmt,
        profile=find_text(root, "cbc:CustomizationID", NS),
        number=find_text(root, "cbc:ID", NS),
        type_code=find_text(root, "cbc:CreditNoteTypeCode" if credit else "cbc:InvoiceTypeCode", NS),
        is_credit_note=False,
        issue_date=parse_date(find_text(root, "cbc:IssueDate", NS)),
        due_date=_due_date(root),
        currency=currency,
        seller_name=_party_name(seller),
        seller_vat_id=_vat_id(seller),
        buyer_name=_party_name(buyer),
        buyer_vat_id=_vat_id(buyer),
        net_total=find_decimal(totals, "cbc:TaxExclusiveAmount", NS),
        tax_total=find_decimal(tax_total, "cbc:TaxAmount", NS),
        grand_total=find_decimal(totals, "cbc:TaxInclusiveAmount", NS),
        amount_due=find_decimal(totals, "cbc:PayableAmount", NS),
        vat_breakdown=_vat_breakdown(tax_total),
        lines=_lines(root, credit),
        allowances_charges=_allowances_charges(root),
        iban=_iban(root),
        payment_reference=find_text(root, "cac:PaymentMeans/cbc:PaymentID", NS),
    )


def _due_date(root: etree._Element) -> date | None:
    # BT-9: cbc:DueDate on an Invoice; a CreditNote (and UBL before EN 16931) puts it in PaymentMeans.
    for path in ("cbc:DueDate", "cac:PaymentMeans/cbc:PaymentDueDate", "cac:PaymentTerms/cbc:PaymentDueDate"):
        found = parse_date(find_text(root, path, NS))
        if found:
            return found
    return None


def _party_name(party: etree._Element | None) -> str | None:
    # BT-27/BT-44 is the legal (registration) name; PartyName is the trading name (BT-28/BT-45).
    return find_name(party, "cac:PartyLegalEntity/cbc:RegistrationName", NS) or find_name(
        party, "cac:PartyName/cbc:Name", NS
    )


def _vat_id(party: etree._Element | None) -> str | None:
    if party is None:
        return None
    for scheme in party.findall("cac:PartyTaxScheme", NS):
        if find_text(scheme, "cac:TaxScheme/cbc:ID", NS) in (None, "VAT"):
            value = find_text(scheme, "cbc:CompanyID", NS)
            if value:
                return "".join(value.split()).upper()
    return None


def _tax_total_element(root: etree._Element, currency: str | None) -> etree._Element | None:
    """The document-level TaxTotal in the invoice currency; a second one may give the tax in the tax
    currency (BT-111) and carries no breakdown."""
    totals = root.findall("cac:TaxTotal", NS)
    for total in totals:
        amount = total.find("cbc:TaxAmount", NS)
        if amount is not None and amount.get("currencyID") in (currency, None):
            return total
    return totals[0] if totals else None


def _vat_breakdown(tax_total: etree._Element | None) -> list[VatLine]:
    rows: list[VatLine] = []
    if tax_total is None:
        return rows
    for sub in tax_total.findall("cac:TaxSubtotal", NS):
        rate = find_decimal(sub, "cac:TaxCategory/cbc:Percent", NS)
        if rate is None:
            rate = find_decimal(sub, "cbc:Percent", NS)  # UBL allows the rate on the subtotal too
        rows.append(
            VatLine(
                category=find_text(sub, "cac:TaxCategory/cbc:ID", NS),
                rate=or_zero(rate),  # category O has no rate
                base=or_zero(decimal_of(sub.find("cbc:TaxableAmount", NS))),
                tax=or_zero(decimal_of(sub.find("cbc:TaxAmount", NS))),
            )
        )
    return rows


def _lines(root: etree._Element, credit: bool) -> list[InvoiceLine]:
    line_tag, quantity_tag = (
        ("cac:CreditNoteLine", "cbc:CreditedQuantity")
        if credit
        else (
            "cac:InvoiceLine",
            "cbc:InvoicedQuantity",
        )
    )
    return [
        InvoiceLine(
            description=find_name(line, "cac:Item/cbc:Name", NS) or find_name(line, "cac:Item/cbc:Description", NS),
            quantity=find_decimal(line, quantity_tag, NS),
            unit_price=find_decimal(line, "cac:Price/cbc:PriceAmount", NS),
            net_amount=find_decimal(line, "cbc:LineExtensionAmount", NS),
            vat_rate=_line_rate(line),
            vat_category=find_text(line, "cac:Item/cac:ClassifiedTaxCategory/cbc:ID", NS),
        )
        for line in root.findall(line_tag, NS)
    ]


def _allowances_charges(root: etree._Element) -> list[AllowanceCharge]:
    """BG-20 / BG-21: the document's own AllowanceCharge elements (a line's sit in its line amount)."""
    found: list[AllowanceCharge] = []
    for node in root.findall("cac:AllowanceCharge", NS):
        amount = find_decimal(node, "cbc:Amount", NS)
        if amount is None:
            continue
        rate = find_decimal(node, "cac:TaxCategory/cbc:Percent", NS)
        category = find_text(node, "cac:TaxCategory/cbc:ID", NS)
        found.append(AllowanceCharge(
            charge=(find_text(node, "cbc:ChargeIndicator", NS) or "").lower() == "true", amount=amount,
            reason=find_name(node, "cbc:AllowanceChargeReason", NS),
            vat_rate=Decimal("0") if rate is None and category else rate, vat_category=category))
    return found


def _line_rate(line: etree._Element) -> Decimal | None:
    """BT-152 (ClassifiedTaxCategory); category O has no rate: zero when the category is named."""
    category = line.find("cac:Item/cac:ClassifiedTaxCategory", NS)
    if category is None:
        return None
    rate = find_decimal(category, "cbc:Percent", NS)
    if rate is None and find_text(category, "cbc:ID", NS):
        return Decimal("0")
    return rate


def _iban(root: etree._Element) -> str | None:
    # BT-84: the payee's account (a direct debit's payer account sits in PaymentMandate instead).
    value = find_text(root, "cac:PaymentMeans/cac:PayeeFinancialAccount/cbc:ID", NS)
    return "".join(value.split()).upper() if value else None
