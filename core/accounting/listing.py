"""The journal entries list (issue 17 item 6): search, filters, sorts, CSV export of exactly what is shown
and the bulk "post entries" action, always inside the viewer's scope (an entry follows its counterparty's
visibility: a restricted member sees only their clients' entries, never one without a counterparty).

An entry's amount is its stored ``total`` (the sum of its debits, written with its lines), indexed with
the tenant; the texts are searched accents and case folded (``core.textsearch``), and on PostgreSQL have
trigram indexes on that fold (migrations ``acc_entries_search``, ``search_fold``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, select, union
from sqlalchemy.orm import Session, aliased, selectinload

from core.accounting import entries as entrysvc
from core.accounting.models import EntryLine, EntryStatus, JournalEntry
from core.errors import NotFound, ServiceError, ValidationFailed
from core.i18n import N_
from core.listing import (
    MAX_EXPORT_ROWS,
    ListFilters,
    money_column,
    money_value,
    order_by_sort,
    parse_amount,
    where_amount_in_range,
    where_day_in_range,
)
from core.models import Client
from core.tenancy import access
from core.tenancy.access import Viewer
from core.textsearch import contains, like_pattern

ENTRY_SORTS = ("entry_date", "journal", "number", "label", "piece_ref", "amount", "status")
ENTRY_DEFAULT_SORT = "-entry_date"
ENTRY_FILTERS = ("date_from", "date_to", "amount_min", "amount_max")
MAX_BULK = 200  # entries posted by one request: each is checked, numbered and may learn a rule
NOT_VISIBLE = N_("No such entry.")


def scope_entries(stmt: Select[Any], viewer: Viewer) -> Select[Any]:
    return stmt.where(access.client_clause(viewer, JournalEntry.client_id)) if viewer.restricted else stmt


def _search(viewer: Viewer, q: str, dialect: str) -> ColumnElement[bool]:
    """``JournalEntry.id IN (a UNION of one id query per searched thing)``, each branch able to use its own
    index (the trigram ones of ``acc_entries_search``, the total's): the piece number, the entry's label,
    its counterparty (the client or supplier, or the control line's auxiliary label); a text that reads as an
    amount also matches the entry's total, and a whole number the entry number (EcritureNum)."""
    pattern = like_pattern(q)
    found = aliased(JournalEntry)

    def ids(*where: ColumnElement[bool]) -> Select[Any]:
        return select(found.id).where(found.tenant_id == viewer.tenant_id, *where)

    clients = select(Client.id).where(Client.tenant_id == viewer.tenant_id, contains(Client.name, pattern))
    branches = [
        ids(contains(found.piece_ref, pattern)),
        ids(contains(found.label, pattern)),
        ids(found.client_id.in_(clients)),
        select(EntryLine.entry_id).where(EntryLine.tenant_id == viewer.tenant_id,
                                         contains(EntryLine.aux_label, pattern)),
    ]
    typed = parse_amount(q)
    if typed is not None:
        branches.append(ids(money_column(found.total, dialect) == money_value(abs(typed), dialect)))
        if typed == typed.to_integral_value() and 0 < typed < 10**9:
            branches.append(ids(found.number == int(typed)))
    return JournalEntry.id.in_(union(*branches))


def entry_list(viewer: Viewer, status: str | None, journal: str | None, filters: ListFilters,
               dialect: str) -> Select[Any]:
    """The tenant's entries the viewer may see, in ``status`` and ``journal`` when given, searched,
    filtered by date (the entry's) and amount (its total), sorted. The page, the API and the CSV share it."""
    stmt = select(JournalEntry).where(JournalEntry.tenant_id == viewer.tenant_id)
    if status:
        stmt = stmt.where(JournalEntry.status == EntryStatus(status).value)
    if journal:
        stmt = stmt.where(JournalEntry.journal == journal)
    stmt = scope_entries(stmt, viewer)
    if filters.q:
        stmt = stmt.where(_search(viewer, filters.q, dialect))
    stmt = where_day_in_range(stmt, JournalEntry.entry_date, filters)
    total = money_column(JournalEntry.total, dialect)
    stmt = where_amount_in_range(stmt, total, filters, dialect)
    columns: dict[str, Any] = {
        "entry_date": JournalEntry.entry_date, "journal": JournalEntry.journal, "number": JournalEntry.number,
        "label": JournalEntry.label, "piece_ref": JournalEntry.piece_ref, "amount": total,
        "status": JournalEntry.status,
    }
    return order_by_sort(stmt, filters.sort or ENTRY_DEFAULT_SORT, columns, JournalEntry.id)


ENTRY_CSV_HEADER = ("id", "status", "journal", "fiscal_year", "number", "entry_date", "piece_ref", "piece_date",
                    "label", "counterparty", "currency", "debit", "credit", "valid_date", "issues")


def entry_rows(session: Session, viewer: Viewer, stmt: Select[Any]) -> Iterator[list[Any]]:
    """The rows of ``stmt`` (from ``entry_list``, already scoped), lazily, in batches."""
    names = dict(session.execute(select(Client.id, Client.name).where(
        Client.tenant_id == viewer.tenant_id, access.client_clause(viewer, Client.id))).all())
    rows = session.scalars(stmt.options(selectinload(JournalEntry.lines)).limit(MAX_EXPORT_ROWS)
                           .execution_options(yield_per=1000))
    for e in rows:
        yield [e.id, e.status, e.journal, e.fiscal_year, e.number, e.entry_date, e.piece_ref, e.piece_date, e.label,
               names.get(e.client_id or 0), e.currency, e.total,
               sum((ln.credit for ln in e.lines), start=0), e.valid_date, " | ".join(e.issues or [])]


# Bulk posting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostResult:
    entry_id: int
    posted: bool
    reason: str = ""  # why it was not posted (a message to translate), or what the problems were
    errors: dict[str, str] | None = None


def visible_entry(session: Session, viewer: Viewer, entry_id: int) -> JournalEntry:
    """The entry, if the viewer may see it (NotFound otherwise, as for an entry of another tenant)."""
    row = entrysvc.get_entry(session, viewer.tenant_id, entry_id)
    if viewer.restricted:
        visible = access.visible_client_ids(session, viewer)
        if row.client_id is None or (visible is not None and row.client_id not in visible):
            raise NotFound("no such entry")
    return row


def post_selected(session: Session, viewer: Viewer, entry_ids: Sequence[int], user_id: int | None, *,
                  today: date | None = None) -> list[PostResult]:
    """Post each selected entry on its own (``entries.post_entries``, in a savepoint): one that cannot be
    posted is reported with its reason and leaves the others posted. Posting twice is the same posting."""
    results: list[PostResult] = []
    for entry_id in dict.fromkeys(entry_ids):  # each once, in the order given
        try:
            visible_entry(session, viewer, entry_id)
        except NotFound:
            results.append(PostResult(entry_id, False, NOT_VISIBLE))
            continue
        try:
            with session.begin_nested():
                entrysvc.post_entries(session, viewer.tenant_id, [entry_id], user_id, today=today)
        except ValidationFailed as exc:
            results.append(PostResult(entry_id, False, "; ".join(str(v) for v in exc.errors.values()),
                                      dict(exc.errors)))
            continue
        except ServiceError as exc:
            results.append(PostResult(entry_id, False, str(exc)))
            continue
        results.append(PostResult(entry_id, True))
    return results
