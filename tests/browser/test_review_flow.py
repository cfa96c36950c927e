"""The review flow in a real browser: Debian's chromium driven by Playwright against a real HTTP server."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy.orm import Session
from werkzeug.serving import make_server

from core.files.storage import FileStorage
from core.models import DocumentStatus
from tests.conftest import TenantFixture
from tests.invoicegen import make_invoice_pdf
from tests.test_dashboard import make_document

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def live_server(app: Flask) -> Iterator[str]:
    """The app on a free loopback port, served by werkzeug in a thread for the length of the test."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # `make test` installs it; in CI a missing browser is a failure, never a silent skip.
        if os.environ.get("CI"):
            pytest.fail("Debian's chromium is missing at /usr/bin/chromium (scripts/bootstrap.sh --test installs it)")
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    with sync_playwright() as playwright:
        # headless=False: the flags above already ask for the new headless mode; Playwright must not add its own.
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=False)
        yield launched
        launched.close()


def test_review_flow(live_server: str, browser: Browser, session: Session, storage: FileStorage,
                     tenant: TenantFixture) -> None:
    pdf = make_invoice_pdf(number="FA-2026-0042", client="Acme SAS", net=Decimal("1000"), tax=Decimal("200"))
    doc = make_document(
        session, storage, tenant.tenant.id, filename="FA-2026-0042.pdf", data=pdf, status=DocumentStatus.PENDING,
        doc_type="invoice", number="FA-2026-0042", client="ACME", issuer="Dupont Conseil SARL",
        amount=Decimal("1200.00"), net_amount=Decimal("1000.00"), tax_amount=Decimal("200.00"), currency="EUR",
        title="Mission de conseil", issue_date=date(2026, 11, 23),  # no due date found: the reviewer adds it
        field_info={"client": {"source": "text", "confidence": 0.35}, "number": {"source": "text", "confidence": 0.98}},
    )

    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")  # English UI
    page: Page = context.new_page()
    problems: list[str] = []  # CSP violations and script errors show up here
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto(f"{live_server}/pending")
    expect(page).to_have_url(f"{live_server}/login?next=%2Fpending")
    page.get_by_label("Email").fill(tenant.admin.email)
    page.get_by_label("Password").fill(tenant.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Pending verification")).to_be_visible()

    with page.expect_response(f"{live_server}/documents/{doc.id}/file") as original:
        page.get_by_role("link", name="FA-2026-0042.pdf").click()
    assert original.value.status == 200 and original.value.headers["content-type"] == "application/pdf"
    viewer = page.locator(f'iframe[src="/documents/{doc.id}/file"]')
    expect(viewer).to_be_visible()
    form = page.locator("#review-form")
    viewer_box, form_box = viewer.bounding_box(), form.bounding_box()
    assert viewer_box and form_box and viewer_box["x"] + viewer_box["width"] <= form_box["x"]  # side by side

    client = page.get_by_label("Client")
    expect(page.locator(".field.unsure")).to_have_count(1)
    expect(client).to_be_focused()  # the unsure field is where the cursor starts
    client.fill("Acme SAS")
    page.get_by_label("Amount (incl. tax)").fill("1200,00")
    page.get_by_label("Due date").fill("2026-12-23")
    page.wait_for_timeout(1500)  # let the PDF viewer paint before the screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "review.png"))

    page.keyboard.press("Control+Enter")  # the Confirm shortcut
    expect(page.get_by_text("Invoice FA-2026-0042 confirmed.")).to_be_visible()
    expect(page.get_by_text("To change it, delete the invoice and import the file again.")).to_be_visible()
    page.wait_for_timeout(1000)
    page.screenshot(path=str(ARTIFACTS / "review-validated.png"))

    page.get_by_role("link", name="Invoices", exact=True).click()
    row = page.locator("table.list tbody tr", has_text="FA-2026-0042")
    expect(row).to_contain_text("Acme SAS")
    expect(row).to_contain_text("€1,200.00")
    expect(row).to_contain_text("23/12/2026")
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems
    context.close()
