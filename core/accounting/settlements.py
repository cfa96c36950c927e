"""Payments matched by bank reconciliation become settlement entries in the bank journal (512 against the
client's 411 or the supplier's 401 auxiliary account), and an invoice settled in full gets its lines lettered
(EcritureLet / DateLet) with its settlements.

Reconciliation applies matches in bulk (``core.banking.reconciliation``), so settlements are synchronised
rather than hooked: ``sync_settlements`` drafts one entry per applied match that has none, and drops the
draft of a match undone since (a posted one stays and is corrected by its reversal). Safe to run any time.
Each settlement goes to the journal and 512xxx account of its transaction's bank account
(``bankjournals``).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import String, cast, exists, func, literal, select
from sqlalchemy.orm import Session

from core.accounting import books as booksvc
from core.accounting.bankjournals import BankBook, ensure_bank_journals
from core.accounting.charts import BANK, Chart
from core.accounting.ledger import ZERO, Entry, Line
from core.accounting.models import EntryLine, EntryStatus, JournalEntry
from core.accounting.rows import aux_code, to_value, write_row
from core.models import BankTransaction, Direction, DocType, Invoice, Match, MatchState

LETTERS = 4  # fixed width, so that the greatest code is also the last one given: AAAA, AAAB, ...


def sync_settlements(session: Session, tenant_id: int) -> int:
    """Draft the settlement entries of applied matches; drop the drafts of undone ones. Returns how many
    entries were drafted or dropped (0: nothing to commit). Only the differences are read (two anti-joins
    on the entries' unique (tenant, source)), so calling it before every listing stays cheap."""
    source_of_match = literal("match:") + cast(Match.id, String)
    has_entry = exists().where(JournalEntry.tenant_id == tenant_id, JournalEntry.source == source_of_match)
    missing = session.execute(
        select(Match, Invoice, BankTransaction)
        .join(Invoice, Invoice.id == Match.invoice_id)
        .join(BankTransaction, BankTransaction.id == Match.transaction_id)
        .where(Match.tenant_id == tenant_id, Match.state == MatchState.APPLIED.value, ~has_entry)
    ).all()
    still_applied = exists().where(Match.tenant_id == tenant_id, Match.state == MatchState.APPLIED.value,
                                   JournalEntry.source == source_of_match)
    stale = list(session.scalars(select(JournalEntry).where(
        JournalEntry.tenant_id == tenant_id, JournalEntry.source.like("match:%"),
        JournalEntry.status != EntryStatus.POSTED.value, ~still_applied)))
    for row in stale:
        session.delete(row)
    moved = _rehome_legacy_drafts(session, tenant_id, source_of_match)
    if missing:
        banks = ensure_bank_journals(session, tenant_id, {tx.account_id for _match, _invoice, tx in missing})
        books = booksvc.load_books(session, tenant_id)
        chart = booksvc.chart_of(session, tenant_id)
        for match, invoice, tx in missing:
            bank = banks[tx.account_id]
            row = JournalEntry(tenant_id=tenant_id, source=f"match:{match.id}", invoice_id=invoice.id,
                               client_id=invoice.client_id, direction=invoice.direction, journal=bank.journal,
                               entry_date=tx.booking_date, edited=True)  # rules never rewrite a settlement
            write_row(row, settlement_entry(match, invoice, tx, chart, bank), books)
            session.add(row)
    session.flush()
    return len(missing) + len(stale) + moved


def _rehome_legacy_drafts(session: Session, tenant_id: int, source_of_match: Any) -> int:
    """Settlement drafts made when every bank movement went to BQ / 512000 move to their bank account's
    journal and account (posted ones stay where they were posted)."""
    legacy = session.execute(
        select(JournalEntry, BankTransaction.account_id)
        .join(Match, source_of_match == JournalEntry.source)
        .join(BankTransaction, BankTransaction.id == Match.transaction_id)
        .where(JournalEntry.tenant_id == tenant_id, JournalEntry.journal == BANK,
               JournalEntry.source.like("match:%"), JournalEntry.status != EntryStatus.POSTED.value,
               Match.tenant_id == tenant_id)
    ).all()
    if not legacy:
        return 0
    banks = ensure_bank_journals(session, tenant_id, {account_id for _row, account_id in legacy})
    books = booksvc.load_books(session, tenant_id)
    old_account = booksvc.chart_of(session, tenant_id).bank
    for row, account_id in legacy:
        book = banks[account_id]
        entry = to_value(row)
        lines = tuple(replace(ln, account=book.account) if ln.account == old_account else ln for ln in entry.lines)
        write_row(row, replace(entry, journal=book.journal, lines=lines), books)
    return len(legacy)


def settlement_entry(match: Match, invoice: Invoice, tx: BankTransaction, chart: Chart, book: BankBook) -> Entry:
    """512xxx against 411/401 for the amount the invoice is credited with, in the bank account's journal;
    what was not received in cash (``write_off``: fees deducted, a discount) goes to bank fees; what a supplier
    was paid less than its invoice is a gain on payables (758 / sonstige Erträge). A refund (credit note) is the
    other way."""
    purchase = invoice.direction == Direction.PAYABLE.value
    refund = invoice.doc_type == DocType.CREDIT_NOTE.value
    amount = abs(match.amount)
    write_off = abs(match.write_off or ZERO)
    cash = amount - write_off
    label = f"{invoice.number} {tx.counterparty or ''}".strip()[:200]
    control, bank, fees = (chart.payable if purchase else chart.receivable), book.account, chart.bank_fees
    gain = (chart.payables_gain or fees) if purchase and not refund else fees
    aux, aux_label = aux_code(invoice), (invoice.client.name if invoice.client else invoice.issuer) or ""
    money_in = purchase == refund  # a client pays, or a supplier refunds
    lines = []
    if money_in:
        lines.append(Line(account=bank, debit=cash, label=label))
        if write_off:
            lines.append(Line(account=fees, debit=write_off, label=label))
        lines.append(Line(account=control, credit=amount, label=label, aux=aux, aux_label=aux_label[:200]))
    else:
        lines.append(Line(account=control, debit=amount, label=label, aux=aux, aux_label=aux_label[:200]))
        lines.append(Line(account=bank, credit=cash, label=label))
        if write_off:
            lines.append(Line(account=gain, credit=write_off, label=label))
    return Entry(journal=book.journal, date=tx.booking_date, label=label, piece_ref=(invoice.number or "")[:100],
                 lines=tuple(lines), piece_date=tx.booking_date)


def _next_letter(session: Session, tenant_id: int) -> str:
    last = session.scalar(select(func.max(EntryLine.letter)).where(
        EntryLine.tenant_id == tenant_id, func.length(EntryLine.letter) == LETTERS))
    number = 0
    for char in last or "":
        number = number * 26 + (ord(char) - ord("A"))
    number = number + 1 if last else 0
    code = ""
    for _ in range(LETTERS):
        number, rest = divmod(number, 26)
        code = chr(ord("A") + rest) + code
    return code


def letter_invoice(session: Session, tenant_id: int, invoice_id: int, on: date) -> str | None:
    """Letter the counterparty lines of an invoice's posted entry and its posted settlements when they
    balance (the invoice is settled in full); returns the letter, or None while something is open."""
    entries = list(session.scalars(select(JournalEntry).where(
        JournalEntry.tenant_id == tenant_id, JournalEntry.invoice_id == invoice_id,
        JournalEntry.status == EntryStatus.POSTED.value)))
    if not any(e.source.startswith("invoice:") for e in entries) or len(entries) < 2:
        return None
    lines = [ln for e in entries for ln in e.lines if ln.aux is not None]
    if any(ln.letter for ln in lines):
        return None
    if sum((ln.debit - ln.credit for ln in lines), Decimal(0)) != 0:
        return None  # partly paid: stays open
    letter = _next_letter(session, tenant_id)
    for line in lines:
        line.letter, line.letter_date = letter, on
    session.flush()
    return letter
