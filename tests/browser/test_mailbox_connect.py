"""Issue 17 item 3 in a real browser (Debian's chromium, the launch of test_review_flow): an admin presses
"Connect Gmail", allows access on the provider's consent page (dashboard/devoauth.py through
tests/oauthserver.py, another origin), and comes back to the connected mailbox; "Connect Microsoft 365"
refused at the provider says so and saves nothing. The page's CSP lets its form lead to the provider
(form-action), and nothing is refused."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from core.config import Settings
from core.models import Mailbox
from tests.browser.test_finance_flows import log_in, no_csp_problems
from tests.browser.test_review_flow import ARTIFACTS, browser  # noqa: F401 (fixture)
from tests.conftest import TenantFixture
from tests.oauthserver import OAuthTestServer
from tests.test_mailbox_oauth import ACCOUNT, make_app, oauth_settings

pytestmark = pytest.mark.browser


@pytest.fixture
def provider() -> Iterator[OAuthTestServer]:
    server = OAuthTestServer(account=ACCOUNT).start()
    server.behaviour.consent_page = True
    yield server
    server.close()


@pytest.fixture
def oauth_live_server(settings: Settings, provider: OAuthTestServer) -> Iterator[str]:
    with make_app(oauth_settings(settings, provider)) as app:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{server.server_port}"
        server.shutdown()
        thread.join(timeout=10)


def test_connect_gmail_through_the_consent_page_then_a_refusal(
    oauth_live_server: str, browser: Browser, provider: OAuthTestServer, session: Session,  # noqa: F811
    tenant: TenantFixture,
) -> None:
    base = oauth_live_server
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    log_in(page, base, tenant.admin.email)

    page.goto(f"{base}/settings/mailboxes")
    page.locator("#hint-google").fill(ACCOUNT)
    page.get_by_role("button", name="Connect Gmail").click()
    expect(page.get_by_role("heading", name=f"Allow access to {ACCOUNT}")).to_be_visible()
    assert page.url.startswith(f"{provider.url}/authorize?")
    page.get_by_role("button", name="Allow").click()

    expect(page.get_by_role("status").filter(has_text=f"Google mailbox {ACCOUNT} connected")).to_have_count(1)
    assert page.url.startswith(f"{base}/settings/mailboxes/")
    expect(page.locator("#oauth-state")).to_contain_text("Connected through Google (Gmail, Workspace)")
    expect(page.locator("#oauth-state")).to_contain_text("Current access valid until")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "mailbox-connected.png"), full_page=True)
    mailbox = session.scalars(select(Mailbox)).one()
    assert (mailbox.username, mailbox.oauth_provider, mailbox.auth) == (ACCOUNT, "google", "xoauth2")

    page.goto(f"{base}/settings/mailboxes")
    page.get_by_role("button", name="Connect Microsoft 365").click()
    page.get_by_role("button", name="Deny").click()
    expect(page.get_by_role("status").filter(has_text="Access was not allowed at Microsoft")).to_have_count(1)
    session.expire_all()
    assert len(session.scalars(select(Mailbox)).all()) == 1
    no_csp_problems(problems)
    context.close()
