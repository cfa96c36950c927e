"""The data model every bank statement format is turned into.

Pure dataclasses: no database, no Flask. Amounts are always ``Decimal`` and signed from the
account holder's point of view (+ money in, - money out).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

# "statement": end-of-period account statement (CAMT.053, MT940, OFX, CSV export);
# "report": intraday report (CAMT.052, MT942); "notification": debit/credit advice (CAMT.054).
StatementKind = Literal["statement", "report", "notification"]


class StatementError(ValueError):
    """The input cannot be read as a bank statement; ``reason`` says why, for a human."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownCsvLayout(StatementError):
    """A CSV export whose columns match no known bank: a person can describe them once (a ``CsvMapping``)."""


@dataclass(frozen=True, slots=True)
class Transaction:
    booking_date: date
    value_date: date | None
    amount: Decimal  # signed: + credit / incoming, - debit / outgoing
    currency: str | None
    counterparty_name: str | None = None
    counterparty_iban: str | None = None
    remittance: str = ""  # unstructured remittance text, joined into one line
    reference: str | None = None  # creditor reference (RF..., invoice no.) or end-to-end id
    bank_reference: str | None = None  # AcctSvcrRef / FITID / MT940 bank reference
    pending: bool = False  # not booked yet (CAMT PDNG/INFO, CSV "vorgemerkt")
    fingerprint: str = ""  # stable id across re-imports, see core.banking.fingerprint
    booking_text: str | None = None  # bank's own label: "ONLINE-UEBERWEISUNG", "POS", "NTRF", ...


@dataclass(slots=True)
class Statement:
    account_iban: str | None
    account_id: str | None  # the account as the file names it (IBAN, BLZ/Konto, ACCTID, ...)
    currency: str | None
    opening_balance: Decimal | None
    closing_balance: Decimal | None
    statement_id: str | None
    period_start: date | None
    period_end: date | None
    kind: StatementKind = "statement"
    transactions: list[Transaction] = field(default_factory=list)
    source_format: str = ""  # "camt.053.001.02", "mt940", "mt942", "ofx", "csv:dkb-giro", ...
    balances: dict[str, Decimal] = field(default_factory=dict)  # every balance the file states, by code
