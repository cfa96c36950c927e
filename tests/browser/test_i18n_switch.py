"""Switching the dashboard's language in a real browser (Debian's chromium, as in test_review_flow): from
the login page, then from the layout, with the choice kept across pages and per-locale amounts."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from tests.bankhelpers import make_invoice
from tests.browser.test_review_flow import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import TenantFixture

pytestmark = pytest.mark.browser


def test_switch_language_from_login_page_and_layout(live_server: str, browser: Browser,  # noqa: F811
                                                   session: Session, storage: FileStorage,
                                                   tenant: TenantFixture) -> None:
    make_invoice(session, storage, tenant.tenant.id, "FA-2026-0042", "1234.56", "Dupont SARL")
    session.commit()
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")  # an English browser
    page: Page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto(f"{live_server}/login")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_role("button", name="Français").click()  # the switcher on the login page
    expect(page.get_by_role("heading", name="Se connecter")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    page.get_by_label("E-mail").fill(tenant.admin.email)
    page.get_by_label("Mot de passe").fill(tenant.password)
    page.get_by_role("button", name="Se connecter").click()
    expect(page.get_by_role("heading", name="À vérifier")).to_be_visible()

    page.get_by_role("link", name="Factures", exact=True).click()
    row = page.locator("table.list tbody tr", has_text="FA-2026-0042")
    expect(row).to_contain_text("1\u202f234,56\u00a0€")
    expect(page.get_by_role("button", name="Français")).to_be_disabled()  # the current language
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "i18n-factures.png"))

    page.get_by_role("button", name="English").click()  # the switcher in the layout, back to the same page
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()
    expect(page).to_have_url(f"{live_server}/invoices")
    expect(page.locator("table.list tbody tr", has_text="FA-2026-0042")).to_contain_text("€1,234.56")
    page.reload()  # kept on the person, not only for one page
    expect(page.get_by_role("heading", name="Invoices")).to_be_visible()
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    context.close()
