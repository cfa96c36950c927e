"""Receivables: what each client owes, the expected cash movements, and the invoice's own lifecycle
(attach a file, delete the invoice).

Balances are computed on read with aggregate queries rather than kept in denormalised columns: they
read the invoices' ``amount``, ``amount_paid``, ``status``, ``due_date`` and ``paid_at``, so they stay
true whoever changes those (bank reconciliation marks invoices paid without knowing about this module),
and the queries use the ``(tenant_id, doc_type, status)`` index. Amounts are summed in integer cents so
that SQLite (which stores money as text) adds exactly, like PostgreSQL's NUMERIC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Float, Select, and_, case, cast, delete, func, or_, select
from sqlalchemy.orm import Session

from core.models import (
    CashDirection,
    CashKind,
    CashMovement,
    Client,
    DocType,
    Document,
    DocumentStatus,
    Invoice,
    InvoiceFile,
    InvoiceStatus,
    StoredFile,
)
from core.services import NotFound, ServiceError, access
from core.services.access import Viewer

CENT = Decimal("0.01")
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
SORTS = ("amount_due", "-amount_due", "overdue", "-overdue", "name", "-name")
DEFAULT_CURRENCY = "EUR"


# SQL building blocks -------------------------------------------------------------------------


def _is_sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def cents(session: Session, column: Any) -> ColumnElement[int]:
    """A money column as integer cents (exact on both backends)."""
    if _is_sqlite(session):
        return cast(func.round(cast(column, Float) * 100), BigInteger)
    return cast(column * 100, BigInteger)


def days_between(session: Session, later: Any, earlier: Any) -> ColumnElement[Any]:
    """``later - earlier`` in days, for two DATE columns."""
    if _is_sqlite(session):
        return func.julianday(later) - func.julianday(earlier)
    return later - earlier


def to_money(value_cents: Any) -> Decimal:
    return (Decimal(int(value_cents or 0)) / 100).quantize(CENT)


def outstanding_cents(session: Session) -> ColumnElement[int]:
    """What is still owed on one invoice: amount minus what has been paid, never below zero."""
    diff = cents(session, Invoice.amount) - cents(session, Invoice.amount_paid)
    return case((diff > 0, diff), else_=0)


def unpaid_invoices(tenant_id: int, currency: str) -> ColumnElement[bool]:
    """Receivable invoices (not credit notes) still owed something, in one currency."""
    return and_(
        Invoice.tenant_id == tenant_id,
        Invoice.direction == "receivable",
        Invoice.doc_type == DocType.INVOICE.value,
        Invoice.status != InvoiceStatus.PAID.value,
        Invoice.currency == currency,
    )


# Currencies ----------------------------------------------------------------------------------


def currencies_in_use(session: Session, viewer: Viewer) -> list[str]:
    """The currencies of the viewer's invoices, the most used first (amounts are never mixed)."""
    stmt = (
        select(Invoice.currency, func.count())
        .where(Invoice.tenant_id == viewer.tenant_id, Invoice.currency.is_not(None), access.invoice_clause(viewer))
        .group_by(Invoice.currency)
        .order_by(func.count().desc(), Invoice.currency)
    )
    return [row[0] for row in session.execute(stmt)]


def pick_currency(session: Session, viewer: Viewer, wanted: str | None) -> tuple[str, list[str]]:
    used = currencies_in_use(session, viewer)
    if wanted and wanted.upper() in used:
        return wanted.upper(), used
    return (used[0] if used else DEFAULT_CURRENCY), used


# Client balances -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientBalance:
    client_id: int
    name: str
    amount_due: Decimal
    overdue: Decimal
    open_invoices: int
    available_credit: Decimal
    average_delay_days: float | None  # mean of (paid_at - due_date) over paid invoices; < 0 is early


@dataclass(frozen=True)
class RowPage:
    items: list[ClientBalance]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def _balances_subquery(session: Session, tenant_id: int, currency: str, today: date,
                       client_id: int | None = None) -> Any:
    owed = outstanding_cents(session)
    unpaid = unpaid_invoices(tenant_id, currency)
    is_credit = and_(
        Invoice.tenant_id == tenant_id,
        Invoice.doc_type == DocType.CREDIT_NOTE.value,
        Invoice.status != InvoiceStatus.PAID.value,
        Invoice.currency == currency,
    )
    paid = and_(
        Invoice.doc_type == DocType.INVOICE.value,
        Invoice.paid_at.is_not(None),
        Invoice.due_date.is_not(None),
        Invoice.currency == currency,
    )
    where = [Invoice.tenant_id == tenant_id, Invoice.client_id.is_not(None)]
    if client_id is not None:  # one client: aggregate its invoices only (uses the client_id index)
        where.append(Invoice.client_id == client_id)
    return (
        select(
            Invoice.client_id.label("client_id"),
            func.sum(case((unpaid, owed), else_=0)).label("due"),
            func.sum(case((and_(unpaid, Invoice.due_date < today), owed), else_=0)).label("overdue"),
            func.sum(case((unpaid, 1), else_=0)).label("open_count"),
            func.sum(case((is_credit, owed), else_=0)).label("credit"),
            func.avg(case((paid, cast(days_between(session, Invoice.paid_at, Invoice.due_date), Float)))).label(
                "delay"
            ),
        )
        .where(*where)
        .group_by(Invoice.client_id)
        # Aggregated once, then joined: with stale statistics (right after a large import) PostgreSQL
        # otherwise may re-aggregate per client in a nested loop (minutes instead of milliseconds).
        .cte("balances")
        .prefix_with("MATERIALIZED", dialect="postgresql")
    )


def _balances_select(session: Session, viewer: Viewer, currency: str, today: date,
                     client_id: int | None = None) -> tuple[Select[Any], Any]:
    sub = _balances_subquery(session, viewer.tenant_id, currency, today, client_id)
    stmt = (
        select(
            Client.id,
            Client.name,
            func.coalesce(sub.c.due, 0),
            func.coalesce(sub.c.overdue, 0),
            func.coalesce(sub.c.open_count, 0),
            func.coalesce(sub.c.credit, 0),
            sub.c.delay,
        )
        .outerjoin(sub, sub.c.client_id == Client.id)
        .where(Client.tenant_id == viewer.tenant_id)
    )
    return access.scope_clients(stmt, viewer), sub


def _row(row: Any) -> ClientBalance:
    return ClientBalance(
        client_id=row[0],
        name=row[1],
        amount_due=to_money(row[2]),
        overdue=to_money(row[3]),
        open_invoices=int(row[4] or 0),
        available_credit=to_money(row[5]),
        average_delay_days=None if row[6] is None else round(float(row[6]), 1),
    )


def client_balances(
    session: Session,
    viewer: Viewer,
    *,
    currency: str,
    today: date,
    sort: str = "-amount_due",
    page: int = 1,
    per_page: int = 50,
) -> RowPage:
    """One row per client the viewer may see, with its balance in ``currency``; paginated, sorted."""
    stmt, sub = _balances_select(session, viewer, currency, today)
    sort = sort if sort in SORTS else "-amount_due"
    key = {"amount_due": func.coalesce(sub.c.due, 0), "overdue": func.coalesce(sub.c.overdue, 0),
           "name": Client.normalized_name}[sort.lstrip("-")]
    order = key.desc() if sort.startswith("-") else key.asc()
    stmt = stmt.order_by(order, Client.normalized_name, Client.id)
    page, per_page = max(1, page), min(200, max(1, per_page))
    total = session.scalar(
        access.scope_clients(select(func.count(Client.id)).where(Client.tenant_id == viewer.tenant_id), viewer)
    ) or 0
    rows = session.execute(stmt.limit(per_page).offset((page - 1) * per_page)).all()
    return RowPage(items=[_row(r) for r in rows], page=page, per_page=per_page, total=total)


def client_balance(session: Session, viewer: Viewer, client_id: int, *, currency: str, today: date) -> ClientBalance:
    stmt, _sub = _balances_select(session, viewer, currency, today, client_id)
    row = session.execute(stmt.where(Client.id == client_id)).first()
    if row is None:
        raise NotFound("no such client")
    return _row(row)


def get_client(session: Session, viewer: Viewer, client_id: int) -> Client:
    client = session.get(Client, client_id)
    if client is None:
        raise NotFound("no such client")
    return access.check_client(session, viewer, client)


def client_invoices_query(viewer: Viewer, client_id: int, doc_type: DocType) -> Select[Any]:
    """The client's invoices (or credit notes) not yet settled, oldest due first."""
    stmt = select(Invoice).where(
        Invoice.tenant_id == viewer.tenant_id,
        Invoice.client_id == client_id,
        Invoice.doc_type == doc_type.value,
        Invoice.status != InvoiceStatus.PAID.value,
    )
    return access.scope_invoices(stmt, viewer).order_by(Invoice.due_date, Invoice.issue_date, Invoice.id)


def client_documents_query(tenant_id: int, client: Client) -> Select[Any]:
    """Documents received from or for the client: those validated into (or duplicating) one of its
    invoices, and those under review whose extracted client name is the client's."""
    of_client = select(Invoice.id).where(Invoice.tenant_id == tenant_id, Invoice.client_id == client.id)
    stmt = select(Document).where(
        Document.tenant_id == tenant_id,
        or_(
            Document.invoice_id.in_(of_client),
            Document.duplicate_of_id.in_(of_client),
            and_(Document.invoice_id.is_(None), func.lower(Document.client) == client.name.lower()),
        ),
    )
    return stmt.order_by(Document.created_at.desc(), Document.id.desc())


def client_names(session: Session, viewer: Viewer, limit: int = 500) -> list[str]:
    """Names for the review page's client picker (the viewer's clients, alphabetical)."""
    stmt = access.scope_clients(select(Client.name).where(Client.tenant_id == viewer.tenant_id), viewer)
    return list(session.scalars(stmt.order_by(Client.normalized_name).limit(limit)))


# Cash movements ------------------------------------------------------------------------------


def record_expected_cash(session: Session, invoice: Invoice) -> CashMovement | None:
    """The cash the invoice should bring (or cost) at its due date; none for a credit note, which moves
    no cash by itself. Called inside the validation's transaction."""
    if invoice.doc_type != DocType.INVOICE.value or invoice.due_date is None or invoice.amount is None:
        return None
    movement = CashMovement(
        tenant_id=invoice.tenant_id,
        invoice_id=invoice.id,
        direction=(CashDirection.IN if invoice.direction == "receivable" else CashDirection.OUT).value,
        kind=CashKind.EXPECTED.value,
        expected_date=invoice.due_date,
        amount=invoice.amount,
        currency=invoice.currency or DEFAULT_CURRENCY,
    )
    session.add(movement)
    session.flush()
    return movement


def cash_movements(session: Session, tenant_id: int, invoice_id: int) -> list[CashMovement]:
    stmt = select(CashMovement).where(CashMovement.tenant_id == tenant_id, CashMovement.invoice_id == invoice_id)
    return list(session.scalars(stmt.order_by(CashMovement.expected_date, CashMovement.id)))


# The invoice's lifecycle ---------------------------------------------------------------------


def delete_invoice(session: Session, viewer: Viewer, invoice_id: int, reason: str) -> list[int]:
    """Delete a validated invoice (admin only): its cash movements and attachment links go, the
    documents that made it go back to *discarded* with the reason, and every file stays stored.
    Returns the ids of those documents."""
    access.require_admin(viewer)
    invoice = session.get(Invoice, invoice_id)
    if invoice is None or invoice.tenant_id != viewer.tenant_id:
        raise NotFound("no such invoice")
    if invoice.status != InvoiceStatus.OPEN.value or (invoice.amount_paid or 0) > 0:
        # Payments matched by bank reconciliation point at it: undo those matches first, so that no
        # bank transaction is left reconciled against nothing.
        raise ServiceError("a payment is recorded on this invoice: undo its payment matches before deleting it")
    reason = " ".join((reason or "").split())[:500]
    if not reason:
        raise ServiceError("say why the invoice is deleted (the reason is kept on its documents)")
    note = f"Invoice {invoice.number} deleted: {reason}"
    touched = list(
        session.scalars(
            select(Document).where(
                Document.tenant_id == viewer.tenant_id,
                or_(Document.invoice_id == invoice.id, Document.duplicate_of_id == invoice.id,
                    Document.id == invoice.document_id),
            )
        )
    )
    for doc in touched:
        if doc.invoice_id == invoice.id or doc.id == invoice.document_id:
            doc.status, doc.reason, doc.invoice_id = DocumentStatus.DISCARDED.value, note, None
        if doc.duplicate_of_id == invoice.id:
            doc.duplicate_of_id = None
            if doc.status == DocumentStatus.DUPLICATE.value:  # nothing to be a duplicate of any more
                doc.status, doc.reason = DocumentStatus.PENDING.value, None
    invoice.document_id = None
    session.flush()
    session.execute(delete(CashMovement).where(CashMovement.invoice_id == invoice.id))
    session.execute(delete(InvoiceFile).where(InvoiceFile.invoice_id == invoice.id))
    session.expire(invoice, ["attachments"])
    session.delete(invoice)
    session.flush()
    return [doc.id for doc in touched]


def sniff_content_type(data: bytes) -> str:
    """The type from the bytes themselves (the browser's claim is not trusted)."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.lstrip()[:5] == b"<?xml" or data.lstrip()[:1] == b"<":
        return "application/xml"
    return "application/octet-stream"


def attach_file(session: Session, storage: Any, viewer: Viewer, invoice_id: int, data: bytes) -> StoredFile:
    """Attach a file to an existing invoice as is: no extraction, no review. Idempotent per content."""
    from core.services.processing import store_file

    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound("no such invoice")
    access.check_invoice(session, viewer, invoice)
    if not data:
        raise ServiceError("the file is empty")
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise ServiceError(f"the file is larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
    stored = store_file(session, storage, viewer.tenant_id, data, sniff_content_type(data))
    already = invoice.file_id == stored.id or session.scalar(
        select(func.count()).where(InvoiceFile.invoice_id == invoice.id, InvoiceFile.file_id == stored.id)
    )
    if not already:
        session.add(InvoiceFile(invoice_id=invoice.id, file_id=stored.id))
        session.flush()
    return stored
