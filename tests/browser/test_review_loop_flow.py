"""Issue 17 item 5 in a real browser (Debian's chromium through Playwright): a typed number that is an
existing invoice's opens the duplicate choice, Link attaches the file, and the invoice is corrected after
validation with the change shown in its trail; many PDFs assigned to their invoices at once."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.documents import review as docs
from core.files.storage import FileStorage
from core.models import Document, DocumentStatus, Invoice, InvoiceFile
from tests.browser.test_review_flow import browser, live_server  # noqa: F401 - the fixtures
from tests.conftest import TenantFixture
from tests.invoicegen import make_invoice_pdf
from tests.test_dashboard import COMPLETE, make_document

__all__ = ["browser", "live_server"]


def test_typed_duplicate_number_then_link_then_correct(live_server: str, browser: Browser,  # noqa: F811
                                                       session: Session, storage: FileStorage,
                                                       tenant: TenantFixture) -> None:
    tid = tenant.tenant.id
    original = make_document(session, storage, tid, filename="original.pdf")
    invoice = docs.validate_document(session, tid, original.id, COMPLETE, tenant.admin.id)
    session.commit()
    other = make_document(session, storage, tid, filename="resent.pdf", number="FA-OTHER")

    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
    page: Page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(f"{live_server}/documents/{other.id}")
    page.get_by_label("Email").fill(tenant.admin.email)
    page.get_by_label("Password").fill(tenant.password)
    page.get_by_role("button", name="Log in").click()

    for name, value in COMPLETE.items():
        if name != "doc_type":
            page.locator(f"#f-{name}").fill(value)
    page.locator("#f-doc_type").select_option("invoice")
    page.locator("#f-number").fill("fa-2026-0042")
    page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_text("This number is already used: link, replace or discard below.")).to_be_visible()
    expect(page.get_by_text("Same document: the number is the same (FA-2026-0042).")).to_be_visible()
    expect(page.get_by_role("button", name="Replace")).to_be_enabled()
    page.get_by_role("button", name="Link").click()

    expect(page).to_have_url(f"{live_server}/invoices/{invoice.id}")
    expect(page.get_by_text("File linked to invoice FA-2026-0042.")).to_be_visible()
    session.expire_all()
    assert session.get(Document, other.id).status == DocumentStatus.VALIDATED.value
    linked = session.scalars(select(InvoiceFile.file_id).where(InvoiceFile.invoice_id == invoice.id)).all()
    assert linked == [other.file_id]

    page.get_by_text("Correct the fields").click()
    page.locator("#x-title").fill("Mission de conseil, décembre")
    page.get_by_role("button", name="Save the corrections").click()
    expect(page.get_by_text("Changes saved.")).to_be_visible()
    row = page.locator("table.trail tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(tenant.admin.email)
    expect(row).to_contain_text("Mission de conseil")
    expect(row).to_contain_text("Mission de conseil, décembre")
    session.expire_all()
    assert session.get(Invoice, invoice.id).title == "Mission de conseil, décembre"
    assert not problems, problems
    context.close()


def test_assign_pdfs_to_invoices(live_server: str, browser: Browser, session: Session,  # noqa: F811
                                 storage: FileStorage, tenant: TenantFixture, tmp_path: Path) -> None:
    tid = tenant.tenant.id
    original = make_document(session, storage, tid, filename="original.pdf")
    invoice = docs.validate_document(session, tid, original.id, COMPLETE, tenant.admin.id)
    session.commit()
    signed = tmp_path / "FA-2026-0042 signed.pdf"
    signed.write_bytes(make_invoice_pdf(number="COPY-1"))
    stray = tmp_path / "stray.pdf"
    stray.write_bytes(make_invoice_pdf(number="ZZ-9"))

    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")
    page: Page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(f"{live_server}/invoices")
    page.get_by_label("Email").fill(tenant.admin.email)
    page.get_by_label("Password").fill(tenant.password)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Assign PDFs to invoices").click()
    page.get_by_label("Files (up to 50 at once").set_input_files([str(signed), str(stray)])
    page.get_by_role("button", name="Find their invoices").click()

    rows = page.locator("#assign-confirm tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("the file name")
    expect(page.get_by_label("Invoice for FA-2026-0042 signed.pdf")).to_have_value(str(invoice.id))
    expect(page.get_by_label("Invoice for stray.pdf")).to_have_value("")
    page.get_by_role("button", name="Attach the chosen files").click()
    expect(page.get_by_text("1 file attached to its invoice.")).to_be_visible()
    session.expire_all()
    attached = session.scalars(select(InvoiceFile).where(InvoiceFile.invoice_id == invoice.id)).all()
    assert len(attached) == 1 and attached[0].file.size == signed.stat().st_size
    assert not problems, problems
    context.close()
