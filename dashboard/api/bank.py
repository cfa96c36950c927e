"""Bank statements, transactions, matches, rules and the treasury over the JSON API (issue 6).

Same services as the dashboard's bank pages; every query scoped to the token's tenant.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from sqlalchemy.orm import selectinload

from core import listing
from core.accounting import bankrules
from core.accounting.bankjournals import bank_journals
from core.accounting.models import Journal
from core.banking import reconciliation
from core.banking import transactions as bank
from core.documents import review as documents
from core.models import BankAccount, BankTransaction, Match, MatchingRule, MatchState, TransactionStatus
from core.tenancy import access
from dashboard.api.auth import api_viewer, caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.listing import filter_query
from dashboard.api.listing import filters as api_filters
from dashboard.api.params import enum_param, json_object
from dashboard.api.serializers import iso, money
from dashboard.api.spec import PAGE_QUERY, enum_query, operation, page_of, query, ref
from dashboard.api.views import ID, paginated

MAX_STATEMENT_BYTES = 50 * 1024 * 1024
ACCOUNT_QUERY = query("account_id", "Only this bank account's transactions.",
                      {"type": "integer", "minimum": 1, "maximum": 2**31 - 1})


def account_json(account: BankAccount, journals: dict[int, Journal] | None = None) -> dict[str, Any]:
    journal = (journals or {}).get(account.id)
    return {
        "id": account.id,
        "iban": account.iban,
        "name": account.name,
        "currency": account.currency,
        "balance": money(account.balance),
        "balance_date": iso(account.balance_date),
        "csv_mapping": account.csv_mapping,
        "journal": journal.code if journal else None,
        "ledger_account": journal.account if journal else None,
    }


def match_json(match: Match) -> dict[str, Any]:
    return {
        "id": match.id,
        "transaction_id": match.transaction_id,
        "invoice_id": match.invoice_id,
        "invoice_number": match.invoice.number if match.invoice is not None else None,
        "amount": money(match.amount),
        "write_off": money(match.write_off),
        "score": match.score,
        "reasons": list(match.reasons or []),
        "state": match.state,
        "created_by": match.created_by,
        "created_at": iso(match.created_at),
        "decided_at": iso(match.decided_at),
        "undone_at": iso(match.undone_at),
    }


def transaction_json(tx: BankTransaction) -> dict[str, Any]:
    return {
        "id": tx.id,
        "account_id": tx.account_id,
        "booking_date": iso(tx.booking_date),
        "value_date": iso(tx.value_date),
        "amount": money(tx.amount),
        "currency": tx.currency,
        "counterparty": tx.counterparty,
        "iban": tx.iban,
        "remittance": tx.remittance,
        "reference": tx.reference,
        "pending": tx.pending,
        "unverified": tx.unverified,  # from a mailed statement not proven to be the bank's: never auto-matched
        "category": tx.category,
        "status": tx.status,
        "matches": [match_json(m) for m in tx.matches if m.state != MatchState.REJECTED.value],
    }


def rule_json(rule: MatchingRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "counterparty_pattern": rule.counterparty_pattern,
        "text_pattern": rule.text_pattern,
        "min_amount": money(rule.min_amount),
        "max_amount": money(rule.max_amount),
        "category": rule.category,
        "account": rule.account,
        "vat_rate": None if rule.vat_rate is None else format(rule.vat_rate.normalize(), "f"),
    }


def _optional_id(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    text = str(value)
    if not text.isascii() or not text.isdigit() or not 0 < int(text) < 2**31:
        raise ApiError(400, f"{name} must be a positive integer")
    return int(text)


@bp.post("/bank-statements")
@operation("Bank", "Import a bank statement (CAMT.053, MT940, OFX or CSV)",
           description="Transactions already known are counted as duplicates, never added twice.",
           body={"type": "object", "required": ["file"], "properties": {
               "file": {"type": "string", "contentMediaType": "application/octet-stream"},
               "account_id": {"type": "integer", "minimum": 1,
                              "description": "The account a CSV statement belongs to."}}},
           body_type="multipart/form-data", body_required=True, ok={201: ref("StatementImport")},
           errors=(400, 404, 409, 413, 422))
def upload_statement() -> tuple[Response, int]:
    upload = request.files.get("file")
    if upload is None:
        raise ApiError(400, "send the statement as a multipart form field named 'file'")
    data = upload.read(MAX_STATEMENT_BYTES + 1)
    if len(data) > MAX_STATEMENT_BYTES:
        raise ApiError(413, "the statement is larger than 50 MB")
    account_id = _optional_id(request.form.get("account_id"), "account_id")
    session, who = dbs(), caller()
    result = bank.import_statement(session, who.tenant_id, data, upload.filename or "", account_id)
    session.commit()
    return jsonify(
        statements=result.statements, created=result.created, duplicates=result.duplicates,
        pending=result.pending, applied=result.applied, suggested=result.suggested,
        categorised=result.categorised, accounts=result.account_ids, transactions=result.transaction_ids,
    ), 201  # fmt: skip


@bp.get("/bank-accounts")
@operation("Bank", "Bank accounts with their last known balance", query=PAGE_QUERY,
           ok={200: page_of("BankAccount")}, errors=(400,))
def list_bank_accounts() -> Response:
    journals = bank_journals(dbs(), caller().tenant_id)
    return paginated(bank.accounts_query(caller().tenant_id), lambda account: account_json(account, journals))


@bp.get("/transactions")
@operation("Bank", "Bank transactions with their matches",
           query=(*PAGE_QUERY, ACCOUNT_QUERY,
                  enum_query("status", TransactionStatus, "Only the transactions in this state."),
                  *filter_query(listing.TRANSACTION_SORTS, payment_status=False, accepted=listing.TRANSACTION_FILTERS)),
           ok={200: page_of("Transaction")}, errors=(400,))
def list_transactions() -> Response:
    account_id = _optional_id(request.args.get("account_id"), "account_id")
    status = enum_param("status", TransactionStatus)
    current = api_filters(listing.TRANSACTION_SORTS, listing.TRANSACTION_DEFAULT_SORT, status_is_payment=False,
                          accepted=listing.TRANSACTION_FILTERS)
    stmt = listing.transaction_list(api_viewer(), status, current, listing.dialect_of(dbs()))
    if account_id is not None:
        stmt = stmt.where(BankTransaction.account_id == account_id)
    options = selectinload(BankTransaction.matches).selectinload(Match.invoice)
    return paginated(stmt.options(options), transaction_json)


@bp.get(f"/transactions/<{ID}:transaction_id>")
@operation("Bank", "One transaction with its matches", ok={200: ref("Transaction")})
def get_transaction(transaction_id: int) -> Response:
    return jsonify(transaction_json(_visible_transaction(transaction_id)))


def _visible_transaction(transaction_id: int) -> BankTransaction:
    tx = bank.get_transaction(dbs(), caller().tenant_id, transaction_id)
    return access.check_transaction(dbs(), api_viewer(), tx)


@bp.post(f"/transactions/<{ID}:transaction_id>/split")
@operation("Bank", "Split a transaction over several invoices",
           body={"type": "object", "required": ["parts"], "properties": {
               "parts": {"type": "array", "items": {"type": "object", "properties": {
                   "invoice_id": {"type": "integer", "minimum": 1}, "amount": {"type": ["string", "number"]}}}},
               "write_off": {"type": ["string", "number", "null"]}}},
           body_required=True, ok={200: ref("Transaction")}, errors=(400, 409, 415, 422))
def split_transaction(transaction_id: int) -> Response:
    _visible_transaction(transaction_id)  # another tenant's id (or a hidden client's): 404 before any 400
    body = json_object()
    parts = body.get("parts")
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise ApiError(400, 'parts must be a list of {"invoice_id": ..., "amount": "..."}')
    pairs = [(_optional_id(p.get("invoice_id"), "invoice_id") or 0, p.get("amount")) for p in parts]
    session, who = dbs(), caller()
    for invoice_id, _amount in pairs:  # an invoice the token may not see is one that does not exist
        if invoice_id:
            access.check_invoice(session, api_viewer(), documents.get_invoice(session, who.tenant_id, invoice_id))
    reconciliation.split_transaction(session, who.tenant_id, transaction_id, pairs, who.user_id, body.get("write_off"))
    session.commit()
    return jsonify(transaction_json(bank.get_transaction(session, who.tenant_id, transaction_id)))


@bp.post(f"/transactions/<{ID}:transaction_id>/accept")
@operation("Bank", "Accept the transaction's suggested matches", ok={200: ref("Transaction")},
           errors=(409,))
def accept_transaction(transaction_id: int) -> Response:
    session, who = dbs(), caller()
    _visible_transaction(transaction_id)  # 404, not "no suggestion", for a foreign id
    reconciliation.accept_suggestions(session, who.tenant_id, transaction_id, who.user_id)
    session.commit()
    return jsonify(transaction_json(bank.get_transaction(session, who.tenant_id, transaction_id)))


@bp.post(f"/transactions/<{ID}:transaction_id>/category")
@operation("Bank", "Set or clear the transaction's category",
           body={"type": "object", "properties": {"category": {"type": ["string", "null"]}}},
           ok={200: ref("Transaction")}, errors=(400, 409, 415, 422))
def categorise_transaction(transaction_id: int) -> Response:
    _visible_transaction(transaction_id)
    category = json_object().get("category")
    if category is not None and not isinstance(category, str):
        raise ApiError(400, "category must be a string or null")
    session, who = dbs(), caller()
    tx = bankrules.set_category(session, who.tenant_id, transaction_id, category)
    session.commit()
    return jsonify(transaction_json(tx))


@bp.get("/matches")
@operation("Bank", "Matches between transactions and invoices",
           query=(*PAGE_QUERY, enum_query("state", MatchState, "Only the matches in this state.")),
           ok={200: page_of("Match")}, errors=(400,))
def list_matches() -> Response:
    stmt = reconciliation.matches_query(caller().tenant_id, enum_param("state", MatchState))
    stmt = access.scope_matches(stmt, api_viewer())
    return paginated(stmt.options(selectinload(Match.invoice)), match_json)


_DECISIONS = {
    "accept": reconciliation.accept_match,
    "reject": reconciliation.reject_match,
    "undo": reconciliation.undo_match,
}


@bp.post(f"/matches/<{ID}:match_id>/<any(accept, reject, undo):decision>")
@operation("Bank", "Accept, reject or undo a match", ok={200: ref("Match")}, errors=(409,))
def decide_match(match_id: int, decision: str) -> Response:
    session, who = dbs(), caller()
    access.check_match(session, api_viewer(), reconciliation.get_match(session, who.tenant_id, match_id))
    match = _DECISIONS[decision](session, who.tenant_id, match_id, who.user_id)
    session.commit()
    return jsonify(match_json(match))


@bp.post("/reconcile")
@operation("Bank", "Run the matching of open transactions against open invoices",
           ok={200: ref("Reconciliation")}, errors=(409,))
def reconcile() -> Response:
    session, who = dbs(), caller()
    summary = reconciliation.run_matching(session, who.tenant_id)
    session.commit()
    return jsonify(transactions=summary.transactions, applied=summary.applied, suggested=summary.suggested)


@bp.get("/matching-rules")
@operation("Bank", "Matching rules", query=PAGE_QUERY, ok={200: page_of("MatchingRule")}, errors=(400,))
def list_rules() -> Response:
    return paginated(reconciliation.rules_query(caller().tenant_id), rule_json)


@bp.post("/matching-rules")
@operation("Bank", "Create a matching rule (a category for transactions it recognises)",
           description="With `account` (a number of the company's chart, active), every transaction the rule "
                       "recognises is also booked: a draft entry in its bank account's journal, the bank's 512xxx "
                       "against that account, split into net and VAT when `vat_rate` (the rate the amount "
                       "includes) is given. An unknown or deactivated account is refused (422).",
           body={"type": "object", "properties": {
               key: {"type": ["string", "number", "null"]}
               for key in ("name", "counterparty_pattern", "text_pattern", "min_amount", "max_amount", "category",
                           "account", "vat_rate")}},
           body_required=True, ok={201: ref("MatchingRule")}, errors=(400, 415, 422))
def create_rule() -> tuple[Response, int]:
    body = json_object()
    for key, value in body.items():
        if isinstance(value, bool) or (value is not None and not isinstance(value, str | int | float)):
            raise ApiError(422, "validation failed", {key: "must be a string, a number or null"})
    session, who = dbs(), caller()
    rule = bankrules.create_rule(session, who.tenant_id, body)
    session.commit()
    return jsonify(rule_json(rule)), 201


@bp.delete(f"/matching-rules/<{ID}:rule_id>")
@operation("Bank", "Delete a matching rule", ok={204: None})
def delete_rule(rule_id: int) -> tuple[str, int]:
    session, who = dbs(), caller()
    reconciliation.delete_rule(session, who.tenant_id, rule_id)
    session.commit()
    return "", 204


@bp.get("/treasury")
@operation("Bank", "Balances, expected cash in and out per currency, and the coming movements",
           ok={200: ref("Treasury")})
def get_treasury() -> Response:
    view = reconciliation.treasury(dbs(), caller().tenant_id, viewer=api_viewer())
    journals = bank_journals(dbs(), caller().tenant_id)
    return jsonify(
        accounts=[account_json(a, journals) for a in view.accounts],
        positions=[
            {
                "currency": p.currency, "balance": money(p.balance), "expected_in": money(p.expected_in),
                "expected_out": money(p.expected_out), "difference": money(p.difference),
                "projected": money(p.projected), "overdue": money(p.overdue),
            }
            for p in view.positions
        ],
        movements=[
            {"invoice_id": m.invoice.id, "number": m.invoice.number, "date": iso(m.expected_date),
             "amount": money(m.amount), "currency": m.invoice.currency}
            for m in view.movements[:500]
        ],
        source=view.source,
    )  # fmt: skip
