"""The *Accounting* area (issue 18): entries to process, ready to post and posted; one entry's edit page;
the chart of accounts; the exports (FEC, DATEV, CSV). Thin: every rule lives in ``core.accounting``.

Entries follow their counterparty's visibility (a restricted member sees only their clients' entries);
posting, reversing, closing a year, editing the chart and the exports are for those who keep the books
(admins and accountants, ``access.can_keep_books``). Every form carries the CSRF token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import Select
from sqlalchemy.orm import selectinload

from core import listing
from core.accounting import books as booksvc
from core.accounting import entries as entrysvc
from core.accounting import exports, fec, fiscal
from core.accounting import listing as entry_listing
from core.accounting.bankjournals import journal_choices
from core.accounting.bankrules import sync_bank_entries
from core.accounting.models import EntryStatus, JournalEntry
from core.errors import NotFound, ServiceError, ValidationFailed
from core.tenancy import access
from dashboard import listing as list_web
from dashboard.api.download import streamed_attachment
from dashboard.extensions import db
from dashboard.i18n import errors_text, translate
from dashboard.viewer import books_required, current_viewer
from dashboard.web import local_redirect, paginated, tenant_id, tenant_required

bp = Blueprint("accounting", __name__)
EXTRA_ROWS = 2  # empty line rows offered on the edit form
LINE_FIELDS = ("account", "label", "debit", "credit", "vat_rate", "aux", "aux_label")
MAX_FORM_LINES = 200


def _entry(entry_id: int) -> JournalEntry:
    return entry_listing.visible_entry(db.session, current_viewer(), entry_id)


def _entries_filtered() -> tuple[listing.ListFilters, str, str | None, Select[Any]]:
    """The entries list's tab (status), journal, filters from the URL and its statement (scoped to the
    viewer's clients): the page and the CSV share it."""
    viewer = current_viewer()
    status = request.args.get("status") or EntryStatus.TO_PROCESS.value
    if status not in {s.value for s in EntryStatus}:
        status = EntryStatus.TO_PROCESS.value
    journal = request.args.get("journal") or None
    if journal not in {code for code, _label, _kind in journal_choices(db.session, viewer.tenant_id)}:
        journal = None
    args = {k: v for k, v in request.args.items() if k not in ("status", "journal")}  # the tab, not a payment status
    current = listing.only(listing.parse_filters(args, entry_listing.ENTRY_SORTS, entry_listing.ENTRY_DEFAULT_SORT),
                           entry_listing.ENTRY_FILTERS)
    stmt = entry_listing.entry_list(viewer, status, journal, current, listing.dialect_of(db.session))
    return current, status, journal, stmt


@bp.get("/accounting")
@tenant_required
def index() -> str:
    viewer = current_viewer()
    if sync_bank_entries(db.session, viewer.tenant_id):  # payments reconciled, transactions categorised since
        db.session.commit()
    current, status, journal, stmt = _entries_filtered()
    page = paginated(stmt.options(selectinload(JournalEntry.lines)))
    keep = {"status": status} | ({"journal": journal} if journal else {})
    return render_template("accounting/index.html", active_nav="accounting", page=page, status=status,
                           journal=journal, journals=journal_choices(db.session, viewer.tenant_id),
                           statuses=list(EntryStatus), keeps_books=access.can_keep_books(viewer),
                           max_bulk=entry_listing.MAX_BULK,
                           **list_web.bar_context(current, payment_status=False, export_endpoint=".export_entries",
                                                  fields=entry_listing.ENTRY_FILTERS, keep=keep))


@bp.get("/accounting/entries/export.csv")
@tenant_required
def export_entries() -> Response:
    """Every entry the list shows with these filters, in its order (not only the current page)."""
    _current, _status, _journal, stmt = _entries_filtered()
    return list_web.csv_download("entries", entry_listing.ENTRY_CSV_HEADER,
                                 entry_listing.entry_rows(db.session, current_viewer(), stmt))


@bp.post("/accounting/entries/post")
@tenant_required
def bulk_post() -> Response:
    """Post the selected entries (admins and accountants): each on its own, each refusal said with its reason."""
    viewer = books_required()
    fallback = url_for(".index", status=EntryStatus.READY.value)
    raw_ids = request.form.getlist("entry_id")
    if len(raw_ids) > entry_listing.MAX_BULK:
        flash(_("Select at most %(max)d entries at a time.", max=entry_listing.MAX_BULK), "error")
        return local_redirect(request.form.get("next"), fallback)
    ids = [int(raw) for raw in raw_ids if raw.isdigit() and len(raw) < 10]
    if not ids:
        flash(_("Select the entries to post."), "error")
        return local_redirect(request.form.get("next"), fallback)
    results = entry_listing.post_selected(db.session, viewer, ids, viewer.user_id)
    db.session.commit()
    done = sum(r.posted for r in results)
    flash(ngettext("%(num)d entry posted.", "%(num)d entries posted.", done), "success" if done else "info")
    for r in results:
        if not r.posted:
            reason = errors_text(r.errors) if r.errors else translate(r.reason)
            flash(_("Entry %(id)s: %(reason)s", id=r.entry_id, reason=reason), "error")
    return local_redirect(request.form.get("next"), fallback)


@bp.get("/accounting/entries/<int:entry_id>")
@tenant_required
def entry(entry_id: int) -> str:
    row = _entry(entry_id)
    journals = booksvc.journals(db.session, row.tenant_id)
    accounts = [a for a in booksvc.accounts(db.session, row.tenant_id) if a.active]
    db.session.commit()  # the seed, on first use
    return render_template("accounting/entry.html", active_nav="accounting", entry=row, journals=journals,
                           accounts=accounts, extra_rows=EXTRA_ROWS,
                           keeps_books=access.can_keep_books(current_viewer()))


def _form_lines() -> list[dict[str, Any]]:
    lines = []
    for index in range(MAX_FORM_LINES):
        if f"lines-{index}-account" not in request.form:
            break
        line = {name: request.form.get(f"lines-{index}-{name}", "")[:200] for name in LINE_FIELDS}
        if line["account"].strip() or line["debit"].strip() or line["credit"].strip():
            lines.append(line)
    return lines


def _saved(change: Callable[[], str], back: str) -> Response:
    """Run ``change`` (a service call that returns what to tell the person) in the request's transaction:
    commit and say it, or roll back and show why; either way back to the page at ``back``. NotFound goes
    on to the 404 page."""
    try:
        done = change()
    except NotFound:
        raise
    except ValidationFailed as exc:
        db.session.rollback()
        flash(errors_text(exc.errors), "error")
    except ServiceError as exc:
        db.session.rollback()
        flash(translate(str(exc)), "error")
    else:
        db.session.commit()
        flash(done, "success")
    return redirect(back)


@bp.post("/accounting/entries/<int:entry_id>")
@tenant_required
def save(entry_id: int) -> Response:
    row = _entry(entry_id)
    data: dict[str, Any] = {
        "journal": request.form.get("journal", ""),
        "entry_date": request.form.get("entry_date", ""),
        "label": request.form.get("label", ""),
        "confirm": request.form.get("confirm") == "1",
    }
    if request.form.get("exchange_rate", "").strip() and request.form.get("exchange_rate") != (row.exchange_rate or ""):
        data["exchange_rate"] = request.form["exchange_rate"]
    lines = _form_lines()
    if _lines_changed(row, lines):
        data["lines"] = lines

    def update() -> str:
        entrysvc.update_entry(db.session, row.tenant_id, row.id, data)
        return _("Entry saved.")

    return _saved(update, url_for(".entry", entry_id=entry_id))


def _lines_changed(row: JournalEntry, lines: list[dict[str, Any]]) -> bool:
    """Whether the form's lines differ from the stored ones (an unchanged form does not mark it edited)."""

    def norm(value: Any, amount: bool = False) -> str:
        text = str(value if value is not None else "").strip().replace(",", ".")
        if amount and text:
            try:
                number = Decimal(text)
                return "" if number == 0 else format(number.quantize(Decimal("0.01")), "f")
            except (InvalidOperation, ValueError):
                return text
        return text

    def key(values: list[Any]) -> list[str]:
        return [norm(v, amount=i in (2, 3, 4)) for i, v in enumerate(values)]

    stored = [key([ln.account, ln.label, ln.debit, ln.credit, ln.vat_rate, ln.aux, ln.aux_label]) for ln in row.lines]
    typed = [key([line[name] for name in LINE_FIELDS]) for line in lines]
    return stored != typed


@bp.post("/accounting/entries/<int:entry_id>/post")
@tenant_required
def post(entry_id: int) -> Response:
    row = _entry(entry_id)
    viewer = books_required()

    def post_it() -> str:
        entrysvc.post_entry(db.session, row.tenant_id, row.id, viewer.user_id,
                            remember=request.form.get("remember") == "1")
        return _("Entry posted.")

    return _saved(post_it, url_for(".entry", entry_id=entry_id))


@bp.post("/accounting/entries/<int:entry_id>/reverse")
@tenant_required
def reverse(entry_id: int) -> Response:
    row = _entry(entry_id)
    books_required()
    try:
        reversal = entrysvc.reverse_entry(db.session, row.tenant_id, row.id)
    except ServiceError as exc:
        db.session.rollback()
        flash(translate(str(exc)), "error")
        return redirect(url_for(".entry", entry_id=entry_id))
    db.session.commit()
    flash(_("Reversal drafted: check it, then post it."), "success")
    return redirect(url_for(".entry", entry_id=reversal.id))


@bp.get("/accounting/accounts")
@tenant_required
def accounts() -> str:
    rows = booksvc.accounts(db.session, tenant_id())
    db.session.commit()
    return render_template("accounting/accounts.html", active_nav="accounting", accounts=rows,
                           keeps_books=access.can_keep_books(current_viewer()))


@bp.post("/accounting/accounts")
@tenant_required
def add_account() -> Response:
    books_required()

    def add() -> str:
        row = booksvc.add_account(db.session, tenant_id(), request.form.get("number", "")[:30],
                                  request.form.get("label", "")[:250], is_vat=request.form.get("is_vat") == "1",
                                  vat_rate=request.form.get("vat_rate", "")[:10])
        return _("Account %(number)s added.", number=row.number)

    return _saved(add, url_for(".accounts"))


@bp.post("/accounting/accounts/<int:ledger_account_id>")
@tenant_required
def update_account(ledger_account_id: int) -> Response:
    row = booksvc.account_by_id(db.session, tenant_id(), ledger_account_id)
    books_required()
    action = request.form.get("action", "")

    def update() -> str:
        booksvc.update_account(db.session, row.tenant_id, row.number,
                               label=request.form.get("label") if action == "rename" else None,
                               active={"deactivate": False, "activate": True}.get(action))
        return _("Account %(number)s saved.", number=row.number)

    return _saved(update, url_for(".accounts"))


@bp.get("/accounting/exports")
@tenant_required
def exports_page() -> str:
    books_required()
    calendar = fiscal.calendar_of(db.session, tenant_id())
    year = calendar.year_of(date.today())  # the fiscal year under way, as the company closes it
    return render_template("accounting/exports.html", active_nav="accounting", year=year,
                           start=calendar.opening(year), end=calendar.closing(year))


@bp.get("/accounting/fec")
@tenant_required
def fec_download() -> Response:
    books_required()
    raw = request.args.get("year", "")
    year = int(raw) if raw.isdigit() and len(raw) == 4 else fiscal.calendar_of(db.session, tenant_id()).year_of(
        date.today())
    try:
        name = fec.filename(db.session, tenant_id(), year)
    except ValidationFailed as exc:
        flash(errors_text(exc.errors), "error")
        return redirect(url_for(".exports_page"))
    tid = tenant_id()
    return streamed_attachment(lambda own: fec.stream(own, tid, year), "text/plain; charset=utf-8", name)


@bp.post("/accounting/close-year")
@tenant_required
def close_year() -> Response:
    books_required()
    raw = request.form.get("year", "")

    def close() -> str:
        entrysvc.close_year(db.session, tenant_id(), int(raw) if raw.isdigit() and len(raw) == 4 else raw[:10])
        return _("Fiscal year %(year)s closed.", year=raw)

    return _saved(close, url_for(".exports_page"))


def _date_arg(name: str) -> date | None:
    try:
        return date.fromisoformat(request.args.get(name, ""))
    except ValueError:
        return None


@bp.get("/accounting/export")
@tenant_required
def export_download() -> Response:
    books_required()
    start, end, tid = _date_arg("from"), _date_arg("to"), tenant_id()
    if request.args.get("format") == "datev":
        try:
            exports.datev_ledger(db.session, tid)
        except ValidationFailed as exc:
            flash(errors_text(exc.errors), "error")
            return redirect(url_for(".exports_page"))
        calendar = fiscal.calendar_of(db.session, tid)
        first = start or calendar.opening(calendar.year_of(date.today()))
        last = end or calendar.closing(calendar.year_of(first))
        name = f"EXTF_Buchungsstapel_{first:%Y%m%d}_{last:%Y%m%d}.csv"
        return streamed_attachment(lambda own: exports.datev_stream(own, tid, first, last),
                                   "text/csv; charset=windows-1252", name)
    if request.args.get("format") == "ebp":
        return streamed_attachment(lambda own: exports.ebp_stream(own, tid, start, end), "text/plain; charset=cp850",
                                   f"ebp-{start or 'start'}-{end or 'end'}.txt")
    return streamed_attachment(lambda own: exports.csv_stream(own, tid, start, end), "text/csv; charset=utf-8",
                               f"entries-{start or 'start'}-{end or 'end'}.csv")
