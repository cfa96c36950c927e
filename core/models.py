"""The domain model.

An inbound *message* is stored raw before it is acknowledged; unpacking it yields *documents* (one per
file, each file stored content-addressed per tenant). A reviewer validates a document into an *invoice*
(an invoice or a credit note) with a *direction*: receivable (issued by the tenant to a client, the first
use case) or payable (received from a supplier), so that payables and accounting exports fit later.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Money(TypeDecorator[Decimal]):
    """Exact decimal amounts: NUMERIC on PostgreSQL, text on SQLite (which has no decimal type)."""

    impl = Numeric(18, 2)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(32))
        return dialect.type_descriptor(Numeric(18, 2))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(value).quantize(Decimal("0.01"))
        return str(value) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else Decimal(str(value)).quantize(Decimal("0.01"))


class Role(enum.StrEnum):
    ADMIN = "admin"
    MEMBER = "member"
    SUPPORT = "support"


class MessageSource(enum.StrEnum):
    SMTP = "smtp"
    IMAP = "imap"
    UPLOAD = "upload"


class MessageStatus(enum.StrEnum):
    RECEIVED = "received"  # stored durably, no job queued yet
    QUEUED = "queued"
    PROCESSED = "processed"
    IGNORED = "ignored"
    FAILED = "failed"


class DocumentStatus(enum.StrEnum):
    EXTRACTING = "extracting"
    PENDING = "pending"  # pending verification by a person
    DUPLICATE = "duplicate"
    VALIDATED = "validated"
    FAILED = "failed"
    DISCARDED = "discarded"


class DocType(enum.StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class Direction(enum.StrEnum):
    RECEIVABLE = "receivable"  # issued by the tenant to a client
    PAYABLE = "payable"  # received by the tenant from a supplier


class InvoiceStatus(enum.StrEnum):
    OPEN = "open"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"


class Tenant(Base):
    __tablename__ = "tenants"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    restrict_access: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    addresses: Mapped[list[InboundAddress]] = relationship(back_populates="tenant", order_by="InboundAddress.id")


class InboundAddress(Base):
    """A tenant's inbound address; the local part is stored lower-case and unique across tenants."""

    __tablename__ = "inbound_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    local_part: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    retires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant] = relationship(back_populates="addresses")


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="user", order_by="Membership.id")


class Membership(Base):
    """A user's role in one tenant; a user may belong to several tenants."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "tenant_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))

    user: Mapped[User] = relationship(back_populates="memberships")
    tenant: Mapped[Tenant] = relationship()


class ApiToken(Base):
    """A bearer token; only its SHA-256 is stored, the token itself is shown once."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()
    tenant: Mapped[Tenant] = relationship()


class InboundMessage(Base):
    """One received email (or upload) for one tenant, stored raw before it was acknowledged."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_tenant_received", "tenant_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(16), default=MessageSource.SMTP.value)
    recipient: Mapped[str] = mapped_column(String(320))
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    message_id_header: Mapped[str | None] = mapped_column(String(998))
    peer: Mapped[str | None] = mapped_column(String(64))
    raw_key: Mapped[str] = mapped_column(String(255))
    raw_sha256: Mapped[str] = mapped_column(String(64))
    raw_size: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=MessageStatus.RECEIVED.value, index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant] = relationship()
    documents: Mapped[list[Document]] = relationship(back_populates="message", order_by="Document.part_index")


class StoredFile(Base):
    """A file stored content-addressed (SHA-256) per tenant: the same bytes are kept once."""

    __tablename__ = "files"
    __table_args__ = (UniqueConstraint("tenant_id", "sha256"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(100))
    storage_key: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Client(Base):
    """A counterparty of the tenant: a client for receivables (a supplier for payables later)."""

    __tablename__ = "clients"
    __table_args__ = (UniqueConstraint("tenant_id", "normalized_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    normalized_name: Mapped[str] = mapped_column(String(300))
    vat_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InvoiceFields:
    """Columns shared by a document under review and a validated invoice."""

    doc_type: Mapped[str | None] = mapped_column(String(16))
    number: Mapped[str | None] = mapped_column(String(100))
    title: Mapped[str | None] = mapped_column(String(300))
    issuer: Mapped[str | None] = mapped_column(String(300))
    amount: Mapped[Decimal | None] = mapped_column(Money)
    net_amount: Mapped[Decimal | None] = mapped_column(Money)
    tax_amount: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    issue_date: Mapped[date | None] = mapped_column(Date)
    due_date: Mapped[date | None] = mapped_column(Date)


class Document(InvoiceFields, Base):
    """One file taken from a message (or an upload), on its way through extraction and review."""

    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("message_id", "part_index"),
        Index("ix_documents_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    part_index: Mapped[int] = mapped_column(Integer, default=0)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"))
    filename: Mapped[str] = mapped_column(String(255))
    direction: Mapped[str] = mapped_column(String(16), default=Direction.RECEIVABLE.value)
    status: Mapped[str] = mapped_column(String(16), default=DocumentStatus.EXTRACTING.value)
    reason: Mapped[str | None] = mapped_column(Text)
    client: Mapped[str | None] = mapped_column(String(300))
    extraction_source: Mapped[str | None] = mapped_column(String(64))
    # Per field: {"source": ..., "confidence": 0..1}; the review page shows where to look first.
    field_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    validated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    message: Mapped[InboundMessage | None] = relationship(back_populates="documents")
    file: Mapped[StoredFile] = relationship()
    duplicate_of: Mapped[Invoice | None] = relationship(foreign_keys=[duplicate_of_id])
    invoice: Mapped[Invoice | None] = relationship(foreign_keys=[invoice_id])


class Invoice(InvoiceFields, Base):
    """A validated invoice or credit note. Its number is frozen once validated."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "direction", "doc_type", "number_key"),
        Index("ix_invoices_tenant_type", "tenant_id", "doc_type", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    direction: Mapped[str] = mapped_column(String(16), default=Direction.RECEIVABLE.value)
    number_key: Mapped[str] = mapped_column(String(100))  # normalised number for duplicate checks
    client_id: Mapped[int | None] = mapped_column(ForeignKey("clients.id", ondelete="SET NULL"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=InvoiceStatus.OPEN.value)
    amount_paid: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    paid_at: Mapped[date | None] = mapped_column(Date)  # date of the payment that settled it
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"))
    document_id: Mapped[int | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL", use_alter=True)
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    validated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    client: Mapped[Client | None] = relationship()
    file: Mapped[StoredFile] = relationship(foreign_keys=[file_id])
    attachments: Mapped[list[InvoiceFile]] = relationship(back_populates="invoice", order_by="InvoiceFile.id")


class InvoiceFile(Base):
    """Further files attached to an invoice (e.g. a re-sent copy linked by the duplicate flow)."""

    __tablename__ = "invoice_files"
    __table_args__ = (UniqueConstraint("invoice_id", "file_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"))
    document_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id", ondelete="SET NULL"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    invoice: Mapped[Invoice] = relationship(back_populates="attachments")
    file: Mapped[StoredFile] = relationship()


class AuditEvent(Base):
    """Who did what to which tenant's data: support staff's reads, settings changes, decisions.

    The tenant's admins can read their tenant's trail; nothing in the application updates or deletes it.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_email: Mapped[str] = mapped_column(String(254), default="")  # kept if the user is deleted
    action: Mapped[str] = mapped_column(String(64))  # e.g. "support.view_imports", "settings.update"
    target: Mapped[str | None] = mapped_column(String(200))  # e.g. "document:42"
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
