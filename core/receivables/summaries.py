"""Keep the receivables summaries (``core.models_summaries``) equal to the invoices and cash movements.

One function changes them: ``record_changes`` adds "what the touched invoices contribute now" minus
"what they contributed before" (``rebuild`` only replaces a tenant's rows wholesale). A session listener
calls it at every flush that inserts, changes or deletes an invoice or a cash movement, whoever does it
(validation, bank reconciliation, credit notes, deletion), so the summaries change in the same
transaction as their source rows. Both contributions are read from the database (before and after the
flush), not from ORM attribute history, so expired or never-loaded attributes cannot skew them; deltas
are applied as ``x = x + delta`` upserts, which commute, so two transactions touching the same client do
not lose each other's changes.

Changes made with Core bulk statements on ``invoices`` or ``cash_movements`` bypass the listener: the
application makes none (``core.documents.invoice_edits.delete_invoice`` deletes through the ORM first), and
``rebuild`` (``inbox summaries rebuild``) recomputes everything from the source rows for repairs.

What a row contributes mirrors the on-read queries these tables replaced; those are kept as the reference
in tests/test_summaries.py, which checks pages and analytics against them after random operations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    and_,
    case,
    cast,
    delete,
    event,
    func,
    insert,
    literal,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from core.models import CashDirection, CashKind, CashMovement, DocType, Invoice, InvoiceStatus, UTCDateTime, utcnow
from core.models_summaries import ClientSummary, ReceivableDay

# Value columns of ClientSummary, in the order of the vectors below.
FIELDS = ("invoice_count", "due_cents", "open_count", "undated_cents", "credit_cents", "paid_count",
          "delay_days", "expected_cents")
_FIELD_INDEX = {name: i for i, name in enumerate(FIELDS)}
DUE, INVOICED, EXPECTED = "due", "invoiced", "expected"
# receivable_days rows under this client id hold the whole tenant's amounts: what an unrestricted viewer
# reads (about one row per day rather than one per client and day). A restricted member reads their clients'.
ALL_CLIENTS = -1
_CHUNK = 500
_PENDING = "summaries.pending"

SummaryKey = tuple[int, int, str]  # tenant_id, client_id (0: none), currency
DayKey = tuple[int, int, str, str, date]  # tenant_id, client_id, currency, kind, day


class Totals:
    """Contributions of some invoices: summary vectors and (cents, count) per day."""

    def __init__(self) -> None:
        self.clients: dict[SummaryKey, list[int]] = defaultdict(lambda: [0] * len(FIELDS))
        self.days: dict[DayKey, list[int]] = defaultdict(lambda: [0, 0])

    def add(self, key: SummaryKey, field: str, value: int) -> None:
        self.clients[key][_FIELD_INDEX[field]] += value

    def add_day(self, key: SummaryKey, kind: str, day: date, cents: int) -> None:
        """Per client, and once more under ``ALL_CLIENTS`` for the tenant-wide figures."""
        for client in (key[1], ALL_CLIENTS):
            entry = self.days[(key[0], client, key[2], kind, day)]
            entry[0] += cents
            entry[1] += 1

    def minus(self, other: Totals) -> Totals:
        result = Totals()
        for key in self.clients.keys() | other.clients.keys():
            mine, theirs = self.clients.get(key, [0] * len(FIELDS)), other.clients.get(key, [0] * len(FIELDS))
            diff = [a - b for a, b in zip(mine, theirs, strict=True)]
            if any(diff):
                result.clients[key] = diff
        for key in self.days.keys() | other.days.keys():
            mine, theirs = self.days.get(key, [0, 0]), other.days.get(key, [0, 0])
            diff = [mine[0] - theirs[0], mine[1] - theirs[1]]
            if any(diff):
                result.days[key] = diff
        return result

    def nonzero(self) -> tuple[dict[SummaryKey, list[int]], dict[DayKey, list[int]]]:
        return ({k: list(v) for k, v in self.clients.items() if any(v)},
                {k: list(v) for k, v in self.days.items() if any(v)})


def _cents(value: Any) -> int | None:
    return None if value is None else int((Decimal(str(value)) * 100).to_integral_value())


def _owed(amount: Any, paid: Any) -> int:
    """``receivables.outstanding_cents`` for one row: NULL on either side counts as nothing owed."""
    a, p = _cents(amount), _cents(paid)
    return max(0, a - p) if a is not None and p is not None else 0


_INVOICE_COLUMNS = (Invoice.id, Invoice.tenant_id, Invoice.client_id, Invoice.currency, Invoice.direction,
                    Invoice.doc_type, Invoice.status, Invoice.amount, Invoice.amount_paid, Invoice.due_date,
                    Invoice.issue_date, Invoice.paid_at)
_MOVEMENT_COLUMNS = (CashMovement.invoice_id, CashMovement.expected_date, CashMovement.amount,
                     CashMovement.currency)


def _contribute(totals: Totals, inv: Any, movements: Iterable[Any]) -> None:
    if inv.direction != "receivable":
        return  # a payable is money we owe, never a client's balance (suppliers: core.payables.suppliers)
    client = inv.client_id or 0
    not_paid = inv.status is not None and inv.status != InvoiceStatus.PAID.value
    if inv.currency is not None:
        key = (inv.tenant_id, client, inv.currency)
        totals.add(key, "invoice_count", 1)
        owed = _owed(inv.amount, inv.amount_paid)
        if inv.direction == "receivable" and inv.doc_type == DocType.INVOICE.value and not_paid:
            totals.add(key, "due_cents", owed)
            totals.add(key, "open_count", 1)
            if inv.due_date is None:
                totals.add(key, "undated_cents", owed)
            else:
                totals.add_day(key, DUE, inv.due_date, owed)
        if inv.doc_type == DocType.CREDIT_NOTE.value and not_paid:
            totals.add(key, "credit_cents", owed)
        if inv.doc_type == DocType.INVOICE.value and inv.paid_at is not None and inv.due_date is not None:
            totals.add(key, "paid_count", 1)
            totals.add(key, "delay_days", (inv.paid_at - inv.due_date).days)
        if (inv.direction == "receivable" and inv.doc_type == DocType.INVOICE.value and inv.issue_date is not None
                and inv.amount is not None):
            totals.add_day(key, INVOICED, inv.issue_date, _cents(inv.amount) or 0)
    if not_paid:  # expected cash-in still to come: the forecast's "remaining" per movement
        for mov in movements:
            key = (inv.tenant_id, client, mov.currency)
            remaining = _owed(mov.amount, inv.amount_paid)
            totals.add(key, "expected_cents", remaining)
            totals.add_day(key, EXPECTED, mov.expected_date, remaining)


def _movements_where() -> Any:
    return and_(CashMovement.kind == CashKind.EXPECTED.value, CashMovement.direction == CashDirection.IN.value)


def _totals(conn: Connection, invoice_where: Any, movement_where: Any, lock: bool = False,
            totals: Totals | None = None) -> Totals:
    """What the invoices matching ``invoice_where`` contribute, added to ``totals`` (a new one by default)."""
    invoices = select(*_INVOICE_COLUMNS).where(invoice_where).order_by(Invoice.id)
    if lock:
        invoices = invoices.with_for_update()
    rows = conn.execute(invoices).all()  # locked first: the movements are then read as of the lock
    by_invoice: dict[int, list[Any]] = defaultdict(list)
    for mov in conn.execute(select(*_MOVEMENT_COLUMNS).where(_movements_where(), movement_where)):
        by_invoice[mov.invoice_id].append(mov)
    totals = Totals() if totals is None else totals
    for inv in rows:
        _contribute(totals, inv, by_invoice.get(inv.id, ()))
    return totals


def totals_of_invoices(conn: Connection, invoice_ids: Iterable[int], lock: bool = False) -> Totals:
    """What these invoices (and their expected cash movements) contribute, as stored right now.

    ``lock`` (before a flush) takes the invoices' row locks first (PostgreSQL; SQLite has one writer):
    a concurrent transaction changing the same invoice then waits for this one's commit, and this one
    reads the latest committed state, so the "before" subtracted is the one the summaries hold."""
    ordered = sorted(set(invoice_ids))
    result = Totals()
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        _totals(conn, Invoice.id.in_(chunk), CashMovement.invoice_id.in_(chunk), lock, result)
    return result


# Recomputing from the source rows, in SQL (rebuild, migration backfill, tests) -----------------------
#
# The same rules as ``_contribute``, written a second time as aggregate queries: a rebuild of 100,000
# invoices runs in the database in seconds, and the tests compare the two implementations.


def _sql_cents(dialect: str, column: Any) -> Any:
    if dialect == "sqlite":  # money is text there
        return cast(func.round(cast(column, Float) * 100), BigInteger)
    return cast(column * 100, BigInteger)


def _sql_owed(dialect: str, amount: Any, paid: Any) -> Any:
    diff = _sql_cents(dialect, amount) - _sql_cents(dialect, paid)
    return case((diff > 0, diff), else_=0)


def _of_tenant(column: Any, tenant_id: int | None) -> Any:
    """``column`` equal to ``tenant_id``; every tenant when it is None."""
    return column == tenant_id if tenant_id is not None else true()


def _aggregates(dialect: str, tenant_id: int | None) -> tuple[Any, Any]:
    """(client summaries select, receivable days select), columns in table order but ``updated_at``."""
    tenant = _of_tenant(Invoice.tenant_id, tenant_id)
    client = func.coalesce(Invoice.client_id, 0)
    owed = _sql_owed(dialect, Invoice.amount, Invoice.amount_paid)
    not_paid = and_(Invoice.status.is_not(None), Invoice.status != InvoiceStatus.PAID.value)
    is_invoice = Invoice.doc_type == DocType.INVOICE.value
    unpaid = and_(Invoice.direction == "receivable", is_invoice, not_paid)
    paid = and_(is_invoice, Invoice.paid_at.is_not(None), Invoice.due_date.is_not(None))
    if dialect == "sqlite":
        delay = cast(func.julianday(Invoice.paid_at) - func.julianday(Invoice.due_date), BigInteger)
    else:
        delay = Invoice.paid_at - Invoice.due_date

    def when(cond: Any, value: Any) -> Any:
        return func.sum(case((cond, value), else_=0))

    invoices_part = (
        select(Invoice.tenant_id.label("t"), client.label("c"), Invoice.currency.label("cur"),
               func.count().label("invoice_count"), when(unpaid, owed).label("due_cents"),
               when(unpaid, 1).label("open_count"),
               when(and_(unpaid, Invoice.due_date.is_(None)), owed).label("undated_cents"),
               when(and_(Invoice.doc_type == DocType.CREDIT_NOTE.value, not_paid), owed).label("credit_cents"),
               when(paid, 1).label("paid_count"), when(paid, delay).label("delay_days"),
               literal(0, BigInteger).label("expected_cents"))
        .where(tenant, Invoice.currency.is_not(None), Invoice.direction == "receivable")
        .group_by(Invoice.tenant_id, client, Invoice.currency)
    )
    remaining = _sql_owed(dialect, CashMovement.amount, Invoice.amount_paid)
    movements = (
        select(CashMovement.tenant_id.label("t"), client.label("c"), CashMovement.currency.label("cur"),
               CashMovement.expected_date.label("day"), remaining.label("cents"))
        .join(Invoice, Invoice.id == CashMovement.invoice_id)
        .where(tenant, _movements_where(), not_paid)
        .subquery("movements")
    )
    zero = literal(0, BigInteger)
    movements_part = (
        select(movements.c.t, movements.c.c, movements.c.cur, zero, zero, zero, zero, zero, zero, zero,
               func.sum(movements.c.cents))
        .group_by(movements.c.t, movements.c.c, movements.c.cur)
    )
    both = union_all(invoices_part, movements_part).subquery("parts")
    cols = list(both.c)
    clients_select = select(*cols[:3], *(func.sum(col) for col in cols[3:])).group_by(*cols[:3])

    dated = [
        select(Invoice.tenant_id.label("t"), client.label("c"), Invoice.currency.label("cur"),
               literal(DUE).label("kind"), Invoice.due_date.label("day"), owed.label("cents"))
        .where(tenant, Invoice.currency.is_not(None), unpaid, Invoice.due_date.is_not(None)),
        select(Invoice.tenant_id, client, Invoice.currency, literal(INVOICED), Invoice.issue_date,
               _sql_cents(dialect, Invoice.amount))
        .where(tenant, Invoice.currency.is_not(None), Invoice.direction == "receivable", is_invoice,
               Invoice.issue_date.is_not(None), Invoice.amount.is_not(None)),
        select(movements.c.t, movements.c.c, movements.c.cur, literal(EXPECTED), movements.c.day,
               movements.c.cents),
    ]
    rows = union_all(*dated).subquery("dated")
    per_client = select(rows.c.t, rows.c.c, rows.c.cur, rows.c.kind, rows.c.day, func.sum(rows.c.cents),
                        func.count()).group_by(rows.c.t, rows.c.c, rows.c.cur, rows.c.kind, rows.c.day)
    everyone = select(rows.c.t, literal(ALL_CLIENTS), rows.c.cur, rows.c.kind, rows.c.day, func.sum(rows.c.cents),
                      func.count()).group_by(rows.c.t, rows.c.cur, rows.c.kind, rows.c.day)
    return clients_select, union_all(per_client, everyone)


def computed(conn: Connection, tenant_id: int | None = None) -> Totals:
    """The summaries recomputed from the source rows (all tenants, or one)."""
    clients_select, days_select = _aggregates(conn.dialect.name, tenant_id)
    totals = Totals()
    for row in conn.execute(clients_select):
        totals.clients[(row[0], row[1], row[2])] = [int(v or 0) for v in row[3:]]
    for row in conn.execute(days_select):
        day = row[4] if isinstance(row[4], date) else date.fromisoformat(row[4])
        totals.days[(row[0], row[1], row[2], row[3], day)] = [int(row[5] or 0), int(row[6])]
    return totals


def stored(conn: Connection, tenant_id: int | None = None) -> Totals:
    """The summaries as maintained in the tables."""
    totals = Totals()
    for row in conn.execute(select(ClientSummary).where(_of_tenant(ClientSummary.tenant_id, tenant_id))):
        totals.clients[(row.tenant_id, row.client_id, row.currency)] = [int(getattr(row, f)) for f in FIELDS]
    for row in conn.execute(select(ReceivableDay).where(_of_tenant(ReceivableDay.tenant_id, tenant_id))):
        totals.days[(row.tenant_id, row.client_id, row.currency, row.kind, row.day)] = [int(row.cents),
                                                                                       int(row.count)]
    return totals


# Writing ------------------------------------------------------------------------------------------


def _upsert(conn: Connection, table: Any, keys: Sequence[str], rows: list[dict[str, Any]],
            add: Sequence[str]) -> None:
    if not rows:
        return
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table)
    values = {name: table.c[name] + stmt.excluded[name] for name in add}
    if "updated_at" in table.c:
        values["updated_at"] = stmt.excluded.updated_at
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=values), rows)


def record_changes(conn: Connection, delta: Totals) -> None:
    """Add ``delta`` (new contributions minus old ones) to the summaries: the one writer of both tables.
    Keys are sorted so that concurrent transactions lock rows in the same order."""
    now = utcnow()
    client_rows = [
        {"tenant_id": k[0], "client_id": k[1], "currency": k[2], "updated_at": now, **dict(zip(FIELDS, v, strict=True))}
        for k, v in sorted(delta.clients.items()) if any(v)
    ]
    _upsert(conn, ClientSummary.__table__, ("tenant_id", "client_id", "currency"), client_rows, FIELDS)
    day_keys = sorted(k for k, v in delta.days.items() if any(v))
    day_rows = [
        {"tenant_id": k[0], "client_id": k[1], "currency": k[2], "kind": k[3], "day": k[4],
         "cents": delta.days[k][0], "count": delta.days[k][1]}
        for k in day_keys
    ]
    _upsert(conn, ReceivableDay.__table__, ("tenant_id", "client_id", "currency", "kind", "day"), day_rows,
            ("cents", "count"))
    emptied = [k for k in day_keys if delta.days[k][1] < 0]  # only a removal can empty a day
    cols = (ReceivableDay.tenant_id, ReceivableDay.client_id, ReceivableDay.currency, ReceivableDay.kind,
            ReceivableDay.day)
    for start in range(0, len(emptied), _CHUNK):
        conn.execute(delete(ReceivableDay).where(tuple_(*cols).in_(emptied[start : start + _CHUNK]),
                                                 ReceivableDay.count == 0))


def rebuild(conn: Connection, tenant_id: int | None = None) -> tuple[int, int]:
    """Recompute the summaries of one tenant (or all) from the invoices and cash movements; returns the
    numbers of rows written. On PostgreSQL the tables are locked meanwhile, so that no concurrent change
    is lost between reading and writing."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("LOCK TABLE client_summaries, receivable_days IN EXCLUSIVE MODE"))
    for table in (ClientSummary, ReceivableDay):
        conn.execute(delete(table).where(_of_tenant(table.tenant_id, tenant_id)))
    clients_select, days_select = _aggregates(conn.dialect.name, tenant_id)
    clients_select = clients_select.add_columns(literal(utcnow(), UTCDateTime()))
    conn.execute(insert(ClientSummary).from_select([c.name for c in ClientSummary.__table__.c], clients_select))
    conn.execute(insert(ReceivableDay).from_select([c.name for c in ReceivableDay.__table__.c], days_select))
    return tuple(  # type: ignore[return-value]
        conn.scalar(select(func.count()).select_from(table).where(_of_tenant(table.tenant_id, tenant_id))) or 0
        for table in (ClientSummary, ReceivableDay))


# The session listener -----------------------------------------------------------------------------


def _touched(session: Session) -> tuple[set[int], list[Invoice]]:
    ids: set[int] = set()
    new: list[Invoice] = []
    for obj in session.new:
        if isinstance(obj, Invoice):
            new.append(obj)
        elif isinstance(obj, CashMovement) and obj.invoice_id is not None:
            ids.add(obj.invoice_id)
    # session.dirty leaves out deleted objects; it also holds objects set back to their loaded values.
    changed = [obj for obj in session.dirty if isinstance(obj, Invoice | CashMovement) and session.is_modified(obj)]
    for obj in changed + [obj for obj in session.deleted if isinstance(obj, Invoice | CashMovement)]:
        invoice_id = obj.id if isinstance(obj, Invoice) else obj.invoice_id
        if invoice_id is not None:
            ids.add(invoice_id)
    return ids, new


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    ids, new = _touched(session)
    if not ids and not new:
        session.info.pop(_PENDING, None)
        return
    old = totals_of_invoices(session.connection(), ids, lock=True) if ids else Totals()
    session.info[_PENDING] = (ids, new, old)


@event.listens_for(Session, "after_flush")
def _after_flush(session: Session, _context: Any) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending is None:
        return
    ids, new, old = pending
    ids = ids | {obj.id for obj in new if obj.id is not None}
    conn = session.connection()
    record_changes(conn, totals_of_invoices(conn, ids).minus(old))
