"""Issue 18 items 2 and 4, the bank side of the books: one journal and one 512xxx account per bank account,
and bank transactions without a document booked through the matching rules that name an account.

Every test runs on SQLite and PostgreSQL (``db_url``), through the real services."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounting import bankrules, fec
from core.accounting import books as booksvc
from core.accounting import entries as entrysvc
from core.accounting.bankjournals import BankBook, ensure_bank_journals
from core.accounting.bankrules import sync_bank_entries
from core.accounting.models import EntryStatus, Journal, JournalEntry
from core.banking import reconciliation
from core.errors import ServiceError, ValidationFailed
from core.models import BankAccount, BankTransaction, Match, MatchingRule, Tenant, TransactionStatus
from tests.conftest import TenantFixture
from tests.fecchecker import check_fec
from tests.test_accounting import validate

D = Decimal
IBAN_1 = "FR7630006000011234567890189"
IBAN_2 = "FR7610107001011234567890129"


def bank_account(session: Session, tid: int, iban: str, name: str = "") -> BankAccount:
    account = BankAccount(tenant_id=tid, iban=iban, name=name)
    session.add(account)
    session.flush()
    return account


def transaction(session: Session, account: BankAccount, key: str, on: date, amount: str, counterparty: str = "",
                remittance: str = "") -> BankTransaction:
    tx = BankTransaction(tenant_id=account.tenant_id, account_id=account.id, fingerprint=key, booking_date=on,
                         amount=D(amount), counterparty=counterparty, remittance=remittance)
    session.add(tx)
    session.flush()
    return tx


def entry_of(session: Session, source: str) -> JournalEntry | None:
    return session.scalars(select(JournalEntry).where(JournalEntry.source == source)).first()


def lines(entry: JournalEntry) -> list[tuple[str, str, str]]:
    return [(ln.account, str(ln.debit), str(ln.credit)) for ln in entry.lines]


def test_two_bank_accounts_give_two_journals_and_two_bank_accounts_in_the_fec(session, storage, tenant):
    tid = tenant.tenant.id
    session.get(Tenant, tid).siren = "732829320"
    invoice, sale = validate(session, storage, tenant, "J-1", "120.00", net="100.00", tax="20.00")
    first = bank_account(session, tid, IBAN_1, "Crédit Agricole")
    second = bank_account(session, tid, IBAN_2)
    matches = []
    for account, (day, amount) in ((first, (10, "50.00")), (second, (20, "70.00"))):
        tx = transaction(session, account, f"j-{day}", date(2026, 3, day), amount, "Client SA")
        match = Match(tenant_id=tid, transaction_id=tx.id, invoice_id=invoice.id, amount=D(amount))
        session.add(match)
        session.flush()
        matches.append(match)
    session.commit()
    for match in matches:
        reconciliation.accept_match(session, tid, match.id, tenant.admin.id)
    assert sync_bank_entries(session, tid) == 4  # two journals given, two settlements drafted
    assert sync_bank_entries(session, tid) == 0
    session.commit()
    journals = {j.bank_account_id: j for j in session.scalars(select(Journal).where(Journal.tenant_id == tid))
                if j.bank_account_id}
    assert (journals[first.id].code, journals[first.id].account, journals[first.id].label) == (
        "BQ1", "512001", "Banque Crédit Agricole")
    assert (journals[second.id].code, journals[second.id].account, journals[second.id].label) == (
        "BQ2", "512002", f"Banque {IBAN_2}")
    assert booksvc.get_account(session, tid, "512002").label == f"Banque {IBAN_2}"  # added to the chart
    settlements = [entry_of(session, f"match:{m.id}") for m in matches]
    assert [(e.journal, e.status) for e in settlements] == [("BQ1", "ready"), ("BQ2", "ready")]
    assert lines(settlements[1])[0] == ("512002", "70.00", "0.00")
    entrysvc.post_entries(session, tid, [sale.id, *(e.id for e in settlements)], tenant.admin.id,
                          today=date(2026, 3, 25))
    session.commit()
    name = fec.filename(session, tid, 2026)
    data = b"".join(fec.stream(session, tid, 2026))
    assert check_fec(name, data, date(2026, 1, 1), date(2026, 12, 31)) == []
    rows = [row.split("\t") for row in data.decode().split("\r\n")[1:] if row]
    bank_rows = {(r[0], r[1], r[4]) for r in rows if r[4].startswith("512")}
    assert bank_rows == {("BQ1", "Banque Crédit Agricole", "512001"), ("BQ2", f"Banque {IBAN_2}", "512002")}
    # A third account later gets the next ones; an account keeps its journal for good.
    third = bank_account(session, tid, "DE89370400440532013000")
    assert ensure_bank_journals(session, tid, [third.id, first.id]) == {
        third.id: BankBook("BQ3", "512003"), first.id: BankBook("BQ1", "512001")}


def test_a_german_company_gets_its_bank_journals_on_skr04(session, tenant):
    tid = tenant.tenant.id
    session.get(Tenant, tid).chart = "skr04"
    account = bank_account(session, tid, "DE89370400440532013000", "Sparkasse")
    books = ensure_bank_journals(session, tid, [account.id])
    assert books[account.id] == BankBook("BQ1", "1801")
    assert booksvc.get_account(session, tid, "1801").label == "Bank Sparkasse"


def _fee_rule(session: Session, tid: int, **extra: str) -> MatchingRule:
    data = {"name": "Frais", "text_pattern": "FRAIS TENUE", "category": "bank fees", "account": "627000"} | extra
    return bankrules.create_rule(session, tid, data)


def test_a_rule_with_an_account_books_a_fee_without_a_document(session, tenant):
    tid = tenant.tenant.id
    first, second = bank_account(session, tid, IBAN_1), bank_account(session, tid, IBAN_2)
    fee = transaction(session, second, "f-1", date(2026, 4, 30), "-12.00", "LCL", "FRAIS TENUE DE COMPTE  AVRIL")
    other = transaction(session, first, "f-2", date(2026, 4, 30), "-30.00", "Loyer SCI", "LOYER AVRIL")
    session.commit()
    rule = _fee_rule(session, tid)
    session.commit()
    assert (rule.account, rule.vat_rate) == ("627000", None)
    entry = entry_of(session, f"banktx:{fee.id}")
    assert entry is not None and entry_of(session, f"banktx:{other.id}") is None
    # The second bank account's journal and account (the first one got BQ1 / 512001 at the same time).
    assert (entry.journal, entry.entry_date, entry.label, entry.status) == (
        "BQ2", date(2026, 4, 30), "FRAIS TENUE DE COMPTE AVRIL", EntryStatus.READY.value)
    assert lines(entry) == [("627000", "12.00", "0.00"), ("512002", "0.00", "12.00")]
    assert sync_bank_entries(session, tid) == 0  # idempotent: nothing drafted twice
    assert len(session.scalars(select(JournalEntry).where(JournalEntry.tenant_id == tid)).all()) == 1
    # A subscription with VAT included: net on the rule's account, the deductible VAT, the bank.
    sub = transaction(session, first, "s-1", date(2026, 5, 3), "-24.00", "OVH", "Abonnement hébergement")
    income = transaction(session, first, "s-2", date(2026, 5, 4), "12.00", "OVH", "Abonnement avoir")
    bankrules.create_rule(session, tid, {"text_pattern": "abonnement", "category": "subscriptions",
                                         "account": "626000", "vat_rate": "20"})
    session.commit()
    assert lines(entry_of(session, f"banktx:{sub.id}")) == [
        ("626000", "20.00", "0.00"), ("445660", "4.00", "0.00"), ("512001", "0.00", "24.00")]
    refund = entry_of(session, f"banktx:{income.id}")  # money in: the bank in debit, collected VAT
    assert lines(refund) == [("512001", "12.00", "0.00"), ("626000", "0.00", "10.00"), ("445711", "0.00", "2.00")]
    assert refund.status == EntryStatus.READY.value
    # Rules applied at import (a new transaction categorised) are booked at the next synchronisation.
    later = transaction(session, second, "f-3", date(2026, 5, 31), "-12.00", "LCL", "FRAIS TENUE DE COMPTE MAI")
    assert reconciliation.apply_rules(session, tid, transaction_ids=[later.id]) == 1
    assert sync_bank_entries(session, tid) == 1
    assert entry_of(session, f"banktx:{later.id}").journal == "BQ2"


def test_undoing_a_category_takes_the_draft_and_refuses_while_posted(session, tenant):
    tid = tenant.tenant.id
    account = bank_account(session, tid, IBAN_1)
    draft_tx = transaction(session, account, "u-1", date(2026, 4, 30), "-12.00", "LCL", "FRAIS TENUE 04")
    posted_tx = transaction(session, account, "u-2", date(2026, 5, 31), "-12.00", "LCL", "FRAIS TENUE 05")
    session.commit()
    _fee_rule(session, tid)
    session.commit()
    posted = entry_of(session, f"banktx:{posted_tx.id}")
    entrysvc.post_entry(session, tid, posted.id, tenant.admin.id, today=date(2026, 6, 1))
    session.commit()
    bankrules.set_category(session, tid, draft_tx.id, None)
    session.commit()
    assert entry_of(session, f"banktx:{draft_tx.id}") is None
    assert session.get(BankTransaction, draft_tx.id).status == TransactionStatus.UNMATCHED.value
    assert sync_bank_entries(session, tid) == 0  # not drafted again: the transaction has no category now
    with pytest.raises(ServiceError, match=r"posted \(No\. 1\): record its reversal"):
        bankrules.set_category(session, tid, posted_tx.id, "something else")
    session.rollback()
    assert session.get(BankTransaction, posted_tx.id).category == "bank fees"
    entrysvc.reverse_entry(session, tid, posted.id, on=date(2026, 6, 2))
    bankrules.set_category(session, tid, posted_tx.id, None)
    session.commit()
    assert entry_of(session, f"banktx:{posted_tx.id}").status == EntryStatus.POSTED.value  # kept, reversed
    assert sync_bank_entries(session, tid) == 0


def test_a_transaction_matched_since_loses_its_draft(session, storage, tenant):
    tid = tenant.tenant.id
    invoice, _ = validate(session, storage, tenant, "F-9", "12.00", direction="payable", client="LCL",
                          net="10.00", tax="2.00")
    account = bank_account(session, tid, IBAN_1)
    tx = transaction(session, account, "m-1", date(2026, 4, 30), "-12.00", "LCL", "FRAIS TENUE F-9")
    session.commit()
    _fee_rule(session, tid)
    session.commit()
    assert entry_of(session, f"banktx:{tx.id}") is not None
    reconciliation.split_transaction(session, tid, tx.id, [(invoice.id, "12.00")], tenant.admin.id)
    assert sync_bank_entries(session, tid) == 2  # its settlement drafted, its rule's draft dropped
    session.commit()
    assert entry_of(session, f"banktx:{tx.id}") is None


@pytest.mark.parametrize(("account", "why"), [("999999", "is not in the chart of accounts"),
                                              ("627000", "is deactivated"), ("445660", "needs its VAT rate")])
def test_an_unknown_or_deactivated_account_is_refused_and_nothing_written(session, tenant, account, why):
    tid = tenant.tenant.id
    tx = transaction(session, bank_account(session, tid, IBAN_1), "r-1", date(2026, 4, 30), "-12.00", "LCL",
                     "FRAIS TENUE")
    booksvc.ensure_books(session, tid)
    booksvc.update_account(session, tid, "627000", active=False)
    session.commit()
    with pytest.raises(ValidationFailed) as refused:
        _fee_rule(session, tid, account=account)
    session.rollback()
    assert why in refused.value.errors["account"] and f"account {account}" in refused.value.errors["account"]
    assert session.scalars(select(MatchingRule)).first() is None
    assert session.get(BankTransaction, tx.id).category is None
    with pytest.raises(ValidationFailed) as malformed:
        _fee_rule(session, tid, account="62 70")
    assert "1 to 20 digits" in malformed.value.errors["account"]


def test_a_rule_account_deactivated_later_leaves_the_entry_to_process(session, tenant):
    tid = tenant.tenant.id
    account = bank_account(session, tid, IBAN_1)
    _fee_rule(session, tid)
    booksvc.update_account(session, tid, "627000", active=False)
    tx = transaction(session, account, "d-1", date(2026, 4, 30), "-12.00", "LCL", "FRAIS TENUE")
    reconciliation.apply_rules(session, tid, transaction_ids=[tx.id])
    sync_bank_entries(session, tid)
    entry = entry_of(session, f"banktx:{tx.id}")
    assert entry.status == EntryStatus.TO_PROCESS.value
    assert entry.issues == ["Line 1: account 627000 is deactivated. Reactivate it or choose another."]


def test_dashboard_rules_form_books_and_bank_page_shows_the_journal(app, session, tenant: TenantFixture):
    from tests.test_dashboard import login, post, text

    tid = tenant.tenant.id
    account = bank_account(session, tid, IBAN_1, "Banque <b>Pop</b>")
    tx = transaction(session, account, "w-1", date(2026, 4, 30), "-35.00", "DGFIP", "CFE 2026")
    session.commit()
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    page = text(web.get("/bank/rules"))
    assert 'name="account"' in page and '<option value="635000">' in page
    refused = post(web, "/bank/rules", {"text_pattern": "CFE", "category": "taxes", "account": "635999"},
                   page="/bank/rules")
    assert refused.status_code == 302 and "account 635999 is not in the chart" in text(web.get("/bank/rules"))
    assert "journal given at its first entry" in text(web.get("/bank"))
    done = post(web, "/bank/rules", {"text_pattern": "CFE", "category": "taxes", "account": "635000"},
                page="/bank/rules")
    assert done.status_code == 302
    session.expire_all()
    assert lines(entry_of(session, f"banktx:{tx.id}")) == [("635000", "35.00", "0.00"), ("512001", "0.00", "35.00")]
    bank_page = text(web.get("/bank"))
    assert "journal BQ1, account 512001" in bank_page and "Banque &lt;b&gt;Pop&lt;/b&gt;" in bank_page
    assert "journal BQ1, account 512001" in text(web.get(f"/bank/accounts/{account.id}"))
    listing = text(web.get("/accounting?status=ready&journal=BQ1"))
    assert "CFE 2026" in listing and 'value="BQ1"' in listing
    api = app.test_client()
    auth = {"Authorization": f"Bearer {tenant.token}"}
    assert api.get("/api/v1/bank-accounts", headers=auth).get_json()["items"][0] | {"csv_mapping": None} == {
        "id": account.id, "iban": IBAN_1, "name": "Banque <b>Pop</b>", "currency": None, "balance": None,
        "balance_date": None, "csv_mapping": None, "journal": "BQ1", "ledger_account": "512001"}
    assert [e["journal"] for e in api.get("/api/v1/accounting/entries?status=ready&journal=bq1",
                                          headers=auth).get_json()["items"]] == ["BQ1"]


def test_settlement_drafts_from_before_move_to_their_bank_journal_posted_ones_stay(session, storage, tenant):
    tid = tenant.tenant.id
    invoice, _ = validate(session, storage, tenant, "L-1", "120.00", net="100.00", tax="20.00")
    account = bank_account(session, tid, IBAN_1)
    entries = []
    for day, amount in ((10, "50.00"), (20, "70.00")):
        tx = transaction(session, account, f"l-{day}", date(2026, 3, day), amount, "Client SA")
        match = Match(tenant_id=tid, transaction_id=tx.id, invoice_id=invoice.id, amount=D(amount))
        session.add(match)
        session.flush()
        reconciliation.accept_match(session, tid, match.id, tenant.admin.id)
        sync_bank_entries(session, tid)
        entries.append(entry_of(session, f"match:{match.id}"))
    for entry in entries:  # as the settlements were drafted before one journal per bank account
        entry.journal = "BQ"
        entry.lines[0].account = "512000"
    entrysvc.post_entry(session, tid, entries[0].id, tenant.admin.id, today=date(2026, 3, 21))
    session.commit()
    assert sync_bank_entries(session, tid) == 1
    assert sync_bank_entries(session, tid) == 0
    session.commit()
    assert (entries[0].journal, lines(entries[0])[0]) == ("BQ", ("512000", "50.00", "0.00"))  # posted: as it was
    assert (entries[1].journal, lines(entries[1])[0], entries[1].status) == (
        "BQ1", ("512001", "70.00", "0.00"), EntryStatus.READY.value)
