"""Bank: statement uploads (CSV column mapping saved per account), transactions, match suggestions to
accept or reject, undo, split, matching rules, the treasury view and CSV exports (issue 6)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from core import listing
from core.accounting import bankrules
from core.accounting.bankjournals import bank_journals
from core.banking import reconciliation
from core.banking import transactions as bank
from core.banking.reconcile.csvexport import to_csv
from core.errors import NotFound, ServiceError
from core.models import BankTransaction, Match, MatchState, TransactionStatus
from core.tenancy import access
from dashboard import listing as list_web
from dashboard.api.download import attachment
from dashboard.extensions import db
from dashboard.i18n import N_
from dashboard.viewer import current_viewer
from dashboard.web import flash_refusal, paginated, tenant_id, tenant_required

T = TypeVar("T")

bp = Blueprint("bank", __name__, url_prefix="/bank")

MAX_UPLOAD = 50 * 1024 * 1024
SPLIT_ROWS = 5
MAPPING_COLUMNS = (
    ("booking_date", N_("Booking date")), ("value_date", N_("Value date")), ("amount", N_("Signed amount")),
    ("debit", N_("Debit (money out)")), ("credit", N_("Credit (money in)")), ("currency", N_("Currency")),
    ("counterparty_name", N_("Counterparty")), ("counterparty_iban", N_("Counterparty IBAN")),
    ("remittance", N_("Remittance text")), ("reference", N_("Reference")), ("status", N_("Status (pending rows)")),
)  # fmt: skip  (labels translated where shown)


def _user_id() -> int:
    from flask_login import current_user

    return int(current_user.user.id)


def _attempt(action: Callable[[], T], done: str | None = None) -> T | None:
    """Run a service call in the request's transaction: commit (and say so), or roll back and say why.

    NotFound goes on to the 404 page: the object is not this tenant's.
    """
    try:
        result = action()
    except NotFound:
        raise
    except ServiceError as exc:
        db.session.rollback()
        flash_refusal(exc)
        return None
    db.session.commit()
    if done:
        flash(done, "info")
    return result


def _visible_transaction(transaction_id: int) -> BankTransaction:
    """The tenant's transaction if the viewer may see it; 404 otherwise (see ``access.transaction_clause``)."""
    tx = bank.get_transaction(db.session, tenant_id(), transaction_id)
    return access.check_transaction(db.session, current_viewer(), tx)


def _back(default: str) -> Response:
    from dashboard.web import local_redirect

    return local_redirect(request.form.get("next"), default)


@bp.get("")
@tenant_required
def index() -> str:
    status, current, stmt = _filtered_transactions()
    stmt = stmt.options(
        selectinload(BankTransaction.matches).selectinload(Match.invoice), selectinload(BankTransaction.account)
    )
    accounts = db.session.scalars(bank.accounts_query(tenant_id())).all()
    bar = list_web.bar_context(current, payment_status=False, export_endpoint=".export_transactions",
                               fields=listing.TRANSACTION_FILTERS, keep={"status": status} if status else {})
    return render_template(
        "bank/index.html", page=paginated(stmt), status=status, accounts=accounts,
        journals=bank_journals(db.session, tenant_id()), statuses=[s.value for s in TransactionStatus], **bar,
    )  # fmt: skip


def _filtered_transactions() -> tuple[str | None, listing.ListFilters, Select[Any]]:
    """The transaction status tab, the URL's search and filters, and the statement page and CSV share."""
    status = request.args.get("status") or None
    if status not in (None, *(s.value for s in TransactionStatus)):
        abort(400)
    args = {k: v for k, v in request.args.items() if k != "status"}  # the tab's status, not a payment status
    current = listing.only(listing.parse_filters(args, listing.TRANSACTION_SORTS, listing.TRANSACTION_DEFAULT_SORT),
                           listing.TRANSACTION_FILTERS)
    return status, current, listing.transaction_list(current_viewer(), status, current, listing.dialect_of(db.session))


@bp.get("/transactions/export.csv")
@tenant_required
def export_transactions() -> Response:
    """Every transaction the list shows with these filters, in its order (not only the current page)."""
    _status, _current, stmt = _filtered_transactions()
    return list_web.csv_download("transactions", listing.TRANSACTION_CSV_HEADER,
                                 listing.transaction_rows(db.session, current_viewer(), stmt))


@bp.post("/upload")
@tenant_required
def upload() -> Response:
    file = request.files.get("file")
    if file is None or not file.filename:
        flash(_("Choose a statement file (CAMT.053, MT940, OFX or CSV)."), "error")
        return redirect(url_for(".index"))
    data = file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        flash(_("The file is larger than 50 MB: not a bank statement."), "error")
        return redirect(url_for(".index"))
    raw_account = request.form.get("account_id", "")
    account_id = int(raw_account) if raw_account.isdigit() and len(raw_account) < 10 else None
    try:
        result = bank.import_statement(db.session, tenant_id(), data, file.filename, account_id)
    except ServiceError as exc:
        db.session.rollback()
        flash_refusal(exc)
        if account_id is not None and isinstance(exc, bank.UnreadableStatement) and exc.needs_csv_mapping:
            flash(_("Describe this bank's CSV columns once below; the mapping is saved for the account."), "info")
            return redirect(url_for(".account", account_id=account_id))
        return redirect(url_for(".index"))
    db.session.commit()
    # The summary's words in the request's language (result.summary() is the English one, for logs and the API).
    flash(_("%(file)s: %(created)s new transaction(s), %(duplicates)s already imported, %(pending)s pending; "
            "%(applied)s matched automatically, %(suggested)s suggestion(s), %(categorised)s categorised.",
            file=file.filename, created=result.created, duplicates=result.duplicates, pending=result.pending,
            applied=result.applied, suggested=result.suggested, categorised=result.categorised), "info")
    return redirect(url_for(".index"))


@bp.route("/accounts/<int:account_id>", methods=["GET", "POST"])
@tenant_required
def account(account_id: int) -> Any:
    acct = bank.get_account(db.session, tenant_id(), account_id)
    if request.method == "POST":
        form = {key: request.form.get(key, "").strip() for key, _ in MAPPING_COLUMNS}
        form |= {
            "delimiter": request.form.get("delimiter", ";"),
            "decimal_comma": request.form.get("decimal_comma") == "1",
            "date_formats": [f for f in request.form.get("date_formats", "").split() if f][:6] or None,
            "encoding": request.form.get("encoding", "").strip() or None,
        }
        name = request.form.get("name", "").strip()[:200]
        try:
            bank.save_csv_mapping(db.session, tenant_id(), account_id, form)
            if name:
                acct.name = name
            db.session.commit()
            flash(_("CSV mapping saved: upload this bank's exports again."), "info")
        except ServiceError as exc:
            db.session.rollback()
            flash_refusal(exc)
        return redirect(url_for(".account", account_id=account_id))
    mapping = acct.csv_mapping or {}
    journal = bank_journals(db.session, tenant_id()).get(acct.id)
    return render_template("bank/account.html", account=acct, mapping=mapping, columns=MAPPING_COLUMNS,
                           journal=journal)


@bp.get("/transactions/<int:transaction_id>")
@tenant_required
def transaction(transaction_id: int) -> str:
    tx = _visible_transaction(transaction_id)
    return render_template(
        "bank/transaction.html", tx=tx, split_rows=range(SPLIT_ROWS),
        allocated=reconciliation.allocated_cash(db.session, tx),
    )  # fmt: skip


@bp.post("/matches/<int:match_id>/<any(accept, reject, undo):decision>")
@tenant_required
def decide(match_id: int, decision: str) -> Response:
    action = {
        "accept": reconciliation.accept_match,
        "reject": reconciliation.reject_match,
        "undo": reconciliation.undo_match,
    }[decision]
    done = {"accept": _("Match applied."), "reject": _("Suggestion rejected."), "undo": _("Match undone.")}[decision]
    access.check_match(db.session, current_viewer(), reconciliation.get_match(db.session, tenant_id(), match_id))
    match = _attempt(lambda: action(db.session, tenant_id(), match_id, _user_id()), done)
    if match is None:
        return _back(url_for(".index"))
    return _back(url_for(".transaction", transaction_id=match.transaction_id))


@bp.post("/transactions/<int:transaction_id>/accept")
@tenant_required
def accept_all(transaction_id: int) -> Response:
    _visible_transaction(transaction_id)  # another tenant's id (or a hidden client's): 404
    _attempt(
        lambda: reconciliation.accept_suggestions(db.session, tenant_id(), transaction_id, _user_id()),
        _("Suggestions applied."),
    )
    return _back(url_for(".transaction", transaction_id=transaction_id))


@bp.post("/transactions/<int:transaction_id>/split")
@tenant_required
def split(transaction_id: int) -> Response:
    tx = _visible_transaction(transaction_id)
    sign = 1 if tx.amount > 0 else -1

    def allocate() -> None:
        parts = []
        for index in range(SPLIT_ROWS):
            number = request.form.get(f"number-{index}", "").strip()
            amount = request.form.get(f"amount-{index}", "").strip()
            if number or amount:
                invoice = reconciliation.find_open_invoice(db.session, tenant_id(), number, sign)
                access.check_invoice(db.session, current_viewer(), invoice)
                parts.append((invoice.id, amount))
        reconciliation.split_transaction(
            db.session, tenant_id(), transaction_id, parts, _user_id(), request.form.get("write_off") or None
        )

    _attempt(allocate, _("Transaction allocated."))
    return redirect(url_for(".transaction", transaction_id=transaction_id))


@bp.post("/transactions/<int:transaction_id>/category")
@tenant_required
def categorise(transaction_id: int) -> Response:
    _visible_transaction(transaction_id)
    _attempt(lambda: bankrules.set_category(db.session, tenant_id(), transaction_id, request.form.get("category")))
    return redirect(url_for(".transaction", transaction_id=transaction_id))


@bp.post("/reconcile")
@tenant_required
def reconcile() -> Response:
    summary = reconciliation.run_matching(db.session, tenant_id())
    db.session.commit()
    flash(_("%(applied)s matched automatically, %(suggested)s suggestion(s).", applied=summary.applied,
            suggested=summary.suggested), "info")
    return redirect(url_for(".index"))


@bp.route("/rules", methods=["GET", "POST"])
@tenant_required
def rules() -> Any:
    if request.method == "POST":
        fields = ("name", "counterparty_pattern", "text_pattern", "min_amount", "max_amount", "category", "account",
                  "vat_rate")
        try:
            rule = bankrules.create_rule(db.session, tenant_id(), {k: request.form.get(k, "") for k in fields})
            db.session.commit()
            flash(_("Rule “%(name)s” saved and applied to past transactions.", name=rule.name), "info")
        except ServiceError as exc:
            db.session.rollback()
            flash_refusal(exc)
        return redirect(url_for(".rules"))
    items = db.session.scalars(reconciliation.rules_query(tenant_id())).all()
    accounts = bankrules.account_choices(db.session, tenant_id())
    return render_template("bank/rules.html", rules=items, accounts=accounts)


@bp.post("/rules/<int:rule_id>/delete")
@tenant_required
def delete_rule(rule_id: int) -> Response:
    reconciliation.delete_rule(db.session, tenant_id(), rule_id)
    db.session.commit()
    flash(_("Rule deleted."), "info")
    return redirect(url_for(".rules"))


@bp.get("/treasury")
@tenant_required
def treasury() -> str:
    view = reconciliation.treasury(db.session, tenant_id(), today=date.today(), viewer=current_viewer())
    return render_template("bank/treasury.html", view=view, today=date.today(), movements=view.movements[:200])


@bp.get("/export/<any(invoices, payments, matches):kind>.csv")
@tenant_required
def export(kind: str) -> Response:
    french = request.args.get("style") == "excel-fr"
    header, rows = reconciliation.export_rows(db.session, current_viewer(), kind)
    data = to_csv(header, rows, french=french)
    return attachment(data, "text/csv; charset=utf-8", f"{kind}-{date.today().isoformat()}.csv")


@bp.get("/suggestions")
@tenant_required
def suggestions() -> str:
    stmt = (
        select(BankTransaction)
        .where(BankTransaction.tenant_id == tenant_id(), BankTransaction.status == TransactionStatus.SUGGESTED.value,
               access.transaction_clause(current_viewer()))
        .options(selectinload(BankTransaction.matches).selectinload(Match.invoice))
        .order_by(BankTransaction.booking_date.desc(), BankTransaction.id.desc())
    )
    return render_template("bank/suggestions.html", page=paginated(stmt), suggested=MatchState.SUGGESTED.value)
