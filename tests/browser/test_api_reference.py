"""Issue 17 (item 4) in a real browser: from Settings → API tokens, a person opens the API reference,
follows a route to the schema of its answer, and downloads the OpenAPI document the page was rendered
from; nothing is loaded from another origin."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_finance_flows import log_in, no_csp_problems
from tests.browser.test_review_flow import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import TenantFixture

pytestmark = pytest.mark.browser


def test_read_the_api_reference_from_the_tokens_page(live_server: str, browser: Browser,  # noqa: F811
                                                     tenant: TenantFixture) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    elsewhere: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("request", lambda req: elsewhere.append(req.url) if not req.url.startswith(live_server) else None)
    log_in(page, live_server, tenant.admin.email)

    page.goto(f"{live_server}/settings/tokens")
    page.get_by_role("link", name="API reference: every route, its parameters and answers").click()
    expect(page.get_by_role("heading", name="API reference", exact=True)).to_be_visible()
    page.get_by_role("link", name="GET /api/v1/invoices/{invoice_id}", exact=True).click()
    operation = page.locator("#op-get_invoice")
    expect(operation).to_be_in_viewport()
    expect(operation.locator(".api-parameters")).to_contain_text("invoice_id")
    operation.locator(".api-responses").get_by_role("link", name="Invoice", exact=True).click()
    schema = page.locator("#schema-Invoice")
    expect(schema).to_be_in_viewport()
    expect(schema).to_contain_text("amount_paid")

    document = page.request.get(live_server + (page.locator("#openapi-json").get_attribute("href") or ""))
    assert document.ok and document.json()["paths"]["/api/v1/invoices/{invoice_id}"]["get"]["summary"]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "api-reference.png"))
    assert not elsewhere, elsewhere
    no_csp_problems(problems)
    context.close()
