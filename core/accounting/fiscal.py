"""Fiscal years: the company's closing day (``Tenant.fiscal_year_end``, "MM-DD", 31 December by default).

A fiscal year is named by the calendar year it ends in: with a year end on 31 March, fiscal year 2027 runs
from 1 April 2026 to 31 March 2027. Every year the accounting computes (EcritureNum's numbering, the closed
period check, the FEC's year and file name, the exports page) goes through ``FiscalCalendar``.

The year end can change only while no posted entry would move to another fiscal year: posted entries keep
the fiscal year (and the number) they were posted in, so an accountant changes it at a year boundary, before
posting into the first year it moves.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounting.ledger import BAD_YEAR_END, DEFAULT_YEAR_END, FiscalCalendar, parse_year_end
from core.accounting.models import EntryStatus, JournalEntry
from core.errors import ValidationFailed
from core.i18n import N_
from core.models import Tenant, User
from core.tenancy import audit

YEAR_END_MOVES = N_("{count} posted entries (fiscal year {year}, e.g. {date}) would move to fiscal year {new_year} "
                    "with this year end. Change the year end only at a year boundary, before posting into the "
                    "first fiscal year it changes.")


def calendar_of(session: Session, tenant_id: int) -> FiscalCalendar:
    tenant = session.get(Tenant, tenant_id)
    return FiscalCalendar.of(tenant.fiscal_year_end if tenant else None)


def _moving_entries(session: Session, tenant_id: int, new: FiscalCalendar) -> tuple[int, date | None, int]:
    """How many posted entries the new calendar would put in another fiscal year; the first one's date and
    fiscal year. Only two columns are read, in batches: a company's whole history stays cheap."""
    count, first, first_year = 0, None, 0
    stmt = (select(JournalEntry.entry_date, JournalEntry.fiscal_year)
            .where(JournalEntry.tenant_id == tenant_id, JournalEntry.status == EntryStatus.POSTED.value,
                   JournalEntry.fiscal_year.is_not(None))
            .order_by(JournalEntry.entry_date, JournalEntry.id).execution_options(yield_per=2000))
    for entry_date, fiscal_year in session.execute(stmt):
        if new.year_of(entry_date) != fiscal_year:
            count += 1
            if first is None:
                first, first_year = entry_date, fiscal_year
    return count, first, first_year


def set_year_end(session: Session, tenant_id: int, value: Any, actor: User | None = None,
                 ip: str | None = None) -> Tenant:
    """Set the fiscal year end ("MM-DD"; empty: 31 December). Refused (ValidationFailed on
    ``fiscal_year_end``) when it is not a day of the year or when a posted entry would change fiscal year."""
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None
    if value is None or (isinstance(value, str) and not value.strip()):
        value = DEFAULT_YEAR_END
    if not isinstance(value, str):
        raise ValidationFailed({"fiscal_year_end": BAD_YEAR_END})
    try:
        month, day = parse_year_end(value)
    except ValueError as exc:
        raise ValidationFailed({"fiscal_year_end": str(exc)}) from None
    new = FiscalCalendar(month, day)
    old = FiscalCalendar.of(tenant.fiscal_year_end)
    if new == old:
        return tenant
    count, first, first_year = _moving_entries(session, tenant_id, new)
    if first is not None:
        raise ValidationFailed({"fiscal_year_end": YEAR_END_MOVES.format(
            count=count, year=first_year, date=first.isoformat(), new_year=new.year_of(first))})
    tenant.fiscal_year_end = new.text
    audit.record(session, tenant_id, "settings.company", actor=actor, target=f"tenant:{tenant_id}",
                 detail={"changes": {"fiscal_year_end": [old.text, new.text]}}, ip=ip)
    session.flush()
    return tenant
