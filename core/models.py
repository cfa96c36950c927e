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
    BigInteger,
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
    false,
    text,
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
    ACCOUNTANT = "accountant"  # a member who also keeps the books: posts, reverses, exports, edits the chart


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
    QUARANTINED = "quarantined"  # sender not on the tenant's allow-list: held until released or deleted


class DocumentStatus(enum.StrEnum):
    EXTRACTING = "extracting"
    PENDING = "pending"  # pending verification by a person
    DUPLICATE = "duplicate"
    VALIDATED = "validated"
    FAILED = "failed"
    DISCARDED = "discarded"


# Documents waiting for a person: the review queue (pending, and duplicates awaiting a choice).
REVIEW_STATUSES = (DocumentStatus.PENDING.value, DocumentStatus.DUPLICATE.value)


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
    # What becomes of mail that fails DMARC (core.inbound.senderauth): accept | quarantine | refuse.
    dmarc_action: Mapped[str] = mapped_column(String(16), default="accept", server_default="accept")
    # Who sends the bank's statements by mail (core.banking.transactions): addresses and @domains, one per line.
    # Only a statement from one of them, authenticated (DMARC pass or aligned DKIM), may apply matches.
    bank_senders: Mapped[str | None] = mapped_column(Text)
    # The company's identity (issue 18): who "we" are on a document decides its direction (issuer = us: a
    # sale; buyer = us: a purchase), and the accounting exports carry it (the FEC is named by the SIREN).
    legal_name: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2, upper case
    siren: Mapped[str | None] = mapped_column(String(14))  # SIREN (9 digits) or SIRET (14), digits only
    vat_number: Mapped[str | None] = mapped_column(String(20))  # compact, upper case: FR40303265045
    iban: Mapped[str | None] = mapped_column(String(34))  # compact, upper case
    # The chart of accounts the company's accounting was seeded from: pcg (France), skr03, skr04 (Germany).
    chart: Mapped[str] = mapped_column(String(8), default="pcg", server_default="pcg")
    # The fiscal year's closing day, "MM-DD" (core.accounting.fiscal): a fiscal year is named by the year it
    # ends in. 31 December by default: calendar years.
    fiscal_year_end: Mapped[str] = mapped_column(String(5), default="12-31", server_default="12-31")
    # DATEV's Beraternummer and Mandantennummer: the header of a Buchungsstapel names the ledger it goes to.
    datev_consultant_number: Mapped[str | None] = mapped_column(String(7))
    datev_client_number: Mapped[str | None] = mapped_column(String(5))
    # Issue 17: every member must have a TOTP second factor to work on this company (core.tenancy.twofactor).
    require_2fa: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Approval of supplier invoices before they may be paid (core.payables.approval): "none", "one"
    # (one approver), "two_above" (a second, different approver when the amount exceeds the threshold).
    approval_mode: Mapped[str] = mapped_column(String(16), default="none", server_default="none")
    approval_threshold: Mapped[Decimal | None] = mapped_column(Money)
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

    @staticmethod
    def accepts_mail(retires_at: datetime | None, now: datetime) -> bool:
        """The one liveness rule (RCPT, the cached RCPT of the gateway, the settings page): an address is
        live until its ``retires_at``, to the second; without one, for good."""
        return retires_at is None or retires_at > now


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The dashboard language the person chose ("fr", "en"); None follows the browser.
    locale: Mapped[str | None] = mapped_column(String(8), nullable=True)

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
    label: Mapped[str] = mapped_column(String(100), default="", server_default="")  # what it is for
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: until revoked

    user: Mapped[User] = relationship()
    tenant: Mapped[Tenant] = relationship()


class InboundMessage(Base):
    """One received email (or upload) for one tenant, stored raw before it was acknowledged."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_tenant_received", "tenant_id", "received_at"),
        # Duplicate checks: by Message-ID (sender control) and by raw SHA-256 (IMAP after a UIDVALIDITY change).
        Index("ix_messages_tenant_message_id", "tenant_id", "message_id_header"),
        Index("ix_messages_tenant_raw_sha256", "tenant_id", "raw_sha256"),
    )

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
    # The reason as data (core/reasons.py): the catalogue template and its values; NULL on older rows.
    reason_code: Mapped[str | None] = mapped_column(Text)
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the raw e-mail was deleted by the retention (RAW_RETENTION_DAYS); its extracted files stay.
    raw_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Sender control: upstream Authentication-Results verdicts, the SMTP envelope sender, the earlier
    # message this one repeats, and who released it from quarantine (a release skips the allow-list).
    auth_results: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    envelope_sender: Mapped[str | None] = mapped_column(String(320))
    duplicate_of_message_id: Mapped[int | None] = mapped_column(Integer)
    released_by: Mapped[str | None] = mapped_column(String(254))
    # Sender authentication (core.mail.senderauth): the SMTP client's HELO name, kept for the SPF check
    # made by the worker, and the SPF/DKIM/DMARC verdicts (Verdicts.as_json), ours or a trusted relay's.
    helo: Mapped[str | None] = mapped_column(String(255))
    sender_auth: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Address rotation: which of the tenant's addresses the message was sent to, and whether that address
    # was retiring then (the Imports page asks the admin to update the forwarding rule still using it).
    inbound_address_id: Mapped[int | None] = mapped_column(
        ForeignKey("inbound_addresses.id", ondelete="SET NULL"), index=True
    )
    to_retiring_address: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

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


class CounterpartyRole(enum.StrEnum):
    CLIENT = "client"  # buys from the tenant: its invoices are receivables
    SUPPLIER = "supplier"  # sells to the tenant: its invoices are payables (core.payables)


class Client(Base):
    """A counterparty of the tenant: a client (receivables) or a supplier (payables), by ``role``.

    One table for both, so that invoices, bank matching and the access policy (assignments) treat them
    alike; a company that is both a client and a supplier has one row per role.
    """

    __tablename__ = "clients"
    __table_args__ = (UniqueConstraint("tenant_id", "role", "normalized_name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    normalized_name: Mapped[str] = mapped_column(String(300))
    vat_id: Mapped[str | None] = mapped_column(String(32))
    iban: Mapped[str | None] = mapped_column(String(64))  # issue 6: recognise the payer on bank statements
    role: Mapped[str] = mapped_column(String(16), default=CounterpartyRole.CLIENT.value, server_default="client")
    # A supplier's postal address, for the structured creditor address of a SEPA transfer.
    street: Mapped[str | None] = mapped_column(String(140))
    postcode: Mapped[str | None] = mapped_column(String(16))
    town: Mapped[str | None] = mapped_column(String(35))
    country: Mapped[str | None] = mapped_column(String(2))
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
    # The reason as data (core/reasons.py): the catalogue template and its values; NULL on older rows.
    reason_code: Mapped[str | None] = mapped_column(Text)
    reason_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    client: Mapped[str | None] = mapped_column(String(300))
    extraction_source: Mapped[str | None] = mapped_column(String(64))
    # Per field: {"source": ..., "confidence": 0..1}; the review page shows where to look first.
    field_info: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # What extraction found beyond the fields: an e-invoice's format, VAT breakdown and lines, identifiers
    # checked by their check digits (VAT ids, IBANs, SIREN/SIRET), notes on pages not read.
    extraction_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    duplicate_of_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    invoice_id: Mapped[int | None] = mapped_column(ForeignKey("invoices.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    validated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    validated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Split batches (issue 4): the DocumentSource this document was cut from, and its pages there (0-based).
    # No foreign key: adding one would rebuild the documents table on SQLite; queries scope by tenant.
    source_id: Mapped[int | None] = mapped_column(Integer, index=True)
    source_pages: Mapped[list[int] | None] = mapped_column(JSON)

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
        # Issue 17 item 6: the lists' search by amount, and by the text of the document an invoice came from.
        Index("ix_invoices_tenant_amount", "tenant_id", "amount"),
        Index("ix_invoices_document", "document_id"),
        # The lists' default order (newest issued first) and their issue-date range filter.
        Index("ix_invoices_tenant_issue", "tenant_id", "issue_date", "id"),
        # The suppliers list (core/payables/suppliers.py): its currencies, and what is due (unpaid payables).
        Index("ix_invoices_tenant_direction_currency", "tenant_id", "direction", "currency"),
        Index("ix_invoices_unpaid_payables", "tenant_id", "currency", "client_id",
              postgresql_where=text("direction = 'payable' AND status <> 'paid'"),
              sqlite_where=text("direction = 'payable' AND status <> 'paid'")),
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
    matches: Mapped[list[Match]] = relationship(back_populates="invoice", order_by="Match.id")  # bank payments


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


# --- Receivables (issue 5) ---


class CashDirection(enum.StrEnum):
    IN = "in"  # money the tenant expects to receive (a receivable)
    OUT = "out"  # money the tenant expects to pay (a payable)


class CashKind(enum.StrEnum):
    EXPECTED = "expected"  # recorded when an invoice is validated, at its due date
    ACTUAL = "actual"  # a payment that happened (written by bank reconciliation)


class CashMovement(Base):
    """A cash movement for the treasury forecast: expected at an invoice's due date, or actual.

    The forecast reads the invoice's ``amount_paid`` / ``status`` too, so a payment matched later
    reduces what is still expected without rewriting this row.
    """

    __tablename__ = "cash_movements"
    __table_args__ = (Index("ix_cash_movements_tenant_date", "tenant_id", "kind", "expected_date"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8), default=CashDirection.IN.value)
    kind: Mapped[str] = mapped_column(String(16), default=CashKind.EXPECTED.value)
    expected_date: Mapped[date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ClientAssignment(Base):
    """A client a member follows: with the tenant's *restrict access* on, members see only these."""

    __tablename__ = "client_assignments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "client_id", "user_id"),
        Index("ix_client_assignments_user", "tenant_id", "user_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    client_id: Mapped[int] = mapped_column(ForeignKey("clients.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    client: Mapped[Client] = relationship()


# --- Bank and reconciliation (issue 6) ---


class TransactionStatus(enum.StrEnum):
    UNMATCHED = "unmatched"
    SUGGESTED = "suggested"  # at least one match proposal waits for a person
    MATCHED = "matched"  # at least one applied match
    IGNORED = "ignored"  # explained without a document (a rule's category, or set aside by a person)


class MatchState(enum.StrEnum):
    SUGGESTED = "suggested"
    APPLIED = "applied"
    REJECTED = "rejected"  # refused by a person, or undone (then ``undone_at`` is set)


class BankAccount(Base):
    """One bank account of the tenant, known by its IBAN (or the identifier its statements give)."""

    __tablename__ = "bank_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "iban"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    iban: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200), default="")
    currency: Mapped[str | None] = mapped_column(String(3))
    # The CSV layout of this bank's exports (core.banking.CsvMapping fields), saved on first upload.
    csv_mapping: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    balance: Mapped[Decimal | None] = mapped_column(Money)  # closing balance of the latest statement
    balance_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BankTransaction(Base):
    """One booked (or pending) line of a bank statement; amount signed: + money in, - money out."""

    __tablename__ = "bank_transactions"
    __table_args__ = (
        UniqueConstraint("account_id", "fingerprint"),
        Index("ix_bank_transactions_tenant_status", "tenant_id", "status", "booking_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("bank_accounts.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    booking_date: Mapped[date] = mapped_column(Date)
    value_date: Mapped[date | None] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str | None] = mapped_column(String(3))
    counterparty: Mapped[str | None] = mapped_column(String(300))
    iban: Mapped[str | None] = mapped_column(String(64))
    remittance: Mapped[str] = mapped_column(Text, default="")
    reference: Mapped[str | None] = mapped_column(String(300))
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    # From a mailed statement whose sender was not the tenant's authenticated bank: never matched
    # automatically, only suggested; shown as unverified.
    unverified: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    category: Mapped[str | None] = mapped_column(String(100))
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("matching_rules.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(16), default=TransactionStatus.UNMATCHED.value)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    account: Mapped[BankAccount] = relationship()
    matches: Mapped[list[Match]] = relationship(back_populates="transaction", order_by="Match.id")


class Match(Base):
    """A transaction (or part of it) paying an invoice, or settling a credit note.

    ``amount`` is what the invoice is credited with; ``write_off`` is the part of it not received in
    cash (bank fees deducted, an early-payment discount): cash = amount - write_off.
    """

    __tablename__ = "matches"
    __table_args__ = (Index("ix_matches_tenant_state", "tenant_id", "state"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    transaction_id: Mapped[int] = mapped_column(ForeignKey("bank_transactions.id", ondelete="CASCADE"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id", ondelete="CASCADE"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    write_off: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    score: Mapped[int] = mapped_column(Integer, default=0)  # 0..100
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default=MatchState.SUGGESTED.value)
    created_by: Mapped[str] = mapped_column(String(8), default="auto")  # auto | user
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    transaction: Mapped[BankTransaction] = relationship(back_populates="matches")
    invoice: Mapped[Invoice] = relationship(back_populates="matches")


class MatchingRule(Base):
    """Recurring transactions without a document (bank fees, subscriptions) get a category."""

    __tablename__ = "matching_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    counterparty_pattern: Mapped[str | None] = mapped_column(String(200))  # case-insensitive substring
    text_pattern: Mapped[str | None] = mapped_column(String(200))  # in remittance / reference
    min_amount: Mapped[Decimal | None] = mapped_column(Money)  # signed bounds, inclusive
    max_amount: Mapped[Decimal | None] = mapped_column(Money)
    category: Mapped[str] = mapped_column(String(100))
    # The general-ledger account (of the tenant's chart) a categorised transaction is posted to, and the
    # VAT rate its amount includes: with an account, core.accounting drafts the bank entry (issue 18).
    account: Mapped[str | None] = mapped_column(String(20))
    vat_rate: Mapped[Decimal | None] = mapped_column(Money)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Forwarding confirmations ---


class ForwardingConfirmation(Base):
    """A provider's "confirm forwarding" email that reached a tenant's address: the code its admins need.

    ``authenticated`` is True only on a DKIM pass for the provider's domain (verified by us on receipt, or
    reported by a trusted receiving server), False when checked without one, None when nothing was checked;
    the raw upstream verdicts are kept as received.
    """

    __tablename__ = "forwarding_confirmations"
    __table_args__ = (Index("ix_forwarding_confirmations_tenant_received", "tenant_id", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    provider: Mapped[str] = mapped_column(String(16))  # "gmail" | "microsoft"
    code: Mapped[str | None] = mapped_column(String(16))
    link: Mapped[str | None] = mapped_column(String(2048))
    requester: Mapped[str | None] = mapped_column(String(320))
    sender: Mapped[str] = mapped_column(String(320), default="")
    subject: Mapped[str] = mapped_column(String(998), default="")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    authenticated: Mapped[bool | None] = mapped_column(Boolean)
    auth_results: Mapped[str] = mapped_column(Text, default="")
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message: Mapped[InboundMessage] = relationship()


# --- Mailboxes (IMAP) ---


class MailboxSecurity(enum.StrEnum):
    SSL = "ssl"  # implicit TLS (port 993)
    STARTTLS = "starttls"  # plain connect, then STARTTLS before login (port 143)
    PLAIN = "plain"  # no TLS: loopback test servers only


class MailboxAuth(enum.StrEnum):
    PASSWORD = "password"  # noqa: S105 - the name of a login method
    XOAUTH2 = "xoauth2"  # Gmail, Microsoft 365: an access token, or a refresh token exchanged for one


class Mailbox(Base):
    """An IMAP mailbox polled for a tenant, or by the operator (``tenant_id`` NULL: catch-all routing).

    Secrets (password, access/refresh tokens, OAuth client secret) are stored Fernet-encrypted
    (``core.secrets``); they are never shown back, logged or sent to the browser.
    """

    __tablename__ = "mailboxes"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=993)
    security: Mapped[str] = mapped_column(String(16), default=MailboxSecurity.SSL.value)
    username: Mapped[str] = mapped_column(String(320))
    auth: Mapped[str] = mapped_column(String(16), default=MailboxAuth.PASSWORD.value)
    secret_encrypted: Mapped[str | None] = mapped_column(Text)  # password, or OAuth2 access token
    oauth_provider: Mapped[str | None] = mapped_column(String(16))  # "google" | "microsoft"
    oauth_client_id: Mapped[str | None] = mapped_column(String(255))
    oauth_client_secret_encrypted: Mapped[str | None] = mapped_column(Text)
    oauth_refresh_token_encrypted: Mapped[str | None] = mapped_column(Text)
    # Connected through the OAuth2 flow ("Connect Gmail"): when, and the state of its tokens as the poller
    # last saw them (the access token's expiry; the last refused refresh, cleared by the next success).
    oauth_connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    oauth_token_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    oauth_refresh_error: Mapped[str | None] = mapped_column(Text)
    oauth_refresh_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    folder: Mapped[str] = mapped_column(String(255), default="INBOX")
    processed_folder: Mapped[str | None] = mapped_column(String(255))  # moved there once stored
    unrouted_folder: Mapped[str | None] = mapped_column(String(255))  # catch-all: what names no tenant
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where the poller is: the folder's UIDVALIDITY and the highest UID below which all is handled.
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the settings are saved (not on state updates): the poller restarts a mailbox when it changes.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MailboxImportOutcome(enum.StrEnum):
    STORED = "stored"  # stored for one tenant or more (message_ids)
    DUPLICATE = "duplicate"  # same Message-ID and bytes already stored for the tenant(s)
    UNROUTED = "unrouted"  # catch-all: no tenant address among the recipients
    REJECTED = "rejected"  # left in the mailbox, with a reason (e.g. too large)


class MailboxImport(Base):
    """What became of one IMAP message, keyed by (mailbox, UIDVALIDITY, UID): never imported twice.

    Written in the same transaction as the stored messages; ``settled`` turns true once the message
    was flagged \\Seen or moved, so a crash between the two finishes the flag on restart.
    """

    __tablename__ = "mailbox_imports"
    __table_args__ = (UniqueConstraint("mailbox_id", "uidvalidity", "uid"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    mailbox_id: Mapped[int] = mapped_column(ForeignKey("mailboxes.id", ondelete="CASCADE"))
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    uid: Mapped[int] = mapped_column(BigInteger)
    outcome: Mapped[str] = mapped_column(String(16))
    message_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    message_id_header: Mapped[str | None] = mapped_column(String(998))
    reason: Mapped[str | None] = mapped_column(Text)
    settled: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Sender control ---
# An optional per-tenant allow-list of sender addresses ("alice@example.com") and domains ("@example.com").


class SenderRule(Base):
    """One allowed sender: an address or ``@domain``, stored lower-case."""

    __tablename__ = "sender_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "pattern"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    pattern: Mapped[str] = mapped_column(String(320))
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- Several invoices in one file (issue 4) ---


class DocumentSource(Base):
    """A file that held several invoices (a scanned batch), split into one document per invoice.

    The source file stays stored; each document gets a PDF of its own pages (``Document.file_id``) and
    records them in ``Document.source_pages``. ``detection`` keeps what the splitter found and why.
    """

    __tablename__ = "document_sources"
    __table_args__ = (UniqueConstraint("message_id", "part_index"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    part_index: Mapped[int] = mapped_column(Integer, default=0)
    file_id: Mapped[int] = mapped_column(ForeignKey("files.id"))
    filename: Mapped[str] = mapped_column(String(255))
    page_count: Mapped[int] = mapped_column(Integer)
    detection: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    regrouped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    regrouped_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    file: Mapped[StoredFile] = relationship()
