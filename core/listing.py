"""One list-query layer for the dashboard's lists and the API's (issue 17 item 6): search, filters and
sorting, parsed from a query string and applied to a SELECT, always inside the viewer's scope.

``parse_filters`` turns ``request.args`` into ``ListFilters`` plus the reasons of what it refused (a
malformed date, a too long search...): the dashboard shows those reasons and ignores the filter, the API
answers 400. ``invoice_list`` / ``document_list`` build the statements the page, its API twin and its CSV
export share, so the export is exactly what the list shows.

Search: the text is folded (case and accents, ``core.textsearch``: "ecole" finds "École") and matched as a
substring (``LIKE '%...%'`` with its wildcards escaped) on the number, the counterparty (a receivable's
client, a payable's issuer), the title, and the text the document was read from; a text that reads as an
amount also matches that amount. On PostgreSQL the ``inbox_fold(...)`` expressions have trigram GIN indexes
(migrations ``list_search_trgm``, ``search_fold``) and each searched thing is its own branch of a UNION, so a
substring search reads index entries, not every invoice; SQLite scans. A search matching most of the book
(say, a word of every document) stays slow: it counts and sorts all it matches.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import ColumnElement, Float, Select, cast, false, or_, select, union
from sqlalchemy.orm import Session, aliased

from core.i18n import N_
from core.models import (
    BankAccount,
    BankTransaction,
    Client,
    Direction,
    DocType,
    Document,
    DocumentStatus,
    InboundMessage,
    Invoice,
    InvoiceStatus,
    Membership,
    MessageSource,
    TransactionStatus,
    User,
)
from core.models_profiles import DocumentReading
from core.receivables.invoices import client_balances, currencies_in_use
from core.tenancy import access
from core.tenancy.access import Viewer
from core.textsearch import MAX_SEARCH_CHARS, contains, like_pattern

MAX_AMOUNT = Decimal("1e15")
OVERDUE = "overdue"
PAYMENT_STATUSES = (*(s.value for s in InvoiceStatus), OVERDUE)
SOURCES = tuple(s.value for s in MessageSource)
# Whitelisted sort keys; "-key" sorts descending. Anything else falls back to the list's default.
INVOICE_SORTS = ("number", "client", "issue_date", "due_date", "amount", "status")
DOCUMENT_SORTS = ("received", "number", "client", "amount", "filename")
INVOICE_DEFAULT_SORT = "-issue_date"
DOCUMENT_DEFAULT_SORT = "-received"
FILTER_KEYS = ("q", "status", "date_from", "date_to", "amount_min", "amount_max", "currency", "source",
               "validated_by", "sort")

TOO_LONG = N_("The search is limited to {max} characters.")
BAD_DATE = N_("Not a date: use YYYY-MM-DD.")
BAD_AMOUNT = N_("Not an amount: use digits with a dot or a comma for the cents.")
BAD_CHOICE = N_("Not one of the choices offered.")
BAD_CURRENCY = N_("A currency is three letters, such as EUR.")
BAD_RANGE = N_("The start is after the end.")

_CURRENCY_RE = re.compile(r"[A-Za-z]{3}")
_AMOUNT_RE = re.compile(r"-?[0-9]{1,15}([.,][0-9]{1,2})?")
_USER_ID_RE = re.compile(r"[0-9]{1,9}")


@dataclass(frozen=True)
class ListFilters:
    q: str = ""
    status: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    amount_min: Decimal | None = None
    amount_max: Decimal | None = None
    currency: str | None = None
    source: str | None = None
    validated_by: int | None = None
    sort: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        """Whether anything narrows the list (the page then says "no match" rather than "nothing yet")."""
        return any(getattr(self, name) not in (None, "") for name in FILTER_KEYS if name != "sort")

    def args(self) -> dict[str, str]:
        """The accepted filters as query-string arguments (for links: sort headers, pages, export)."""
        out: dict[str, str] = {}
        for name in FILTER_KEYS:
            value = getattr(self, name)
            if value not in (None, ""):
                out[name] = value.isoformat() if isinstance(value, date) else str(value)
        return out


def parse_amount(raw: str) -> Decimal | None:
    """``1234.5``, ``1234,50`` or ``-12`` as a Decimal; None when it is not such an amount."""
    text = raw.strip().replace(" ", "").replace("\u00a0", "")
    if not _AMOUNT_RE.fullmatch(text):
        return None
    try:
        value = Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern already guarantees a number
        return None
    return value if abs(value) < MAX_AMOUNT else None


def parse_filters(args: Mapping[str, str], sorts: tuple[str, ...], default_sort: str) -> ListFilters:
    """The filters in ``args`` (``request.args``); each refused one is left out and its reason kept in
    ``errors`` (by argument name). Never raises: bad input is a reason, not a crash."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    q = " ".join(str(args.get("q", "") or "").split())
    if len(q) > MAX_SEARCH_CHARS:
        errors["q"] = TOO_LONG.format(max=MAX_SEARCH_CHARS)
    else:
        values["q"] = q
    status = args.get("status") or ""
    if status:
        if status in PAYMENT_STATUSES:
            values["status"] = status
        else:
            errors["status"] = BAD_CHOICE
    for name in ("date_from", "date_to"):
        raw = (args.get(name) or "").strip()
        if raw:
            try:
                values[name] = date.fromisoformat(raw[:10]) if len(raw) == 10 else None
            except ValueError:
                values[name] = None
            if values[name] is None:
                errors[name] = BAD_DATE
    for name in ("amount_min", "amount_max"):
        raw = (args.get(name) or "").strip()
        if raw:
            values[name] = parse_amount(raw[:40])
            if values[name] is None:
                errors[name] = BAD_AMOUNT
    currency = (args.get("currency") or "").strip()
    if currency:
        if _CURRENCY_RE.fullmatch(currency):
            values["currency"] = currency.upper()
        else:
            errors["currency"] = BAD_CURRENCY
    source = args.get("source") or ""
    if source:
        if source in SOURCES:
            values["source"] = source
        else:
            errors["source"] = BAD_CHOICE
    who = args.get("validated_by") or ""
    if who:
        if _USER_ID_RE.fullmatch(who):
            values["validated_by"] = int(who)
        else:
            errors["validated_by"] = BAD_CHOICE
    if values.get("date_from") and values.get("date_to") and values["date_from"] > values["date_to"]:
        errors["date_to"] = BAD_RANGE
        values.pop("date_to")
    low, high = values.get("amount_min"), values.get("amount_max")
    if low is not None and high is not None and low > high:
        errors["amount_max"] = BAD_RANGE
        values.pop("amount_max")
    sort = args.get("sort") or ""
    valid_sort = sort.lstrip("-") in sorts and sort.count("-") <= 1
    if sort and not valid_sort:
        errors["sort"] = BAD_CHOICE
    values["sort"] = sort if valid_sort else default_sort
    values = {k: v for k, v in values.items() if v is not None}
    return ListFilters(**values, errors=errors)


def money_column(column: Any, dialect: str) -> Any:
    """Amounts are text on SQLite (``core.models.Money``): compared and sorted as numbers there."""
    return cast(column, Float) if dialect == "sqlite" else column


def money_value(value: Decimal, dialect: str) -> Any:
    """``value`` as it compares with a :func:`money_column`."""
    return float(value) if dialect == "sqlite" else value


def where_amount_in_range(stmt: Select[Any], amount: Any, filters: ListFilters, dialect: str) -> Select[Any]:
    """``stmt`` kept to the rows whose ``amount`` (a :func:`money_column`) is within the filters' range."""
    if filters.amount_min is not None:
        stmt = stmt.where(amount >= money_value(filters.amount_min, dialect))
    if filters.amount_max is not None:
        stmt = stmt.where(amount <= money_value(filters.amount_max, dialect))
    return stmt


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def where_day_in_range(stmt: Select[Any], column: Any, filters: ListFilters, *, timestamp: bool = False) -> Select[Any]:
    """``stmt`` kept to the rows whose day is within the filters' date range, both ends included: ``column``
    is a date, or with ``timestamp`` a moment (its day counted in UTC)."""
    if filters.date_from:
        stmt = stmt.where(column >= (_day_start(filters.date_from) if timestamp else filters.date_from))
    if filters.date_to:
        if timestamp:
            stmt = stmt.where(column < _day_start(filters.date_to + timedelta(days=1)))
        else:
            stmt = stmt.where(column <= filters.date_to)
    return stmt


def order_by_sort(stmt: Select[Any], sort: str, columns: Mapping[str, Any], tiebreak: Any) -> Select[Any]:
    key = sort.lstrip("-")
    column = columns[key]
    # Plain ASC/DESC (each database's own place for NULLs): an index on the column can then serve the order.
    if sort.startswith("-"):
        return stmt.order_by(column.desc(), tiebreak.desc())
    return stmt.order_by(column.asc(), tiebreak.asc())


# Invoices and credit notes -------------------------------------------------------------------


def _invoice_search(viewer: Viewer, q: str, dialect: str) -> ColumnElement[bool]:
    """``Invoice.id IN (a UNION of one id query per searched thing)``: each branch can use its own index
    (the trigram ones, the client and amount ones), where one OR over them all reads every invoice."""
    pattern = like_pattern(q)
    found = aliased(Invoice)

    def ids(*where: ColumnElement[bool]) -> Select[Any]:
        return select(found.id).where(found.tenant_id == viewer.tenant_id, *where)

    clients = select(Client.id).where(Client.tenant_id == viewer.tenant_id, contains(Client.name, pattern))
    readings = select(DocumentReading.document_id).where(
        DocumentReading.tenant_id == viewer.tenant_id, contains(DocumentReading.text, pattern)
    )
    branches = [
        ids(contains(found.number, pattern)),
        ids(contains(found.title, pattern)),
        # The counterparty: the client of a receivable, the issuer of a payable (a receivable's issuer is the
        # company itself: matching it would return every invoice).
        ids(found.direction == Direction.PAYABLE.value, contains(found.issuer, pattern)),
        ids(found.client_id.in_(clients)),
        ids(found.document_id.in_(readings)),
    ]
    amount = parse_amount(q)
    if amount is not None:
        branches.append(ids(money_column(found.amount, dialect) == money_value(amount, dialect)))
    return Invoice.id.in_(union(*branches))


def _source_documents(viewer: Viewer, source: str) -> Select[Any]:
    return (
        select(Document.id)
        .join(InboundMessage, InboundMessage.id == Document.message_id)
        .where(Document.tenant_id == viewer.tenant_id, InboundMessage.tenant_id == viewer.tenant_id,
               InboundMessage.source == source)
    )


def invoice_list(viewer: Viewer, doc_type: str | None, filters: ListFilters, today: date,
                 dialect: str) -> Select[Any]:
    """Validated invoices (or credit notes) of the viewer's tenant that they may see, filtered and sorted."""
    stmt = select(Invoice).where(Invoice.tenant_id == viewer.tenant_id)
    if doc_type:
        stmt = stmt.where(Invoice.doc_type == DocType(doc_type).value)
    stmt = access.scope_invoices(stmt, viewer)
    if filters.q:
        stmt = stmt.where(_invoice_search(viewer, filters.q, dialect))
    if filters.status == OVERDUE:
        stmt = stmt.where(Invoice.status != InvoiceStatus.PAID.value, Invoice.due_date < today)
    elif filters.status:
        stmt = stmt.where(Invoice.status == filters.status)
    stmt = where_day_in_range(stmt, Invoice.issue_date, filters)
    amount = money_column(Invoice.amount, dialect)
    stmt = where_amount_in_range(stmt, amount, filters, dialect)
    if filters.currency:
        stmt = stmt.where(Invoice.currency == filters.currency)
    if filters.source:
        stmt = stmt.where(Invoice.document_id.in_(_source_documents(viewer, filters.source)))
    if filters.validated_by is not None:
        stmt = stmt.where(Invoice.validated_by_id == filters.validated_by)
    sort = filters.sort or INVOICE_DEFAULT_SORT
    columns: dict[str, Any] = {
        "number": Invoice.number_key, "issue_date": Invoice.issue_date, "due_date": Invoice.due_date,
        "amount": amount, "status": Invoice.status,
    }
    if sort.lstrip("-") == "client":
        stmt = stmt.outerjoin(Client, Client.id == Invoice.client_id)
        columns["client"] = Client.normalized_name
    return order_by_sort(stmt, sort, columns, Invoice.id)


# Documents under review ----------------------------------------------------------------------


def _document_search(viewer: Viewer, q: str, dialect: str) -> ColumnElement[bool]:
    pattern = like_pattern(q)
    readings = select(DocumentReading.document_id).where(
        DocumentReading.tenant_id == viewer.tenant_id, contains(DocumentReading.text, pattern)
    )
    terms: list[ColumnElement[bool]] = [
        contains(Document.number, pattern),
        contains(Document.client, pattern),
        contains(Document.issuer, pattern),
        contains(Document.title, pattern),
        contains(Document.filename, pattern),
        Document.id.in_(readings),
    ]
    amount = parse_amount(q)
    if amount is not None:
        terms.append(money_column(Document.amount, dialect) == money_value(amount, dialect))
    return or_(*terms)


def document_list(viewer: Viewer, statuses: tuple[str, ...], filters: ListFilters, dialect: str) -> Select[Any]:
    """Documents in ``statuses`` the viewer may see, filtered and sorted. The payment status does not
    apply to documents (refused by the transports before); the date range is the day received."""
    stmt = select(Document).where(Document.tenant_id == viewer.tenant_id,
                                  Document.status.in_([DocumentStatus(s).value for s in statuses]))
    stmt = access.scope_documents(stmt, viewer)
    if filters.q:
        stmt = stmt.where(_document_search(viewer, filters.q, dialect))
    stmt = where_day_in_range(stmt, Document.created_at, filters, timestamp=True)
    amount = money_column(Document.amount, dialect)
    stmt = where_amount_in_range(stmt, amount, filters, dialect)
    if filters.currency:
        stmt = stmt.where(Document.currency == filters.currency)
    if filters.source:
        stmt = stmt.where(Document.id.in_(_source_documents(viewer, filters.source)))
    if filters.validated_by is not None:
        stmt = stmt.where(Document.validated_by_id == filters.validated_by)
    if filters.status:  # a payment status: no document under review has one
        stmt = stmt.where(false())
    columns: dict[str, Any] = {"received": Document.created_at, "number": Document.number,
                               "client": Document.client, "amount": amount, "filename": Document.filename}
    return order_by_sort(stmt, filters.sort or DOCUMENT_DEFAULT_SORT, columns, Document.id)


def for_documents(filters: ListFilters) -> ListFilters:
    """The filters a document list accepts: the payment status is refused with a reason."""
    if filters.status is None:
        return filters
    return replace(filters, status=None, errors=filters.errors | {"status": BAD_CHOICE})


# Received messages (the imports list) --------------------------------------------------------

MESSAGE_SORTS = ("received", "sender", "status")
MESSAGE_DEFAULT_SORT = "-received"


def message_list(viewer: Viewer, filters: ListFilters, dialect: str) -> Select[Any]:
    """The tenant's received messages, searched by sender, subject and file name, filtered by the day
    received and the source. The subject is searched only for those who may read it whole (it may hold a
    forwarding confirmation code: a search would tell it digit by digit), file names only of the documents
    the viewer may see."""
    stmt = select(InboundMessage).where(InboundMessage.tenant_id == viewer.tenant_id)
    if filters.q:
        pattern = like_pattern(filters.q)
        files = select(Document.message_id).where(Document.tenant_id == viewer.tenant_id,
                                                  contains(Document.filename, pattern), access.document_clause(viewer))
        terms = [contains(InboundMessage.sender, pattern), InboundMessage.id.in_(files)]
        if viewer.sees_codes:
            terms.append(contains(InboundMessage.subject, pattern))
        stmt = stmt.where(or_(*terms))
    stmt = where_day_in_range(stmt, InboundMessage.received_at, filters, timestamp=True)
    if filters.source:
        stmt = stmt.where(InboundMessage.source == filters.source)
    unsupported = (filters.status, filters.amount_min, filters.amount_max, filters.currency, filters.validated_by)
    if any(value is not None for value in unsupported):  # refused by the transports before; never all rows
        stmt = stmt.where(false())
    columns = {"received": InboundMessage.received_at, "sender": InboundMessage.sender,
               "status": InboundMessage.status}
    return order_by_sort(stmt, filters.sort or MESSAGE_DEFAULT_SORT, columns, InboundMessage.id)


def only(filters: ListFilters, accepted: tuple[str, ...]) -> ListFilters:
    """``filters`` keeping only the ``accepted`` ones; any other given is refused with a reason."""
    dropped = {name: None for name in FILTER_KEYS if name not in accepted and name not in ("q", "sort")
               and getattr(filters, name) is not None}
    if not dropped:
        return filters
    return replace(filters, **dropped, errors=filters.errors | dict.fromkeys(dropped, BAD_CHOICE))


MESSAGE_CSV_HEADER = ("id", "received_at", "source", "sender", "subject", "status", "reason")


def message_rows(session: Session, viewer: Viewer, stmt: Select[Any]) -> Iterator[list[Any]]:
    """The rows of ``stmt`` (from ``message_list``), subjects as the viewer may read them, lazily."""
    for message in session.scalars(stmt.limit(MAX_EXPORT_ROWS).execution_options(yield_per=1000)):
        yield [message.id, message.received_at, message.source, message.sender,
               access.shown_subject(viewer, message.subject), message.status, message.reason]


# Bank transactions -----------------------------------------------------------------------------

TRANSACTION_SORTS = ("booking_date", "amount", "counterparty", "status")
TRANSACTION_DEFAULT_SORT = "-booking_date"
TRANSACTION_FILTERS = ("date_from", "date_to", "amount_min", "amount_max", "currency")


def transaction_list(viewer: Viewer, status: str | None, filters: ListFilters, dialect: str) -> Select[Any]:
    """The tenant's bank transactions the viewer may see (``status``: a TransactionStatus), searched by
    counterparty, its IBAN, the remittance text and reference, or an amount; filtered by booking day,
    amount and currency."""
    stmt = select(BankTransaction).where(BankTransaction.tenant_id == viewer.tenant_id)
    if status:
        stmt = stmt.where(BankTransaction.status == TransactionStatus(status).value)
    stmt = access.scope_transactions(stmt, viewer)
    amount = money_column(BankTransaction.amount, dialect)
    if filters.q:
        pattern = like_pattern(filters.q)
        terms = [contains(BankTransaction.counterparty, pattern), contains(BankTransaction.remittance, pattern),
                 contains(BankTransaction.reference, pattern), contains(BankTransaction.iban, pattern)]
        typed = parse_amount(filters.q)
        if typed is not None:  # a payment is searched by what was paid, whatever its sign
            terms += [amount == money_value(typed, dialect), amount == money_value(-typed, dialect)]
        stmt = stmt.where(or_(*terms))
    stmt = where_day_in_range(stmt, BankTransaction.booking_date, filters)
    stmt = where_amount_in_range(stmt, amount, filters, dialect)
    if filters.currency:
        stmt = stmt.where(BankTransaction.currency == filters.currency)
    columns = {"booking_date": BankTransaction.booking_date, "amount": amount,
               "counterparty": BankTransaction.counterparty, "status": BankTransaction.status}
    return order_by_sort(stmt, filters.sort or TRANSACTION_DEFAULT_SORT, columns, BankTransaction.id)


TRANSACTION_CSV_HEADER = ("id", "account", "booking_date", "value_date", "amount", "currency", "counterparty",
                          "counterparty_iban", "remittance", "reference", "pending", "status", "category")


def transaction_rows(session: Session, viewer: Viewer, stmt: Select[Any]) -> Iterator[list[Any]]:
    """The rows of ``stmt`` (from ``transaction_list``, already scoped), lazily, in batches."""
    accounts = dict(session.execute(
        select(BankAccount.id, BankAccount.iban).where(BankAccount.tenant_id == viewer.tenant_id)).all())
    for t in session.scalars(stmt.limit(MAX_EXPORT_ROWS).execution_options(yield_per=1000)):
        yield [t.id, accounts.get(t.account_id), t.booking_date, t.value_date, t.amount, t.currency, t.counterparty,
               t.iban, t.remittance, t.reference, t.pending, t.status, t.category]


# Choices for the filter bar ------------------------------------------------------------------


def validator_choices(session: Session, viewer: Viewer) -> list[tuple[int, str]]:
    """The company's members (id, e-mail), for the "validated by" filter."""
    rows = session.execute(
        select(User.id, User.email).join(Membership, Membership.user_id == User.id)
        .where(Membership.tenant_id == viewer.tenant_id).order_by(User.email)
    )
    return [(int(uid), str(email)) for uid, email in rows]


def currency_choices(session: Session, viewer: Viewer) -> list[str]:
    """The currencies of the viewer's invoices, read from the maintained summaries (not 100,000 rows)."""
    return currencies_in_use(session, viewer)


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name



# CSV exports: the list's own statement, every matching row in the list's order -------------------

MAX_EXPORT_ROWS = 100_000  # a tenant's whole book at the size the dashboard is measured at
INVOICE_CSV_HEADER = ("id", "type", "number", "client", "title", "issuer", "issue_date", "due_date", "currency",
                      "amount", "net_amount", "tax_amount", "amount_paid", "status", "paid_at")
DOCUMENT_CSV_HEADER = ("id", "status", "received_at", "filename", "sender", "source", "type", "number", "client",
                       "issuer", "issue_date", "due_date", "currency", "amount")


def invoice_rows(session: Session, viewer: Viewer, stmt: Select[Any]) -> Iterator[list[Any]]:
    """The rows of ``stmt`` (from ``invoice_list``, already scoped), lazily, in batches."""
    names = dict(session.execute(
        select(Client.id, Client.name).where(Client.tenant_id == viewer.tenant_id,
                                             access.client_clause(viewer, Client.id))
    ).all())
    invoices = session.scalars(stmt.limit(MAX_EXPORT_ROWS).execution_options(yield_per=1000))
    for i in invoices:
        yield [i.id, i.doc_type, i.number, names.get(i.client_id), i.title, i.issuer, i.issue_date, i.due_date,
               i.currency, i.amount, i.net_amount, i.tax_amount, i.amount_paid, i.status, i.paid_at]


def document_rows(session: Session, stmt: Select[Any]) -> Iterator[list[Any]]:
    """The rows of ``stmt`` (from ``document_list``, already scoped), lazily, in batches."""
    rows = session.execute(
        stmt.add_columns(InboundMessage.sender, InboundMessage.source)
        .outerjoin(InboundMessage, InboundMessage.id == Document.message_id)
        .limit(MAX_EXPORT_ROWS).execution_options(yield_per=1000)
    )
    for d, sender, source in rows:
        yield [d.id, d.status, d.created_at, d.filename, sender, source, d.doc_type, d.number, d.client, d.issuer,
               d.issue_date, d.due_date, d.currency, d.amount]


# Clients: the balances list, every matching client in its order -------------------------------------

CLIENT_CSV_HEADER = ("id", "name", "currency", "amount_due", "overdue", "open_invoices", "available_credit",
                     "average_delay_days")


def client_rows(session: Session, viewer: Viewer, *, currency: str, today: date, sort: str,
                search: str) -> Iterator[list[Any]]:
    """The clients list as shown (``client_balances``: scoped, searched, sorted), page after page."""
    per_page = 200  # client_balances' largest page
    for page in range(1, MAX_EXPORT_ROWS // per_page + 1):
        found = client_balances(session, viewer, currency=currency, today=today, sort=sort, page=page,
                                per_page=per_page, search=search)
        for c in found.items:
            yield [c.client_id, c.name, currency, c.amount_due, c.overdue, c.open_invoices, c.available_credit,
                   c.average_delay_days]
        if page * per_page >= found.total or len(found.items) < per_page:
            return
