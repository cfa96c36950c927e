"""One bank journal per bank account of the company, with its own general-ledger account.

The first time a bank account's movement is booked (or the *Accounting* area is opened), it gets the next
free journal code ``BQ1``, ``BQ2``... and the account numbered after the chart's bank account: 512001,
512002... (PCG), 1201... (SKR03), 1801... (SKR04), added to the tenant's chart unless it is there already.
The mapping is stored on the journal row (``Journal.bank_account_id`` / ``Journal.account``), so a bank
account keeps its journal for good. The seeded ``BQ`` journal on 512000 stays for the entries booked
before bank journals were per account.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.accounting import books as booksvc
from core.accounting.charts import JOURNALS, Chart
from core.accounting.models import Journal, LedgerAccount
from core.models import BankAccount

PREFIX = "BQ"
ATTEMPTS = 5  # codes taken meanwhile by a concurrent first use: try the next free one


@dataclass(frozen=True)
class BankBook:
    """Where a bank account's movements are booked."""

    journal: str  # JournalCode
    account: str  # its 512xxx (CompteNum)


def bank_journals(session: Session, tenant_id: int) -> dict[int, Journal]:
    """The journals already given to the tenant's bank accounts, by bank account id (nothing is created)."""
    rows = session.scalars(select(Journal).where(Journal.tenant_id == tenant_id, Journal.bank_account_id.is_not(None)))
    return {row.bank_account_id: row for row in rows if row.bank_account_id is not None}


def _bank_label(chart: Chart) -> str:
    return next((seed.label for seed in chart.accounts if seed.number == chart.bank), "Bank")


def _numbered(base: str, index: int) -> str:
    """512000 + 1 -> 512001; 1200 + 2 -> 1202 (same width as the chart's bank account)."""
    return str(int(base) + index).zfill(len(base)) if base.isdigit() else f"{base}{index}"


def _create(session: Session, tenant_id: int, bank: BankAccount, chart: Chart) -> Journal:
    codes = set(session.scalars(select(Journal.code).where(Journal.tenant_id == tenant_id)))
    used = set(session.scalars(select(Journal.account).where(Journal.tenant_id == tenant_id,
                                                             Journal.account.is_not(None))))
    index = 1
    while f"{PREFIX}{index}" in codes or _numbered(chart.bank, index) in used:
        index += 1
    code, number = f"{PREFIX}{index}", _numbered(chart.bank, index)
    name = " ".join((bank.name or bank.iban or "").split())
    label = f"{_bank_label(chart)} {name}".strip()
    exists = session.scalar(select(LedgerAccount.id).where(LedgerAccount.tenant_id == tenant_id,
                                                           LedgerAccount.number == number))
    if not exists:  # an account the company added itself under that number is used as it is
        session.add(LedgerAccount(tenant_id=tenant_id, number=number, label=label[:200]))
    journal = Journal(tenant_id=tenant_id, code=code, label=label[:100], kind="bank", bank_account_id=bank.id,
                      account=number)
    session.add(journal)
    session.flush()
    return journal


def _ensure(session: Session, tenant_id: int, wanted: set[int] | None) -> tuple[dict[int, BankBook], int]:
    known = bank_journals(session, tenant_id)
    if wanted is not None and wanted <= known.keys():
        return {bank_id: BankBook(known[bank_id].code, known[bank_id].account or "") for bank_id in wanted}, 0
    # Every account still without one, in the order they were added: BQ1 stays the first bank account's.
    stmt = select(BankAccount).where(BankAccount.tenant_id == tenant_id).order_by(BankAccount.id)
    lacking = [bank for bank in session.scalars(stmt) if bank.id not in known]
    created = 0
    if lacking:
        booksvc.ensure_books(session, tenant_id)
        chart = booksvc.chart_of(session, tenant_id)
    for bank in lacking:
        for _ in range(ATTEMPTS):
            if bank.id in known:
                break
            try:
                with session.begin_nested():
                    known[bank.id] = _create(session, tenant_id, bank, chart)
                created += 1
            except IntegrityError:
                known = bank_journals(session, tenant_id)
    books = {bank_id: BankBook(journal.code, journal.account or "") for bank_id, journal in known.items()
             if wanted is None or bank_id in wanted}
    return books, created


def ensure_bank_journals(session: Session, tenant_id: int, bank_account_ids: Iterable[int] | None = None
                         ) -> dict[int, BankBook]:
    """The journal and account of each bank account (all the tenant's when ``bank_account_ids`` is None),
    given on first use (to every account of the tenant still without one, so that they are numbered in
    the order the accounts were added). Two first uses at once: the loser of the unique (tenant, code) or (tenant, bank
    account) takes what the winner wrote, or the next free code."""
    wanted = None if bank_account_ids is None else set(bank_account_ids)
    if wanted is not None and not wanted:
        return {}
    return _ensure(session, tenant_id, wanted)[0]


def assign_bank_journals(session: Session, tenant_id: int) -> int:
    """Give every bank account of the tenant that has none its journal; returns how many were given."""
    return _ensure(session, tenant_id, None)[1]


def journal_choices(session: Session, tenant_id: int) -> list[tuple[str, str, str]]:
    """(code, label, kind) of the tenant's journals, bank journals included, for filters; the standard
    ones while the books are not seeded yet (nothing is created)."""
    rows = session.execute(select(Journal.code, Journal.label, Journal.kind).where(Journal.tenant_id == tenant_id)
                           .order_by(Journal.code)).all()
    return [(row.code, row.label, row.kind) for row in rows] or list(JOURNALS)
