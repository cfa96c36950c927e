"""Receivables analytics: amount due, overdue, ageing, DSO and the expected cash-in per week.

Everything is computed on read for one currency (amounts in different currencies are never added) and
for what the viewer may see (``core.services.access``). ``today`` is a parameter so that the numbers
are reproducible.

DSO (days sales outstanding) = amount due today / invoiced over the last 90 days x 90, where "invoiced"
is the total of receivable invoices (credit notes excluded) issued in ``(today - 90 days, today]``. It is
None when nothing was invoiced in that window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from core.models import CashDirection, CashKind, CashMovement, DocType, Invoice, InvoiceStatus
from core.services import access
from core.services.access import Viewer
from core.services.receivables import cents, outstanding_cents, to_money, unpaid_invoices

DSO_WINDOW_DAYS = 90
FORECAST_WEEKS = 12
# (label, lowest days past due, highest days past due); None = open-ended.
BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("Not due", None, 0),
    ("1–30 days", 1, 30),
    ("31–60 days", 31, 60),
    ("61–90 days", 61, 90),
    ("> 90 days", 91, None),
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


def _ageing(session: Session, viewer: Viewer, currency: str, today: date) -> list[Bucket]:
    owed = outstanding_cents(session)
    whens = []
    for index, (_label, low, high) in enumerate(BUCKETS):
        # days past due d = today - due_date; low <= d <= high  <=>  today - high <= due_date <= today - low
        conds = []
        if high is not None:
            conds.append(Invoice.due_date >= today - timedelta(days=high))
        if low is not None:
            conds.append(Invoice.due_date <= today - timedelta(days=low))
        whens.append((and_(*conds), index))
    bucket = case(*whens, else_=0).label("bucket")
    stmt = (
        select(bucket, func.sum(owed))
        .where(unpaid_invoices(viewer.tenant_id, currency), Invoice.due_date.is_not(None),
               access.invoice_clause(viewer))
        .group_by(bucket)
    )
    amounts = {int(index): to_money(total) for index, total in session.execute(stmt)}
    return [Bucket(label, amounts.get(i, Decimal("0.00"))) for i, (label, _l, _h) in enumerate(BUCKETS)]


def _forecast(session: Session, viewer: Viewer, currency: str, today: date) -> tuple[Decimal, list[Week]]:
    """Expected cash-in by week from the expected movements, less what was paid since on each invoice;
    invoices paid in full expect nothing more."""
    end = today + timedelta(weeks=FORECAST_WEEKS)
    expected = cents(session, CashMovement.amount) - cents(session, Invoice.amount_paid)
    remaining = case((expected > 0, expected), else_=0)
    stmt = (
        select(CashMovement.expected_date, func.sum(remaining))
        .join(Invoice, Invoice.id == CashMovement.invoice_id)
        .where(
            CashMovement.tenant_id == viewer.tenant_id,
            CashMovement.kind == CashKind.EXPECTED.value,
            CashMovement.direction == CashDirection.IN.value,
            CashMovement.currency == currency,
            CashMovement.expected_date < end,
            Invoice.status != InvoiceStatus.PAID.value,
            access.invoice_clause(viewer),
        )
        .group_by(CashMovement.expected_date)
    )
    past = 0
    weekly = [0] * FORECAST_WEEKS
    for day, total in session.execute(stmt):
        if day < today:
            past += int(total or 0)
        else:
            weekly[(day - today).days // 7] += int(total or 0)
    weeks = [Week(today + timedelta(weeks=i), to_money(v)) for i, v in enumerate(weekly)]
    return to_money(past), weeks


def summary(session: Session, viewer: Viewer, *, currency: str, today: date) -> Summary:
    owed = outstanding_cents(session)
    unpaid = and_(unpaid_invoices(viewer.tenant_id, currency), access.invoice_clause(viewer))
    due, overdue = session.execute(
        select(func.sum(owed), func.sum(case((Invoice.due_date < today, owed), else_=0))).where(unpaid)
    ).one()
    window_start = today - timedelta(days=DSO_WINDOW_DAYS)
    invoiced = session.scalar(
        select(func.sum(cents(session, Invoice.amount))).where(
            Invoice.tenant_id == viewer.tenant_id,
            Invoice.direction == "receivable",
            Invoice.doc_type == DocType.INVOICE.value,
            Invoice.currency == currency,
            Invoice.issue_date > window_start,
            Invoice.issue_date <= today,
            access.invoice_clause(viewer),
        )
    )
    result = Summary(currency=currency, today=today, amount_due=to_money(due), overdue=to_money(overdue),
                     invoiced_window=to_money(invoiced))
    if result.invoiced_window > 0:
        result.dso_days = round(float(result.amount_due / result.invoiced_window) * DSO_WINDOW_DAYS, 1)
    result.ageing = _ageing(session, viewer, currency, today)
    result.expected_overdue, result.weeks = _forecast(session, viewer, currency, today)
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
