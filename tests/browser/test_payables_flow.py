"""Issue 18 in a real browser (Debian's chromium, as the other browser tests): a purchase whose direction
extraction could not decide is picked on the review page, approved, put in a payment run, and the run's
SEPA file is downloaded and validated against the pain.001.001.09 XSD."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
import xmlschema
from flask import Flask
from playwright.sync_api import Browser, expect
from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from core.models import Document, Invoice
from tests.browser.test_finance_flows import log_in, no_csp_problems, open_page
from tests.browser.test_review_flow import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import TenantFixture
from tests.test_payables import SUPPLIER_IBAN, SUPPLIER_VAT, XSD, cii, extracted, with_identity

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def pinned_today(app: Flask) -> None:
    app.config["INBOX_TODAY"] = "2026-12-04"


def test_review_direction_approve_run_download(live_server: str, browser: Browser, session: Session,  # noqa: F811
                                               storage: FileStorage, tenant: TenantFixture) -> None:
    with_identity(session, tenant, approval_mode="one")
    doc = extracted(session, storage, tenant.tenant.id, cii("LF-77", "Lieferant GmbH", SUPPLIER_VAT, "Someone else",
                                                            "FR44732829320", SUPPLIER_IBAN))
    page, problems = open_page(browser)
    log_in(page, live_server, tenant.admin.email)

    page.goto(f"{live_server}/documents/{doc.id}")
    expect(page.locator("#n-direction")).to_contain_text("choose sale or purchase")
    page.get_by_role("button", name="Confirm").first.click()
    expect(page.locator("#e-direction")).to_be_visible()  # nothing guessed: the reviewer must pick
    page.get_by_label("Direction").select_option("payable")
    page.get_by_role("button", name="Confirm").first.click()
    expect(page.locator(".flash, .notice").first).to_be_visible()
    session.expire_all()
    invoice_id = session.get(Document, doc.id).invoice_id
    assert invoice_id and session.get(Invoice, invoice_id).direction == "payable"

    page.goto(f"{live_server}/payables")
    row = page.locator(f"#payable-{invoice_id}")
    expect(row).to_contain_text("to approve")
    row.get_by_role("button", name="Approve").click()
    expect(page.locator(f"#payable-{invoice_id}")).to_contain_text("approved")

    page.goto(f"{live_server}/payment-runs?due_by=2026-12-31")
    expect(page.locator("#run-preview")).to_contain_text("LF-77")
    page.get_by_role("button", name="Create the SEPA file").click()
    expect(page.locator("#run-items")).to_contain_text(SUPPLIER_IBAN)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "payment-run.png"))
    with page.expect_download() as info:
        page.locator("#run-download").click()
    path = info.value.path()
    xml = Path(path).read_text(encoding="utf-8")
    xmlschema.XMLSchema(XSD).validate(xml)
    assert "<EndToEndId>LF-77</EndToEndId>" in xml and "<InstdAmt Ccy=\"EUR\">120.00</InstdAmt>" in xml
    assert info.value.suggested_filename.endswith(".xml") and date(2026, 12, 4).isoformat() in xml
    no_csp_problems(problems)
