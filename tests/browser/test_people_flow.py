"""Issue 17 in a real browser: the admin invites a colleague, reads the mail in the outbox (no relay), the
colleague opens the link, chooses a password and joins, creates a second company and switches back."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Tenant
from core.tenancy import accounts
from tests.browser.test_finance_flows import log_in, no_csp_problems
from tests.browser.test_review_flow import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import TenantFixture

pytestmark = pytest.mark.browser


def test_invite_join_create_a_company_and_switch(live_server: str, browser: Browser,  # noqa: F811
                                                 session: Session, tenant: TenantFixture) -> None:
    problems: list[str] = []
    admin_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = admin_context.new_page()
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    log_in(page, live_server, tenant.admin.email)

    page.goto(f"{live_server}/settings")
    page.get_by_role("link", name="Members and client assignments").click()
    page.get_by_label("E-mail of the person").fill("claire@acme.example")
    page.get_by_label("Role", exact=True).select_option("member")
    page.get_by_role("button", name="Send the invitation").click()
    expect(page.get_by_role("status").filter(has_text="the message is in the outbox")).to_be_visible()
    expect(page.locator("#invitations-table")).to_contain_text("claire@acme.example")

    page.get_by_role("link", name="Outbox").first.click()
    expect(page.get_by_role("heading", name="Outbox", exact=True)).to_be_visible()
    mail = page.locator(".outbox-message").first
    expect(mail).to_contain_text("You are invited to Acme SAS")
    found = re.search(r"(http://\S+/invitations/accept\?token=\S+)", mail.locator("pre").inner_text())
    assert found, mail.inner_text()
    link = found.group(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "people-outbox.png"), full_page=True)

    colleague_context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    colleague = colleague_context.new_page()
    colleague.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    colleague.goto(link)
    expect(colleague.get_by_role("heading", name="Join a company")).to_be_visible()
    colleague.get_by_label("Choose a password (8 characters or more)").fill("claire's own passphrase")
    colleague.get_by_label("The same password again").fill("claire's own passphrase")
    colleague.get_by_role("button", name="Join Acme SAS").click()
    expect(colleague.get_by_role("status").filter(has_text="Welcome! You joined Acme SAS.")).to_be_visible()
    expect(colleague.get_by_role("heading", name="Pending verification")).to_be_visible()

    # The link works once.
    again = colleague_context.new_page()
    again.goto(link)
    expect(again.get_by_role("alert")).to_contain_text("already used")
    again.close()

    colleague.get_by_role("link", name="Companies", exact=True).click()
    expect(colleague.get_by_role("heading", name="Your companies")).to_be_visible()
    colleague.get_by_label("Company name").fill("Claire Conseil")
    colleague.get_by_role("button", name="Create the company").click()
    notice = colleague.get_by_role("status").filter(has_text="Claire Conseil is created")
    expect(notice).to_be_visible()
    session.rollback()
    created = session.scalars(select(Tenant).where(Tenant.name == "Claire Conseil")).one()
    address = accounts.address_of(accounts.primary_address(session, created.id), "in.example.test")
    expect(notice).to_contain_text(address)

    switch = colleague.get_by_label("Company")
    expect(switch).to_have_value(str(created.id))
    switch.select_option(label="Acme SAS")
    colleague.get_by_role("button", name="Switch").click()
    expect(colleague.get_by_role("status").filter(has_text="You are now working on Acme SAS.")).to_be_visible()
    expect(colleague.get_by_label("Company")).to_have_value(str(tenant.tenant.id))

    colleague.get_by_role("link", name="Companies", exact=True).click()
    table = colleague.locator("#companies-table")
    expect(table).to_contain_text("Acme SAS")
    expect(table).to_contain_text("Claire Conseil")
    colleague.screenshot(path=str(ARTIFACTS / "people-companies.png"), full_page=True)
    no_csp_problems(problems)
    admin_context.close()
    colleague_context.close()
