"""Issue 14 (finding 9) in a real browser: a person creates an expiring API token in Settings, copies it
from the page that shows it once, uses it, and revokes it; the API then answers 401."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import ApiToken
from tests.browser.test_finance_flows import log_in, no_csp_problems
from tests.browser.test_review_flow import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import TenantFixture

pytestmark = pytest.mark.browser


def test_create_use_and_revoke_a_token_in_settings(live_server: str, browser: Browser,  # noqa: F811
                                                    session: Session, tenant: TenantFixture) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    log_in(page, live_server, tenant.admin.email)

    page.goto(f"{live_server}/settings")
    page.get_by_role("link", name="API tokens").click()
    expect(page.get_by_role("heading", name="API tokens", exact=True)).to_be_visible()
    page.get_by_label("What it is for").fill("accounting export")
    page.get_by_label("Expires after (days, empty: never)").fill("30")
    page.get_by_role("button", name="Create a token").click()

    shown = page.locator('#new-token [data-role="token"]')
    expect(shown).to_be_visible()
    value = shown.inner_text().strip()
    assert value.startswith("ii_")
    row = session.scalars(select(ApiToken).where(ApiToken.prefix == value[:8])).one()
    assert row.label == "accounting export" and row.expires_at is not None
    headers = {"Authorization": f"Bearer {value}"}
    assert page.request.get(f"{live_server}/api/v1/tenant", headers=headers).status == 200

    # Shown once: a reload of the list shows its prefix and state only.
    page.goto(f"{live_server}/settings/tokens")
    expect(page.locator("#new-token")).to_have_count(0)
    assert value not in page.content()
    line = page.locator(f"#token-{row.id}")
    expect(line).to_contain_text("accounting export")
    expect(line.locator('[data-role="state"]')).to_have_text("active")
    line.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status").filter(has_text="revoked")).to_have_count(1)
    expect(page.locator(f'#token-{row.id} [data-role="state"]')).to_have_text("revoked")
    assert page.request.get(f"{live_server}/api/v1/tenant", headers=headers).status == 401
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-tokens.png"), full_page=True)
    no_csp_problems(problems)
    context.close()
