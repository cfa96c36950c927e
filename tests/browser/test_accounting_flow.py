"""Issue 18's review → entry → post → export in a real browser (Debian's chromium driven by Playwright against
a real HTTP server): a document is validated on the review page, its draft entry opened from the Accounting
area, posted, and the FEC downloaded and checked (tests/fecchecker.py). No fixed sleeps: Playwright waits."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from core.models import DocumentStatus, Tenant
from tests.browser.test_finance_flows import log_in, no_csp_problems, open_page
from tests.browser.test_review_flow import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import TenantFixture
from tests.fecchecker import check_fec
from tests.invoicegen import make_invoice_pdf
from tests.test_dashboard import make_document

pytestmark = pytest.mark.browser

SIREN = "303265045"


def test_review_entry_post_and_fec_download(live_server: str, browser: Browser, session: Session,  # noqa: F811
                                            storage: FileStorage, tenant: TenantFixture) -> None:
    session.get(Tenant, tenant.tenant.id).siren = SIREN  # the FEC's name needs it
    session.commit()
    pdf = make_invoice_pdf(number="VT-2026-0100", issuer="Acme SAS", client="Martin Industries SA",
                           net=Decimal("1000"), tax=Decimal("200"))
    doc = make_document(
        session, storage, tenant.tenant.id, filename="VT-2026-0100.pdf", data=pdf, status=DocumentStatus.PENDING,
        doc_type="invoice", number="VT-2026-0100", client="Martin Industries SA", issuer="Acme SAS",
        amount=Decimal("1200.00"), net_amount=Decimal("1000.00"), tax_amount=Decimal("200.00"), currency="EUR",
        title="Mission de conseil", issue_date=date(2026, 11, 23), due_date=date(2026, 12, 23),
    )
    page, problems = open_page(browser)
    log_in(page, live_server, tenant.admin.email)

    # Review: confirm the document.
    page.goto(f"{live_server}/documents/{doc.id}")
    page.get_by_role("button", name="Confirm").first.click()
    expect(page.get_by_text("Invoice VT-2026-0100 confirmed.")).to_be_visible()

    # Accounting area: net and VAT were read, so nothing is left to process: the draft is ready to post.
    page.get_by_role("link", name="Accounting", exact=True).first.click()
    expect(page.get_by_role("heading", name="Accounting · To process")).to_be_visible()
    expect(page.get_by_text("No entry here.")).to_be_visible()
    page.locator("nav.subnav").get_by_role("link", name="Ready to post").click()
    expect(page.get_by_role("heading", name="Accounting · Ready to post")).to_be_visible()
    row = page.locator("table.entries tbody tr", has_text="VT-2026-0100")
    expect(row).to_contain_text("1,200.00")
    row.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name="Entry")).to_be_visible()
    expect(page.locator('input[name="lines-0-account"]')).to_have_value("411000")
    expect(page.locator('input[name="lines-1-account"]')).to_have_value("706000")
    expect(page.locator('input[name="lines-2-account"]')).to_have_value("445711")
    expect(page.get_by_text("To fix or confirm before posting")).to_have_count(0)

    # Post it: numbered and frozen.
    page.get_by_role("button", name="Post").click()
    expect(page.get_by_text("Entry posted.")).to_be_visible()
    expect(page.get_by_text("No. 1, validated on")).to_be_visible()
    expect(page.get_by_role("button", name="Save")).to_have_count(0)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "accounting-posted.png"))

    # Export: the FEC of 2026, downloaded, passes the checker and holds the entry's three lines.
    page.locator("nav.subnav").get_by_role("link", name="Exports").click()
    fec_form = page.locator("section.card", has_text="FEC")
    fec_form.get_by_label("Fiscal year").fill("2026")
    with page.expect_download() as info:
        fec_form.get_by_role("button", name="Download").click()
    name = info.value.suggested_filename
    assert name == f"{SIREN}FEC20261231.txt"
    data = Path(info.value.path()).read_bytes()
    assert check_fec(name, data, date(2026, 1, 1), date(2026, 12, 31)) == []
    rows = [line.split("\t") for line in data.decode("utf-8").splitlines()[1:]]
    assert {(r[0], r[2], r[4], r[8], r[11], r[12]) for r in rows} == {
        ("VT", "1", "411000", "VT-2026-0100", "1200,00", "0,00"),
        ("VT", "1", "706000", "VT-2026-0100", "0,00", "1000,00"),
        ("VT", "1", "445711", "VT-2026-0100", "0,00", "200,00"),
    }
    no_csp_problems(problems)
