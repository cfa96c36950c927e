"""Finance flows in a real browser (Debian's chromium, the same launch as test_review_flow): review beside
the PDF then see the client's balance change, the duplicate decision, and restricted access."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from core.models import ClientAssignment, DocumentStatus, Role, Tenant
from core.tenancy import accounts
from tests.browser.test_review_flow import ARTIFACTS, browser, live_server  # noqa: F401 (fixtures)
from tests.conftest import PASSWORD, TenantFixture
from tests.invoicegen import make_invoice_pdf
from tests.test_clients import TODAY, confirm
from tests.test_dashboard import make_document

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def pinned_today(app: Flask) -> None:
    app.config["INBOX_TODAY"] = TODAY.isoformat()


def open_page(browser: Browser) -> tuple[Page, list[str]]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="en-GB")  # English UI
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    return page, problems


def log_in(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Pending verification")).to_be_visible()


def no_csp_problems(problems: list[str]) -> None:
    assert not [p for p in problems if "Content Security Policy" in p or "Refused" in p], problems


def test_review_beside_pdf_then_client_balance(live_server: str, browser: Browser, session: Session,  # noqa: F811
                                               storage: FileStorage, tenant: TenantFixture) -> None:
    earlier = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-2026-0001", "Acme SAS", "500.00",
                      due=TODAY - timedelta(days=3))
    pdf = make_invoice_pdf(number="FA-2026-0042", client="Acme SAS", net=Decimal("1000"), tax=Decimal("200"))
    doc = make_document(
        session, storage, tenant.tenant.id, filename="FA-2026-0042.pdf", data=pdf, status=DocumentStatus.PENDING,
        doc_type="invoice", number="FA-2026-0042", client="ACME", amount=Decimal("1000.00"), currency="EUR",
        issue_date=date(2026, 11, 23), due_date=date(2026, 12, 23),
        field_info={"amount": {"source": "text", "confidence": 0.4}},
    )
    page, problems = open_page(browser)
    log_in(page, live_server, tenant.admin.email)
    page.goto(f"{live_server}/clients/{earlier.client_id}")
    expect(page.locator("#amount-due")).to_have_text("€500.00")

    page.goto(f"{live_server}/documents/{doc.id}")
    viewer = page.locator(f'iframe[src="/documents/{doc.id}/file"]')
    expect(viewer).to_be_visible()
    form = page.locator("#review-form")
    viewer_box, form_box = viewer.bounding_box(), form.bounding_box()
    assert viewer_box and form_box and viewer_box["x"] + viewer_box["width"] <= form_box["x"]  # side by side
    expect(page.locator(".field.unsure")).to_have_count(1)
    expect(page.locator("#clients option[value='Acme SAS']")).to_have_count(1)  # the client picker
    page.get_by_label("Client").fill("Acme SAS")
    page.get_by_label("Amount (incl. tax)").fill("1200,00")  # the reviewer corrects the amount
    page.wait_for_timeout(1000)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "finance-review.png"))
    page.keyboard.press("Control+Enter")
    expect(page.get_by_text("Invoice FA-2026-0042 confirmed.")).to_be_visible()

    page.get_by_role("link", name="Clients", exact=True).click()
    row = page.locator("#clients-table tbody tr", has_text="Acme SAS")
    expect(row).to_contain_text("€1,700.00")
    row.get_by_role("link", name="Acme SAS").click()
    expect(page.locator("#amount-due")).to_have_text("€1,700.00")
    expect(page.locator("#overdue")).to_have_text("€500.00")
    expect(page.locator("#open-invoices")).to_contain_text("FA-2026-0042")
    page.screenshot(path=str(ARTIFACTS / "finance-client.png"), full_page=True)

    page.get_by_role("link", name="Analytics", exact=True).click()
    expect(page.locator("#kpi-due")).to_have_text("€1,700.00")
    expect(page.locator("figure.chart svg rect")).to_have_count(17)
    page.screenshot(path=str(ARTIFACTS / "finance-analytics.png"), full_page=True)
    no_csp_problems(problems)
    page.context.close()


def test_duplicate_decision(live_server: str, browser: Browser, session: Session,  # noqa: F811
                            storage: FileStorage, tenant: TenantFixture) -> None:
    original = confirm(session, storage, tenant.tenant.id, tenant.admin, "FA-7", "Acme SAS", "70.00")
    copy = make_document(session, storage, tenant.tenant.id, filename="FA-7-resent.pdf",
                         data=make_invoice_pdf(number="FA-7", client="Acme SAS (resent)"),
                         status=DocumentStatus.DUPLICATE, duplicate_of_id=original.id, number="FA-7",
                         doc_type="invoice", reason="It seems this invoice has already been imported")
    page, problems = open_page(browser)
    log_in(page, live_server, tenant.admin.email)
    page.get_by_role("link", name="FA-7-resent.pdf").click()
    expect(page.get_by_role("alert")).to_contain_text("already been imported")
    page.screenshot(path=str(ARTIFACTS / "finance-duplicate.png"))
    page.get_by_role("button", name="Link").click()
    expect(page).to_have_url(f"{live_server}/invoices/{original.id}")
    expect(page.get_by_text("File linked to invoice FA-7.")).to_be_visible()
    expect(page.locator("ul.files li")).to_have_count(1)
    assert copy.id
    no_csp_problems(problems)
    page.context.close()


def test_restriction_seen_from_a_members_session(live_server: str, browser: Browser,  # noqa: F811
                                                 session: Session, storage: FileStorage,
                                                 tenant: TenantFixture) -> None:
    member = accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    session.commit()
    alpha = confirm(session, storage, tenant.tenant.id, tenant.admin, "A-1", "Alpha SA", "100.00")
    beta = confirm(session, storage, tenant.tenant.id, tenant.admin, "B-1", "Beta SARL", "2000.00")
    session.add(ClientAssignment(tenant_id=tenant.tenant.id, client_id=alpha.client_id, user_id=member.id))
    session.get(Tenant, tenant.tenant.id).restrict_access = True
    session.commit()

    page, problems = open_page(browser)
    log_in(page, live_server, member.email)
    page.get_by_role("link", name="Invoices", exact=True).click()
    expect(page.locator("table.list tbody tr")).to_have_count(1)
    expect(page.locator("table.list")).to_contain_text("A-1")
    page.get_by_role("link", name="Clients", exact=True).click()
    expect(page.locator("#clients-table")).not_to_contain_text("Beta SARL")
    page.screenshot(path=str(ARTIFACTS / "finance-member-clients.png"))
    response = page.goto(f"{live_server}/invoices/{beta.id}")
    assert response is not None and response.status == 404
    no_csp_problems(problems)
    page.context.close()
