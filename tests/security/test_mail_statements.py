"""Finding 2 of issue #14: a bank statement mailed by anyone used to mark invoices paid.

A mailed statement applies matches only when it comes from a sender the tenant declared for its bank AND
its DKIM (or DMARC) passes for that sender's domain; otherwise its transactions are imported as
``unverified`` and only suggested. Real SMTP over a socket, the real worker, DNS from a local server.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.banking import transactions as bank
from core.config import Settings
from core.errors import ValidationFailed
from core.files.storage import FileStorage
from core.models import BankAccount, BankTransaction, Invoice, Match, MatchState, MessageStatus
from tests.bankhelpers import ACCOUNT, make_invoice
from tests.conftest import TenantFixture
from tests.dnsserver import LocalDns
from tests.invoicegen import make_email
from tests.services import run_worker_burst
from tests.test_senderauth import key, local_dns, messages, sign, smtp_send  # noqa: F401 (fixtures)
from tests.test_senders import csrf_token, login
from tests.test_smtp import running_server
from worker.queue import enqueue_ingest, get_queue

BANK = "auszuege@supplier.example"  # supplier.example: signed with the test key, p=reject (test_senderauth.zone)


def camt053(number: str, amount: str, debtor: str, ref: str, day: str = "2026-02-03", *,
            account: str = ACCOUNT, closing: tuple[str, str] | None = None, status: str = "BOOK") -> bytes:
    """A one-entry CAMT.053 crediting ``amount`` with ``number`` in the remittance text; ``closing``:
    (balance, period end) of the statement."""
    balance = "" if closing is None else (
        f'<FrToDt><FrDtTm>{day}T00:00:00</FrDtTm><ToDtTm>{closing[1]}T23:59:59</ToDtTm></FrToDt>'
        f'<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">{closing[0]}</Amt>'
        f'<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{closing[1]}</Dt></Dt></Bal>'
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>MSG-{ref}</MsgId><CreDtTm>{day}T18:00:00</CreDtTm></GrpHdr>
<Stmt><Id>STMT-{ref}</Id><CreDtTm>{day}T18:00:00</CreDtTm>
<Acct><Id><IBAN>{account}</IBAN></Id><Ccy>EUR</Ccy></Acct>{balance}
<Ntry><NtryRef>{ref}</NtryRef><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts>{status}</Sts>
<BookgDt><Dt>{day}</Dt></BookgDt><ValDt><Dt>{day}</Dt></ValDt><AcctSvcrRef>{ref}</AcctSvcrRef>
<NtryDtls><TxDtls><Refs><AcctSvcrRef>{ref}</AcctSvcrRef></Refs>
<RltdPties><Dbtr><Nm>{debtor}</Nm></Dbtr></RltdPties>
<RmtInf><Ustrd>Payment {number}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>
</Stmt></BkToCstmrStmt></Document>""".encode()


def statement_mail(to: str, number: str, ref: str, sender: str = BANK, document: bytes | None = None) -> bytes:
    document = document or camt053(number, "64.00", "Dupont SARL", ref)
    return make_email(to, document, "camt053.xml", subject="Kontoauszug", sender=sender,
                      content_type="application/xml")


def _deliver(settings: Settings, tenant: TenantFixture, raw: bytes) -> None:
    with running_server(settings) as controller:
        assert smtp_send(controller, [tenant.address], raw)[0] == 250
        assert controller.handler.in_flight.wait_idle(10)


def _process(settings: Settings, session_factory) -> None:  # noqa: ANN001
    for message in messages(session_factory):
        if message.status == MessageStatus.QUEUED.value:
            enqueue_ingest(get_queue(settings), message.id)
    run_worker_burst(settings)


def _invoice_state(session: Session, invoice_id: int) -> tuple[str, list[str]]:
    session.expire_all()
    invoice = session.get(Invoice, invoice_id)
    states = session.scalars(select(Match.state).where(Match.invoice_id == invoice_id)).all()
    return invoice.status, sorted(states)


def test_a_statement_mailed_by_a_stranger_or_a_forged_bank_only_suggests(
    key, local_dns: LocalDns, settings: Settings, session: Session, storage: FileStorage,  # noqa: F811
    tenant: TenantFixture, session_factory, app: Flask,
) -> None:
    tid = tenant.tenant.id
    first = make_invoice(session, storage, tid, "FA-2026-0777", "64.00", "Dupont SARL").id
    second = make_invoice(session, storage, tid, "FA-2026-0778", "64.00", "Dupont SARL").id
    third = make_invoice(session, storage, tid, "FA-2026-0779", "64.00", "Dupont SARL").id
    bank.find_or_create_account(session, tid, ACCOUNT)  # an unverified statement never creates one
    session.commit()

    # 1. Nothing declared: an unsigned statement from a stranger is imported, unverified, suggested only.
    _deliver(settings, tenant, statement_mail(tenant.address, "FA-2026-0777", "R1", "crook@attacker.example"))
    _process(settings, session_factory)
    assert _invoice_state(session, first) == ("open", [MatchState.SUGGESTED.value])
    [message] = messages(session_factory)
    assert message.status == MessageStatus.PROCESSED.value and "unverified" in message.reason

    # 2. The bank declared, but the mail claims its From without a signature: still only a suggestion.
    bank.set_bank_senders(session, tid, "@supplier.example", tenant.admin)
    session.commit()
    _deliver(settings, tenant, statement_mail(tenant.address, "FA-2026-0778", "R2"))
    _process(settings, session_factory)
    assert _invoice_state(session, second) == ("open", [MatchState.SUGGESTED.value])

    # 3. The declared bank, signed by its domain: the payment is applied.
    _deliver(settings, tenant, sign(statement_mail(tenant.address, "FA-2026-0779", "R3"), key[0], "supplier.example"))
    _process(settings, session_factory)
    assert _invoice_state(session, third) == ("paid", [MatchState.APPLIED.value])

    # A later matching run (any trigger) never applies the unverified ones on its own.
    from core.banking import reconciliation

    reconciliation.run_matching(session, tid)
    session.commit()
    assert _invoice_state(session, first)[0] == "open" and _invoice_state(session, second)[0] == "open"

    # Shown as unverified in the API and on the bank page.
    rows = app.test_client().get("/api/v1/transactions", headers={"Authorization": f"Bearer {tenant.token}"}).json
    items = rows["items"] if isinstance(rows, dict) else rows
    by_text = {row["remittance"]: row["unverified"] for row in items}
    assert by_text == {"Payment FA-2026-0777": True, "Payment FA-2026-0778": True, "Payment FA-2026-0779": False}
    client = login(app, tenant.admin.email)
    page = client.get("/bank").get_data(as_text=True)
    assert page.count(">unverified</span>") == 2
    unverified = session.scalars(select(BankTransaction).where(BankTransaction.unverified.is_(True))).first()
    detail = client.get(f"/bank/transactions/{unverified.id}").get_data(as_text=True)
    assert "never applied automatically" in detail
    # A person may still accept the suggestion: that is their decision, not the mail's.
    suggestion = session.scalars(select(Match).where(Match.invoice_id == first)).one()
    response = app.test_client().post(f"/api/v1/matches/{suggestion.id}/accept",
                                      headers={"Authorization": f"Bearer {tenant.token}"})
    assert response.status_code == 200
    assert _invoice_state(session, first) == ("paid", [MatchState.APPLIED.value])


def _account(session: Session, iban: str = ACCOUNT) -> BankAccount | None:
    session.expire_all()
    return session.scalars(select(BankAccount).where(BankAccount.iban == iban)).first()


def _transactions(session: Session) -> list[tuple[str, Decimal, bool, bool]]:
    session.expire_all()
    rows = session.scalars(select(BankTransaction).order_by(BankTransaction.id))
    return [(row.remittance, row.amount, row.pending, row.unverified) for row in rows]


def test_a_forged_statement_changes_no_bank_data(
    key, local_dns: LocalDns, settings: Settings, session: Session, storage: FileStorage,  # noqa: F811
    tenant: TenantFixture, session_factory,
) -> None:
    tid = tenant.tenant.id
    bank.set_bank_senders(session, tid, "@supplier.example", tenant.admin)
    # The real bank's statement, uploaded: a balance and one pending payment.
    real = camt053("FA-2026-0800", "10.00", "Dupont SARL", "P1", "2026-02-02", closing=("1000.00", "2026-02-02"),
                   status="PDNG")
    bank.import_statement(session, tid, real, "real.xml")
    session.commit()
    before = _transactions(session)
    assert before == [("Payment FA-2026-0800", Decimal("10.00"), True, False)]

    # Forged (the bank's From, no signature): a future balance, for the known account and a new one.
    forged = camt053("FA-2026-0801", "5.00", "Dupont SARL", "F1", "2026-02-03", closing=("999999.00", "2026-12-31"))
    stranger = camt053("FA-2026-0801", "5.00", "Dupont SARL", "F2", account="FR7630006000011234567890189")
    _deliver(settings, tenant, statement_mail(tenant.address, "", "F1", document=forged))
    _deliver(settings, tenant, statement_mail(tenant.address, "", "F2", document=stranger))
    _process(settings, session_factory)

    account = _account(session)
    assert (account.balance, account.balance_date) == (Decimal("1000.00"), date(2026, 2, 2))
    rows = _transactions(session)
    assert rows[0] == before[0]  # the pending payment is still there
    assert rows[1:] == [("Payment FA-2026-0801", Decimal("5.00"), False, True)]  # only a suggestion
    assert _account(session, "FR7630006000011234567890189") is None
    assert session.scalar(select(func.count()).select_from(BankAccount)) == 1
    refused = messages(session_factory)[-1]
    assert "FR7630006000011234567890189 is not one of your bank accounts" in refused.reason


def test_the_real_statement_after_a_forged_one_applies_its_payments_and_balance(
    key, local_dns: LocalDns, settings: Settings, session: Session, storage: FileStorage,  # noqa: F811
    tenant: TenantFixture, session_factory,
) -> None:
    tid = tenant.tenant.id
    invoice = make_invoice(session, storage, tid, "FA-2026-0802", "64.00", "Dupont SARL").id
    bank.find_or_create_account(session, tid, ACCOUNT)
    bank.set_bank_senders(session, tid, "@supplier.example", tenant.admin)
    session.commit()

    # The forger reuses the bank's reference of the coming payment, with their own amount and a future balance.
    forged = camt053("FA-2026-0802", "1.00", "Crook Ltd", "R77", closing=("999999.00", "2026-12-31"))
    _deliver(settings, tenant, statement_mail(tenant.address, "", "R77", document=forged))
    _process(settings, session_factory)
    assert _transactions(session) == [("Payment FA-2026-0802", Decimal("1.00"), False, True)]
    assert _invoice_state(session, invoice)[0] == "open"

    real = camt053("FA-2026-0802", "64.00", "Dupont SARL", "R77", closing=("1064.00", "2026-02-03"))
    _deliver(settings, tenant, sign(statement_mail(tenant.address, "", "R77", document=real), key[0],
                                    "supplier.example"))
    _process(settings, session_factory)
    assert _invoice_state(session, invoice) == ("paid", [MatchState.APPLIED.value])
    assert _transactions(session) == [("Payment FA-2026-0802", Decimal("64.00"), False, False)]
    tx = session.scalars(select(BankTransaction)).one()
    assert (tx.counterparty, tx.status) == ("Dupont SARL", "matched")
    account = _account(session)
    assert (account.balance, account.balance_date) == (Decimal("1064.00"), date(2026, 2, 3))


def test_bank_senders_setting_is_admin_only_validated_and_csrf_protected(
    app: Flask, session: Session, tenant: TenantFixture
) -> None:
    client = login(app, tenant.admin.email)
    response = client.get("/settings/sender-authentication")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and "Bank statements by email" in page
    url = "/settings/sender-authentication/bank"
    assert client.post(url, data={"bank_senders": "@bank.example"}).status_code == 400  # no CSRF token
    bad = client.post(url, data={"bank_senders": "not an address", "csrf_token": csrf_token(page)})
    assert bad.status_code == 400 and "Enter an email address" in bad.get_data(as_text=True)
    good = client.post(url, data={"bank_senders": "Statements@Bank.example\n\n@bank.example\n",
                                  "csrf_token": csrf_token(page)})
    assert good.status_code == 302
    session.expire_all()
    assert bank.bank_senders(session, tenant.tenant.id) == ["statements@bank.example", "@bank.example"]
    with pytest.raises(ValidationFailed):
        bank.set_bank_senders(session, tenant.tenant.id, "\n".join(f"@b{i}.example" for i in range(30)))
