"""Tables of the payables area: approvals, IBAN changes waiting for an admin, payment runs, manual payments.

Every row carries its ``tenant_id``; services scope every query by it.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base
from core.models import Money, UTCDateTime, utcnow


class PayableApproval(Base):
    """One approval of a payable: step 1, and step 2 by another person when the policy asks for it."""

    __tablename__ = "payable_approvals"
    __table_args__ = (UniqueConstraint("invoice_id", "step"), UniqueConstraint("invoice_id", "user_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    user_email: Mapped[str] = mapped_column(String(254), default="")  # kept if the user is deleted
    step: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SupplierIbanChange(Base):
    """A new IBAN for a supplier that already had one: used for payments only once an admin confirms it
    (a changed IBAN on a "new" invoice is the classic invoice fraud)."""

    __tablename__ = "supplier_iban_changes"
    __table_args__ = (Index("ix_supplier_iban_changes_supplier", "tenant_id", "supplier_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    supplier_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    old_iban: Mapped[str | None] = mapped_column(String(34))
    new_iban: Mapped[str] = mapped_column(String(34))
    source: Mapped[str] = mapped_column(String(64))  # "invoice:12", "user"
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | confirmed | rejected
    requested_by: Mapped[str] = mapped_column(String(254), default="")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(254))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PaymentRun(Base):
    """A SEPA credit-transfer file for approved payables due by a date; the XML is kept as produced."""

    __tablename__ = "payment_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    due_by: Mapped[date] = mapped_column(Date)
    execution_date: Mapped[date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    debtor_iban: Mapped[str] = mapped_column(String(34))
    total_cents: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer)
    xml: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    items: Mapped[list[PaymentRunItem]] = relationship(back_populates="run", order_by="PaymentRunItem.id")


class PaymentRunItem(Base):
    """One transfer of a run: the invoice it pays, to which IBAN, for how much (cents)."""

    __tablename__ = "payment_run_items"
    __table_args__ = (UniqueConstraint("run_id", "invoice_id"), Index("ix_payment_run_items_invoice", "invoice_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(ForeignKey("payment_runs.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    supplier_name: Mapped[str] = mapped_column(String(300))
    iban: Mapped[str] = mapped_column(String(34))
    amount_cents: Mapped[int] = mapped_column(BigInteger)
    end_to_end_id: Mapped[str] = mapped_column(String(35))

    run: Mapped[PaymentRun] = relationship(back_populates="items")


class ManualPayment(Base):
    """A payable paid another way (cheque, card, a transfer made at the bank), marked by a person."""

    __tablename__ = "manual_payments"
    __table_args__ = (Index("ix_manual_payments_invoice", "tenant_id", "invoice_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"))
    paid_on: Mapped[date] = mapped_column(Date)
    method: Mapped[str] = mapped_column(String(16))  # transfer | card | cheque | cash | direct_debit | other
    amount: Mapped[Decimal] = mapped_column(Money)
    user_email: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
