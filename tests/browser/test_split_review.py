"""Regrouping the pages of a PDF that held several invoices, in a real browser (Debian's chromium)."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.orm import Session

from core.files.storage import FileStorage
from tests.browser.test_review_flow import browser, live_server  # noqa: F401  (fixtures)
from tests.conftest import TenantFixture
from tests.test_split import EXPECTED, batch, documents_of, ingest

pytestmark = pytest.mark.browser


def test_reviewer_starts_a_group_moves_a_page_merges_and_saves(
    live_server: str, browser: Browser, session: Session, storage: FileStorage,  # noqa: F811
    tenant: TenantFixture,
) -> None:
    message = ingest(session, storage, tenant, batch())
    first = documents_of(session, message.id)[0]
    assert [d.source_pages for d in documents_of(session, message.id)] == EXPECTED

    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page: Page = context.new_page()
    problems: list[str] = []  # CSP violations and script errors show up here
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    failed: list[str] = []  # thumbnails and scripts that did not load (the browser's favicon probe aside)
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 and "favicon" not in r.url else None)

    page.goto(f"{live_server}/login?next=/documents/{first.id}")
    page.locator("input[name=email]").fill(tenant.admin.email)
    page.locator("input[name=password]").fill(tenant.password)
    page.locator("form:has(input[name=password]) button[type=submit]").click()
    expect(page).to_have_url(f"{live_server}/documents/{first.id}")

    groups = page.locator("[data-split-groups] > .split-group")
    expect(groups).to_have_count(3)
    last = page.locator('.split-page[data-page="4"] img')
    last.scroll_into_view_if_needed()
    page.wait_for_function("document.querySelector('.split-page[data-page=\"4\"] img').naturalWidth > 100")

    # Start a new group at page 2: page 2 leaves LOT-001 and stands alone.
    page.locator('.split-page[data-page="1"] [data-new-group]').click()
    expect(groups).to_have_count(4)
    expect(groups.nth(1).locator(".split-page")).to_have_count(1)
    expect(groups.nth(1).locator("[data-group-number]")).to_have_text("2")

    # Move page 3 (LOT-002) into the first group: its own group empties and disappears.
    page.locator('.split-page[data-page="2"] select').select_option(label="1")
    expect(groups).to_have_count(3)
    expect(groups.nth(0).locator(".split-page")).to_have_count(2)

    # Merge the group of page 2 into the one before it: pages 1-3 together.
    groups.nth(1).locator("[data-merge]").click()
    expect(groups).to_have_count(2)
    expect(groups.nth(0).locator(".split-page")).to_have_count(3)
    expect(groups.nth(0).locator("[data-merge]")).to_be_hidden()

    page.locator("[data-save-groups]").click()
    expect(page.locator(".split")).to_be_visible()
    expect(page.locator("[data-split-groups] > .split-group")).to_have_count(2)
    assert [d.source_pages for d in documents_of(session, message.id)] == [[0, 1, 2], [3, 4]]
    assert [p for p in problems if "Failed to load resource" not in p] == [], problems
    assert failed == []
    context.close()
