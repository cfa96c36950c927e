"""Issue #14, finding 2, in a real browser (Debian's chromium, the launch of test_review_flow): an admin
declares the bank's sender, and a statement that was not proven to come from it shows as unverified on
the Bank page and on its transaction's page, its payment only suggested."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.banking import transactions as bank
from core.files.storage import FileStorage
from core.models import BankTransaction, Invoice
from tests.bankhelpers import ACCOUNT, make_invoice
from tests.browser.test_finance_flows import log_in, no_csp_problems
from tests.browser.test_review_flow import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import TenantFixture
from tests.security.test_mail_statements import camt053

pytestmark = pytest.mark.browser


def test_admin_declares_the_bank_and_sees_an_unverified_statement(
    live_server: str, browser: Browser, session: Session, storage: FileStorage, tenant: TenantFixture,  # noqa: F811
) -> None:
    invoice = make_invoice(session, storage, tenant.tenant.id, "FA-2026-0901", "64.00", "Dupont SARL")
    bank.find_or_create_account(session, tenant.tenant.id, ACCOUNT)  # an unverified statement never creates one
    session.commit()
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    log_in(page, live_server, tenant.admin.email)

    page.goto(f"{live_server}/settings/sender-authentication")
    expect(page.get_by_role("heading", name="Bank statements by email")).to_be_visible()
    senders = page.get_by_label("Your bank’s sender addresses or @domains, one a line")
    senders.fill("releves@bank.example\n@bank.example")
    page.locator("#bank-senders").get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").filter(has_text="statements from these senders")).to_have_count(1)
    expect(senders).to_have_value("releves@bank.example\n@bank.example")
    session.expire_all()
    assert bank.bank_senders(session, tenant.tenant.id) == ["releves@bank.example", "@bank.example"]

    # A statement as a stranger's mail leaves it (the mail path itself: tests/security/test_mail_statements.py).
    bank.import_statement(session, tenant.tenant.id, camt053("FA-2026-0901", "64.00", "Dupont SARL", "B1"),
                          "camt.xml", verified=False)
    session.commit()
    page.goto(f"{live_server}/bank")
    badge = page.locator("span.badge", has_text="unverified")
    expect(badge).to_have_count(1)
    expect(badge).to_have_attribute("title", "From a mailed statement not proven to come from your bank: "
                                             "payments are only suggested.")
    tx = session.scalars(select(BankTransaction)).one()
    page.goto(f"{live_server}/bank/transactions/{tx.id}")
    expect(page.get_by_text("never applied automatically")).to_be_visible()
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == "open"
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "bank-senders.png"), full_page=True)
    no_csp_problems(problems)
    context.close()
