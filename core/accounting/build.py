"""Invoice facts -> draft entry (pure).

A purchase debits the expense account(s) and deductible VAT and credits the supplier (401 + auxiliary);
a sale debits the client (411 + auxiliary) and credits revenue and collected VAT; a credit note is the same
entry reversed. One VAT line per VAT rate; one base line per rate, or one per invoice line when the
e-invoice's lines (each with its rate) add up to the rate's net (``with_items``). Reverse charge / intra-EU
purchases at 0 % add the autoliquidation pair (deductible VAT debited, VAT due credited, at the rate that would apply).
Foreign currency: every line is converted at ``rate`` (company currency per unit of the document's) and
keeps its amount in the document's currency; the counterparty line takes the sum so the entry balances.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal

from core.accounting.charts import PURCHASES, SALES, Chart
from core.accounting.ledger import ZERO, Entry, Line, as_rate, cents, rate_text
from core.i18n import N_

FLAG_RATE_ASSUMED = N_("No VAT breakdown was found: a single rate of {rate} % was assumed. Check it, then confirm.")
FLAG_NO_EXCHANGE_RATE = N_("The invoice is in {currency}: enter the exchange rate of its date, then confirm.")
FLAG_TOTALS = N_("The VAT breakdown ({parts}) does not add up to the total {total}: correct the lines.")

# Categories of the EN 16931 VAT breakdown (UNCL5305) that mean "the buyer accounts for the VAT".
REVERSE_CHARGE_CATEGORIES = frozenset({"AE", "K"})
EXEMPT_CATEGORIES = frozenset({"E", "G", "O", "Z"})


@dataclass(frozen=True)
class Item:
    """One invoice line of the e-invoice as the entry uses it: its name and net, signed like its part's base
    (a discount line is negative and goes on the other side)."""

    label: str
    net: Decimal


@dataclass(frozen=True)
class VatPart:
    rate: Decimal
    base: Decimal
    tax: Decimal
    category: str | None = None
    items: tuple[Item, ...] = ()  # the base split by invoice line; empty: one base line for the rate


@dataclass(frozen=True)
class LineFact:
    """An e-invoice line as stored: name, net and VAT (rate and UNCL5305 category), in the document's signs."""

    label: str
    net: Decimal
    rate: Decimal
    category: str | None = None


def with_items(parts: list[tuple[VatPart, Decimal]], lines: list[LineFact]) -> list[VatPart]:
    """The parts (each with its base *as signed in the document*) split by invoice line where that is exact.

    A part gets its lines when their nets add up to its base to the cent; otherwise (document-level
    allowances or charges, rounding, a line of an unknown rate) it keeps one base line, so the entry
    balances either way. Lines are matched on the rate, and on the category too when two rows of the
    breakdown share a rate (0 % exempt and 0 % reverse charge)."""
    per_rate: dict[Decimal, int] = {}
    for part, _signed in parts:
        per_rate[part.rate] = per_rate.get(part.rate, 0) + 1
    result = []
    for part, signed in parts:
        def belongs(line: LineFact, part: VatPart = part) -> bool:
            if as_rate(line.rate) != part.rate:
                return False
            return per_rate[part.rate] == 1 or (line.category or "").upper() == (part.category or "").upper()

        mine = [line for line in lines if belongs(line)]
        total = sum((cents(line.net) for line in mine), ZERO)
        if not mine or signed == 0 or total != cents(signed):
            result.append(part)
            continue
        sign = 1 if signed > 0 else -1
        result.append(replace(part, items=tuple(Item(line.label, cents(line.net) * sign) for line in mine)))
    return result


@dataclass(frozen=True)
class Defaults:
    """What a rule learned for a counterparty (``core.accounting.rules``), applied to its next drafts."""

    account: str | None = None
    vat_rate: Decimal | None = None
    journal: str | None = None


@dataclass(frozen=True)
class InvoiceFacts:
    purchase: bool  # payable: the tenant bought
    credit_note: bool
    number: str
    issue_date: date
    counterparty: str
    aux: str  # CompAuxNum of the client / supplier
    total: Decimal  # in the document's currency, positive
    currency: str
    parts: tuple[VatPart, ...]
    rate_assumed: bool = False  # parts is a single guessed rate: the reviewer confirms


def entry_for_invoice(facts: InvoiceFacts, chart: Chart, defaults: Defaults | None = None,
                      exchange_rate: Decimal | None = None, company_currency: str = "EUR") -> Entry:
    defaults = defaults or Defaults()
    foreign = facts.currency.upper() != company_currency
    rate = exchange_rate if (foreign and exchange_rate) else Decimal(1)
    flags: list[str] = []
    if facts.rate_assumed:
        flags.append(FLAG_RATE_ASSUMED.format(rate=rate_text(facts.parts[0].rate) if facts.parts else "?"))
    if foreign and not exchange_rate:
        flags.append(FLAG_NO_EXCHANGE_RATE.format(currency=facts.currency.upper()))

    # Sign convention: "normal" amounts go on the debit side of a purchase's expense lines and on the
    # credit side of a sale's revenue lines; a credit note swaps them.
    expense_side_debit = facts.purchase != facts.credit_note
    label = f"{facts.counterparty} {facts.number}"[:200]
    lines: list[Line] = []

    def add(account: str, amount: Decimal, debit_side: bool, vat_rate: Decimal | None, text: str) -> None:
        if amount == 0:
            return
        converted = cents(amount * rate)
        if converted < 0:  # a negative part (a discount line) goes on the other side
            debit_side, converted, amount = not debit_side, -converted, -amount
        debit, credit = (converted, ZERO) if debit_side else (ZERO, converted)
        signed = amount if debit_side else -amount
        lines.append(Line(account=account, debit=debit, credit=credit, label=text[:200],
                          vat_rate=None if vat_rate is None else as_rate(vat_rate),
                          amount_currency=cents(signed) if foreign else None,
                          currency=facts.currency.upper() if foreign else None))

    base_account = defaults.account or (chart.purchases if facts.purchase else chart.sales)
    for part in facts.parts:
        category = (part.category or "").upper()
        reverse = category in REVERSE_CHARGE_CATEGORIES and part.tax == 0
        account = base_account
        if not facts.purchase and (reverse or category in EXEMPT_CATEGORIES) and part.rate == 0:
            account = chart.sales_exempt if defaults.account is None else defaults.account
        if part.items:  # one line per invoice line: its name, its net
            for item in part.items:
                add(account, item.net, expense_side_debit, part.rate, item.label or label)
        else:
            add(account, part.base, expense_side_debit, part.rate, label)
        if part.tax:
            vat = chart.vat_account(collected=not facts.purchase, rate=part.rate)
            add(vat, part.tax, expense_side_debit, part.rate, label)
        if reverse and facts.purchase:
            # Autoliquidation: the buyer owes the VAT and deducts it at once (net effect zero).
            due_rate = defaults.vat_rate or chart.standard_rate
            tax = cents(part.base * due_rate / 100)
            add(chart.reverse_charge_deductible, tax, expense_side_debit, due_rate, f"{label} autoliquidation")
            add(chart.reverse_charge_due, tax, not expense_side_debit, due_rate, f"{label} autoliquidation")

    parts_total = sum((p.base + p.tax for p in facts.parts), ZERO)
    if facts.parts and cents(parts_total) != cents(facts.total):
        flags.append(FLAG_TOTALS.format(parts=cents(parts_total), total=cents(facts.total)))
    # The counterparty line closes the entry: in a foreign currency it takes the converted sum (rounding
    # stays on it); otherwise it is the invoice total and an inconsistent breakdown shows as unbalanced.
    balance = sum((line.balance for line in lines), ZERO)
    control = chart.payable if facts.purchase else chart.receivable
    signed_currency = cents(facts.total) if not expense_side_debit else -cents(facts.total)
    amount = -balance if foreign else signed_currency
    debit, credit = (amount, ZERO) if amount >= 0 else (ZERO, -amount)
    lines.insert(0, Line(account=control, debit=debit, credit=credit, label=label[:200], aux=facts.aux,
                         aux_label=facts.counterparty[:200],
                         amount_currency=signed_currency if foreign else None,
                         currency=facts.currency.upper() if foreign else None))
    journal = defaults.journal or (PURCHASES if facts.purchase else SALES)
    return Entry(journal=journal, date=facts.issue_date, label=label, piece_ref=facts.number[:100],
                 lines=tuple(lines), piece_date=facts.issue_date, flags=tuple(flags))
