"""Statements imported into a tenant and matched against its invoices (real database, both backends)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.banking import reconciliation
from core.banking import transactions as bank
from core.einvoice import read_einvoice, to_fields
from core.errors import ServiceError, ValidationFailed
from core.files.storage import FileStorage
from core.models import BankAccount, BankTransaction, Client, Invoice, Match, MatchState
from tests.bankhelpers import ACCOUNT, csv_row, make_invoice, statement_csv
from tests.corpus import CORPUS as SHARED

CORPUS = SHARED
D = Decimal


def _import(session: Session, tenant_id: int, *rows: str) -> bank.ImportResult:
    result = bank.import_statement(session, tenant_id, statement_csv(*rows), "umsaetze.csv")
    session.commit()
    return result


def _matches(session: Session, invoice: Invoice, state: str = MatchState.APPLIED.value) -> list[Match]:
    return list(session.scalars(select(Match).where(Match.invoice_id == invoice.id, Match.state == state)))


def _tx_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(BankTransaction)) or 0


# Import ------------------------------------------------------------------------------------------


def test_import_creates_account_and_dedupes_overlapping_statements(session: Session, tenant) -> None:
    tid = tenant.tenant.id
    first = _import(
        session, tid,
        csv_row(date(2026, 2, 1), "Loyer", "-800,00", "SCI Murs"),
        csv_row(date(2026, 2, 2), "Cafe", "-3,20", "Bar"),
        csv_row(date(2026, 2, 2), "Cafe", "-3,20", "Bar"),
    )  # fmt: skip
    assert first.created == 3 and first.duplicates == 0
    # The second export overlaps the first by two rows and adds one.
    second = _import(
        session, tid,
        csv_row(date(2026, 2, 2), "Cafe", "-3,20", "Bar"),
        csv_row(date(2026, 2, 2), "Cafe", "-3,20", "Bar"),
        csv_row(date(2026, 2, 3), "Virement", "120,00", "Client"),
    )  # fmt: skip
    assert second.created == 1 and second.duplicates == 2
    assert _tx_count(session) == 4
    account = session.scalars(select(BankAccount)).one()
    assert account.iban == ACCOUNT and account.tenant_id == tid
    assert account.csv_mapping and account.csv_mapping["name"] == "sparkasse-camt"


def test_reimporting_every_corpus_statement_adds_nothing(session: Session, tenant) -> None:
    tid = tenant.tenant.id
    imported = 0
    for path in sorted((CORPUS / "bank").iterdir()):
        data = path.read_bytes()
        try:
            result = bank.import_statement(session, tid, data, path.name, match=False)
        except ServiceError as exc:
            # Only statements that name no account may be refused, and then with a reason to act on.
            assert "choose the account" in str(exc), path.name
            continue
        imported += result.created
        before = _tx_count(session)
        again = bank.import_statement(session, tid, data, path.name, match=False)
        # Only pending rows are replaced (a newer file says what is still pending); nothing is doubled.
        assert again.created == again.pending and _tx_count(session) == before, path.name
    session.commit()
    assert imported > 150
    assert _tx_count(session) > 150


def test_unreadable_file_is_refused_with_a_reason(session: Session, tenant) -> None:
    with pytest.raises(ServiceError, match="could not be read as a bank statement"):
        bank.import_statement(session, tenant.tenant.id, b"%PDF-1.7 not a statement", "invoice.pdf")
    assert not bank.looks_like_statement(b"%PDF-1.7 x", "x.pdf")
    assert bank.looks_like_statement((CORPUS / "bank" / "camt053.v2.minimal.xml").read_bytes(), "s.xml")
    assert bank.looks_like_statement((CORPUS / "bank" / "mt940_jejik_ing.sta").read_bytes(), "s.sta")
    assert bank.looks_like_statement((CORPUS / "bank" / "csv_dkb_giro_beancount-dkb.csv").read_bytes(), "a.csv")
    assert not bank.looks_like_statement(b"name,amount,x,y\nfoo,1,2,3\n", "list.csv")


def test_statement_for_another_account_than_the_chosen_one_is_refused(session: Session, tenant) -> None:
    tid = tenant.tenant.id
    other = bank.find_or_create_account(session, tid, "FR7630006000011234567890189")
    with pytest.raises(ServiceError, match="not of"):
        bank.import_statement(session, tid, statement_csv(csv_row(date(2026, 1, 1), "x", "1,00")), "a.csv", other.id)


def test_custom_csv_mapping_saved_per_account(session: Session, tenant) -> None:
    tid = tenant.tenant.id
    account = bank.find_or_create_account(session, tid, "FR76 3000 6000 0112 3456 7890 189", name="BNP")
    data = b"Date,Libelle,Montant,Tiers\n2026-03-01,FAC-2026-0007,\"1,250.00\",Dupont SARL\n"
    with pytest.raises(ServiceError):  # an unknown layout without a mapping
        bank.import_statement(session, tid, data, "bnp.csv", account.id)
    with pytest.raises(ValidationFailed):
        bank.save_csv_mapping(session, tid, account.id, {"booking_date": "Date"})  # no amount column
    bank.save_csv_mapping(
        session, tid, account.id,
        {"booking_date": "Date", "amount": "Montant", "remittance": "Libelle", "counterparty_name": "Tiers",
         "delimiter": ",", "decimal_comma": False},
    )  # fmt: skip
    result = bank.import_statement(session, tid, data, "bnp.csv", account.id)
    session.commit()
    assert result.created == 1
    tx = session.scalars(select(BankTransaction)).one()
    assert tx.amount == D("1250.00") and tx.account_id == account.id and tx.counterparty == "Dupont SARL"


# Matching scenarios ---------------------------------------------------------------------------------


def test_exact_payment_is_applied_and_undo_restores(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    invoice = make_invoice(session, storage, tid, "FA-2026-0042", "1200.00", "Dupont SARL", due_date=date(2026, 2, 5))
    result = _import(session, tid, csv_row(date(2026, 2, 3), "Paiement facture FA 2026 0042", "1.200,00", "DUPONT"))
    assert result.applied == 1
    session.refresh(invoice)
    assert invoice.status == "paid" and invoice.amount_paid == D("1200.00") and invoice.paid_at == date(2026, 2, 3)
    (match,) = _matches(session, invoice)
    assert match.created_by == "auto" and match.score >= 80
    assert any("FA-2026-0042" in reason for reason in match.reasons)

    reconciliation.undo_match(session, tid, match.id, tenant.admin.id)
    session.commit()
    session.refresh(invoice)
    assert invoice.status == "open" and invoice.amount_paid == D("0") and invoice.paid_at is None
    tx = session.get(BankTransaction, match.transaction_id)
    assert tx.status == "unmatched" and match.undone_at is not None
    # An undone pair is never applied automatically again.
    reconciliation.run_matching(session, tid)
    session.commit()
    session.refresh(invoice)
    assert invoice.status == "open"
    with pytest.raises(ServiceError):
        reconciliation.undo_match(session, tid, match.id, tenant.admin.id)


def test_grouped_payment_of_several_invoices(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    iban = "FR7611111111111111111111111"
    a = make_invoice(session, storage, tid, "F-1001", "100.00", "Martin & Fils", client_iban=iban)
    b = make_invoice(session, storage, tid, "F-1002", "250.50", "Martin & Fils")
    c = make_invoice(session, storage, tid, "F-1003", "99.00", "Martin & Fils")
    result = _import(session, tid, csv_row(date(2026, 2, 10), "Factures F-1001 et F-1002", "350,50", "Martin et Fils"))
    assert result.applied == 1
    for inv in (a, b, c):
        session.refresh(inv)
    assert (a.status, b.status, c.status) == ("paid", "paid", "open")
    # Without numbers, the payer's IBAN and a unique combination of its invoices are enough.
    d = make_invoice(session, storage, tid, "F-1004", "40.00", "Martin & Fils")
    result = _import(
        session, tid, csv_row(date(2026, 2, 11), "VIREMENT", "139,00", "M. FILS", "FR7611111111111111111111111")
    )
    session.refresh(c)
    session.refresh(d)
    assert result.applied == 1 and c.status == "paid" and d.status == "paid"


def test_partial_payments_then_rest(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    invoice = make_invoice(session, storage, tid, "RE-20201121/508", "571.04", "Bei Spiel GmbH")
    _import(session, tid, csv_row(date(2026, 1, 30), "RE-20201121/508 Teilzahlung 1", "500,00", "Bei Spiel GmbH"))
    session.refresh(invoice)
    assert invoice.status == "partially_paid" and invoice.amount_paid == D("500.00") and invoice.paid_at is None
    _import(session, tid, csv_row(date(2026, 2, 11), "RE 20201121 508 Rest", "71,04", "Bei Spiel GmbH"))
    session.refresh(invoice)
    assert invoice.status == "paid" and invoice.amount_paid == D("571.04") and invoice.paid_at == date(2026, 2, 11)


def test_wrong_amount_is_only_suggested_and_can_be_accepted(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    invoice = make_invoice(session, storage, tid, "FA-2026-0100", "1000.00", "Durand SA")
    result = _import(session, tid, csv_row(date(2026, 2, 3), "FA-2026-0100", "700,00", "Durand SA"))
    assert result.applied == 0 and result.suggested == 1
    session.refresh(invoice)
    assert invoice.status == "open"
    (suggestion,) = _matches(session, invoice, MatchState.SUGGESTED.value)
    assert any("differs" in r for r in suggestion.reasons)
    reconciliation.accept_match(session, tid, suggestion.id, tenant.admin.id)
    session.commit()
    session.refresh(invoice)
    assert invoice.status == "partially_paid" and invoice.amount_paid == D("700.00")


def test_reject_a_suggestion(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    invoice = make_invoice(session, storage, tid, "FA-2026-0101", "1000.00", "Durand SA")
    _import(session, tid, csv_row(date(2026, 2, 3), "FA-2026-0101", "650,00", "Durand SA"))
    (suggestion,) = _matches(session, invoice, MatchState.SUGGESTED.value)
    reconciliation.reject_match(session, tid, suggestion.id, tenant.admin.id)
    session.commit()
    assert session.get(BankTransaction, suggestion.transaction_id).status == "unmatched"
    reconciliation.run_matching(session, tid)
    session.commit()
    assert _matches(session, invoice, MatchState.SUGGESTED.value) == []


def test_over_payment_is_suggested_and_leaves_the_surplus(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    invoice = make_invoice(session, storage, tid, "FA-2026-0200", "500.00", "Leroy SAS")
    result = _import(session, tid, csv_row(date(2026, 2, 3), "FA-2026-0200", "550,00", "Leroy SAS"))
    assert result.applied == 0 and result.suggested == 1
    (suggestion,) = _matches(session, invoice, MatchState.SUGGESTED.value)
    assert suggestion.amount == D("500.00") and any("over-payment" in r for r in suggestion.reasons)
    reconciliation.accept_match(session, tid, suggestion.id, tenant.admin.id)
    session.commit()
    session.refresh(invoice)
    tx = session.get(BankTransaction, suggestion.transaction_id)
    assert invoice.status == "paid" and tx.status == "matched"
    assert reconciliation.allocated_cash(session, tx) == D("500.00")  # 50.00 left unallocated on the payment


def test_fees_deducted_and_discount(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    fees = make_invoice(session, storage, tid, "INV-7781", "1000.00", "Globex Ltd")
    discount = make_invoice(session, storage, tid, "INV-7782", "2594.20", "Initech GmbH")
    result = _import(
        session, tid,
        csv_row(date(2026, 2, 3), "INV-7781", "992,50", "GLOBEX LTD"),
        csv_row(date(2026, 2, 4), "INV-7782 abzgl. 2% Skonto", "2.542,32", "Initech GmbH"),
    )  # fmt: skip
    assert result.applied == 2
    for inv in (fees, discount):
        session.refresh(inv)
        assert inv.status == "paid" and inv.amount_paid == inv.amount
    (match,) = _matches(session, discount)
    assert match.write_off == D("51.88")


def test_typo_in_number_with_iban_is_applied(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    iban = "FR7630004000031234567890143"
    invoice = make_invoice(session, storage, tid, "FA-2026-04512", "310.00", "Petit SARL", client_iban=iban)
    make_invoice(session, storage, tid, "FA-2026-04513", "999.00", "Autre SAS")
    result = _import(session, tid, csv_row(date(2026, 2, 3), "Facture 2026-04152", "310,00", "PETIT", iban))
    assert result.applied == 1
    session.refresh(invoice)
    assert invoice.status == "paid"
    (match,) = _matches(session, invoice)
    assert any("typo" in r for r in match.reasons)


def test_credit_note_refund(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    note = make_invoice(session, storage, tid, "AV-2026-003", "120.00", "Dupont SARL", doc_type="credit_note")
    invoice = make_invoice(session, storage, tid, "AV-2026-004", "120.00", "Dupont SARL")
    # Money out: a refund to the client settles the credit note, never the invoice of the same amount.
    result = _import(session, tid, csv_row(date(2026, 2, 3), "Remboursement avoir AV-2026-003", "-120,00", "Dupont"))
    assert result.applied == 1
    session.refresh(note)
    session.refresh(invoice)
    assert note.status == "paid" and invoice.status == "open"


def test_two_clients_with_the_same_name_are_not_auto_applied(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    iban1, iban2 = "FR7610000000000000000000001", "FR7610000000000000000000002"
    one = make_invoice(session, storage, tid, "A-1", "480.00", "Bernard SA", client_iban=iban1)
    two = make_invoice(session, storage, tid, "B-9", "480.00", "Bernard SARL", client_iban=iban2)
    result = _import(session, tid, csv_row(date(2026, 2, 3), "VIREMENT", "480,00", "BERNARD"))
    assert result.applied == 0
    for inv in (one, two):
        session.refresh(inv)
        assert inv.status == "open"
    # The IBAN tells them apart: then the payment goes to the right one.
    result = _import(
        session, tid, csv_row(date(2026, 2, 4), "VIREMENT 2", "480,00", "BERNARD", "FR7610000000000000000000002")
    )
    session.refresh(one)
    session.refresh(two)
    assert result.applied == 1 and two.status == "paid" and one.status == "open"


def test_split_a_transaction_across_invoices(session: Session, storage: FileStorage, tenant, other_tenant) -> None:
    tid = tenant.tenant.id
    a = make_invoice(session, storage, tid, "S-1", "300.00", "Roux SAS")
    b = make_invoice(session, storage, tid, "S-2", "300.00", "Roux SAS")
    foreign = make_invoice(session, storage, other_tenant.tenant.id, "S-3", "100.00", "Roux SAS")
    _import(session, tid, csv_row(date(2026, 2, 3), "reglement", "450,00", "Roux"))
    tx = session.scalars(select(BankTransaction)).one()
    with pytest.raises(ValidationFailed):
        reconciliation.split_transaction(session, tid, tx.id, [(a.id, "300"), (b.id, "200")], tenant.admin.id)
    from core.errors import NotFound

    with pytest.raises(NotFound):
        reconciliation.split_transaction(session, tid, tx.id, [(foreign.id, "10")], tenant.admin.id)
    session.rollback()
    matches = reconciliation.split_transaction(session, tid, tx.id, [(a.id, "300"), (b.id, "150")], tenant.admin.id)
    session.commit()
    session.refresh(a)
    session.refresh(b)
    assert [m.created_by for m in matches] == ["user", "user"]
    assert a.status == "paid" and b.status == "partially_paid" and b.amount_paid == D("150.00")
    reconciliation.undo_match(session, tid, matches[1].id, tenant.admin.id)
    session.commit()
    session.refresh(b)
    assert b.status == "open" and b.amount_paid == D("0")


def test_rules_categorise_past_and_future_transactions(session: Session, tenant) -> None:
    tid = tenant.tenant.id
    _import(session, tid, csv_row(date(2026, 1, 31), "Entgelte Januar", "-9,90", ""))
    rule = reconciliation.create_rule(
        session, tid, {"name": "Frais", "text_pattern": "entgelte", "max_amount": "0", "category": "Bank fees"}
    )
    session.commit()
    tx = session.scalars(select(BankTransaction)).one()
    assert (tx.category, tx.status, tx.rule_id) == ("Bank fees", "ignored", rule.id)
    result = _import(
        session, tid,
        csv_row(date(2026, 2, 28), "Entgelte Februar", "-9,90", ""),
        csv_row(date(2026, 2, 28), "Entgelte Erstattung", "9,90", ""),  # money in: outside the range
    )  # fmt: skip
    assert result.categorised == 1
    with pytest.raises(ValidationFailed):
        reconciliation.create_rule(session, tid, {"category": "x"})


def test_treasury_balance_expected_and_difference(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    make_invoice(session, storage, tid, "T-1", "1000.00", "Client A", due_date=date(2026, 3, 1))
    make_invoice(session, storage, tid, "T-2", "400.00", "Supplier B", direction="payable", due_date=date(2026, 3, 5))
    data = (CORPUS / "bank" / "mt940_jejik_rabobank-iban.sta").read_bytes()
    bank.import_statement(session, tid, data, "r.sta")
    session.commit()
    view = reconciliation.treasury(session, tid, today=date(2026, 2, 1))
    (eur,) = view.positions
    assert eur.balance == D("930.00")
    assert (eur.expected_in, eur.expected_out) == (D("1000.00"), D("400.00"))
    assert eur.difference == D("600.00") and eur.projected == D("1530.00")
    assert [m.amount for m in view.movements] == [D("1000.00"), D("-400.00")]


# The synthetic Sparkasse statement against the e-invoice corpus ------------------------------------


def _load_corpus_invoice(session: Session, storage: FileStorage, tenant_id: int, name: str) -> Invoice:
    path = CORPUS / "einvoice" / name
    einv = read_einvoice(path.read_bytes(), name)
    fields = to_fields(einv)
    # The statement is the buyer's: these are payables, the counterparty is the seller.
    invoice = make_invoice(
        session, storage, tenant_id, fields["number"], fields["amount"], fields["issuer"], direction="payable",
        doc_type=fields["doc_type"], issue_date=fields["issue_date"], due_date=fields["due_date"],
        client_iban=einv.iban,
    )  # fmt: skip
    return invoice


def test_sparkasse_csv_against_einvoice_corpus(session: Session, storage: FileStorage, tenant) -> None:
    tid = tenant.tenant.id
    names = {
        "einfach": "zc_EN16931_Einfach.pdf",
        "korrektur": "zc_EN16931_Rechnungskorrektur.ubl.xml",
        "mustang": "zc_Mustang_RE-20201121_508.pdf",
        "kosit": "kosit_01.10a-INVOICE_ubl.xml",
    }
    invoices = {key: _load_corpus_invoice(session, storage, tid, name) for key, name in names.items()}
    session.commit()
    data = (CORPUS / "bank" / "csv_SYNTHETIC_sparkasse-csv-camt_payments.csv").read_bytes()
    result = bank.import_statement(session, tid, data, "sparkasse.csv")
    session.commit()
    assert result.created == 8 and result.pending == 1
    for invoice in invoices.values():
        session.refresh(invoice)
    assert invoices["einfach"].status == "paid" and invoices["einfach"].paid_at == date(2018, 3, 20)
    assert invoices["korrektur"].status == "paid"  # the supplier's refund of credit note RK21012345
    mustang = invoices["mustang"]
    assert mustang.status == "paid" and mustang.paid_at == date(2020, 12, 11)
    assert sorted(m.amount for m in _matches(session, mustang)) == [D("71.04"), D("500.00")]
    kosit = invoices["kosit"]
    assert kosit.status == "paid"
    (skonto,) = _matches(session, kosit)
    assert skonto.write_off == D("51.88")
    by_text = {tx.remittance: tx for tx in session.scalars(select(BankTransaction))}
    assert by_text["Entgelte Oktober 2018"].status == "unmatched"  # the bank fee: no invoice
    pending = next(tx for tx in by_text.values() if tx.pending)
    assert pending.status == "unmatched" and not pending.matches
    assert by_text["Miete Oktober 2018"].status == "unmatched"  # its invoice (Miete) is not in the corpus
    # Nothing matched the wrong way round, and no invoice of another client got money.
    applied = session.scalars(select(Match).where(Match.state == MatchState.APPLIED.value)).all()
    assert len(applied) == 5
    clients = {c.id: c.name for c in session.scalars(select(Client))}
    for match in applied:
        assert clients[match.invoice.client_id] == match.transaction.counterparty


def test_statements_attached_to_an_email_are_imported_once(session: Session, storage: FileStorage, tenant) -> None:
    from tests.invoicegen import make_email

    tid = tenant.tenant.id
    invoice = make_invoice(session, storage, tid, "FA-2026-0777", "64.00", "Dupont SARL")
    session.commit()
    data = statement_csv(csv_row(date(2026, 2, 3), "FA-2026-0777", "64,00", "Dupont"))
    raw = make_email(tenant.address, data, "umsaetze.csv", subject="Kontoauszug", content_type="text/csv")
    result = bank.import_mail_statements(session, tid, raw, verified=True)
    session.commit()
    assert (result.found, result.created, result.applied) == (1, 1, 1)
    assert "1 new transaction(s)" in (result.reason or "")
    session.refresh(invoice)
    assert invoice.status == "paid"
    again = bank.import_mail_statements(session, tid, raw, verified=True)
    assert (again.found, again.created, again.duplicates) == (1, 0, 1)
    # An invoice PDF is not a statement; a statement naming no account is reported, not lost silently.
    pdf_mail = make_email(tenant.address, b"%PDF-1.4 x")
    assert bank.import_mail_statements(session, tid, pdf_mail, verified=True).found == 0
    no_account = (CORPUS / "bank" / "mt940_self_sparkassen.sta").read_bytes()
    mail = make_email(tenant.address, no_account, "auszug.sta", content_type="application/octet-stream")
    reported = bank.import_mail_statements(session, tid, mail, verified=True)
    assert reported.found == 1 and reported.errors and "Bank page" in reported.errors[0]


def test_email_with_a_statement_goes_through_message_ingestion(session: Session, storage: FileStorage, tenant) -> None:
    from core.documents import processing
    from core.inbound import intake
    from core.models import Document, InboundMessage
    from tests.invoicegen import make_email

    tid = tenant.tenant.id
    data = statement_csv(csv_row(date(2026, 2, 3), "Virement", "10,00", "Someone"))
    raw = make_email(tenant.address, data, "releve.csv", subject="Releve", content_type="text/csv")
    message = intake.store_message(session, storage, tid, raw, recipient=tenant.address)
    bank.find_or_create_account(session, tid, ACCOUNT)  # an unverified mailed statement never creates one
    session.commit()
    assert processing.ingest_message(session, storage, message.id) == []
    session.commit()
    message = session.get(InboundMessage, message.id)
    assert message.status == "processed" and "1 new transaction(s)" in (message.reason or "")
    assert session.scalar(select(func.count()).select_from(Document)) == 0  # not an invoice
    assert _tx_count(session) == 1
    processing.ingest_message(session, storage, message.id)  # a retried job adds nothing
    session.commit()
    assert _tx_count(session) == 1


def test_invoice_page_shows_its_payments(session: Session, storage: FileStorage, tenant, app) -> None:
    from tests.test_dashboard import login

    tid = tenant.tenant.id
    invoice = make_invoice(session, storage, tid, "FA-2026-0077", "300.00", "Durand SA", due_date=date(2026, 2, 5))
    _import(session, tid, csv_row(date(2026, 2, 4), "Reglement FA-2026-0077", "300,00", "DURAND SA"))
    (match,) = _matches(session, invoice)
    client = app.test_client()
    login(client, tenant.admin.email)
    page = client.get(f"/invoices/{invoice.id}").get_data(as_text=True)
    assert "Payments" in page and "Paid: €300.00" in page and "settled on 04/02/2026" in page
    assert f"/bank/transactions/{match.transaction_id}" in page
