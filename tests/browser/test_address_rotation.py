"""Issue #8 in a real browser (Debian's chromium, the same launch as test_review_flow): an admin issues a new
inbound address in Settings, sees it with its copy button (which really copies), and the old one retiring."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import InboundAddress
from core.tenancy import accounts
from tests.browser.test_finance_flows import log_in, no_csp_problems
from tests.browser.test_review_flow import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import INBOUND_DOMAIN, TenantFixture

pytestmark = pytest.mark.browser


def test_admin_rotates_the_address_and_copies_the_new_one(live_server: str, browser: Browser,  # noqa: F811
                                                          session: Session, tenant: TenantFixture) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server)
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    log_in(page, live_server, tenant.admin.email)

    page.goto(f"{live_server}/settings")
    current = page.locator("#inbound-address")
    expect(current).to_have_text(tenant.address)
    page.get_by_label("Keep the old address working for (days)").fill("14")
    page.once("dialog", lambda dialog: dialog.accept())  # the data-confirm question (app.js)
    page.get_by_role("button", name="Issue a new address").click()

    expect(page.get_by_role("status").filter(has_text="Your new inbound address is")).to_have_count(1)
    session.expire_all()
    new = accounts.address_of(accounts.primary_address(session, tenant.tenant.id), INBOUND_DOMAIN)
    assert new != tenant.address and accounts.ADDRESS_RE.fullmatch(new.partition("@")[0])
    expect(current).to_have_text(new)
    old = session.scalars(
        select(InboundAddress).where(InboundAddress.local_part == tenant.address.partition("@")[0])
    ).one()
    retiring = page.locator("table.retiring-addresses tbody tr")
    expect(retiring).to_have_count(1)
    expect(retiring).to_contain_text(tenant.address)
    end = old.retires_at.astimezone(ZoneInfo("Europe/Paris")).strftime("%d/%m/%Y")
    expect(retiring.locator('[data-role="retires-at"]')).to_contain_text(end)

    copy = page.locator('button[data-copy="#inbound-address"]')
    expect(copy).to_be_visible()
    copy.click()
    expect(copy).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == new
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "address-rotation.png"), full_page=True)
    no_csp_problems(problems)
    context.close()
