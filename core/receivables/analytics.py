"""Receivables analytics: amount due, overdue, ageing, DSO and the expected cash-in per week.

Everything is for one currency (amounts in different currencies are never added) and for what the
viewer may see (``core.tenancy.access``), read from the maintained summaries rather than from every
invoice (issue 5: 100,000 invoices). ``today`` is a parameter so that the numbers are reproducible.

DSO (days sales outstanding) = amount due today / invoiced over the last 90 days x 90, where "invoiced"
is the total of receivable invoices (credit notes excluded) issued in ``(today - 90 days, today]``. It is
None when nothing was invoiced in that window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.i18n import N_
from core.models_summaries import ClientSummary, ReceivableDay
from core.receivables import summaries
from core.receivables.invoices import to_money
from core.tenancy import access
from core.tenancy.access import Viewer

DSO_WINDOW_DAYS = 90
FORECAST_WEEKS = 12
# (label, lowest days past due, highest days past due); None = open-ended.
BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    (N_("Not due"), None, 0),
    (N_("1–30 days"), 1, 30),
    (N_("31–60 days"), 31, 60),
    (N_("61–90 days"), 61, 90),
    (N_("> 90 days"), 91, None),
)


@dataclass(frozen=True)
class Bucket:
    label: str
    amount: Decimal


@dataclass(frozen=True)
class Week:
    start: date
    amount: Decimal

    @property
    def end(self) -> date:
        return self.start + timedelta(days=6)


@dataclass
class Summary:
    currency: str
    today: date
    amount_due: Decimal = Decimal("0.00")
    overdue: Decimal = Decimal("0.00")
    invoiced_window: Decimal = Decimal("0.00")
    dso_days: float | None = None
    ageing: list[Bucket] = field(default_factory=list)
    expected_overdue: Decimal = Decimal("0.00")  # still expected from due dates already past
    weeks: list[Week] = field(default_factory=list)


def _days(session: Session, viewer: Viewer, currency: str, kind: str, *where: Any) -> dict[date, int]:
    """Cents per day of one kind of ``receivable_days`` over a date range, for what the viewer may see."""
    # The tenant-wide rows for those who see everything; the assigned clients' rows otherwise.
    clients = (access.client_clause(viewer, ReceivableDay.client_id) if viewer.restricted
               else ReceivableDay.client_id == summaries.ALL_CLIENTS)
    stmt = (
        select(ReceivableDay.day, func.sum(ReceivableDay.cents))
        .where(ReceivableDay.tenant_id == viewer.tenant_id, ReceivableDay.currency == currency,
               ReceivableDay.kind == kind, clients, *where)
        .group_by(ReceivableDay.day)
    )
    return {day: int(total or 0) for day, total in session.execute(stmt)}


def _ageing(dated_due: int, recent_due: dict[date, int], today: date) -> list[Bucket]:
    """Buckets by days past due (d = today - due date). ``recent_due`` covers due dates from
    ``today - 90`` on; everything older (the open-ended bucket) is the dated total less those."""
    amounts = [0] * len(BUCKETS)
    for day, total in recent_due.items():
        past = (today - day).days
        for index, (_label, low, high) in enumerate(BUCKETS):
            if (low is None or past >= low) and (high is None or past <= high):
                amounts[index] += total
                break
    amounts[-1] += dated_due - sum(recent_due.values())
    return [Bucket(label, to_money(amounts[i])) for i, (label, _l, _h) in enumerate(BUCKETS)]


def _forecast(expected_total: int, coming: dict[date, int], today: date) -> tuple[Decimal, list[Week]]:
    """Expected cash-in by week from the expected movements, less what was paid since on each invoice
    (invoices paid in full expect nothing more). ``coming`` holds the expected dates from today on;
    what was expected before today is the total less those."""
    weekly = [0] * FORECAST_WEEKS
    for day, total in coming.items():
        if (day - today).days < FORECAST_WEEKS * 7:
            weekly[(day - today).days // 7] += total
    weeks = [Week(today + timedelta(weeks=i), to_money(v)) for i, v in enumerate(weekly)]
    return to_money(expected_total - sum(coming.values())), weeks


def summary(session: Session, viewer: Viewer, *, currency: str, today: date) -> Summary:
    """Read from the maintained summaries (``core.receivables.summaries``): the totals per client, and
    date ranges of ``receivable_days`` around today, never the whole invoice history."""
    due, undated, expected = session.execute(
        select(func.sum(ClientSummary.due_cents), func.sum(ClientSummary.undated_cents),
               func.sum(ClientSummary.expected_cents))
        .where(ClientSummary.tenant_id == viewer.tenant_id, ClientSummary.currency == currency,
               access.client_clause(viewer, ClientSummary.client_id))
    ).one()
    due, dated = int(due or 0), int(due or 0) - int(undated or 0)
    oldest_bucket = today - timedelta(days=max(high for _l, _low, high in BUCKETS if high is not None))
    recent_due = _days(session, viewer, currency, summaries.DUE, ReceivableDay.day >= oldest_bucket)
    not_due = sum(total for day, total in recent_due.items() if day >= today)
    window_start = today - timedelta(days=DSO_WINDOW_DAYS)
    invoiced = sum(_days(session, viewer, currency, summaries.INVOICED, ReceivableDay.day > window_start,
                         ReceivableDay.day <= today).values())
    result = Summary(currency=currency, today=today, amount_due=to_money(due), overdue=to_money(dated - not_due),
                     invoiced_window=to_money(invoiced))
    if result.invoiced_window > 0:
        result.dso_days = round(float(result.amount_due / result.invoiced_window) * DSO_WINDOW_DAYS, 1)
    result.ageing = _ageing(dated, recent_due, today)
    coming = _days(session, viewer, currency, summaries.EXPECTED, ReceivableDay.day >= today)
    result.expected_overdue, result.weeks = _forecast(int(expected or 0), coming, today)
    return result


# Charts ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    label: str
    value: Decimal
    x: float
    y: float
    width: float
    height: float


def bars(points: list[tuple[str, Decimal]], width: int = 600, height: int = 200, gap: int = 8) -> list[Bar]:
    """Geometry of a bar chart (the template draws it as inline SVG, which the CSP allows)."""
    if not points:
        return []
    top = max((value for _l, value in points), default=Decimal("0")) or Decimal("1")
    slot = width / len(points)
    result = []
    for i, (label, value) in enumerate(points):
        h = float(max(value, Decimal("0")) / top) * (height - 20)
        result.append(Bar(label, value, i * slot + gap / 2, height - h, slot - gap, h))
    return result
