"""Persistence of the books: accounts, journals, entries and their lines, learned rules, fiscal years.

Lines keep their account's number *and* label as posted (a later rename does not rewrite a posted entry,
and the FEC streams without a join). Every table carries ``tenant_id``; queries filter on it.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base
from core.models import Money, UTCDateTime, utcnow


class EntryStatus(enum.StrEnum):
    TO_PROCESS = "to_process"  # something to fix or confirm (see ``issues``)
    READY = "ready"  # checked: can be posted
    POSTED = "posted"  # validated (ValidDate), frozen: corrected by reversal only


class LedgerAccount(Base):
    __tablename__ = "acc_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(20))
    label: Mapped[str] = mapped_column(String(200))
    is_vat: Mapped[bool] = mapped_column(Boolean, default=False)
    vat_rate: Mapped[Decimal | None] = mapped_column(Money)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Journal(Base):
    __tablename__ = "acc_journals"
    __table_args__ = (UniqueConstraint("tenant_id", "code"), UniqueConstraint("tenant_id", "bank_account_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(8))
    label: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # purchases | sales | bank | misc
    # A bank journal of one bank account (core.accounting.bankjournals) and its general-ledger account
    # (512001, 1201...); the seeded BQ journal has neither (entries from before one journal per account).
    bank_account_id: Mapped[int | None] = mapped_column(ForeignKey("bank_accounts.id", ondelete="SET NULL"))
    account: Mapped[str | None] = mapped_column(String(20))


class FiscalYear(Base):
    """The numbering of posted entries (EcritureNum, gapless per year) and whether the year is closed."""

    __tablename__ = "acc_fiscal_years"
    __table_args__ = (UniqueConstraint("tenant_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    last_number: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[bool] = mapped_column(Boolean, default=False)


class JournalEntry(Base):
    __tablename__ = "acc_entries"
    __table_args__ = (
        # One entry per source (an invoice, a match, a reversal): drafting twice finds the first one.
        UniqueConstraint("tenant_id", "source"),
        Index("ix_acc_entries_tenant_status", "tenant_id", "status", "entry_date"),
        Index("ix_acc_entries_tenant_year_number", "tenant_id", "fiscal_year", "number"),
        Index("ix_acc_entries_tenant_total", "tenant_id", "total"),  # the list's amount sort, range and search
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(40))  # "invoice:12", "match:5", "reversal:7", "manual:..."
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"), index=True)
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"), index=True)
    direction: Mapped[str | None] = mapped_column(String(16))
    journal: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default=EntryStatus.TO_PROCESS.value)
    entry_date: Mapped[date] = mapped_column(Date)  # EcritureDate
    piece_ref: Mapped[str] = mapped_column(String(100), default="")  # PieceRef
    piece_date: Mapped[date | None] = mapped_column(Date)  # PieceDate
    label: Mapped[str] = mapped_column(String(200), default="")  # EcritureLib
    total: Mapped[Decimal | None] = mapped_column(Money)  # the sum of the debits, kept by rows.write_row
    currency: Mapped[str | None] = mapped_column(String(3))  # the document's, when not the company's
    exchange_rate: Mapped[str | None] = mapped_column(String(24))  # company currency per unit, exact text
    issues: Mapped[list[str]] = mapped_column(JSON, default=list)  # why it is "to process"
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)  # to confirm by a person (cleared on confirm)
    edited: Mapped[bool] = mapped_column(Boolean, default=False)  # a person changed lines: rules leave it alone
    number: Mapped[int | None] = mapped_column(Integer)  # EcritureNum, given at posting
    fiscal_year: Mapped[int | None] = mapped_column(Integer)
    valid_date: Mapped[date | None] = mapped_column(Date)  # ValidDate
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    posted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reversal_of_id: Mapped[int | None] = mapped_column(ForeignKey("acc_entries.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    lines: Mapped[list[EntryLine]] = relationship(
        back_populates="entry", order_by="EntryLine.position", cascade="all, delete-orphan"
    )


class EntryLine(Base):
    __tablename__ = "acc_entry_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("acc_entries.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    account: Mapped[str] = mapped_column(String(20))  # CompteNum
    account_label: Mapped[str] = mapped_column(String(200), default="")  # CompteLib, frozen at posting
    aux: Mapped[str | None] = mapped_column(String(20))  # CompAuxNum
    aux_label: Mapped[str | None] = mapped_column(String(200))  # CompAuxLib
    label: Mapped[str] = mapped_column(String(200), default="")
    debit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    credit: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    vat_rate: Mapped[Decimal | None] = mapped_column(Money)
    amount_currency: Mapped[Decimal | None] = mapped_column(Money)  # Montantdevise
    currency: Mapped[str | None] = mapped_column(String(3))  # Idevise
    letter: Mapped[str | None] = mapped_column(String(8))  # EcritureLet
    letter_date: Mapped[date | None] = mapped_column(Date)  # DateLet

    entry: Mapped[JournalEntry] = relationship(back_populates="lines")


class CounterpartyRule(Base):
    """What posting taught about a client or supplier: the account, VAT rate and journal to use next time."""

    __tablename__ = "acc_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "client_id", "direction"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(16))
    account: Mapped[str | None] = mapped_column(String(20))
    vat_rate: Mapped[Decimal | None] = mapped_column(Money)
    journal: Mapped[str | None] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
