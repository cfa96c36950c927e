"""Entries as stored: drafted from validated invoices (idempotent), edited until posted, posted (numbered,
ValidDate, frozen), reversed. Every check goes through ``ledger.problems``; nothing is half-written (the
caller's transaction holds the whole change)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.accounting import books as booksvc
from core.accounting import fiscal as fiscalsvc
from core.accounting import rules
from core.accounting.build import Defaults, InvoiceFacts, LineFact, VatPart, entry_for_invoice, with_items
from core.accounting.charts import Chart
from core.accounting.ledger import ZERO, Books, Line, as_rate, cents, require_valid
from core.accounting.models import EntryStatus, FiscalYear, JournalEntry
from core.accounting.rows import aux_code, to_value, write_row
from core.accounting.rules import defaults_for, defaults_for_many, learn
from core.accounting.settlements import letter_invoice
from core.errors import NotFound, ServiceError, ValidationFailed
from core.i18n import N_
from core.models import Direction, DocType, Document, Invoice, utcnow

POSTED_FROZEN = N_("A posted entry cannot be changed: record a reversal, then a new entry.")
NOT_POSTED = N_("Only a posted entry can be reversed.")
BAD_LINE = N_("Line {line}: {problem}")
BAD_DATE = N_("A date is written YYYY-MM-DD.")
BAD_EXCHANGE_RATE = N_("The exchange rate is a positive number (company currency per unit of the invoice's).")
BAD_AMOUNT_TEXT = N_("amounts are numbers with at most two decimals")
BAD_JOURNAL = N_("Journal {journal} does not exist.")
MAX_LINES = 500
COMPANY_CURRENCY = "EUR"


# Facts ----------------------------------------------------------------------------------------



def _decimal(value: Any) -> Decimal | None:
    try:
        result = Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return None
    return result if result.is_finite() else None


def _snap(rate: Decimal, chart: Chart) -> Decimal | None:
    """A computed rate (tax / net) snapped to the chart's known rate it rounds to; None if none is close."""
    for known in chart.rates:
        if abs(rate - known) <= Decimal("0.05"):
            return known
    return None


def _line_facts(details: dict[str, Any]) -> list[LineFact]:
    """The e-invoice's lines as stored, each with its VAT rate, then its document-level allowances (negative)
    and charges; none when one lacks its amount or rate (documents read before lines kept their rate) or when
    only the first lines were kept: the entry then goes per rate."""
    stored = details.get("lines") or []
    extras = details.get("allowances_charges") or []
    if not isinstance(stored, list) or not isinstance(extras, list) or (details.get("lines_total") or 0) > len(stored):
        return []
    facts = []
    for line in [*stored, *extras]:
        if not isinstance(line, dict):
            return []
        net, rate = _decimal(line.get("net_amount", line.get("amount"))), _decimal(line.get("vat_rate"))
        if net is None or rate is None:
            return []
        label = " ".join(str(line.get("description", line.get("reason")) or "").split())
        if "charge" in line:  # a document-level allowance or charge: its reason, else what it is
            net, label = (net, label or "Frais") if line["charge"] is True else (-net, label or "Remise")
        category = line.get("vat_category")
        category = category if isinstance(category, str) else None
        facts.append(LineFact(label=label, net=net, rate=rate, category=category))
    return facts


def invoice_facts(invoice: Invoice, document: Document | None, chart: Chart,
                  defaults: Defaults | None = None) -> InvoiceFacts:
    """The VAT parts of an invoice: the e-invoice's breakdown, else the extracted net/tax, else one assumed rate."""
    total = abs(cents(invoice.amount or ZERO))
    parts: list[VatPart] = []
    assumed = False
    details = (document.extraction_details or {}) if document is not None else {}
    signed: list[tuple[VatPart, Decimal]] = []
    for row in details.get("vat_breakdown") or []:
        rate, base, tax = _decimal(row.get("rate")), _decimal(row.get("base")), _decimal(row.get("tax"))
        if rate is None or base is None or tax is None:
            signed = []
            break
        signed.append((VatPart(rate=rate.quantize(Decimal("0.01")), base=abs(base), tax=abs(tax),
                               category=row.get("category")), base))
    parts = with_items(signed, _line_facts(details)) if signed else []
    if not parts and invoice.net_amount is not None and invoice.tax_amount is not None and invoice.net_amount:
        computed = invoice.tax_amount * 100 / invoice.net_amount
        known = _snap(computed, chart)
        if known is not None:
            parts = [VatPart(rate=known, base=invoice.net_amount, tax=invoice.tax_amount)]
    if not parts:
        # The counterparty's learned rate, else the standard rate, flagged for the reviewer to confirm.
        learned = defaults.vat_rate if defaults and defaults.vat_rate is not None else None
        rate = as_rate(learned if learned is not None else chart.standard_rate)
        base = cents(total * 100 / (100 + rate))
        parts, assumed = [VatPart(rate=rate, base=base, tax=total - base)], learned is None
    return InvoiceFacts(
        purchase=invoice.direction == Direction.PAYABLE.value,
        credit_note=invoice.doc_type == DocType.CREDIT_NOTE.value,
        number=invoice.number or "",
        issue_date=invoice.issue_date or date.today(),
        counterparty=(invoice.client.name if invoice.client else invoice.issuer) or "",
        aux=aux_code(invoice),
        total=total,
        currency=(invoice.currency or COMPANY_CURRENCY).upper(),
        parts=tuple(parts),
        rate_assumed=assumed,
    )


# Drafting -------------------------------------------------------------------------------------


def draft_for_invoice(session: Session, invoice: Invoice, books: Books | None = None,
                      chart: Chart | None = None) -> JournalEntry:
    """The draft entry of a validated invoice or credit note; the existing one when already drafted."""
    return draft_for_invoices(session, invoice.tenant_id, [invoice], books, chart)[0]


def draft_for_invoices(session: Session, tenant_id: int, invoices: Sequence[Invoice], books: Books | None = None,
                       chart: Chart | None = None) -> list[JournalEntry]:
    """Draft entries for many invoices of one tenant at once (a few queries per batch, not per invoice):
    what the hook does for one, and what a bulk import or the benchmark does for thousands. Idempotent."""

    invoices = [inv for inv in invoices if inv.tenant_id == tenant_id]
    if not invoices:
        return []
    sources = {f"invoice:{inv.id}": inv for inv in invoices}
    existing = {row.source: row for row in session.scalars(select(JournalEntry).where(
        JournalEntry.tenant_id == tenant_id, JournalEntry.source.in_(list(sources))))}
    books = books or booksvc.load_books(session, tenant_id)
    chart = chart or booksvc.chart_of(session, tenant_id)
    defaults = defaults_for_many(session, tenant_id, {(inv.client_id, inv.direction) for inv in invoices})
    document_ids = [inv.document_id for inv in invoices if inv.document_id]
    documents = {doc.id: doc for doc in session.scalars(select(Document).where(
        Document.tenant_id == tenant_id, Document.id.in_(document_ids)))} if document_ids else {}
    result = []
    for source, invoice in sources.items():
        row = existing.get(source)
        if row is None:
            row = JournalEntry(tenant_id=tenant_id, source=source, invoice_id=invoice.id,
                               client_id=invoice.client_id, direction=invoice.direction, journal="",
                               entry_date=invoice.issue_date or date.today())
            _build(row, invoice, documents.get(invoice.document_id or 0), books, chart,
                   defaults.get((invoice.client_id, invoice.direction)))
            session.add(row)
        result.append(row)
    session.flush()
    return result


def _build(row: JournalEntry, invoice: Invoice, document: Document | None, books: Books, chart: Chart,
           defaults: Defaults | None) -> None:
    facts = invoice_facts(invoice, document, chart, defaults)
    foreign = facts.currency != COMPANY_CURRENCY
    rate = _decimal(row.exchange_rate) if row.exchange_rate else None
    entry = entry_for_invoice(facts, chart, defaults, exchange_rate=rate, company_currency=COMPANY_CURRENCY)
    row.currency = facts.currency if foreign else None
    write_row(row, entry, books)


def _rebuild(session: Session, row: JournalEntry, invoice: Invoice, books: Books | None = None,
             chart: Chart | None = None) -> None:

    books = books or booksvc.load_books(session, invoice.tenant_id)
    chart = chart or booksvc.chart_of(session, invoice.tenant_id)
    defaults = defaults_for(session, invoice.tenant_id, invoice.client_id, invoice.direction)
    document = session.get(Document, invoice.document_id) if invoice.document_id else None
    _build(row, invoice, document, books, chart, defaults)


def redraft(session: Session, row: JournalEntry) -> None:
    """Build a not-yet-posted, not hand-edited draft again (a rule was learned, a rate changed)."""
    invoice = session.get(Invoice, row.invoice_id) if row.invoice_id else None
    if invoice is None or row.status == EntryStatus.POSTED.value:
        return
    _rebuild(session, row, invoice)


# Reading --------------------------------------------------------------------------------------


def get_entry(session: Session, tenant_id: int, entry_id: int) -> JournalEntry:
    row = session.get(JournalEntry, entry_id)
    if row is None or row.tenant_id != tenant_id:
        raise NotFound("no such entry")
    return row


def entries_of_invoice(session: Session, tenant_id: int, invoice_id: int) -> list[JournalEntry]:
    """The invoice's own entry and its settlements and reversals, oldest first (the invoice page links them)."""
    return list(session.scalars(select(JournalEntry).where(
        JournalEntry.tenant_id == tenant_id, JournalEntry.invoice_id == invoice_id,
    ).order_by(JournalEntry.entry_date, JournalEntry.id)))


# Editing --------------------------------------------------------------------------------------


def _parse_date(value: Any) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed({"entry_date": BAD_DATE}) from None


def _parse_amount(value: Any, index: int) -> Decimal:
    if value in (None, ""):
        return ZERO
    amount = _decimal(str(value).replace(",", ".").strip())
    if amount is None or amount != cents(amount) or amount < 0 or amount >= Decimal("1e15"):
        raise ValidationFailed({"lines": BAD_LINE.format(line=index, problem=BAD_AMOUNT_TEXT)})
    return cents(amount)


def _parse_lines(raw: Any) -> tuple[Line, ...]:
    if not isinstance(raw, list) or not 2 <= len(raw) <= MAX_LINES:
        raise ValidationFailed({"lines": N_("An entry has between 2 and 500 lines.")})
    lines = []
    for index, item in enumerate(raw, start=1):
        if not isinstance(item, dict):
            raise ValidationFailed({"lines": BAD_LINE.format(line=index, problem=BAD_AMOUNT_TEXT)})
        account = str(item.get("account") or "").strip().upper()[:20]
        currency = str(item.get("currency") or "").strip().upper()[:3] or None
        amount_currency = _decimal(item["amount_currency"]) if item.get("amount_currency") not in (None, "") else None
        lines.append(Line(
            account=account, debit=_parse_amount(item.get("debit"), index),
            credit=_parse_amount(item.get("credit"), index), label=str(item.get("label") or "")[:200],
            aux=(str(item.get("aux") or "").strip()[:20] or None),
            aux_label=(str(item.get("aux_label") or "").strip()[:200] or None),
            vat_rate=booksvc.parse_rate(item.get("vat_rate")),
            amount_currency=cents(amount_currency) if amount_currency is not None else None, currency=currency))
    return tuple(lines)


def update_entry(session: Session, tenant_id: int, entry_id: int, data: dict[str, Any]) -> JournalEntry:
    """A person's changes to a draft: journal, date, label, exchange rate, lines; ``confirm`` clears the flags.

    Refused on a posted entry. A new exchange rate rebuilds the lines from the invoice at that rate."""
    row = get_entry(session, tenant_id, entry_id)
    if row.status == EntryStatus.POSTED.value:
        raise ServiceError(POSTED_FROZEN)
    books = booksvc.load_books(session, tenant_id)
    if data.get("exchange_rate") not in (None, ""):
        rate = _decimal(str(data["exchange_rate"]).replace(",", "."))
        if rate is None or rate <= 0 or rate > Decimal("1e6"):
            raise ValidationFailed({"exchange_rate": BAD_EXCHANGE_RATE})
        row.exchange_rate = format(rate.normalize(), "f")
        invoice = session.get(Invoice, row.invoice_id) if row.invoice_id else None
        if invoice is not None:
            _rebuild(session, row, invoice, books)
    entry = to_value(row)
    if "journal" in data:
        journal = str(data["journal"] or "").strip().upper()
        if journal not in books.journals:
            raise ValidationFailed({"journal": BAD_JOURNAL.format(journal=journal[:8])})
        entry = replace(entry, journal=journal)
    if "entry_date" in data:
        entry = replace(entry, date=_parse_date(data["entry_date"]))
    if "label" in data:
        entry = replace(entry, label=" ".join(str(data["label"] or "").split())[:200])
    if "lines" in data:
        entry = replace(entry, lines=_parse_lines(data["lines"]))
        row.edited = True
    if data.get("confirm"):
        entry = replace(entry, flags=())
    write_row(row, entry, books)
    session.flush()
    return row


# Posting --------------------------------------------------------------------------------------


def _fiscal_year(session: Session, tenant_id: int, year: int) -> FiscalYear:
    """The year's numbering row, locked until commit: postings of the tenant in that year are serialised,
    so EcritureNum stays gapless and in posting order."""
    fiscal = session.scalars(select(FiscalYear).where(
        FiscalYear.tenant_id == tenant_id, FiscalYear.year == year).with_for_update()).first()
    if fiscal is None:
        try:
            with session.begin_nested():
                fiscal = FiscalYear(tenant_id=tenant_id, year=year, last_number=0)
                session.add(fiscal)
        except IntegrityError:  # another posting created it first: take its (locked) row
            fiscal = session.scalars(select(FiscalYear).where(
                FiscalYear.tenant_id == tenant_id, FiscalYear.year == year).with_for_update()).one()
    return fiscal


def post_entry(session: Session, tenant_id: int, entry_id: int, user_id: int | None, *,
               remember: bool = True, today: date | None = None, books: Books | None = None) -> JournalEntry:
    """Post: every invariant checked (ValidationFailed says what to fix), numbered, dated, frozen."""
    return post_entries(session, tenant_id, [entry_id], user_id, remember=remember, today=today, books=books)[0]


def post_entries(session: Session, tenant_id: int, entry_ids: Sequence[int], user_id: int | None, *,
                 remember: bool = True, today: date | None = None, books: Books | None = None) -> list[JournalEntry]:
    """Post several entries, in the given order; all or nothing (the first refusal stops, nothing is kept
    once the caller rolls back)."""
    rows = [get_entry(session, tenant_id, entry_id) for entry_id in entry_ids]
    books = books or booksvc.load_books(session, tenant_id)
    years: dict[int, FiscalYear] = {}
    for row in rows:
        if row.status == EntryStatus.POSTED.value:
            continue  # posting twice is the same posting
        entry = to_value(row)
        require_valid(entry, books)
        year = books.calendar.year_of(entry.date)  # the fiscal year: its numbering restarts at 1
        if year not in years:
            years[year] = _fiscal_year(session, tenant_id, year)
        years[year].last_number += 1
        row.fiscal_year, row.number = year, years[year].last_number
        row.valid_date, row.posted_at, row.posted_by_id = today or date.today(), utcnow(), user_id
        row.status, row.issues = EntryStatus.POSTED.value, []
        for line in row.lines:  # CompteLib as it was when posted
            info = books.accounts.get(line.account)
            line.account_label = info.label if info else line.account_label
    session.flush()
    # A settled invoice letters its lines with its payments' once both sides are posted.
    for invoice_id in sorted({row.invoice_id for row in rows if row.invoice_id is not None}):
        letter_invoice(session, tenant_id, invoice_id, today or date.today())
    if remember:
        for row in rows:
            if row.client_id is not None and row.direction and learn(session, row):
                for draft in rules.waiting_drafts(session, row):  # what was learned applies to them too
                    redraft(session, draft)
                session.flush()
    return rows


def reverse_entry(session: Session, tenant_id: int, entry_id: int, on: date | None = None) -> JournalEntry:
    """The draft that cancels a posted entry (to post in turn); idempotent."""
    row = get_entry(session, tenant_id, entry_id)
    if row.status != EntryStatus.POSTED.value:
        raise ServiceError(NOT_POSTED)
    source = f"reversal:{row.id}"
    existing = session.scalars(select(JournalEntry).where(
        JournalEntry.tenant_id == tenant_id, JournalEntry.source == source)).first()
    if existing is not None:
        return existing
    books = booksvc.load_books(session, tenant_id)
    value = to_value(row).reversed(on or date.today(), f"Extourne {row.label}"[:200])
    reversal = JournalEntry(tenant_id=tenant_id, source=source, client_id=row.client_id, direction=row.direction,
                            journal=row.journal, entry_date=value.date, currency=row.currency,
                            exchange_rate=row.exchange_rate, reversal_of_id=row.id, edited=True)
    write_row(reversal, value, books)
    session.add(reversal)
    session.flush()
    return reversal


OPEN_DRAFTS = N_("{count} entries of the fiscal year {year} ({start} to {end}) are not posted yet: post them (or "
                 "delete their invoices) before closing the year.")
BAD_YEAR = N_("A fiscal year is written with four digits, e.g. 2026.")


def close_year(session: Session, tenant_id: int, year: Any) -> FiscalYear:
    """Close a fiscal year: nothing more can be posted into it (refused while some of its entries wait)."""
    if not isinstance(year, int) or isinstance(year, bool) or not 1900 <= year <= 2999:
        raise ValidationFailed({"year": BAD_YEAR})
    calendar = fiscalsvc.calendar_of(session, tenant_id)
    start, end = calendar.opening(year), calendar.closing(year)
    waiting = session.scalar(select(func.count()).select_from(JournalEntry).where(
        JournalEntry.tenant_id == tenant_id, JournalEntry.status != EntryStatus.POSTED.value,
        JournalEntry.entry_date >= start, JournalEntry.entry_date <= end)) or 0
    if waiting:
        raise ValidationFailed({"year": OPEN_DRAFTS.format(count=waiting, year=year, start=start.isoformat(),
                                                           end=end.isoformat())})
    fiscal = _fiscal_year(session, tenant_id, year)
    fiscal.closed = True
    session.flush()
    return fiscal


def on_invoice_validated(session: Session, invoice: Invoice) -> None:
    """The hook of ``core.documents.review``: the draft entry, in the validation's transaction."""
    draft_for_invoice(session, invoice)


POSTED_INVOICE = N_("The journal entry of this invoice is posted: record its reversal in the accounting instead.")


def on_invoice_deleted(session: Session, tenant_id: int, invoice_id: int) -> None:
    """Before an invoice is deleted: refused when its entry is posted; its draft is deleted with it."""
    row = session.scalars(select(JournalEntry).where(
        JournalEntry.tenant_id == tenant_id, JournalEntry.source == f"invoice:{invoice_id}")).first()
    if row is None:
        return
    if row.status == EntryStatus.POSTED.value:
        raise ServiceError(POSTED_INVOICE)
    session.delete(row)
    session.flush()
