"""Bank CSV exports, described by a ``CsvMapping``; German layouts (DKB, Sparkasse) built in.

German exports come with preamble lines before the header, cp1252 text, ``-2.542,32`` amounts,
two-digit years and pending ("vorgemerkt") rows; the mapping covers all of that.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from core.banking.models import Statement, StatementError, Transaction
from core.banking.util import clean_reference, collapse, decode_text, iban_or_none, opt, parse_amount

Column = str | int  # a header name (matched loosely, see _norm) or a 0-based index
_HEADER_SCAN_ROWS = 50


@dataclass(frozen=True, slots=True)
class CsvMapping:
    """Where a CSV export keeps each field. Give ``amount`` or ``debit``/``credit``."""

    booking_date: Column
    amount: Column | None = None  # signed amount
    debit: Column | None = None  # outgoing amounts (sign ignored: always booked as negative)
    credit: Column | None = None  # incoming amounts
    value_date: Column | None = None
    currency: Column | None = None
    counterparty_name: Column | None = None
    counterparty_iban: Column | None = None
    remittance: Column | tuple[Column, ...] | None = None  # several columns are joined
    reference: Column | None = None
    bank_reference: Column | None = None
    booking_text: Column | None = None
    account: Column | None = None  # per-row own account (Sparkasse "Auftragskonto")
    status: Column | None = None  # a row is pending when this cell matches pending_pattern
    pending_pattern: str = r"vorgemerkt|pending|ausstehend|nicht gebucht|offen"
    delimiter: str = ";"
    quotechar: str = '"'
    encoding: str | None = None  # None: UTF-8 if valid, else cp1252
    skip_rows: int | None = None  # rows before the header row; None: find it by the booking_date name
    has_header: bool = True
    decimal_comma: bool = True
    date_formats: tuple[str, ...] = ("%d.%m.%Y", "%d.%m.%y", "%Y-%m-%d", "%d/%m/%Y")
    default_currency: str | None = "EUR"
    account_iban: str | None = None  # the account, when the file does not say
    name: str = "custom"
    signature: frozenset[str] = field(default=frozenset(), compare=False)  # header names that identify it


DKB_GIRO = CsvMapping(
    name="dkb-giro",
    booking_date="Buchungstag",
    value_date="Wertstellung",
    booking_text="Buchungstext",
    counterparty_name="Auftraggeber / Begünstigter",
    remittance="Verwendungszweck",
    counterparty_iban="Kontonummer",
    amount="Betrag (EUR)",
    reference="Kundenreferenz",
    signature=frozenset({"Buchungstag", "Wertstellung", "Auftraggeber / Begünstigter", "Betrag (EUR)"}),
)

# Sparkasse "CSV-CAMT" export (17 columns). Real exports spell some headers with umlauts,
# the corpus copy with ae/ue; _norm treats both alike.
SPARKASSE_CAMT = CsvMapping(
    name="sparkasse-camt",
    account="Auftragskonto",
    booking_date="Buchungstag",
    value_date="Valutadatum",
    booking_text="Buchungstext",
    remittance="Verwendungszweck",
    reference="Kundenreferenz (End-to-End)",
    counterparty_name="Beguenstigter/Zahlungspflichtiger",
    counterparty_iban="Kontonummer/IBAN",
    amount="Betrag",
    currency="Waehrung",
    status="Info",
    signature=frozenset(
        {"Auftragskonto", "Buchungstag", "Valutadatum", "Beguenstigter/Zahlungspflichtiger", "Kontonummer/IBAN"}
    ),
)

# Sparkasse "CSV-MT940" export: the older 11-column sibling, account number in "Kontonummer".
SPARKASSE_MT940 = CsvMapping(
    name="sparkasse-mt940",
    account="Auftragskonto",
    booking_date="Buchungstag",
    value_date="Valutadatum",
    booking_text="Buchungstext",
    remittance="Verwendungszweck",
    counterparty_name="Beguenstigter/Zahlungspflichtiger",
    counterparty_iban="Kontonummer",
    amount="Betrag",
    currency="Waehrung",
    status="Info",
    signature=frozenset({"Auftragskonto", "Buchungstag", "Valutadatum", "Beguenstigter/Zahlungspflichtiger", "BLZ"}),
)

KNOWN_LAYOUTS: tuple[CsvMapping, ...] = (SPARKASSE_CAMT, SPARKASSE_MT940, DKB_GIRO)


def _norm(name: str) -> str:
    """Loose header key: case, umlaut spelling (ü/ue), spaces and punctuation do not matter."""
    value = name.casefold()
    for umlaut, plain in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        value = value.replace(umlaut, plain)
    return re.sub(r"[^a-z0-9]", "", value)


def _rows(data: bytes, mapping: CsvMapping) -> list[list[str]]:
    text = decode_text(data, mapping.encoding)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=mapping.delimiter, quotechar=mapping.quotechar))
    except csv.Error as exc:
        raise StatementError(f"the CSV file cannot be split into rows: {exc}") from exc


def guess_csv_mapping(data: bytes) -> CsvMapping | None:
    """The built-in mapping whose header row appears in the first lines of ``data``, if any."""
    rows = _rows(data[:64_000], CsvMapping(booking_date=0))
    for row in rows[:_HEADER_SCAN_ROWS]:
        cells = {_norm(cell) for cell in row}
        for layout in KNOWN_LAYOUTS:
            if {_norm(name) for name in layout.signature} <= cells:
                return layout
    return None


# --- header and columns ------------------------------------------------------------------------


def _header_index(rows: list[list[str]], mapping: CsvMapping) -> int:
    """Index of the header row (-1 when there is none)."""
    if mapping.skip_rows is not None:
        return mapping.skip_rows if mapping.has_header else mapping.skip_rows - 1
    if not mapping.has_header:
        return -1
    if isinstance(mapping.booking_date, int):
        return 0
    wanted = _norm(mapping.booking_date)
    for index, row in enumerate(rows[:_HEADER_SCAN_ROWS]):
        if wanted in {_norm(cell) for cell in row}:
            return index
    raise StatementError(f"no header row with a {mapping.booking_date!r} column in the first {_HEADER_SCAN_ROWS} lines")


class _Columns:
    """Resolves mapping columns (names or indexes) against the header row."""

    def __init__(self, header: Sequence[str]) -> None:
        self.header = list(header)
        self._by_name: dict[str, int] = {}
        for index, name in enumerate(header):
            self._by_name.setdefault(_norm(name), index)

    def index(self, column: Column | None) -> int | None:
        if column is None:
            return None
        if isinstance(column, int):
            return column
        found = self._by_name.get(_norm(column))
        if found is None:
            raise StatementError(f"the CSV header has no column {column!r} (it has: {', '.join(self.header)})")
        return found


def _cell(row: Sequence[str], index: int | None) -> str:
    return row[index].strip() if index is not None and index < len(row) else ""


# --- preamble ----------------------------------------------------------------------------------


@dataclass(slots=True)
class _Preamble:
    account_iban: str | None = None
    account_id: str | None = None
    period_start: date | None = None
    period_end: date | None = None
    balance: Decimal | None = None


def _preamble(rows: list[list[str]], mapping: CsvMapping) -> _Preamble:
    """Key/value lines above the header (DKB: account, from, to, balance)."""
    info = _Preamble()
    for row in rows:
        cells = [cell.strip() for cell in row if cell.strip()]
        if len(cells) < 2:
            continue
        key, value = _norm(cells[0]), cells[1]
        if key.startswith(("kontonummer", "iban", "konto")) and not key.startswith("kontostand"):
            info.account_id = value
            info.account_iban = next((iban for word in value.split() if (iban := iban_or_none(word))), None)
        elif key in {"von", "zeitraumvon", "from"}:
            info.period_start = _try_date(value, mapping)
        elif key in {"bis", "zeitraumbis", "to"}:
            info.period_end = _try_date(value, mapping)
        elif key.startswith(("kontostand", "saldo", "balance")):
            # DKB: "Kontostand vom <date>:" is the balance at the end of the exported range.
            with contextlib.suppress(ValueError):
                info.balance = parse_amount(value, mapping.decimal_comma)
    return info


def _try_date(value: str, mapping: CsvMapping) -> date | None:
    try:
        return _date(value, mapping)
    except ValueError:
        return None


def _date(value: str, mapping: CsvMapping) -> date:
    for fmt in mapping.date_formats:
        try:
            return datetime.strptime(value, fmt).date()  # noqa: DTZ007 - a calendar day, no time zone
        except ValueError:
            continue
    raise ValueError(f"unreadable date {value!r} (expected one of {', '.join(mapping.date_formats)})")


# --- rows --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Indexes:
    booking: int | None
    value: int | None
    amount: int | None
    debit: int | None
    credit: int | None
    currency: int | None
    name: int | None
    iban: int | None
    remittance: list[int]
    reference: int | None
    bank_reference: int | None
    booking_text: int | None
    account: int | None
    status: int | None


def _indexes(columns: _Columns, m: CsvMapping) -> _Indexes:
    remittance = m.remittance if isinstance(m.remittance, tuple) else (m.remittance,)
    return _Indexes(
        booking=columns.index(m.booking_date),
        value=columns.index(m.value_date),
        amount=columns.index(m.amount),
        debit=columns.index(m.debit),
        credit=columns.index(m.credit),
        currency=columns.index(m.currency),
        name=columns.index(m.counterparty_name),
        iban=columns.index(m.counterparty_iban),
        remittance=[i for c in remittance if (i := columns.index(c)) is not None],
        reference=columns.index(m.reference),
        bank_reference=columns.index(m.bank_reference),
        booking_text=columns.index(m.booking_text),
        account=columns.index(m.account),
        status=columns.index(m.status),
    )


def _row_amount(row: Sequence[str], ix: _Indexes, mapping: CsvMapping) -> Decimal | None:
    if ix.amount is not None:
        text = _cell(row, ix.amount)
        return parse_amount(text, mapping.decimal_comma) if text else None
    debit, credit = _cell(row, ix.debit), _cell(row, ix.credit)
    if not debit and not credit:
        return None
    total = Decimal(0)
    if credit:
        total += abs(parse_amount(credit, mapping.decimal_comma))
    if debit:
        total -= abs(parse_amount(debit, mapping.decimal_comma))
    return total


def _row(row: Sequence[str], ix: _Indexes, mapping: CsvMapping, pending_re: re.Pattern[str]) -> Transaction | None:
    """One transaction, or None for a row that holds neither a date nor an amount (blank, totals)."""
    booking_text, value_text = _cell(row, ix.booking), _cell(row, ix.value)
    amount = _row_amount(row, ix, mapping)
    if amount is None and not booking_text:
        return None
    if amount is None:
        raise ValueError("no amount")
    pending = bool(pending_re.search(_cell(row, ix.status))) if ix.status is not None else False
    value_date = _date(value_text, mapping) if value_text else None
    # Pending rows may have no booking day yet; they are dated by their value day then.
    booking = _date(booking_text, mapping) if booking_text else value_date
    if booking is None:
        raise ValueError("no booking date")
    return Transaction(
        booking_date=booking,
        value_date=value_date,
        amount=amount,
        currency=opt(_cell(row, ix.currency)) or mapping.default_currency,
        counterparty_name=opt(_cell(row, ix.name)),
        counterparty_iban=iban_or_none(_cell(row, ix.iban)),
        remittance=collapse(" ".join(_cell(row, i) for i in ix.remittance)),
        reference=clean_reference(_cell(row, ix.reference)),
        bank_reference=clean_reference(_cell(row, ix.bank_reference)),
        pending=pending,
        booking_text=opt(_cell(row, ix.booking_text)),
    )


def parse_csv(data: bytes, mapping: CsvMapping) -> list[Statement]:
    if mapping.amount is None and mapping.debit is None and mapping.credit is None:
        raise StatementError("the CSV mapping names no amount column (amount, or debit/credit)")
    rows = _rows(data, mapping)
    header_at = _header_index(rows, mapping)
    columns = _Columns(rows[header_at] if 0 <= header_at < len(rows) else [])
    ix = _indexes(columns, mapping)
    preamble = _preamble(rows[: max(header_at, 0)], mapping)
    try:
        pending_re = re.compile(mapping.pending_pattern, re.IGNORECASE)
    except re.error as exc:
        raise StatementError(f"the CSV mapping's pending_pattern is not a regular expression: {exc}") from exc
    by_account: dict[str, list[Transaction]] = {}
    for number, row in enumerate(rows[header_at + 1 :], start=header_at + 2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            tx = _row(row, ix, mapping, pending_re)
        except ValueError as exc:
            raise StatementError(f"CSV line {number}: {exc}") from exc
        if tx is not None:
            by_account.setdefault(_cell(row, ix.account), []).append(tx)
    if not by_account:
        raise StatementError("the CSV file holds a header but no transaction rows")
    return [_statement(account, txs, preamble, mapping) for account, txs in by_account.items()]


def _statement(account: str, txs: list[Transaction], preamble: _Preamble, mapping: CsvMapping) -> Statement:
    account_id = opt(account) or preamble.account_id or mapping.account_iban
    booked = [tx.booking_date for tx in txs]
    return Statement(
        account_iban=iban_or_none(account) or preamble.account_iban or iban_or_none(mapping.account_iban),
        account_id=account_id,
        currency=next((tx.currency for tx in txs if tx.currency), mapping.default_currency),
        opening_balance=None,
        closing_balance=preamble.balance,
        statement_id=None,
        period_start=preamble.period_start or min(booked),
        period_end=preamble.period_end or max(booked),
        kind="statement",
        transactions=txs,
        source_format=f"csv:{mapping.name}",
        balances={"preamble": preamble.balance} if preamble.balance is not None else {},
    )
