"""Matches between bank transactions and invoices: run the engine, apply, accept, reject, split, undo;
matching rules; the treasury view.

Effects on invoices are incremental and exactly reversible: applying a match adds its amount to the
invoice's ``amount_paid`` (status partially_paid / paid, ``paid_at`` = the payment's booking date);
undoing subtracts it again and recomputes status and ``paid_at`` from the matches still applied.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Select, delete, insert, or_, select, true, update
from sqlalchemy.orm import Session

from core.banking.reconcile import BankTx, ClientInfo, Matcher, OpenItem, Proposal, expected_sign
from core.errors import NotFound, ServiceError, ValidationFailed
from core.i18n import N_
from core.models import (
    BankAccount,
    BankTransaction,
    Client,
    Invoice,
    InvoiceStatus,
    Match,
    MatchingRule,
    MatchState,
    TransactionStatus,
    utcnow,
)
from core.tenancy import access
from core.tenancy.access import Viewer

ZERO = Decimal("0")
CENT = Decimal("0.01")
MAX_SPLIT_PARTS = 50
MAX_RULE_TEXT = 200
RULE_ACCOUNT = re.compile(r"[0-9A-Z]{1,20}")  # an account number, as core.accounting.books accepts them


@dataclass
class MatchingSummary:
    applied: int = 0
    suggested: int = 0
    transactions: int = 0


def _sign(amount: Decimal) -> int:
    return 1 if amount > 0 else -1


def open_amount(invoice: Invoice) -> Decimal:
    return max(ZERO, (invoice.amount or ZERO) - (invoice.amount_paid or ZERO))


# Engine input ----------------------------------------------------------------------------------


def _open_items(session: Session, tenant_id: int) -> list[OpenItem]:
    rows = session.execute(
        select(
            Invoice.id, Invoice.number, Invoice.amount, Invoice.amount_paid, Invoice.direction, Invoice.doc_type,
            Invoice.client_id, Invoice.currency, Invoice.issue_date, Invoice.due_date,
        ).where(
            Invoice.tenant_id == tenant_id,
            Invoice.status != InvoiceStatus.PAID.value,
            Invoice.amount.is_not(None),
        )
    )  # fmt: skip
    items = []
    for row in rows:
        amount = Decimal(str(row.amount))
        remaining = amount - Decimal(str(row.amount_paid or 0))
        if amount <= 0 or remaining <= 0:
            continue
        items.append(
            OpenItem(
                id=row.id, number=row.number or "", open_amount=remaining,
                sign=expected_sign(row.direction, row.doc_type or "invoice"), client_id=row.client_id,
                currency=row.currency, issue_date=row.issue_date, due_date=row.due_date, total=amount,
            )
        )  # fmt: skip
    return items


def _clients(session: Session, tenant_id: int) -> list[ClientInfo]:
    rows = session.execute(select(Client.id, Client.name, Client.iban).where(Client.tenant_id == tenant_id))
    return [ClientInfo(r.id, r.name, r.iban) for r in rows]


def _bank_tx(tx: BankTransaction) -> BankTx:
    text = " ".join(part for part in (tx.remittance, tx.reference) if part)
    return BankTx(tx.id, tx.amount, tx.booking_date, tx.currency, tx.counterparty, tx.iban, text)


# Effects ----------------------------------------------------------------------------------------


def _refresh_invoice(session: Session, invoice: Invoice) -> None:
    """Status and ``paid_at`` from ``amount_paid`` and the matches still applied."""
    paid = invoice.amount_paid or ZERO
    if invoice.amount is not None and paid >= invoice.amount:
        invoice.status = InvoiceStatus.PAID.value
        dates = session.scalars(
            select(BankTransaction.booking_date)
            .join(Match, Match.transaction_id == BankTransaction.id)
            .where(Match.invoice_id == invoice.id, Match.state == MatchState.APPLIED.value)
        ).all()
        invoice.paid_at = max(dates) if dates else invoice.paid_at
    else:
        invoice.status = InvoiceStatus.PARTIALLY_PAID.value if paid > 0 else InvoiceStatus.OPEN.value
        invoice.paid_at = None


def refresh_invoice_status(session: Session, invoice: Invoice) -> None:
    """Status and ``paid_at`` again after a person corrected the invoice's amount."""
    _refresh_invoice(session, invoice)


def _refresh_transaction(session: Session, tx: BankTransaction) -> None:
    session.flush()
    states = set(session.scalars(select(Match.state).where(Match.transaction_id == tx.id)))
    if MatchState.APPLIED.value in states:
        tx.status = TransactionStatus.MATCHED.value
    elif MatchState.SUGGESTED.value in states:
        tx.status = TransactionStatus.SUGGESTED.value
    elif tx.category:
        tx.status = TransactionStatus.IGNORED.value
    else:
        tx.status = TransactionStatus.UNMATCHED.value


def refresh_transaction(session: Session, tenant_id: int, transaction_id: int) -> None:
    """A transaction's status from its matches (after matches went with a deleted invoice)."""
    _refresh_transaction(session, _lock_transaction(session, tenant_id, transaction_id))


def _apply(session: Session, match: Match, invoice: Invoice, user_id: int | None) -> None:
    match.state, match.decided_at = MatchState.APPLIED.value, utcnow()
    if user_id is not None:
        match.user_id = user_id
    invoice.amount_paid = (invoice.amount_paid or ZERO) + match.amount
    session.flush()
    _refresh_invoice(session, invoice)


def _lock_invoice(session: Session, tenant_id: int, invoice_id: int) -> Invoice:
    invoice = session.get(Invoice, invoice_id, with_for_update=True, populate_existing=True)
    if invoice is None or invoice.tenant_id != tenant_id:
        raise NotFound("no such invoice")
    return invoice


def _lock_transaction(session: Session, tenant_id: int, transaction_id: int) -> BankTransaction:
    tx = session.get(BankTransaction, transaction_id, with_for_update=True, populate_existing=True)
    if tx is None or tx.tenant_id != tenant_id:
        raise NotFound("no such transaction")
    return tx


def allocated_cash(session: Session, tx: BankTransaction) -> Decimal:
    """Cash of ``tx`` already given to invoices by applied matches."""
    rows = session.execute(
        select(Match.amount, Match.write_off).where(
            Match.transaction_id == tx.id, Match.state == MatchState.APPLIED.value
        )
    )
    return sum((Decimal(str(r.amount)) - Decimal(str(r.write_off)) for r in rows), ZERO)


# Automatic matching -----------------------------------------------------------------------------


def _chunks(ids: Sequence[int], size: int = 500) -> Iterable[list[int]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), size):
        yield ordered[start : start + size]


def _credit(session: Session, invoice: Invoice, amount: Decimal, booking_date: date) -> None:
    """Add an applied match's amount to its invoice (batch path of ``run_matching``; no extra queries
    unless an invoice paid in several payments needs the latest payment date)."""
    before = invoice.amount_paid or ZERO
    invoice.amount_paid = before + amount
    if invoice.amount is not None and invoice.amount_paid >= invoice.amount:
        if before > 0:
            session.flush()
            _refresh_invoice(session, invoice)
            invoice.paid_at = max(booking_date, invoice.paid_at or booking_date)
        else:
            invoice.status, invoice.paid_at = InvoiceStatus.PAID.value, booking_date
    else:
        invoice.status, invoice.paid_at = InvoiceStatus.PARTIALLY_PAID.value, None


def _save_proposals(
    session: Session, tenant_id: int, by_id: dict[int, BankTransaction], proposals: list[Proposal]
) -> MatchingSummary:
    summary = MatchingSummary()
    wanted = {a.item_id for p in proposals if p.auto for a in p.allocations}
    invoices: dict[int, Invoice] = {}
    for chunk in _chunks(list(wanted)):
        # Locked, and read again: a person may have changed one since the engine's snapshot.
        stmt = select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.id.in_(chunk))
        locked = stmt.with_for_update().execution_options(populate_existing=True)
        invoices.update({invoice.id: invoice for invoice in session.scalars(locked)})
    now = utcnow()
    rows: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    for proposal in proposals:
        tx = by_id[proposal.tx_id]
        # A transaction from an unverified mailed statement is never applied by the engine: a person decides.
        auto = proposal.auto and not tx.unverified and all(
            a.item_id in invoices and a.amount <= open_amount(invoices[a.item_id]) for a in proposal.allocations
        )
        for alloc in proposal.allocations:
            rows.append(
                {
                    "tenant_id": tenant_id, "transaction_id": tx.id, "invoice_id": alloc.item_id,
                    "amount": alloc.amount, "write_off": alloc.write_off, "score": proposal.score,
                    "reasons": proposal.reasons, "created_by": "auto", "created_at": now,
                    "state": (MatchState.APPLIED if auto else MatchState.SUGGESTED).value,
                    "decided_at": now if auto else None, "user_id": None, "undone_at": None,
                }
            )  # fmt: skip
            if auto:
                _credit(session, invoices[alloc.item_id], alloc.amount, tx.booking_date)
        status = TransactionStatus.MATCHED if auto else TransactionStatus.SUGGESTED
        statuses.append({"id": tx.id, "status": status.value})
        summary.applied += auto
        summary.suggested += not auto
    session.flush()
    # Thousands of rows at once (a year of statements): bulk statements rather than one ORM object each.
    if rows:
        session.execute(insert(Match), rows)
    if statuses:
        session.execute(update(BankTransaction), statuses)
    for tx in by_id.values():
        session.expire(tx, ["status", "matches"])
    return summary


def run_matching(
    session: Session, tenant_id: int, transaction_ids: Sequence[int] | None = None
) -> MatchingSummary:
    """Match the tenant's unmatched (and merely suggested) transactions against open invoices.

    Suggestions are recomputed; applied matches are never touched; a pair a person rejected or undid
    is never proposed again. Safe to run twice: a matched transaction is skipped.
    """
    stmt = select(BankTransaction).where(
        BankTransaction.tenant_id == tenant_id,
        BankTransaction.status.in_((TransactionStatus.UNMATCHED.value, TransactionStatus.SUGGESTED.value)),
        BankTransaction.pending.is_(False),
        BankTransaction.category.is_(None),
    )
    txs: list[BankTransaction] = []
    if transaction_ids is None:
        txs = list(session.scalars(stmt.with_for_update(skip_locked=True)))
    else:
        for chunk in _chunks(list(transaction_ids)):
            txs.extend(session.scalars(stmt.where(BankTransaction.id.in_(chunk)).with_for_update(skip_locked=True)))
    if not txs:
        return MatchingSummary()
    by_id = {tx.id: tx for tx in txs}
    for chunk in _chunks(list(by_id)):
        session.execute(
            delete(Match).where(
                Match.tenant_id == tenant_id,
                Match.state == MatchState.SUGGESTED.value,
                Match.transaction_id.in_(chunk),
            ),
            execution_options={"synchronize_session": False},
        )
    for tx in txs:
        session.expire(tx, ["matches"])  # that collection is stale after the bulk delete
    rejected = session.execute(
        select(Match.transaction_id, Match.invoice_id).where(
            Match.tenant_id == tenant_id, Match.state == MatchState.REJECTED.value
        )
    ).all()
    matcher = Matcher(_open_items(session, tenant_id), _clients(session, tenant_id), [tuple(r) for r in rejected])
    proposals = matcher.run(_bank_tx(tx) for tx in txs)
    proposed = {p.tx_id for p in proposals}
    for tx in txs:
        if tx.id not in proposed:
            tx.status = TransactionStatus.UNMATCHED.value
    summary = _save_proposals(session, tenant_id, by_id, proposals)
    summary.transactions = len(txs)
    return summary


MAX_REMATCH_TRANSACTIONS = 2000  # the latest candidates tried against a newly validated invoice


def match_new_invoice(session: Session, invoice: Invoice) -> MatchingSummary:
    """Run matching again for a newly validated invoice, so that a payment booked before the invoice
    arrived is matched now. Only the unmatched (or merely suggested) transactions that could pay it are
    tried: its currency (or none) and its sign; nothing runs when there is none (no bank connected)."""
    sign = expected_sign(invoice.direction, invoice.doc_type or "invoice")
    stmt = select(BankTransaction.id).where(
        BankTransaction.tenant_id == invoice.tenant_id,
        BankTransaction.status.in_((TransactionStatus.UNMATCHED.value, TransactionStatus.SUGGESTED.value)),
        BankTransaction.pending.is_(False),
        BankTransaction.category.is_(None),
        BankTransaction.amount > 0 if sign > 0 else BankTransaction.amount < 0,
    )
    if invoice.currency:
        stmt = stmt.where(or_(BankTransaction.currency == invoice.currency, BankTransaction.currency.is_(None)))
    ids = list(session.scalars(stmt.order_by(BankTransaction.booking_date.desc()).limit(MAX_REMATCH_TRANSACTIONS)))
    if not ids:
        return MatchingSummary()
    return run_matching(session, invoice.tenant_id, transaction_ids=ids)


# A person's decisions ---------------------------------------------------------------------------


def matches_query(tenant_id: int, state: str | None = None, transaction_id: int | None = None) -> Select[Any]:
    stmt = select(Match).where(Match.tenant_id == tenant_id)
    if state:
        stmt = stmt.where(Match.state == MatchState(state).value)
    if transaction_id is not None:
        stmt = stmt.where(Match.transaction_id == transaction_id)
    return stmt.order_by(Match.created_at.desc(), Match.id.desc())


def get_match(session: Session, tenant_id: int, match_id: int) -> Match:
    match = session.get(Match, match_id)
    if match is None or match.tenant_id != tenant_id:
        raise NotFound("no such match")
    return match


def accept_match(session: Session, tenant_id: int, match_id: int, user_id: int | None) -> Match:
    match = get_match(session, tenant_id, match_id)
    tx = _lock_transaction(session, tenant_id, match.transaction_id)
    session.refresh(match)
    if match.state != MatchState.SUGGESTED.value:
        raise ServiceError(N_("this match is {state}, not a suggestion").format(state=match.state))
    invoice = _lock_invoice(session, tenant_id, match.invoice_id)
    if match.amount > open_amount(invoice):
        raise ServiceError(
            f"invoice {invoice.number} has only {open_amount(invoice)} left to pay: split the transaction instead"
        )
    if allocated_cash(session, tx) + match.amount - match.write_off > abs(tx.amount):
        raise ServiceError(N_("this transaction is already fully allocated"))
    _apply(session, match, invoice, user_id)
    _refresh_transaction(session, tx)
    return match


def accept_suggestions(session: Session, tenant_id: int, transaction_id: int, user_id: int | None) -> list[Match]:
    """Accept every suggestion of a transaction (a grouped payment is suggested as several matches)."""
    ids = session.scalars(
        matches_query(tenant_id, MatchState.SUGGESTED.value, transaction_id).order_by(None).order_by(Match.id)
    ).all()
    if not ids:
        raise ServiceError(N_("this transaction has no suggestion to accept"))
    return [accept_match(session, tenant_id, match.id, user_id) for match in ids]


def reject_match(session: Session, tenant_id: int, match_id: int, user_id: int | None) -> Match:
    match = get_match(session, tenant_id, match_id)
    tx = _lock_transaction(session, tenant_id, match.transaction_id)
    session.refresh(match)
    if match.state != MatchState.SUGGESTED.value:
        raise ServiceError(
            N_("this match is {state}: only a suggestion can be rejected (undo an applied one)")
            .format(state=match.state)
        )
    match.state, match.decided_at, match.user_id = MatchState.REJECTED.value, utcnow(), user_id
    _refresh_transaction(session, tx)
    return match


def undo_match(session: Session, tenant_id: int, match_id: int, user_id: int | None) -> Match:
    """Take an applied match back: the invoice's amount paid, status and paid date are restored, and the
    pair is never proposed automatically again."""
    match = get_match(session, tenant_id, match_id)
    tx = _lock_transaction(session, tenant_id, match.transaction_id)
    session.refresh(match)
    if match.state != MatchState.APPLIED.value:
        raise ServiceError(N_("this match is {state}: only an applied match can be undone").format(state=match.state))
    invoice = _lock_invoice(session, tenant_id, match.invoice_id)
    match.state, match.undone_at, match.user_id = MatchState.REJECTED.value, utcnow(), user_id
    invoice.amount_paid = max(ZERO, (invoice.amount_paid or ZERO) - match.amount)
    session.flush()
    _refresh_invoice(session, invoice)
    _refresh_transaction(session, tx)
    return match


def _parse_amount(value: Any, what: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip().replace(",", ".")).quantize(CENT)
    except (InvalidOperation, ValueError) as exc:
        raise ValidationFailed({what: N_("not an amount")}) from exc
    if not amount.is_finite() or amount <= 0 or amount >= Decimal("1e12"):
        raise ValidationFailed({what: N_("must be a positive amount")})
    return amount


def split_transaction(
    session: Session,
    tenant_id: int,
    transaction_id: int,
    parts: Iterable[tuple[int, Any]],
    user_id: int | None,
    write_off: Any = None,
) -> list[Match]:
    """Allocate a transaction to one or several invoices with amounts a person chose.

    Every part must fit what the invoice still has open; together they must fit the transaction. The
    transaction's pending suggestions are rejected. ``write_off`` (fees, discount) is credited to the
    last invoice on top of its cash amount.
    """
    tx = _lock_transaction(session, tenant_id, transaction_id)
    wanted = list(parts)
    if not wanted:
        raise ValidationFailed({"parts": N_("give at least one invoice and amount")})
    if len(wanted) > MAX_SPLIT_PARTS:
        raise ValidationFailed({"parts": N_("at most {limit} invoices").format(limit=MAX_SPLIT_PARTS)})
    extra = _parse_amount(write_off, "write_off") if write_off not in (None, "", 0, "0") else ZERO
    amounts = [(int(inv), _parse_amount(amount, f"amount[{i}]")) for i, (inv, amount) in enumerate(wanted)]
    if len({i for i, _ in amounts}) != len(amounts):
        raise ValidationFailed({"parts": N_("each invoice may appear once")})
    if allocated_cash(session, tx) + sum(a for _, a in amounts) > abs(tx.amount):
        raise ValidationFailed({"parts": f"the amounts exceed what is left of the transaction ({abs(tx.amount)})"})
    invoices = [_lock_invoice(session, tenant_id, invoice_id) for invoice_id, _ in amounts]
    for index, (invoice, (_, amount)) in enumerate(zip(invoices, amounts, strict=True)):
        key = f"amount[{index}]"
        sign = expected_sign(invoice.direction, invoice.doc_type or "invoice")
        if invoice.amount is None or sign != _sign(tx.amount):
            raise ValidationFailed({key: f"{invoice.number} cannot be settled by a payment in this direction"})
        credit = amount + (extra if index == len(amounts) - 1 else ZERO)
        if credit > open_amount(invoice):
            raise ValidationFailed({key: f"{invoice.number} has only {open_amount(invoice)} left to pay"})
    for match in session.scalars(matches_query(tenant_id, MatchState.SUGGESTED.value, tx.id)):
        match.state, match.decided_at, match.user_id = MatchState.REJECTED.value, utcnow(), user_id
    created = []
    for index, (invoice, (_, amount)) in enumerate(zip(invoices, amounts, strict=True)):
        last_extra = extra if index == len(amounts) - 1 else ZERO
        match = Match(
            tenant_id=tenant_id, transaction_id=tx.id, invoice_id=invoice.id, amount=amount + last_extra,
            write_off=last_extra, score=100, reasons=["allocated by a person"], created_by="user",
            state=MatchState.SUGGESTED.value,
        )  # fmt: skip
        session.add(match)
        _apply(session, match, invoice, user_id)
        created.append(match)
    _refresh_transaction(session, tx)
    return created


def set_category(session: Session, tenant_id: int, transaction_id: int, category: str | None) -> BankTransaction:
    """Explain a transaction without a document (or take that back with ``None``)."""
    tx = _lock_transaction(session, tenant_id, transaction_id)
    category = (category or "").strip()[:100] or None
    if category and tx.status == TransactionStatus.MATCHED.value:
        raise ServiceError(N_("undo the transaction's matches before giving it a category"))
    tx.category, tx.rule_id = category, None
    if category:
        for match in session.scalars(matches_query(tenant_id, MatchState.SUGGESTED.value, tx.id)):
            session.delete(match)
    _refresh_transaction(session, tx)
    return tx


# Rules --------------------------------------------------------------------------------------------


def rules_query(tenant_id: int) -> Select[Any]:
    return select(MatchingRule).where(MatchingRule.tenant_id == tenant_id).order_by(MatchingRule.id)


def get_rule(session: Session, tenant_id: int, rule_id: int) -> MatchingRule:
    rule = session.get(MatchingRule, rule_id)
    if rule is None or rule.tenant_id != tenant_id:
        raise NotFound("no such rule")
    return rule


def _optional_amount(value: Any, name: str, errors: dict[str, str]) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        amount = Decimal(str(value).strip().replace(",", ".")).quantize(CENT)
        if not amount.is_finite() or abs(amount) >= Decimal("1e12"):
            raise InvalidOperation
        return amount
    except (InvalidOperation, ValueError):
        errors[name] = N_("not an amount (signed: -9.90 for money out)")
        return None


def _optional_rate(value: Any, errors: dict[str, str]) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        rate = Decimal(str(value).strip().replace(",", "."))
        if not rate.is_finite() or not 0 <= rate <= 100:
            raise InvalidOperation
        return rate.quantize(CENT)
    except (InvalidOperation, ValueError):
        errors["vat_rate"] = N_("A VAT rate is a number between 0 and 100.")
        return None


def create_rule(session: Session, tenant_id: int, data: dict[str, Any], apply_to_past: bool = True) -> MatchingRule:
    """A rule: counterparty and/or text contained (case-insensitive), signed amount range, category; and
    optionally the general-ledger account (and VAT rate) its transactions are booked to. Only the form of
    the account is checked here: that it is in the chart and active is ``core.accounting.bankrules``'s
    check, which the transports go through."""
    errors: dict[str, str] = {}
    text = {k: str(data.get(k) or "").strip() for k in ("name", "counterparty_pattern", "text_pattern", "category")}
    for key, value in text.items():
        if len(value) > MAX_RULE_TEXT:
            errors[key] = N_("at most {limit} characters").format(limit=MAX_RULE_TEXT)
    if not text["category"]:
        errors["category"] = N_("a category is required")
    low = _optional_amount(data.get("min_amount"), "min_amount", errors)
    high = _optional_amount(data.get("max_amount"), "max_amount", errors)
    if low is not None and high is not None and low > high:
        errors["max_amount"] = N_("must not be below the minimum")
    if not (text["counterparty_pattern"] or text["text_pattern"] or low is not None or high is not None):
        errors["counterparty_pattern"] = N_("give a counterparty, a text or an amount range to recognise")
    account = str(data.get("account") or "").strip().upper() or None
    if account is not None and not RULE_ACCOUNT.fullmatch(account):
        errors["account"] = N_("An account number is 1 to 20 digits or capital letters.")
    vat_rate = _optional_rate(data.get("vat_rate"), errors)
    if vat_rate is not None and account is None:
        errors["vat_rate"] = N_("a VAT rate needs an account to post to")
    if errors:
        raise ValidationFailed(errors)
    rule = MatchingRule(
        tenant_id=tenant_id, name=text["name"] or text["category"], category=text["category"][:100],
        counterparty_pattern=text["counterparty_pattern"] or None, text_pattern=text["text_pattern"] or None,
        min_amount=low, max_amount=high, account=account, vat_rate=vat_rate,
    )  # fmt: skip
    session.add(rule)
    session.flush()
    if apply_to_past:
        apply_rules(session, tenant_id, rule_ids=[rule.id])
    return rule


def delete_rule(session: Session, tenant_id: int, rule_id: int) -> None:
    """Remove a rule; the transactions it categorised keep their category (a person can clear it)."""
    session.delete(get_rule(session, tenant_id, rule_id))
    session.flush()


def rule_matches(rule: MatchingRule, tx: BankTransaction) -> bool:
    if rule.counterparty_pattern and rule.counterparty_pattern.casefold() not in (tx.counterparty or "").casefold():
        return False
    if rule.text_pattern:
        haystack = " ".join(p for p in (tx.remittance, tx.reference, tx.counterparty) if p).casefold()
        if rule.text_pattern.casefold() not in haystack:
            return False
    if rule.min_amount is not None and tx.amount < rule.min_amount:
        return False
    return rule.max_amount is None or tx.amount <= rule.max_amount


def apply_rules(
    session: Session,
    tenant_id: int,
    rule_ids: Sequence[int] | None = None,
    transaction_ids: Sequence[int] | None = None,
) -> int:
    """Categorise uncategorised, unmatched transactions (future ones on import, past ones when a rule is
    created); the first rule that fits wins. Returns how many were categorised."""
    rules = list(session.scalars(rules_query(tenant_id)))
    if rule_ids is not None:
        rules = [r for r in rules if r.id in set(rule_ids)]
    if not rules:
        return 0
    stmt = select(BankTransaction).where(
        BankTransaction.tenant_id == tenant_id,
        BankTransaction.category.is_(None),
        BankTransaction.status.in_((TransactionStatus.UNMATCHED.value, TransactionStatus.SUGGESTED.value)),
    )
    if transaction_ids is not None:
        stmt = stmt.where(BankTransaction.id.in_(list(transaction_ids)))
    count = 0
    for tx in session.scalars(stmt):
        rule = next((r for r in rules if rule_matches(r, tx)), None)
        if rule is None:
            continue
        tx.category, tx.rule_id = rule.category, rule.id
        for match in session.scalars(matches_query(tenant_id, MatchState.SUGGESTED.value, tx.id)):
            session.delete(match)
        tx.status = TransactionStatus.IGNORED.value
        count += 1
    session.flush()
    return count


# Treasury -------------------------------------------------------------------------------------------


@dataclass
class ExpectedMovement:
    invoice: Invoice
    expected_date: date | None
    amount: Decimal  # signed: + expected in, - expected out


@dataclass
class CurrencyPosition:
    currency: str
    balance: Decimal = ZERO
    expected_in: Decimal = ZERO
    expected_out: Decimal = ZERO
    overdue: Decimal = ZERO  # net of movements whose date has passed

    @property
    def projected(self) -> Decimal:
        """The bank balance once every expected movement has happened."""
        return self.balance + self.expected_in - self.expected_out

    @property
    def difference(self) -> Decimal:
        """Expected movements net: what the balance still has to move by."""
        return self.expected_in - self.expected_out


@dataclass
class Treasury:
    accounts: list[BankAccount]
    positions: list[CurrencyPosition]
    movements: list[ExpectedMovement] = field(default_factory=list)
    source: str = "invoices"  # "cash_movements" when the forecast's expected dates were found


def _expected_dates(session: Session, tenant_id: int) -> dict[int, date]:
    """Expected dates recorded by the receivables forecast (CashMovement), where that model exists."""
    import core.models as models

    cash_movement = getattr(models, "CashMovement", None)
    if cash_movement is None:
        return {}
    rows = session.execute(
        select(cash_movement.invoice_id, cash_movement.expected_date).where(
            cash_movement.tenant_id == tenant_id, cash_movement.kind == "expected"
        )
    )
    return {row.invoice_id: row.expected_date for row in rows}


def treasury(
    session: Session, tenant_id: int, today: date | None = None, horizon_days: int = 3650, viewer: Viewer | None = None
) -> Treasury:
    """Balances and the expected movements of open invoices; with ``viewer``, of the invoices they may see."""
    today = today or date.today()
    accounts = list(session.scalars(select(BankAccount).where(BankAccount.tenant_id == tenant_id)))
    positions: dict[str, CurrencyPosition] = defaultdict(lambda: CurrencyPosition(""))
    for account in accounts:
        if account.balance is not None:
            pos = positions[account.currency or "EUR"]
            pos.balance += account.balance
    expected = _expected_dates(session, tenant_id)
    movements: list[ExpectedMovement] = []
    invoices = session.scalars(
        select(Invoice).where(
            Invoice.tenant_id == tenant_id, Invoice.status != InvoiceStatus.PAID.value, Invoice.amount.is_not(None),
            access.invoice_clause(viewer) if viewer is not None else true(),
        )
    )
    limit = today + timedelta(days=horizon_days)
    for invoice in invoices:
        remaining = open_amount(invoice)
        if remaining <= 0:
            continue
        when = expected.get(invoice.id) or invoice.due_date or invoice.issue_date
        if when is not None and when > limit:
            continue
        signed = remaining * expected_sign(invoice.direction, invoice.doc_type or "invoice")
        movements.append(ExpectedMovement(invoice, when, signed))
        pos = positions[invoice.currency or "EUR"]
        if signed > 0:
            pos.expected_in += signed
        else:
            pos.expected_out -= signed
        if when is not None and when < today:
            pos.overdue += signed
    for currency, pos in positions.items():
        pos.currency = currency
    movements.sort(key=lambda m: (m.expected_date or date.min, m.invoice.id))
    return Treasury(
        accounts, sorted(positions.values(), key=lambda p: p.currency), movements,
        "cash_movements" if expected else "invoices",
    )  # fmt: skip


# Exports for the accountant -----------------------------------------------------------------------

EXPORTS = ("invoices", "payments", "matches")


def export_rows(
    session: Session, viewer: Viewer, kind: str
) -> tuple[list[str], Iterable[Sequence[Any]]]:
    """Header and rows of one export, limited to what ``viewer`` may see; rows are produced lazily, in batches."""
    tenant_id = viewer.tenant_id
    if kind == "invoices":
        header = ["id", "type", "direction", "number", "client", "issue_date", "due_date", "currency", "amount",
                  "amount_paid", "open_amount", "status", "paid_at"]  # fmt: skip
        invoices = session.scalars(
            select(Invoice).where(Invoice.tenant_id == tenant_id, access.invoice_clause(viewer))
            .order_by(Invoice.issue_date, Invoice.id)
            .execution_options(yield_per=1000)
        )  # fmt: skip
        clients = dict(session.execute(
            select(Client.id, Client.name).where(Client.tenant_id == tenant_id, access.client_clause(viewer, Client.id))
        ).all())
        return header, (
            [i.id, i.doc_type, i.direction, i.number, clients.get(i.client_id), i.issue_date, i.due_date, i.currency,
             i.amount, i.amount_paid, open_amount(i), i.status, i.paid_at]
            for i in invoices
        )  # fmt: skip
    if kind == "payments":
        header = ["id", "account", "booking_date", "value_date", "amount", "currency", "counterparty",
                  "counterparty_iban", "remittance", "reference", "pending", "status", "category"]  # fmt: skip
        accounts = dict(
            session.execute(select(BankAccount.id, BankAccount.iban).where(BankAccount.tenant_id == tenant_id)).all()
        )
        txs = session.scalars(
            select(BankTransaction).where(BankTransaction.tenant_id == tenant_id, access.transaction_clause(viewer))
            .order_by(BankTransaction.booking_date, BankTransaction.id).execution_options(yield_per=1000)
        )  # fmt: skip
        return header, (
            [t.id, accounts.get(t.account_id), t.booking_date, t.value_date, t.amount, t.currency, t.counterparty,
             t.iban, t.remittance, t.reference, t.pending, t.status, t.category]
            for t in txs
        )  # fmt: skip
    if kind == "matches":
        header = ["id", "transaction_id", "booking_date", "transaction_amount", "counterparty", "invoice_id",
                  "invoice_number", "amount", "write_off", "score", "state", "created_by", "reasons", "created_at",
                  "undone_at"]  # fmt: skip
        rows = session.execute(
            select(Match, BankTransaction, Invoice.number)
            .join(BankTransaction, Match.transaction_id == BankTransaction.id)
            .join(Invoice, Match.invoice_id == Invoice.id)
            .where(Match.tenant_id == tenant_id, access.match_clause(viewer))
            .order_by(BankTransaction.booking_date, Match.id)
            .execution_options(yield_per=1000)
        )  # fmt: skip
        return header, (
            [m.id, t.id, t.booking_date, t.amount, t.counterparty, m.invoice_id, number, m.amount, m.write_off,
             m.score, m.state, m.created_by, " | ".join(m.reasons or []), m.created_at, m.undone_at]
            for m, t, number in rows
        )  # fmt: skip
    raise NotFound("no such export")


def find_open_invoice(session: Session, tenant_id: int, number: str, amount_sign: int) -> Invoice:
    """The tenant's not fully paid invoice (or credit note) with this number that a payment of this sign
    can settle; a person types numbers, not ids."""
    from core.fields import number_key

    key = number_key(number or "")
    candidates = [
        invoice
        for invoice in session.scalars(
            select(Invoice).where(Invoice.tenant_id == tenant_id, Invoice.number_key == key)
        )
        if expected_sign(invoice.direction, invoice.doc_type or "invoice") == amount_sign
    ]
    if not candidates:
        raise ValidationFailed({"number": f"no invoice {number!r} that a payment in this direction can settle"})
    return candidates[0]
