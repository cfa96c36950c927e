"""The pure core: entries are values, and ``problems`` is the one place their invariants are checked.

Nothing here touches the database: the services load what the check needs into a ``Books`` value (accounts,
journals, closed years) and call ``problems`` / ``require_valid`` before any entry is marked ready or posted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from core.errors import ValidationFailed
from core.i18n import N_

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

UNBALANCED = N_("The entry is not balanced: debits {debit} and credits {credit} differ by {diff}. "
                "Correct the amounts so that they are equal to the cent.")
NO_LINES = N_("The entry needs at least two lines.")
UNKNOWN_ACCOUNT = N_("Line {line}: account {account} is not in the chart of accounts. Add it or choose another.")
INACTIVE_ACCOUNT = N_("Line {line}: account {account} is deactivated. Reactivate it or choose another.")
UNKNOWN_JOURNAL = N_("Journal {journal} does not exist.")
CLOSED_PERIOD = N_("The fiscal year {year} is closed: an entry dated {date} cannot be posted. Date it in an open year.")
VAT_RATE_MISMATCH = N_("Line {line}: VAT account {account} is for {expected} %, not {rate} %. "
                       "Choose the VAT account of that rate.")
VAT_RATE_MISSING = N_("Line {line}: a line on VAT account {account} needs its VAT rate.")
BAD_AMOUNT = N_("Line {line}: put the amount either in debit or in credit, positive, with at most two decimals.")


def cents(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Line:
    """One line of an entry, in the company's currency; ``amount_currency``/``currency`` keep the document's."""

    account: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    label: str = ""
    aux: str | None = None  # CompAuxNum: the client's or supplier's auxiliary account
    aux_label: str | None = None
    vat_rate: Decimal | None = None  # on VAT lines (and on the base lines, for information)
    amount_currency: Decimal | None = None  # Montantdevise, signed like debit - credit
    currency: str | None = None  # Idevise

    @property
    def balance(self) -> Decimal:
        return self.debit - self.credit


@dataclass(frozen=True)
class Entry:
    journal: str
    date: date
    label: str
    piece_ref: str
    lines: tuple[Line, ...]
    piece_date: date | None = None
    flags: tuple[str, ...] = field(default=())  # what the reviewer must confirm before posting

    @property
    def debit(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def credit(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)

    def reversed(self, on: date, label: str) -> Entry:
        """The entry that cancels this one (corrections of a posted entry are made this way)."""
        lines = tuple(
            replace(line, debit=line.credit, credit=line.debit,
                    amount_currency=None if line.amount_currency is None else -line.amount_currency)
            for line in self.lines
        )
        return replace(self, date=on, label=label, lines=lines, flags=())


DEFAULT_YEAR_END = "12-31"
_YEAR_END = re.compile(r"(\d{2})-(\d{2})")

BAD_YEAR_END = N_("a fiscal year end is a day of the year written MM-DD, e.g. 03-31 for 31 March")
LEAP_DAY = N_("29 February exists only in leap years: close on 02-28 instead")


@dataclass(frozen=True)
class FiscalCalendar:
    """Which fiscal year a date is in, and where a fiscal year starts and ends."""

    month: int = 12
    day: int = 31

    @classmethod
    def of(cls, year_end: str | None) -> FiscalCalendar:
        """The calendar of a stored year end; the default for an empty or unreadable one."""
        try:
            month, day = parse_year_end(year_end or DEFAULT_YEAR_END)
        except ValueError:
            return cls()
        return cls(month, day)

    @property
    def text(self) -> str:
        return f"{self.month:02d}-{self.day:02d}"

    def year_of(self, day: date) -> int:
        """The fiscal year of ``day``: the calendar year its fiscal year ends in."""
        return day.year if (day.month, day.day) <= (self.month, self.day) else day.year + 1

    def closing(self, year: int) -> date:
        return date(year, self.month, self.day)

    def opening(self, year: int) -> date:
        return self.closing(year - 1) + timedelta(days=1)


def parse_year_end(text: str) -> tuple[int, int]:
    """("03-31") -> (3, 31); ValueError with the reason for anything else."""
    found = _YEAR_END.fullmatch(text.strip())
    if found is None:
        raise ValueError(BAD_YEAR_END)
    month, day = int(found.group(1)), int(found.group(2))
    if (month, day) == (2, 29):
        raise ValueError(LEAP_DAY)
    try:
        date(2001, month, day)  # a common year: every valid closing day exists every year
    except ValueError:
        raise ValueError(BAD_YEAR_END) from None
    return month, day


@dataclass(frozen=True)
class AccountInfo:
    number: str
    label: str
    active: bool = True
    is_vat: bool = False
    vat_rate: Decimal | None = None  # a VAT account bound to one rate (SKR, PCG per-rate sub-accounts)


@dataclass(frozen=True)
class Books:
    """What the invariants need to know about the tenant's books."""

    accounts: Mapping[str, AccountInfo]
    journals: frozenset[str]
    closed_years: frozenset[int] = frozenset()
    calendar: FiscalCalendar = FiscalCalendar()  # which fiscal year an entry's date is in


def problems(entry: Entry, books: Books) -> list[str]:
    """Every reason ``entry`` cannot be posted, each saying what to fix; empty when it can."""
    found: list[str] = []
    if entry.journal not in books.journals:
        found.append(UNKNOWN_JOURNAL.format(journal=entry.journal))
    fiscal_year = books.calendar.year_of(entry.date)
    if fiscal_year in books.closed_years:
        found.append(CLOSED_PERIOD.format(year=fiscal_year, date=entry.date.isoformat()))
    if len(entry.lines) < 2:
        found.append(NO_LINES)
    for index, line in enumerate(entry.lines, start=1):
        if (line.debit < 0 or line.credit < 0 or (line.debit and line.credit) or cents(line.debit) != line.debit
                or cents(line.credit) != line.credit):
            found.append(BAD_AMOUNT.format(line=index))
        account = books.accounts.get(line.account)
        if account is None:
            found.append(UNKNOWN_ACCOUNT.format(line=index, account=line.account))
            continue
        if not account.active:
            found.append(INACTIVE_ACCOUNT.format(line=index, account=line.account))
        if account.is_vat:
            if line.vat_rate is None:
                found.append(VAT_RATE_MISSING.format(line=index, account=line.account))
            elif account.vat_rate is not None and Decimal(account.vat_rate) != Decimal(line.vat_rate):
                found.append(VAT_RATE_MISMATCH.format(line=index, account=line.account,
                                                      expected=rate_text(account.vat_rate),
                                                      rate=rate_text(line.vat_rate)))
    if entry.debit != entry.credit:
        found.append(UNBALANCED.format(debit=entry.debit, credit=entry.credit, diff=abs(entry.debit - entry.credit)))
    return found


def require_valid(entry: Entry, books: Books) -> None:
    """Refuse (ValidationFailed) an entry that breaks an invariant or still has a flag to confirm."""
    found = problems(entry, books) + list(entry.flags)
    if found:  # one key per problem: each is shown (and translated) on its own
        raise ValidationFailed({("entry" if i == 0 else f"entry_{i + 1}"): p for i, p in enumerate(found)})


def as_rate(value: Decimal) -> Decimal:
    """Rates are kept with two decimals everywhere (20.00, 5.50): comparisons and storage agree."""
    return Decimal(value).quantize(CENT)


def rate_text(rate: Decimal) -> str:
    """5.50 -> "5.5", 20.00 -> "20": rates as people write them."""
    text = format(Decimal(rate).normalize(), "f")
    return text
