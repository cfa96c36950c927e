"""DATEV and CSV exports of posted entries, streamed (rows read in batches, written one at a time).

- DATEV: the Buchungsstapel of DATEV's EXTF format 700, version 13 (header line, the 125 columns' line, one
  row of 125 fields per booking line against the entry's counterparty, ``;``, Windows-1252, decimal comma,
  Belegdatum DDMM), for the Beraternummer and Mandantennummer set in Settings → Company (refused without
  them). Best effort: VAT is booked on its own accounts without BU-Schlüssel, and of the columns after
  Buchungstext only Leistungsdatum (the piece's date) is filled; Festschreibung is left to the adviser (0).
- CSV: one row per entry line with the documented ``CSV_COLUMNS`` (UTF-8 with a BOM, ``,``, dot decimals,
  ISO dates; formula-like cells neutralised).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounting import books as booksvc
from core.accounting import fiscal
from core.accounting.models import EntryLine, EntryStatus, JournalEntry
from core.banking.reconcile.csvexport import cell, safe_text
from core.errors import ValidationFailed
from core.i18n import N_
from core.models import Tenant

BATCH = 2000
CSV_COLUMNS = ("entry_id", "entry_number", "journal", "entry_date", "valid_date", "piece_ref", "piece_date",
               "entry_label", "account", "account_label", "aux", "aux_label", "line_label", "debit", "credit",
               "vat_rate", "amount_currency", "currency", "letter", "letter_date")
# The Buchungsstapel's 125 columns of format version 13, in order (DATEV reads them by position).
DATEV_COLUMNS = (
    "Umsatz (ohne Soll/Haben-Kz)", "Soll/Haben-Kennzeichen", "WKZ Umsatz", "Kurs", "Basis-Umsatz",
    "WKZ Basis-Umsatz", "Konto", "Gegenkonto (ohne BU-Schlüssel)", "BU-Schlüssel", "Belegdatum", "Belegfeld 1",
    "Belegfeld 2", "Skonto", "Buchungstext", "Postensperre", "Diverse Adressnummer", "Geschäftspartnerbank",
    "Sachverhalt", "Zinssperre", "Beleglink",
    *(f"Beleginfo - {kind} {n}" for n in range(1, 9) for kind in ("Art", "Inhalt")),
    "KOST1 - Kostenstelle", "KOST2 - Kostenstelle", "Kost-Menge", "EU-Land u. UStID (Bestimmung)",
    "EU-Steuersatz (Bestimmung)", "Abw. Versteuerungsart", "Sachverhalt L+L", "Funktionsergänzung L+L",
    "BU 49 Hauptfunktionstyp", "BU 49 Hauptfunktionsnummer", "BU 49 Funktionsergänzung",
    *(f"Zusatzinformation - {kind} {n}" for n in range(1, 21) for kind in ("Art", "Inhalt")),
    "Stück", "Gewicht", "Zahlweise", "Forderungsart", "Veranlagungsjahr", "Zugeordnete Fälligkeit", "Skontotyp",
    "Auftragsnummer", "Buchungstyp", "USt-Schlüssel (Anzahlungen)", "EU-Land (Anzahlungen)",
    "Sachverhalt L+L (Anzahlungen)", "EU-Steuersatz (Anzahlungen)", "Erlöskonto (Anzahlungen)", "Herkunft-Kz",
    "Buchungs GUID", "KOST-Datum", "SEPA-Mandatsreferenz", "Skontosperre", "Gesellschaftername",
    "Beteiligtennummer", "Identifikationsnummer", "Zeichnernummer", "Postensperre bis",
    "Bezeichnung SoBil-Sachverhalt", "Kennzeichen SoBil-Buchung", "Festschreibung", "Leistungsdatum",
    "Datum Zuord. Steuerperiode", "Fälligkeit", "Generalumkehr (GU)", "Steuersatz", "Land", "Abrechnungsreferenz",
    "BVV-Position", "EU-Land u. UStID (Ursprung)", "EU-Steuersatz (Ursprung)", "Abw. Skontokonto",
)
LEISTUNGSDATUM = DATEV_COLUMNS.index("Leistungsdatum")
MISSING_DATEV = N_("A DATEV export names the ledger it goes to: enter the company's DATEV Beraternummer and "
                   "Mandantennummer in Settings → Company first.")


def _lines(session: Session, tenant_id: int, start: date | None, end: date | None) -> Iterator[Any]:
    stmt = (
        select(JournalEntry.id, JournalEntry.number, JournalEntry.journal, JournalEntry.entry_date,
               JournalEntry.valid_date, JournalEntry.piece_ref, JournalEntry.piece_date, JournalEntry.label,
               EntryLine.account, EntryLine.account_label, EntryLine.aux, EntryLine.aux_label, EntryLine.label,
               EntryLine.debit, EntryLine.credit, EntryLine.vat_rate, EntryLine.amount_currency, EntryLine.currency,
               EntryLine.letter, EntryLine.letter_date, EntryLine.position)
        .join(EntryLine, EntryLine.entry_id == JournalEntry.id)
        .where(JournalEntry.tenant_id == tenant_id, JournalEntry.status == EntryStatus.POSTED.value)
        .order_by(JournalEntry.fiscal_year, JournalEntry.number, EntryLine.position)
        .execution_options(yield_per=BATCH, stream_results=True)
    )
    if start:
        stmt = stmt.where(JournalEntry.entry_date >= start)
    if end:
        stmt = stmt.where(JournalEntry.entry_date <= end)
    yield from session.execute(stmt)


def _chunks(lines: Iterable[str], encoding: str, errors: str = "strict") -> Iterator[bytes]:
    buffer: list[str] = []
    size = 0
    for line in lines:
        buffer.append(line)
        size += len(line)
        if size >= 65536:
            yield "".join(buffer).encode(encoding, errors)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer).encode(encoding, errors)


def _csv_line(values: Sequence[str], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerow(values)
    return out.getvalue()


def csv_stream(session: Session, tenant_id: int, start: date | None = None, end: date | None = None) -> Iterator[bytes]:
    def lines() -> Iterator[str]:
        yield "\ufeff" + _csv_line(CSV_COLUMNS, ",")
        for row in _lines(session, tenant_id, start, end):
            yield _csv_line([cell(value, False) for value in tuple(row)[:20]], ",")

    return _chunks(lines(), "utf-8")


def datev_account(aux: str | None) -> str | None:
    """The Debitor (10000 + id) or Kreditor (70000 + id) number of an auxiliary account C000012 / F000012."""
    if not aux or len(aux) < 2 or not aux[1:].isdigit():
        return None
    number = int(aux[1:])
    if number >= 60000:
        return None
    return str((10000 if aux[0] == "C" else 70000) + number)


def _amount(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


def datev_ledger(session: Session, tenant_id: int) -> tuple[str, str]:
    """The company's Beraternummer and Mandantennummer; ValidationFailed when either is not set (a file
    with made-up numbers would be imported into someone else's ledger, or refused by DATEV)."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None or not tenant.datev_consultant_number or not tenant.datev_client_number:
        raise ValidationFailed({"datev": MISSING_DATEV})
    return tenant.datev_consultant_number, tenant.datev_client_number


def datev_stream(session: Session, tenant_id: int, start: date, end: date,
                 now: datetime | None = None) -> Iterator[bytes]:
    consultant, client = datev_ledger(session, tenant_id)
    chart = booksvc.chart_of(session, tenant_id)
    calendar = fiscal.calendar_of(session, tenant_id)
    year_start = calendar.opening(calendar.year_of(start))  # WJ-Beginn: the company's fiscal year
    now = now or datetime.now()
    skr = chart.name[-2:] if chart.name.startswith("skr") else ""
    header = ["EXTF", "700", "21", "Buchungsstapel", "13", now.strftime("%Y%m%d%H%M%S") + "000", "", "RE",
              "invoice-inbox", "", consultant, client, year_start.strftime("%Y%m%d"), "4" if skr else "6",
              start.strftime("%Y%m%d"), end.strftime("%Y%m%d"), "invoice-inbox", "", "1", "0", "0", "EUR",
              "", "", "", "", skr, "", "", "", ""]

    def quoted(value: str) -> str:
        return '"' + safe_text(value).replace('"', "'") + '"'

    def lines() -> Iterator[str]:
        yield ";".join(quoted(v) if i in (0, 3, 7, 8, 9, 16, 17, 21, 26) else v for i, v in enumerate(header)) + "\r\n"
        yield ";".join(DATEV_COLUMNS) + "\r\n"
        # One booking per line that is not the counterparty's, against the counterparty (or the entry's
        # first line): that is how DATEV reads a split entry.
        current: int | None = None
        against = ""
        for row in _lines(session, tenant_id, start, end):
            (entry_id, _number, _journal, entry_date, _valid, piece_ref, piece_date, entry_label, account, _alabel,
             aux, _auxl, line_label, debit, credit, _rate, amount_currency, currency, _let, _letd, _pos) = row
            if entry_id != current:
                current, against = entry_id, datev_account(aux) or account
                continue  # the first line (the counterparty's in a drafted entry) is the Gegenkonto
            amount, side = (debit, "S") if debit else (credit, "H")
            values = [_amount(amount), side, currency or "", "", "", "", account, against, "",
                      entry_date.strftime("%d%m"), quoted(piece_ref[:36]), "", "",
                      quoted((line_label or entry_label)[:60])]
            if currency and amount_currency is not None:
                values[2] = currency
                values[0] = _amount(abs(amount_currency))
                values[3] = _amount_rate(amount, amount_currency)
                values[4], values[5] = _amount(amount), "EUR"
            values += [""] * (len(DATEV_COLUMNS) - len(values))
            values[LEISTUNGSDATUM] = (piece_date or entry_date).strftime("%d%m%Y")
            yield ";".join(values) + "\r\n"

    return _chunks(lines(), "cp1252", "replace")


def _amount_rate(amount: Decimal, amount_currency: Decimal) -> str:
    """Kurs: units of the foreign currency per euro, six decimals (DATEV's convention)."""
    if not amount:
        return ""
    return f"{abs(amount_currency) / amount:.6f}".replace(".", ",")


def ebp_stream(session: Session, tenant_id: int, start: date | None = None, end: date | None = None) -> Iterator[bytes]:
    """EBP's ASCII import of entries (best effort, after the public description of the layout): per line the
    entry number, the date DDMMYYYY, the journal, the account (the auxiliary account when there is one,
    15 characters), an empty field, the label (40, quoted), the piece (15, quoted), the amount (13 characters,
    zero-padded, dot decimals), D or C, the due date (the entry date here); ``,``-separated, code page 850."""

    def text(value: str, width: int) -> str:
        return '"' + safe_text(" ".join(value.split()))[:width].replace('"', "'").ljust(width) + '"'

    def lines() -> Iterator[str]:
        for row in _lines(session, tenant_id, start, end):
            (_entry_id, number, journal, entry_date, _valid, piece_ref, _pdate, entry_label, account, _alabel,
             aux, _auxl, line_label, debit, credit, *_rest) = row
            day = entry_date.strftime("%d%m%Y")
            amount, side = (debit, "D") if debit else (credit, "C")
            code = (aux or account).replace(",", "")[:15].ljust(15)
            yield (f"{number:>5},{day},{journal},{code},,{text(line_label or entry_label, 40)},"
                   f"{text(piece_ref, 15)},{amount:013.2f},{side},{day},\r\n")

    return _chunks(lines(), "cp850", "replace")
