"""Bank transactions without a document (fees, subscriptions, taxes), booked through the matching rules
that name a general-ledger account (issue 18, item 4).

A transaction a rule categorises, when the rule names an account, gets one draft entry in its bank
account's journal (``bankjournals``): 512xxx against the rule's account (and the VAT line when the rule
gives a rate), labelled with the transaction's text, dated at its booking date. As for settlements, the
entries are synchronised rather than hooked (rules apply in bulk at import): ``sync_rule_entries`` drafts
what is missing and drops the drafts of transactions no longer categorised; a posted entry stays and is
corrected by its reversal. Changing a transaction's category by hand goes through ``set_category`` here,
which refuses while its posted entry has no reversal.

The rule's account is checked when the rule is made, by the ledger's one check (``ledger.problems``) on
the entry the rule would give: an unknown or deactivated account is refused with its reason.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import String, cast, exists, literal, select
from sqlalchemy.orm import Session

from core.accounting import books as booksvc
from core.accounting.bankjournals import BankBook, assign_bank_journals, ensure_bank_journals
from core.accounting.charts import BANK, Chart
from core.accounting.ledger import Entry, Line, as_rate, cents, problems
from core.accounting.models import EntryStatus, JournalEntry, LedgerAccount
from core.accounting.rows import write_row
from core.accounting.settlements import sync_settlements
from core.banking import reconciliation, transactions
from core.errors import ServiceError, ValidationFailed
from core.i18n import N_
from core.models import BankTransaction, MatchingRule, TransactionStatus

SOURCE = "banktx:"
POSTED_BANK_ENTRY = N_("The bank entry of this transaction is posted (No. {number}): record its reversal in the "
                       "accounting before changing its category.")
PROBE_AMOUNT = Decimal("-100.00")  # the rule's entry for a payment of 100: what its account is checked on


def source_of(transaction_id: int) -> str:
    return f"{SOURCE}{transaction_id}"


def transaction_text(tx: BankTransaction) -> str:
    """The entry's label: the bank's text for the movement, else its reference or counterparty."""
    text = " ".join((tx.remittance or tx.reference or tx.counterparty or "").split())
    return (text or tx.category or "")[:200]


def rule_entry(amount: Decimal, on: date, label: str, piece_ref: str, account: str, vat_rate: Decimal | None,
               book: BankBook, chart: Chart) -> Entry:
    """Money out: the rule's account (net) and the deductible VAT in debit, the bank in credit; money in
    the other way, with collected VAT. No VAT line without a rate (or at 0 %)."""
    total = abs(cents(amount))
    money_in = amount > 0
    rate = as_rate(vat_rate) if vat_rate is not None else None
    net = cents(total * 100 / (100 + rate)) if rate else total
    tax = total - net

    def side(account_number: str, value: Decimal, **extra: Any) -> Line:
        # The counterpart of the bank: credit when money comes in, debit when it goes out.
        return (Line(account=account_number, credit=value, label=label, **extra) if money_in
                else Line(account=account_number, debit=value, label=label, **extra))

    lines = [side(account, net, vat_rate=rate)]
    if rate and tax:
        lines.append(side(chart.vat_account(collected=money_in, rate=rate), tax, vat_rate=rate))
    bank = (Line(account=book.account, debit=total, label=label) if money_in
            else Line(account=book.account, credit=total, label=label))
    lines = [bank, *lines] if money_in else [*lines, bank]
    return Entry(journal=book.journal, date=on, label=label, piece_ref=piece_ref[:100], lines=tuple(lines),
                 piece_date=on)


def check_rule_account(session: Session, tenant_id: int, account: str, vat_rate: Decimal | None) -> None:
    """Refuse (ValidationFailed on ``account``) an account the rule's entries could not be posted to:
    ``ledger.problems`` on the entry the rule gives for a payment, whatever the year (closing a year is
    not the rule's concern)."""
    books = booksvc.load_books(session, tenant_id)
    chart = booksvc.chart_of(session, tenant_id)
    probe = rule_entry(PROBE_AMOUNT, date.today(), "", "", account, vat_rate, BankBook(BANK, chart.bank), chart)
    found = problems(probe, replace(books, closed_years=frozenset()))
    if found:
        raise ValidationFailed({("account" if i == 0 else f"account_{i + 1}"): p for i, p in enumerate(found)})


def account_choices(session: Session, tenant_id: int) -> list[tuple[str, str]]:
    """(number, label) of the active accounts a rule may name; the standard chart's while the tenant's is
    not seeded yet (reading creates nothing: the chart a company picks later is still the one seeded)."""
    rows = session.execute(select(LedgerAccount.number, LedgerAccount.label).where(
        LedgerAccount.tenant_id == tenant_id, LedgerAccount.active.is_(True)).order_by(LedgerAccount.number)).all()
    if rows:
        return [(row.number, row.label) for row in rows]
    return sorted((seed.number, seed.label) for seed in booksvc.chart_of(session, tenant_id).accounts)


def create_rule(session: Session, tenant_id: int, data: dict[str, Any], apply_to_past: bool = True) -> MatchingRule:
    """``reconciliation.create_rule``, with its account checked against the chart first, and the entries of
    the past transactions it categorises drafted at once."""
    account = str(data.get("account") or "").strip().upper()
    if account and reconciliation.RULE_ACCOUNT.fullmatch(account):  # a malformed one: the rule's own message
        check_rule_account(session, tenant_id, account, booksvc.parse_rate(data.get("vat_rate")))
    rule = reconciliation.create_rule(session, tenant_id, data, apply_to_past=apply_to_past)
    if rule.account:
        sync_rule_entries(session, tenant_id)
    return rule


def set_category(session: Session, tenant_id: int, transaction_id: int, category: str | None) -> BankTransaction:
    """``reconciliation.set_category`` for a person: a new category (or none) takes the transaction's draft
    bank entry away; refused while its entry is posted and not reversed."""
    tx = transactions.get_transaction(session, tenant_id, transaction_id)
    new = (category or "").strip()[:100] or None
    row = session.scalars(select(JournalEntry).where(JournalEntry.tenant_id == tenant_id,
                                                     JournalEntry.source == source_of(tx.id))).first()
    if row is not None and new != tx.category:
        if row.status != EntryStatus.POSTED.value:
            session.delete(row)
        elif not session.scalar(select(JournalEntry.id).where(JournalEntry.tenant_id == tenant_id,
                                                              JournalEntry.source == f"reversal:{row.id}")):
            raise ServiceError(POSTED_BANK_ENTRY.format(number=row.number))
    return reconciliation.set_category(session, tenant_id, transaction_id, category)


def _booked(tenant_id: int) -> list[Any]:
    """The conditions under which a categorised transaction keeps its bank entry."""
    return [BankTransaction.tenant_id == tenant_id, BankTransaction.status == TransactionStatus.IGNORED.value,
            BankTransaction.category.is_not(None), BankTransaction.pending.is_(False)]


def sync_rule_entries(session: Session, tenant_id: int) -> int:
    """Draft the entries of transactions categorised by a rule that names an account; drop the drafts of
    those no longer categorised (or matched since). Returns how many were drafted or dropped."""
    source_of_tx = literal(SOURCE) + cast(BankTransaction.id, String)
    has_entry = exists().where(JournalEntry.tenant_id == tenant_id, JournalEntry.source == source_of_tx)
    missing = session.execute(
        select(BankTransaction, MatchingRule)
        .join(MatchingRule, MatchingRule.id == BankTransaction.rule_id)
        .where(*_booked(tenant_id), MatchingRule.tenant_id == tenant_id, MatchingRule.account.is_not(None),
               ~has_entry)
        .order_by(BankTransaction.booking_date, BankTransaction.id)
    ).all()
    still_booked = exists().where(*_booked(tenant_id), JournalEntry.source == source_of_tx)
    stale = list(session.scalars(select(JournalEntry).where(
        JournalEntry.tenant_id == tenant_id, JournalEntry.source.like(f"{SOURCE}%"),
        JournalEntry.status != EntryStatus.POSTED.value, ~still_booked)))
    for row in stale:
        session.delete(row)
    if missing:
        banks = ensure_bank_journals(session, tenant_id, {tx.account_id for tx, _rule in missing})
        books = booksvc.load_books(session, tenant_id)
        chart = booksvc.chart_of(session, tenant_id)
        for tx, rule in missing:
            book = banks[tx.account_id]
            row = JournalEntry(tenant_id=tenant_id, source=source_of(tx.id), journal=book.journal,
                               entry_date=tx.booking_date)
            entry = rule_entry(tx.amount, tx.booking_date, transaction_text(tx), tx.reference or "",
                               rule.account or "", rule.vat_rate, book, chart)
            write_row(row, entry, books)
            session.add(row)
    session.flush()
    return len(missing) + len(stale)


def sync_bank_entries(session: Session, tenant_id: int) -> int:
    """Everything the bank side owes the books, safe to run before every listing: each bank account's
    journal, the settlements of reconciled payments, the entries of categorised transactions. Returns how
    many changes were made (0: nothing to commit)."""
    return (assign_bank_journals(session, tenant_id) + sync_settlements(session, tenant_id)
            + sync_rule_entries(session, tenant_id))
