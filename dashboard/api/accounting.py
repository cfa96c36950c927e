"""``/api/v1/accounting/...`` (issue 18): entries (list, read, edit, post, reverse), the chart of accounts,
the FEC and the DATEV / CSV exports. Thin: every rule lives in ``core.accounting``.

Entries follow their counterparty's visibility (``core.tenancy.access``): a restricted member sees only
the entries of the clients assigned to them. Posting, reversing, closing a year, editing the chart and the
exports are for those who keep the books: admins and accountants (``access.can_keep_books``).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from core import listing
from core.accounting import books as booksvc
from core.accounting import entries as entrysvc
from core.accounting import exports, fec, fiscal
from core.accounting import listing as entry_listing
from core.accounting.bankrules import sync_bank_entries
from core.accounting.models import EntryStatus, JournalEntry, LedgerAccount
from core.tenancy import access
from dashboard.api.auth import api_viewer
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.download import streamed_attachment
from dashboard.api.listing import filter_query
from dashboard.api.listing import filters as api_filters
from dashboard.api.params import enum_param, json_object
from dashboard.api.serializers import iso, money
from dashboard.api.spec import PAGE_QUERY, enum_query, items_of, operation, page_of, query, ref
from dashboard.api.views import ID, paginated

_YEAR_RE = re.compile(r"[0-9]{4}")
_JOURNAL_RE = re.compile(r"[A-Za-z0-9]{1,8}")
ENTRY_FIELDS = {"journal", "entry_date", "label", "exchange_rate", "lines", "confirm"}


def entry_json(row: JournalEntry) -> dict[str, Any]:
    return {
        "id": row.id, "status": row.status, "journal": row.journal, "number": row.number,
        "fiscal_year": row.fiscal_year, "entry_date": iso(row.entry_date), "valid_date": iso(row.valid_date),
        "label": row.label, "piece_ref": row.piece_ref, "piece_date": iso(row.piece_date),
        "currency": row.currency, "exchange_rate": row.exchange_rate, "invoice_id": row.invoice_id,
        "client_id": row.client_id, "direction": row.direction, "reversal_of_id": row.reversal_of_id,
        "issues": list(row.issues or []), "edited": bool(row.edited),
        "debit": money(sum((ln.debit for ln in row.lines), Decimal(0))),
        "credit": money(sum((ln.credit for ln in row.lines), Decimal(0))),
        "lines": [{
            "account": ln.account, "account_label": ln.account_label, "aux": ln.aux, "aux_label": ln.aux_label,
            "label": ln.label, "debit": money(ln.debit), "credit": money(ln.credit),
            "vat_rate": None if ln.vat_rate is None else format(ln.vat_rate.normalize(), "f"),
            "amount_currency": money(ln.amount_currency), "currency": ln.currency, "letter": ln.letter,
            "letter_date": iso(ln.letter_date),
        } for ln in row.lines],
    }


def account_json(row: LedgerAccount) -> dict[str, Any]:
    return {"id": row.id, "number": row.number, "label": row.label, "is_vat": bool(row.is_vat),
            "vat_rate": None if row.vat_rate is None else format(row.vat_rate.normalize(), "f"),
            "active": bool(row.active)}


def visible_entries(viewer: access.Viewer) -> Select[Any]:
    """The entries list's statement (``core.accounting.listing``), from the query string; 400 says why."""
    status = enum_param("status", EntryStatus)
    journal = request.args.get("journal") or None
    if journal is not None and not _JOURNAL_RE.fullmatch(journal):
        raise ApiError(400, "journal must be a journal code (letters and digits, at most 8)")
    current = api_filters(entry_listing.ENTRY_SORTS, entry_listing.ENTRY_DEFAULT_SORT, status_is_payment=False,
                          accepted=entry_listing.ENTRY_FILTERS)
    stmt = entry_listing.entry_list(viewer, status, journal.upper() if journal else None, current,
                                    listing.dialect_of(dbs()))
    return stmt.options(selectinload(JournalEntry.lines))


def visible_entry(entry_id: int) -> JournalEntry:
    return entry_listing.visible_entry(dbs(), api_viewer(), entry_id)


def require_bookkeeper() -> None:
    if not access.can_keep_books(api_viewer()):
        raise ApiError(403, "only an admin or an accountant can do this")


@bp.get("/accounting/entries")
@operation("Accounting", "Journal entries: to process, ready to post, posted",
           query=(enum_query("status", EntryStatus, "Only entries in this status."),
                  query("journal", "Only entries of this journal (AC, VT, OD, BQ1 and the other bank journals).",
                        {"type": "string"}),
                  *filter_query(entry_listing.ENTRY_SORTS, payment_status=False,
                                accepted=entry_listing.ENTRY_FILTERS),
                  *PAGE_QUERY),
           description="Search (`q`): the piece number, the label, the counterparty (client, supplier or a line's "
                       "auxiliary label), a line's label, or an amount (the entry's total, a line's debit or "
                       "credit, or the entry number). `date_from` / `date_to`: the entry's date; `amount_min` / "
                       "`amount_max`: its total debit.",
           ok={200: page_of("Entry")}, errors=(400,))
def list_entries() -> Response:
    viewer = api_viewer()
    if sync_bank_entries(dbs(), viewer.tenant_id):  # payments reconciled, transactions categorised since
        dbs().commit()
    return paginated(visible_entries(viewer), entry_json)


@bp.post("/accounting/entries/post")
@operation("Accounting", "Post many entries at once (admins, accountants); each one's outcome reported",
           description="Each entry is posted on its own (checked, numbered, dated): one that cannot be posted is "
                       "reported with its reason and the others are still posted. An entry already posted counts as "
                       f"posted. At most {entry_listing.MAX_BULK} ids.",
           body={"type": "object", "required": ["ids"], "additionalProperties": False, "properties": {
               "ids": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1,
                       "maxItems": entry_listing.MAX_BULK}}},
           body_required=True, ok={200: ref("PostResults")}, errors=(400, 403, 415))
def post_entries() -> Response:
    require_bookkeeper()
    ids = json_object().get("ids")
    if (not isinstance(ids, list) or not 0 < len(ids) <= entry_listing.MAX_BULK
            or not all(isinstance(i, int) and not isinstance(i, bool) and 0 < i < 2**31 for i in ids)):
        raise ApiError(400, f"ids must be a list of 1 to {entry_listing.MAX_BULK} entry ids")
    session, viewer = dbs(), api_viewer()
    results = entry_listing.post_selected(session, viewer, ids, viewer.user_id)
    session.commit()
    return jsonify(items=[{"id": r.entry_id, "posted": r.posted, "reason": r.reason, "errors": r.errors or {}}
                          for r in results], posted=sum(r.posted for r in results))


@bp.get(f"/accounting/entries/<{ID}:entry_id>")
@operation("Accounting", "One journal entry with its lines and what keeps it from being posted",
           ok={200: ref("Entry")})
def get_entry(entry_id: int) -> Response:
    return jsonify(entry_json(visible_entry(entry_id)))


@bp.put(f"/accounting/entries/<{ID}:entry_id>")
@operation("Accounting", "Edit a draft entry (refused once posted)",
           description="Any of: `journal`, `entry_date` (YYYY-MM-DD), `label`, `exchange_rate` (company currency "
                       "per unit of the invoice's; rebuilds the lines at that rate), `lines` (replaces them: "
                       "`account`, `debit`, `credit`, `label`, `aux`, `aux_label`, `vat_rate`), `confirm` "
                       "(true: the reviewer confirms what was flagged).",
           body={"type": "object", "additionalProperties": False, "properties": {
               "journal": {"type": "string"}, "entry_date": {"type": "string", "format": "date"},
               "label": {"type": "string"}, "exchange_rate": {"type": ["string", "number"]},
               "confirm": {"type": "boolean"},
               "lines": {"type": "array", "items": {"type": "object", "properties": {
                   "account": {"type": "string"}, "debit": {"type": ["string", "number", "null"]},
                   "credit": {"type": ["string", "number", "null"]}, "label": {"type": "string"},
                   "aux": {"type": ["string", "null"]}, "aux_label": {"type": ["string", "null"]},
                   "vat_rate": {"type": ["string", "number", "null"]}}}}}},
           ok={200: ref("Entry")}, errors=(400, 409, 422))
def update_entry(entry_id: int) -> Response:
    body = json_object()
    unknown = sorted(set(body) - ENTRY_FIELDS)
    if unknown:
        raise ApiError(422, "validation failed", {key: "unknown field" for key in unknown})
    row = visible_entry(entry_id)
    session = dbs()
    entrysvc.update_entry(session, row.tenant_id, row.id, body)
    session.commit()
    return jsonify(entry_json(row))


@bp.post(f"/accounting/entries/<{ID}:entry_id>/post")
@operation("Accounting", "Post an entry: checked, numbered (EcritureNum), dated (ValidDate), frozen",
           description="Admins and accountants only. `remember` (default true) keeps the account, VAT rate "
                       "and journal as the counterparty's defaults for its next entries.",
           body={"type": "object", "additionalProperties": False,
                 "properties": {"remember": {"type": "boolean"}}},
           ok={200: ref("Entry")}, errors=(403, 409, 422))
def post_entry(entry_id: int) -> Response:
    row = visible_entry(entry_id)
    require_bookkeeper()
    body = json_object()
    session = dbs()
    entrysvc.post_entry(session, row.tenant_id, row.id, api_viewer().user_id,
                        remember=body.get("remember", True) is not False)
    session.commit()
    return jsonify(entry_json(row))


@bp.post(f"/accounting/entries/<{ID}:entry_id>/reverse")
@operation("Accounting", "The draft that cancels a posted entry (the only correction of a posted entry)",
           ok={201: ref("Entry")}, errors=(403, 409))
def reverse_entry(entry_id: int) -> tuple[Response, int]:
    row = visible_entry(entry_id)
    require_bookkeeper()
    session = dbs()
    reversal = entrysvc.reverse_entry(session, row.tenant_id, row.id)
    session.commit()
    return jsonify(entry_json(reversal)), 201


@bp.get("/accounting/accounts")
@operation("Accounting", "The chart of accounts (seeded from PCG, SKR03 or SKR04 on first use)",
           ok={200: items_of(ref("LedgerAccount"))})
def list_accounts() -> Response:
    session = dbs()
    rows = booksvc.accounts(session, api_viewer().tenant_id)
    session.commit()  # the seed, on first use
    return jsonify(items=[account_json(row) for row in rows])


@bp.post("/accounting/accounts")
@operation("Accounting", "Add an account to the chart (admins, accountants)",
           body={"type": "object", "required": ["number", "label"], "properties": {
               "number": {"type": "string"}, "label": {"type": "string"}, "is_vat": {"type": "boolean"},
               "vat_rate": {"type": ["string", "number", "null"]}}},
           ok={201: ref("LedgerAccount")}, errors=(403, 422))
def add_account() -> tuple[Response, int]:
    require_bookkeeper()
    body = json_object()
    session = dbs()
    row = booksvc.add_account(session, api_viewer().tenant_id, str(body.get("number") or ""),
                              str(body.get("label") or ""), is_vat=body.get("is_vat") is True,
                              vat_rate=body.get("vat_rate"))
    session.commit()
    return jsonify(account_json(row)), 201


@bp.patch(f"/accounting/accounts/<{ID}:ledger_account_id>")
@operation("Accounting", "Rename, deactivate or reactivate an account (admins, accountants)",
           body={"type": "object", "additionalProperties": False, "properties": {
               "label": {"type": "string"}, "active": {"type": "boolean"}}},
           ok={200: ref("LedgerAccount")}, errors=(403, 422))
def update_account(ledger_account_id: int) -> Response:
    session, viewer = dbs(), api_viewer()
    row = booksvc.account_by_id(session, viewer.tenant_id, ledger_account_id)
    require_bookkeeper()
    body = json_object()
    active = body.get("active")
    booksvc.update_account(session, viewer.tenant_id, row.number, label=body.get("label"),
                           active=active if isinstance(active, bool) else None)
    session.commit()
    return jsonify(account_json(row))


@bp.post("/accounting/close-year")
@operation("Accounting", "Close a fiscal year: nothing more can be posted into it (admins, accountants)",
           description="Refused (422) while entries dated that year are not posted.",
           body={"type": "object", "required": ["year"], "additionalProperties": False,
                 "properties": {"year": {"type": "integer", "minimum": 1900, "maximum": 2999}}},
           ok={200: {"type": "object", "required": ["year", "closed"], "additionalProperties": False,
                     "properties": {"year": {"type": "integer"}, "closed": {"type": "boolean"}}}},
           errors=(403, 422))
def close_year() -> Response:
    require_bookkeeper()
    session = dbs()
    fiscal = entrysvc.close_year(session, api_viewer().tenant_id, json_object().get("year"))
    session.commit()
    return jsonify(year=fiscal.year, closed=bool(fiscal.closed))


def _year() -> int:
    raw = request.args.get("year", "")
    if not _YEAR_RE.fullmatch(raw) or not 1900 <= int(raw) <= 2999:
        raise ApiError(400, "year must be a year, e.g. 2026")
    return int(raw)


def _date_param(name: str) -> date | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be a date YYYY-MM-DD") from None


@bp.get("/accounting/fec")
@operation("Accounting", "The FEC of a fiscal year (article A47 A-1 LPF), streamed",
           description="Admins and accountants only. Tab-separated UTF-8 text named `{SIREN}FEC{AAAAMMJJ}.txt` "
                       "(closing date); posted entries only, in order of validation. 422 when the company's SIREN "
                       "is missing.",
           query=(query("year", "The fiscal year, named by the year it ends in (with a year end on 03-31, 2027 "
                        "is April 2026 to March 2027).", {"type": "integer", "minimum": 1900}),),
           ok={200: {"type": "string"}}, ok_type="text/plain", errors=(400, 403, 422))
def get_fec() -> Response:
    require_bookkeeper()
    year, session, tenant_id = _year(), dbs(), api_viewer().tenant_id
    name = fec.filename(session, tenant_id, year)
    return streamed_attachment(lambda own: fec.stream(own, tenant_id, year), "text/plain; charset=utf-8", name)


@bp.get("/accounting/export")
@operation("Accounting", "Posted entries as a DATEV Buchungsstapel (EXTF 700), CSV or EBP import file, streamed",
           description="Admins and accountants only. `format`: `datev`, `csv` or `ebp`; `from` / `to`: entry "
                       "dates, inclusive. DATEV: 422 until the company's datev_consultant_number and "
                       "datev_client_number are set (`PUT /api/v1/tenant`).",
           query=(query("format", "datev, csv or ebp.", {"type": "string", "enum": ["datev", "csv", "ebp"]}),
                  query("from", "First entry date (YYYY-MM-DD).", {"type": "string", "format": "date"}),
                  query("to", "Last entry date (YYYY-MM-DD).", {"type": "string", "format": "date"})),
           ok={200: {"type": "string"}}, ok_type="text/csv", errors=(400, 403, 422))
def get_export() -> Response:
    require_bookkeeper()
    kind = request.args.get("format", "")
    if kind not in ("datev", "csv", "ebp"):
        raise ApiError(400, "format must be datev, csv or ebp")
    start, end = _date_param("from"), _date_param("to")
    tenant_id = api_viewer().tenant_id
    if kind == "ebp":
        return streamed_attachment(lambda own: exports.ebp_stream(own, tenant_id, start, end),
                                   "text/plain; charset=cp850", f"ebp-{start or 'start'}-{end or 'end'}.txt")
    if kind == "csv":
        name = f"entries-{start or 'start'}-{end or 'end'}.csv"
        return streamed_attachment(lambda own: exports.csv_stream(own, tenant_id, start, end),
                                   "text/csv; charset=utf-8", name)
    exports.datev_ledger(dbs(), tenant_id)  # 422 without the Beraternummer and Mandantennummer
    calendar = fiscal.calendar_of(dbs(), tenant_id)  # by default the fiscal year under way
    start = start or calendar.opening(calendar.year_of(date.today()))
    end = end or calendar.closing(calendar.year_of(start))
    name = f"EXTF_Buchungsstapel_{start:%Y%m%d}_{end:%Y%m%d}.csv"
    return streamed_attachment(lambda own: exports.datev_stream(own, tenant_id, start, end),
                               "text/csv; charset=windows-1252", name)
