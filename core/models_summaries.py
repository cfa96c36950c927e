"""Maintained receivables summaries (issue 5's performance goal): what the clients list and the analytics
page read instead of aggregating every invoice of the tenant on each request.

Both tables are derived data. ``core.receivables.summaries`` keeps them equal to the invoices and cash
movements in the same transaction as every change (a flush listener), and ``inbox summaries rebuild``
recomputes them from those rows. Amounts are integer cents, per currency (never mixed).

``client_id`` is 0 for invoices without a client (no foreign key: 0 is not a client), so that every
invoice is counted somewhere and the tenant-wide figures stay the sum of the rows.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.models import UTCDateTime, utcnow


class ClientSummary(Base):
    """One row per (tenant, client, currency): the client balance without its date-dependent part."""

    __tablename__ = "client_summaries"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: invoices without a client
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    invoice_count: Mapped[int] = mapped_column(BigInteger, default=0)  # every invoice: currencies in use
    due_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # still owed on unpaid receivable invoices
    open_count: Mapped[int] = mapped_column(BigInteger, default=0)
    undated_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # part of due_cents without a due date
    credit_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # open credit notes
    paid_count: Mapped[int] = mapped_column(BigInteger, default=0)  # paid invoices with a due date
    delay_days: Mapped[int] = mapped_column(BigInteger, default=0)  # sum of (paid_at - due_date) over those
    expected_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # expected cash-in still to come
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReceivableDay(Base):
    """Amounts by date, so that "overdue", ageing, DSO and the forecast read a date range of a small
    table rather than a stale flag: ``kind`` is "due" (still owed, by due date), "invoiced" (invoice
    totals by issue date) or "expected" (expected cash-in still to come, by expected date). Each amount
    is kept per client and once more under client_id -1 (the whole tenant). Rows whose count falls to
    zero are deleted."""

    __tablename__ = "receivable_days"
    __table_args__ = (Index("ix_receivable_days_range", "tenant_id", "currency", "kind", "day"),)

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[int] = mapped_column(Integer, primary_key=True)  # 0: without a client, -1: all
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    cents: Mapped[int] = mapped_column(BigInteger, default=0)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
