"""The FEC (fichier des écritures comptables, article A47 A-1 of the Livre des procédures fiscales), streamed.

One file per fiscal year (``core.accounting.fiscal``: the year it ends in), named
``{SIREN}FEC{AAAAMMJJ of the closing date}.txt``: a header line with the 18
columns in order, then one line per entry line, tab-separated, UTF-8, dates AAAAMMJJ, amounts with a comma
and no thousands separator, entries in order of validation (their EcritureNum, given at posting: gapless).
Only posted entries go in. Rows are read from the database in batches and written out one at a time:
memory does not grow with the year.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from functools import lru_cache

from sqlalchemy import select, type_coerce
from sqlalchemy.orm import Session
from sqlalchemy.types import NullType

from core.accounting import books as booksvc
from core.accounting.ledger import FiscalCalendar
from core.accounting.models import EntryLine, EntryStatus, JournalEntry
from core.errors import ValidationFailed
from core.i18n import N_
from core.models import Tenant

COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
           "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
           "ValidDate", "Montantdevise", "Idevise")
MISSING_SIREN = N_("The company's SIREN is missing: enter it in Settings before asking for a FEC.")
BATCH = 2000


@lru_cache(maxsize=4096)
def fec_date(value: date | None) -> str:
    # Cached: a year has 366 dates and strftime dominated the export's profile.
    return f"{value.year:04d}{value.month:02d}{value.day:02d}" if value else ""


def fec_amount(value: Decimal | str | None) -> str:
    """1234.5 -> "1234,50". A ``str`` is SQLite's stored amount, already with two decimals."""
    if value is None:
        return ""
    return (value if isinstance(value, str) else f"{value:.2f}").replace(".", ",")


def clean(text: str | None) -> str:
    """A field holds no tab nor line break (they would shift the columns)."""
    if not text:
        return ""
    if text.isprintable() and "  " not in text and text == text.strip():
        return text  # the usual case, without splitting
    return " ".join(text.split())


def closing_date(year: int, calendar: FiscalCalendar | None = None) -> date:
    """The last day of fiscal year ``year`` (the company's year end; 31 December by default)."""
    return (calendar or FiscalCalendar()).closing(year)


def filename(session: Session, tenant_id: int, year: int) -> str:
    tenant = session.get(Tenant, tenant_id)
    siren = (tenant.siren or "") if tenant else ""
    if len(siren) < 9 or not siren[:9].isdigit():
        raise ValidationFailed({"siren": MISSING_SIREN})
    calendar = FiscalCalendar.of(tenant.fiscal_year_end if tenant else None)
    return f"{siren[:9]}FEC{fec_date(closing_date(year, calendar))}.txt"


def rows(session: Session, tenant_id: int, year: int) -> Iterator[tuple[str, ...]]:
    """The FEC's rows for ``year`` (header first), as tuples of 18 strings, read in batches."""
    journal_labels = {j.code: j.label for j in booksvc.journals(session, tenant_id)}
    yield COLUMNS
    # Amounts are read as the driver gives them (Decimal on PostgreSQL, the stored two-decimal text on
    # SQLite): the Money type's per-value processing was a third of the export's time.
    debit, credit = type_coerce(EntryLine.debit, NullType()), type_coerce(EntryLine.credit, NullType())
    stmt = (
        select(JournalEntry.journal, JournalEntry.number, JournalEntry.entry_date, EntryLine.account,
               EntryLine.account_label, EntryLine.aux, EntryLine.aux_label, JournalEntry.piece_ref,
               JournalEntry.piece_date, EntryLine.label, JournalEntry.label, debit, credit,
               EntryLine.letter, EntryLine.letter_date, JournalEntry.valid_date, EntryLine.amount_currency,
               EntryLine.currency)
        .join(EntryLine, EntryLine.entry_id == JournalEntry.id)
        .where(JournalEntry.tenant_id == tenant_id, JournalEntry.status == EntryStatus.POSTED.value,
               JournalEntry.fiscal_year == year)
        .order_by(JournalEntry.number, EntryLine.position)
        .execution_options(yield_per=BATCH, stream_results=True)
    )
    for row in session.execute(stmt):
        (journal, number, entry_date, account, account_label, aux, aux_label, piece_ref, piece_date, line_label,
         entry_label, debit, credit, letter, letter_date, valid_date, amount_currency, currency) = row
        yield (
            journal, clean(journal_labels.get(journal, journal)), str(number), fec_date(entry_date), account,
            clean(account_label) or account, clean(aux), clean(aux_label) if aux else "",
            clean(piece_ref) or str(number),
            fec_date(piece_date or entry_date), clean(line_label or entry_label) or journal,
            fec_amount(debit), fec_amount(credit), clean(letter), fec_date(letter_date) if letter else "",
            fec_date(valid_date), fec_amount(abs(amount_currency)) if currency and amount_currency is not None else "",
            currency if currency and amount_currency is not None else "",
        )


def stream(session: Session, tenant_id: int, year: int) -> Iterator[bytes]:
    """The FEC file, in chunks of about 64 kB (UTF-8, CRLF line ends)."""
    buffer: list[str] = []
    size = 0
    for row in rows(session, tenant_id, year):
        line = "\t".join(row) + "\r\n"
        buffer.append(line)
        size += len(line)
        if size >= 65536:
            yield "".join(buffer).encode("utf-8")
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode("utf-8")
