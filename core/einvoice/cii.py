"""UN/CEFACT Cross Industry Invoice: Factur-X / ZUGFeRD 2.x / XRechnung CII (D16B) and ZUGFeRD 1.0.

ZUGFeRD 1.0 (``CrossIndustryDocument``) has the same structure under other namespaces and element
names, so both are read by one reader driven by a ``Dialect`` that names the differing elements.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from lxml import etree

from core.einvoice.model import AllowanceCharge, EInvoice, InvoiceLine, VatLine
from core.einvoice.values import (
    Namespaces,
    decimal_of,
    find_decimal,
    find_name,
    find_text,
    or_zero,
    parse_date,
    text_of,
)

_UNECE = "urn:un:unece:uncefact:data:standard:"


@dataclass(frozen=True)
class Dialect:
    root: str  # Clark notation {namespace}localname
    ns: Namespaces
    context: str
    header: str
    transaction: str
    agreement: str
    settlement: str
    summation: str
    line_agreement: str
    line_delivery: str
    line_settlement: str
    line_summation: str


D16B = Dialect(
    root=f"{{{_UNECE}CrossIndustryInvoice:100}}CrossIndustryInvoice",
    ns={
        "rsm": f"{_UNECE}CrossIndustryInvoice:100",
        "ram": f"{_UNECE}ReusableAggregateBusinessInformationEntity:100",
        "udt": f"{_UNECE}UnqualifiedDataType:100",
    },
    context="rsm:ExchangedDocumentContext",
    header="rsm:ExchangedDocument",
    transaction="rsm:SupplyChainTradeTransaction",
    agreement="ram:ApplicableHeaderTradeAgreement",
    settlement="ram:ApplicableHeaderTradeSettlement",
    summation="ram:SpecifiedTradeSettlementHeaderMonetarySummation",
    line_agreement="ram:SpecifiedLineTradeAgreement",
    line_delivery="ram:SpecifiedLineTradeDelivery",
    line_settlement="ram:SpecifiedLineTradeSettlement",
    line_summation="ram:SpecifiedTradeSettlementLineMonetarySummation",
)

ZUGFERD1 = Dialect(
    root="{urn:ferd:CrossIndustryDocument:invoice:1p0}CrossIndustryDocument",
    ns={
        "rsm": "urn:ferd:CrossIndustryDocument:invoice:1p0",
        "ram": f"{_UNECE}ReusableAggregateBusinessInformationEntity:12",
        "udt": f"{_UNECE}UnqualifiedDataType:15",
    },
    context="rsm:SpecifiedExchangedDocumentContext",
    header="rsm:HeaderExchangedDocument",
    transaction="rsm:SpecifiedSupplyChainTradeTransaction",
    agreement="ram:ApplicableSupplyChainTradeAgreement",
    settlement="ram:ApplicableSupplyChainTradeSettlement",
    summation="ram:SpecifiedTradeSettlementMonetarySummation",
    line_agreement="ram:SpecifiedSupplyChainTradeAgreement",
    line_delivery="ram:SpecifiedSupplyChainTradeDelivery",
    line_settlement="ram:SpecifiedSupplyChainTradeSettlement",
    line_summation="ram:SpecifiedTradeSettlementMonetarySummation",
)

DIALECTS = {D16B.root: D16B, ZUGFERD1.root: ZUGFERD1}


def read_cii(root: etree._Element, dialect: Dialect, fmt: str) -> EInvoice:
    """Everything but the credit-note decision, which the caller makes the same way for all formats."""
    ns = dialect.ns
    header = root.find(dialect.header, ns)
    trade = root.find(dialect.transaction, ns)
    agreement = None if trade is None else trade.find(dialect.agreement, ns)
    settlement = None if trade is None else trade.find(dialect.settlement, ns)
    summation = None if settlement is None else settlement.find(dialect.summation, ns)
    currency = find_text(settlement, "ram:InvoiceCurrencyCode", ns)
    seller = None if agreement is None else agreement.find("ram:SellerTradeParty", ns)
    buyer = None if agreement is None else agreement.find("ram:BuyerTradeParty", ns)
    return EInvoice(
        format=fmt,
        profile=find_text(root, f"{dialect.context}/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID", ns),
        number=find_text(header, "ram:ID", ns),
        type_code=find_text(header, "ram:TypeCode", ns),
        is_credit_note=False,
        issue_date=_date(header, "ram:IssueDateTime", ns),
        due_date=_date(settlement, "ram:SpecifiedTradePaymentTerms/ram:DueDateDateTime", ns),
        currency=currency,
        seller_name=find_name(seller, "ram:Name", ns),
        seller_vat_id=_vat_id(seller, ns),
        buyer_name=find_name(buyer, "ram:Name", ns),
        buyer_vat_id=_vat_id(buyer, ns),
        net_total=find_decimal(summation, "ram:TaxBasisTotalAmount", ns),
        tax_total=_tax_total(summation, currency, ns),
        grand_total=find_decimal(summation, "ram:GrandTotalAmount", ns),
        amount_due=find_decimal(summation, "ram:DuePayableAmount", ns),
        vat_breakdown=_vat_breakdown(settlement, ns),
        lines=[] if trade is None else _lines(trade, dialect),
        allowances_charges=_allowances_charges(settlement, ns),
        iban=_iban(settlement, ns),
        payment_reference=find_text(settlement, "ram:PaymentReference", ns),
    )


def _date(el: etree._Element | None, path: str, ns: Namespaces) -> date | None:
    node = None if el is None else el.find(f"{path}/udt:DateTimeString", ns)
    return None if node is None else parse_date(text_of(node), node.get("format"))


def _vat_id(party: etree._Element | None, ns: Namespaces) -> str | None:
    # BT-31/BT-48: the registration with scheme "VA"; "FC" is the German tax number, not a VAT id.
    value = find_text(party, "ram:SpecifiedTaxRegistration/ram:ID[@schemeID='VA']", ns)
    return "".join(value.split()).upper() if value else None


def _tax_total(summation: etree._Element | None, currency: str | None, ns: Namespaces) -> Decimal | None:
    """BT-110. A second TaxTotalAmount may give the tax in the tax currency (BT-111): take the invoice
    currency's, else the one without a currency, else the first."""
    if summation is None:
        return None
    totals = summation.findall("ram:TaxTotalAmount", ns)
    if not totals:
        return None
    for wanted in (currency, None):
        for node in totals:
            if node.get("currencyID") == wanted:
                return decimal_of(node)
    return decimal_of(totals[0])


def _vat_breakdown(settlement: etree._Element | None, ns: Namespaces) -> list[VatLine]:
    """BG-23: the settlement's own ApplicableTradeTax rows (lines and allowances have their own)."""
    rows: list[VatLine] = []
    if settlement is None:
        return rows
    for tax in settlement.findall("ram:ApplicableTradeTax", ns):
        if find_text(tax, "ram:TypeCode", ns) not in (None, "VAT"):
            continue  # EXTENDED may list other taxes; the breakdown is VAT's
        rate = find_decimal(tax, "ram:RateApplicablePercent", ns)
        if rate is None:  # ZUGFeRD 1.0 spelling
            rate = find_decimal(tax, "ram:ApplicablePercent", ns)
        rows.append(
            VatLine(
                category=find_text(tax, "ram:CategoryCode", ns),
                # Categories outside VAT (O) give no rate: it is zero, as their tax is.
                rate=or_zero(rate),
                base=or_zero(find_decimal(tax, "ram:BasisAmount", ns)),
                tax=or_zero(find_decimal(tax, "ram:CalculatedAmount", ns)),
            )
        )
    return rows


def _lines(trade: etree._Element, dialect: Dialect) -> list[InvoiceLine]:
    ns = dialect.ns
    lines: list[InvoiceLine] = []
    for item in trade.findall("ram:IncludedSupplyChainTradeLineItem", ns):
        settlement = item.find(dialect.line_settlement, ns)
        lines.append(
            InvoiceLine(
                description=find_name(item, "ram:SpecifiedTradeProduct/ram:Name", ns),
                quantity=find_decimal(item, f"{dialect.line_delivery}/ram:BilledQuantity", ns),
                unit_price=find_decimal(
                    item, f"{dialect.line_agreement}/ram:NetPriceProductTradePrice/ram:ChargeAmount", ns
                ),
                net_amount=find_decimal(settlement, f"{dialect.line_summation}/ram:LineTotalAmount", ns),
                vat_rate=_line_rate(settlement, ns),
                vat_category=find_text(settlement, "ram:ApplicableTradeTax/ram:CategoryCode", ns),
            )
        )
    return lines


def _allowances_charges(settlement: etree._Element | None, ns: Namespaces) -> list[AllowanceCharge]:
    """BG-20 / BG-21: the settlement's own allowances and charges (a line's sit in its line total)."""
    found: list[AllowanceCharge] = []
    if settlement is None:
        return found
    for node in settlement.findall("ram:SpecifiedTradeAllowanceCharge", ns):
        amount = find_decimal(node, "ram:ActualAmount", ns)
        if amount is None:
            continue
        tax = node.find("ram:CategoryTradeTax", ns)
        rate = find_decimal(tax, "ram:RateApplicablePercent", ns) if tax is not None else None
        if rate is None and tax is not None:
            rate = find_decimal(tax, "ram:ApplicablePercent", ns)  # ZUGFeRD 1.0
        category = find_text(tax, "ram:CategoryCode", ns)
        found.append(AllowanceCharge(
            charge=(find_text(node, "ram:ChargeIndicator/udt:Indicator", ns) or "").lower() == "true",
            amount=amount, reason=find_name(node, "ram:Reason", ns),
            vat_rate=Decimal("0") if rate is None and category else rate, vat_category=category))
    return found


def _line_rate(settlement: etree._Element | None, ns: Namespaces) -> Decimal | None:
    """BT-152. ZUGFeRD 1.0 spells it ApplicablePercent; a category without a rate (O) has none: zero when
    the line names its category, as the breakdown reads it."""
    if settlement is None:
        return None
    tax = settlement.find("ram:ApplicableTradeTax", ns)
    if tax is None:
        return None
    rate = find_decimal(tax, "ram:RateApplicablePercent", ns)
    if rate is None:
        rate = find_decimal(tax, "ram:ApplicablePercent", ns)
    if rate is None and find_text(tax, "ram:CategoryCode", ns):
        return Decimal("0")
    return rate


def _iban(settlement: etree._Element | None, ns: Namespaces) -> str | None:
    """BT-84: the payee's account. The payer's (direct debit, BT-91) sits next to it and is not it."""
    path = "ram:SpecifiedTradeSettlementPaymentMeans/ram:PayeePartyCreditorFinancialAccount/ram:IBANID"
    value = find_text(settlement, path, ns)
    if value is None:
        path = path.replace("ram:IBANID", "ram:ProprietaryID")
        value = find_text(settlement, path, ns)
    return "".join(value.split()).upper() if value else None
