"""Entries as values and as rows: the conversions both the drafting (``entries``) and the settlements
(``settlements``) use, with the status recomputed from the one check (``ledger.problems``)."""

from __future__ import annotations

from decimal import Decimal

from core.accounting.ledger import Books, Entry, Line, problems
from core.accounting.models import EntryLine, EntryStatus, JournalEntry
from core.models import Direction, Invoice


def aux_code(invoice: Invoice) -> str:
    """CompAuxNum: one auxiliary account per client (C...) and per supplier (F...), from its id."""
    prefix = "F" if invoice.direction == Direction.PAYABLE.value else "C"
    return f"{prefix}{invoice.client_id or 0:06d}"


def to_value(row: JournalEntry) -> Entry:
    lines = tuple(Line(account=ln.account, debit=ln.debit, credit=ln.credit, label=ln.label, aux=ln.aux,
                       aux_label=ln.aux_label, vat_rate=ln.vat_rate, amount_currency=ln.amount_currency,
                       currency=ln.currency) for ln in row.lines)
    return Entry(journal=row.journal, date=row.entry_date, label=row.label, piece_ref=row.piece_ref,
                 lines=lines, piece_date=row.piece_date, flags=tuple(row.flags or ()))


def write_row(row: JournalEntry, entry: Entry, books: Books) -> None:
    """Put the value into the row, and recompute its status from the one check."""
    row.journal, row.entry_date, row.label = entry.journal, entry.date, entry.label
    row.piece_ref, row.piece_date, row.flags = entry.piece_ref, entry.piece_date, list(entry.flags)
    row.lines.clear()
    for position, line in enumerate(entry.lines):
        info = books.accounts.get(line.account)
        row.lines.append(EntryLine(
            tenant_id=row.tenant_id, position=position, account=line.account,
            account_label=info.label if info else "", aux=line.aux, aux_label=line.aux_label,
            label=line.label, debit=line.debit, credit=line.credit, vat_rate=line.vat_rate,
            amount_currency=line.amount_currency, currency=line.currency))
    row.total = sum((line.debit for line in entry.lines), Decimal(0))  # what the entries list sorts and finds by
    refresh_status(row, entry, books)


def refresh_status(row: JournalEntry, entry: Entry, books: Books) -> None:
    row.issues = problems(entry, books) + list(entry.flags)
    row.status = EntryStatus.READY.value if not row.issues else EntryStatus.TO_PROCESS.value
