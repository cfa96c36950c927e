"""Receivables: what each client owes, the expected cash movements, and the invoice's own lifecycle
(attach a file, delete the invoice).

Balances are read from the maintained summaries (``core.models_summaries``): one row per client and
currency, kept equal to the invoices in the same transaction as every change by a flush listener
(``core.receivables.summaries``), whoever makes it (bank reconciliation marks invoices paid without
knowing about this module). What depends on today's date ("overdue") is not stored as a flag: it is the
amount due minus what falls due from today on, a short date range of ``receivable_days``. So the
clients list reads one row per client instead of every invoice of the tenant (issue 5: 100,000 invoices).
Amounts are integer cents so that SQLite (which stores money as text) adds exactly, like NUMERIC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Float, Select, and_, case, cast, func, or_, select
from sqlalchemy.orm import Session

from core.errors import NotFound, ServiceError
from core.files.records import store_file
from core.i18n import N_
from core.models import (
    CashDirection,
    CashKind,
    CashMovement,
    Client,
    CounterpartyRole,
    DocType,
    Document,
    Invoice,
    InvoiceFile,
    InvoiceStatus,
    StoredFile,
    User,
)
from core.models_summaries import ClientSummary, ReceivableDay
from core.paging import Page, bounds
from core.receivables import summaries
from core.tenancy import access, audit
from core.tenancy.access import Viewer
from core.textsearch import contains, like_pattern

CENT = Decimal("0.01")
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
SORTS = ("amount_due", "-amount_due", "overdue", "-overdue", "name", "-name")
DEFAULT_CURRENCY = "EUR"


# SQL building blocks -------------------------------------------------------------------------


def to_money(value_cents: Any) -> Decimal:
    return (Decimal(int(value_cents or 0)) / 100).quantize(CENT)


# Currencies ----------------------------------------------------------------------------------


def currencies_in_use(session: Session, viewer: Viewer) -> list[str]:
    """The currencies of the viewer's invoices, the most used first (amounts are never mixed)."""
    used = func.sum(ClientSummary.invoice_count)
    stmt = (
        select(ClientSummary.currency, used)
        .where(ClientSummary.tenant_id == viewer.tenant_id, access.client_clause(viewer, ClientSummary.client_id))
        .group_by(ClientSummary.currency)
        .having(used > 0)
        .order_by(used.desc(), ClientSummary.currency)
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


def not_yet_due(viewer: Viewer, currency: str, today: date, clients: Any = None) -> Any:
    """Per client, what is owed on invoices due today or later: overdue = due - undated - this. Only
    the dates from today on are read (a short range of ``receivable_days``), whatever the history;
    ``clients`` (a select of client ids) narrows it to those clients."""
    where = [ReceivableDay.tenant_id == viewer.tenant_id, ReceivableDay.currency == currency,
             ReceivableDay.kind == summaries.DUE, ReceivableDay.day >= today,
             ReceivableDay.client_id != summaries.ALL_CLIENTS]
    if clients is not None:
        where.append(ReceivableDay.client_id.in_(clients))
    return (
        select(ReceivableDay.client_id.label("client_id"), func.sum(ReceivableDay.cents).label("cents"))
        .where(*where)
        .group_by(ReceivableDay.client_id)
        .subquery("not_yet_due")
    )


def _clients_with_summary(viewer: Viewer, currency: str, search: str = "") -> Select[Any]:
    """The viewer's clients (whose name holds ``search``, when given) joined to their maintained summary
    (``core.receivables.summaries``) in ``currency``: everything of a balance but the date-dependent
    overdue part."""
    delay = case((ClientSummary.paid_count > 0,
                  cast(ClientSummary.delay_days, Float) / cast(ClientSummary.paid_count, Float)))
    stmt = (
        select(
            Client.id.label("id"),
            Client.name.label("name"),
            func.coalesce(ClientSummary.due_cents, 0).label("due"),
            func.coalesce(ClientSummary.undated_cents, 0).label("undated"),
            func.coalesce(ClientSummary.open_count, 0).label("open_count"),
            func.coalesce(ClientSummary.credit_cents, 0).label("credit"),
            delay.label("delay"),
            Client.normalized_name.label("sort_name"),
        )
        .outerjoin(ClientSummary, and_(ClientSummary.tenant_id == viewer.tenant_id,
                                       ClientSummary.client_id == Client.id, ClientSummary.currency == currency))
        .where(Client.tenant_id == viewer.tenant_id, Client.role == CounterpartyRole.CLIENT.value)
    )
    if search:
        stmt = stmt.where(contains(Client.name, like_pattern(search)))
    return access.scope_clients(stmt, viewer)


def _with_overdue(viewer: Viewer, currency: str, today: date, rows: Any, narrow: bool) -> tuple[Select[Any], Any]:
    """``rows`` (from ``_clients_with_summary``) with their overdue amount; ``narrow`` reads the
    not-yet-due amounts of those rows' clients only."""
    later = not_yet_due(viewer, currency, today, select(rows.c.id) if narrow else None)
    overdue = rows.c.due - rows.c.undated - func.coalesce(later.c.cents, 0)
    stmt = (
        select(rows.c.id, rows.c.name, rows.c.due, overdue, rows.c.open_count, rows.c.credit, rows.c.delay)
        .select_from(rows)
        .outerjoin(later, later.c.client_id == rows.c.id)
    )
    return stmt, overdue


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
    search: str = "",
) -> Page[ClientBalance]:
    """One row per client the viewer may see (whose name holds ``search``, when given), with its balance
    in ``currency``; paginated, sorted."""
    sort = sort if sort in SORTS else "-amount_due"
    page, per_page = bounds(page, per_page)
    base = _clients_with_summary(viewer, currency, search)

    def ordered(key: Any, cols: Any) -> list[Any]:
        return [key.desc() if sort.startswith("-") else key.asc(), cols.sort_name, cols.id]

    if sort.lstrip("-") == "overdue":  # every client's overdue amount is needed to sort
        rows = base.subquery("balances")
        stmt, overdue = _with_overdue(viewer, currency, today, rows, narrow=False)
        stmt = stmt.order_by(*ordered(overdue, rows.c))
        stmt = stmt.limit(per_page).offset((page - 1) * per_page)
    else:  # the page first, then what falls due from today on for its clients only
        key = "due" if sort.lstrip("-") == "amount_due" else "sort_name"
        cols = base.selected_columns
        rows = base.order_by(*ordered(cols[key], cols)).limit(per_page).offset((page - 1) * per_page).cte("page")
        stmt, _overdue = _with_overdue(viewer, currency, today, rows, narrow=True)
        stmt = stmt.order_by(*ordered(rows.c[key], rows.c))
    counted = select(func.count(Client.id)).where(
        Client.tenant_id == viewer.tenant_id, Client.role == CounterpartyRole.CLIENT.value)
    if search:
        counted = counted.where(contains(Client.name, like_pattern(search)))
    total = session.scalar(access.scope_clients(counted, viewer)) or 0
    return Page(items=[_row(r) for r in session.execute(stmt)], page=page, per_page=per_page, total=total)


def client_balance(session: Session, viewer: Viewer, client_id: int, *, currency: str, today: date) -> ClientBalance:
    rows = _clients_with_summary(viewer, currency).where(Client.id == client_id).cte("client")
    stmt, _overdue = _with_overdue(viewer, currency, today, rows, narrow=True)
    row = session.execute(stmt).first()
    if row is None:
        raise NotFound("no such client")
    return _row(row)


def get_client(session: Session, viewer: Viewer, client_id: int) -> Client:
    client = session.get(Client, client_id)
    if client is None or client.role != CounterpartyRole.CLIENT.value:  # a supplier has its own page
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
    stmt = access.scope_clients(select(Client.name).where(
        Client.tenant_id == viewer.tenant_id, Client.role == CounterpartyRole.CLIENT.value), viewer)
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


def attach_file(session: Session, storage: Any, viewer: Viewer, invoice_id: int, data: bytes, *,
                actor: User | None = None, ip: str | None = None) -> StoredFile:
    """Attach a file to an existing invoice as is: no extraction, no review. Idempotent per content;
    written to the audit trail (who, which file)."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise NotFound("no such invoice")
    access.check_invoice(session, viewer, invoice)
    if not data:
        raise ServiceError(N_("the file is empty"))
    if len(data) > MAX_ATTACHMENT_BYTES:
        raise ServiceError(f"the file is larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB")
    stored = store_file(session, storage, viewer.tenant_id, data, sniff_content_type(data))
    attach_stored(session, invoice, stored)
    audit.record(session, viewer.tenant_id, "invoice.attach_file", actor=actor, target=f"invoice:{invoice_id}",
                 detail={"file_id": stored.id, "size": stored.size}, ip=ip)
    return stored


def attach_stored(session: Session, invoice: Invoice, stored: StoredFile) -> None:
    """Attach a stored file to the invoice unless it already holds it (as original or attachment)."""
    already = invoice.file_id == stored.id or session.scalar(
        select(func.count()).where(InvoiceFile.invoice_id == invoice.id, InvoiceFile.file_id == stored.id)
    )
    if not already:
        session.add(InvoiceFile(invoice_id=invoice.id, file_id=stored.id))
        session.flush()
