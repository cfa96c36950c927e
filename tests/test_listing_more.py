"""Issue 17 item 6, the remaining lists: journal entries (search, filters, sorts, CSV of what is shown, bulk
posting with each refusal's reason), suppliers (search, filters, sorts, CSV) and the clients' CSV; on SQLite
and PostgreSQL, scoped as the lists are."""

from __future__ import annotations

from datetime import date, timedelta

from flask import Flask
from sqlalchemy.orm import Session

from core import listing
from core.accounting import listing as entry_listing
from core.accounting.models import EntryStatus, JournalEntry
from core.files.storage import FileStorage
from core.models import ClientAssignment, Direction
from core.payables import suppliers
from tests.conftest import TenantFixture, make_tenant
from tests.test_access import Team, team  # noqa: F401  (fixture: a restricted member and two clients)
from tests.test_accounting import ISSUE, validate
from tests.test_clients import TODAY, admin_viewer
from tests.test_dashboard import csrf_token, login
from tests.test_dashboard import text as page_text
from tests.test_listing import csv_rows

PAYABLE = Direction.PAYABLE.value


def entries(session: Session, fx: TenantFixture, status: str | None = None, journal: str | None = None,
            **args: str) -> list[str]:
    found = listing.only(listing.parse_filters(args, entry_listing.ENTRY_SORTS, entry_listing.ENTRY_DEFAULT_SORT),
                         entry_listing.ENTRY_FILTERS)
    assert not found.errors, found.errors
    stmt = entry_listing.entry_list(admin_viewer(session, fx), status, journal, found, listing.dialect_of(session))
    return [row.piece_ref for row in session.scalars(stmt)]


def book(session: Session, storage: FileStorage, fx: TenantFixture) -> dict[str, JournalEntry]:
    """Three sales and two purchases, every entry ready but S-3 (no VAT given and nothing learned of its
    client yet: waits for the reviewer)."""
    rows = {
        "S-1": validate(session, storage, fx, "S-1", "120.00", client="Alpha SA", net="100.00", tax="20.00")[1],
        "S-2": validate(session, storage, fx, "S-2", "240.00", client="Beta SARL", net="200.00", tax="40.00",
                        issue=ISSUE + timedelta(days=10))[1],
        "S-3": validate(session, storage, fx, "S-3", "360.00", client="Gamma SAS", issue=ISSUE + timedelta(days=20))[1],
        "P-1": validate(session, storage, fx, "P-1", "60.00", client="Lieferant GmbH", net="50.00", tax="10.00",
                        direction=PAYABLE)[1],
        "P-2": validate(session, storage, fx, "P-2", "600.00", client="Papier SARL", net="500.00", tax="100.00",
                        direction=PAYABLE, issue=ISSUE + timedelta(days=5))[1],
    }
    return rows


def test_entries_search_filters_and_sorts(session: Session, storage: FileStorage, tenant: TenantFixture) -> None:
    rows = book(session, storage, tenant)
    other = make_tenant(session, "Globex", "admin@globex.example")
    validate(session, storage, other, "S-9", "120.00", client="Alpha SA", net="100.00", tax="20.00")  # never seen
    assert rows["S-3"].status == EntryStatus.TO_PROCESS.value and rows["S-1"].status == EntryStatus.READY.value

    assert entries(session, tenant, sort="piece_ref") == ["P-1", "P-2", "S-1", "S-2", "S-3"]
    assert entries(session, tenant, q="sarl", sort="piece_ref") == ["P-2", "S-2"]  # the counterparty
    assert entries(session, tenant, q="s-2") == ["S-2"]  # the piece number
    assert entries(session, tenant, q="120,00") == ["S-1"]  # the total (not Globex's)
    assert entries(session, tenant, q="600") == ["P-2"]
    assert entries(session, tenant, q="100") == []  # a line's amount (S-1's net) is not the entry's
    assert entries(session, tenant, q="lieferant") == ["P-1"]
    assert entries(session, tenant, amount_min="200", amount_max="400", sort="amount") == ["S-2", "S-3"]
    assert entries(session, tenant, sort="-amount")[0] == "P-2"  # numerically, on SQLite's text too
    assert entries(session, tenant, date_from=(ISSUE + timedelta(days=5)).isoformat(),
                   date_to=(ISSUE + timedelta(days=10)).isoformat(), sort="entry_date") == ["P-2", "S-2"]
    assert entries(session, tenant, status="ready", journal=rows["P-1"].journal, sort="piece_ref") == ["P-1", "P-2"]
    assert entries(session, tenant, status="to_process") == ["S-3"]
    assert entries(session, tenant, q="100%") == []  # LIKE's wildcards are literal


def test_bulk_post_posts_each_it_can_and_says_why_not_for_the_others(
    session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    rows = book(session, storage, tenant)
    other = make_tenant(session, "Globex", "admin@globex.example")
    theirs = validate(session, storage, other, "S-9", "120.00", client="Alpha SA", net="100.00", tax="20.00")[1]
    ids = [rows["S-1"].id, rows["S-3"].id, theirs.id, rows["S-2"].id, rows["S-1"].id]
    results = entry_listing.post_selected(session, admin_viewer(session, tenant), ids, tenant.admin.id,
                                          today=date(2026, 4, 1))
    session.commit()
    assert [(r.entry_id, r.posted) for r in results] == [
        (rows["S-1"].id, True), (rows["S-3"].id, False), (theirs.id, False), (rows["S-2"].id, True)]
    assert "rate" in results[1].reason and results[2].reason == entry_listing.NOT_VISIBLE
    session.expire_all()
    assert (rows["S-1"].number, rows["S-2"].number) == (1, 2)  # gapless: the refusal took no number
    assert rows["S-3"].status == EntryStatus.TO_PROCESS.value and rows["S-3"].number is None
    assert theirs.status == EntryStatus.READY.value
    again = entry_listing.post_selected(session, admin_viewer(session, tenant), [rows["S-1"].id], tenant.admin.id)
    assert again[0].posted and rows["S-1"].number == 1  # posting twice is the same posting


def test_entries_page_filters_exports_and_bulk_posts_with_csrf(app: Flask, session: Session, storage: FileStorage,
                                                               tenant: TenantFixture) -> None:
    rows = book(session, storage, tenant)
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    page = web.get("/accounting?status=ready&q=sarl&sort=-amount")
    shown = page_text(page)
    assert "S-2" in shown and "P-2" in shown and "S-1" not in shown
    assert 'href="/accounting/entries/export.csv?status=ready&amp;q=sarl&amp;sort=-amount"' in page.get_data(
        as_text=True)
    exported = csv_rows(web.get("/accounting/entries/export.csv?status=ready&q=sarl&sort=-amount"))
    assert [r["piece_ref"] for r in exported] == ["P-2", "S-2"]
    assert exported[0]["counterparty"] == "Papier SARL" and exported[0]["debit"] == "600.00"
    bad = page_text(web.get("/accounting?status=ready&amount_min=abc&currency=EUR"))
    assert "Filter ignored" in bad  # said, never a crash
    assert web.post("/accounting/entries/post", data={"entry_id": str(rows["S-1"].id)}).status_code == 400  # CSRF
    token = csrf_token(web.get("/accounting?status=ready"))
    chosen = [str(rows["S-1"].id), str(rows["S-3"].id)]
    done = web.post("/accounting/entries/post", follow_redirects=True,
                    data={"csrf_token": token, "entry_id": chosen, "next": "/accounting?status=posted"})
    said = page_text(done)
    assert "1 entry posted." in said and f"Entry {rows['S-3'].id}:" in said
    session.expire_all()
    assert rows["S-1"].status == EntryStatus.POSTED.value and rows["S-3"].status == EntryStatus.TO_PROCESS.value


def test_a_restricted_member_searches_and_exports_only_their_clients_entries_and_suppliers(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture, team: Team  # noqa: F811
) -> None:
    app.config["INBOX_TODAY"] = TODAY.isoformat()
    ours = validate(session, storage, tenant, "P-1", "60.00", client="Lieferant GmbH", net="50.00", tax="10.00",
                    direction=PAYABLE)[0]
    validate(session, storage, tenant, "P-2", "600.00", client="Papier SARL", net="500.00", tax="100.00",
             direction=PAYABLE)
    session.add(ClientAssignment(tenant_id=tenant.tenant.id, client_id=ours.client_id, user_id=team.member.id))
    session.commit()
    member = app.test_client()
    assert login(member, team.member.email).status_code == 302
    for status in ("to_process", "ready"):
        for query in ("", "&q=sarl", "&q=2000", "&amount_min=1"):
            shown = page_text(member.get(f"/accounting?status={status}{query}"))
            assert "B-1" not in shown and "P-2" not in shown, (status, query)
    everything = [r["piece_ref"] for s in ("to_process", "ready")
                  for r in csv_rows(member.get(f"/accounting/entries/export.csv?status={s}"))]
    assert sorted(everything) == ["A-1", "P-1"]
    assert csv_rows(member.get("/accounting/entries/export.csv?status=ready&q=papier")) == []
    headers = {"Authorization": f"Bearer {team.member_token}"}
    api = app.test_client()
    found = [e["piece_ref"] for s in ("to_process", "ready")
             for e in api.get(f"/api/v1/accounting/entries?status={s}&q=2000", headers=headers).get_json()["items"]]
    assert found == []
    # The suppliers: only the assigned one, searched, exported and through the API.
    assert "Papier" not in page_text(member.get("/suppliers?q=sarl"))
    assert [r["name"] for r in csv_rows(member.get("/suppliers/export.csv"))] == ["Lieferant GmbH"]
    assert csv_rows(member.get("/suppliers/export.csv?q=p-2")) == []
    assert api.get("/api/v1/suppliers?q=600", headers=headers).get_json()["total"] == 0
    assert member.post("/accounting/entries/post", data={"entry_id": "1"}).status_code in (400, 403)
    # The clients' export follows the same scope.
    assert [r["name"] for r in csv_rows(member.get("/clients/export.csv"))] == ["Alpha SA"]


def test_suppliers_search_filters_sorts_and_export(app: Flask, session: Session, storage: FileStorage,
                                                   tenant: TenantFixture) -> None:
    app.config["INBOX_TODAY"] = TODAY.isoformat()
    book(session, storage, tenant)
    validate(session, storage, tenant, "P-3", "30.00", client="Lieferant GmbH", net="25.00", tax="5.00",
             direction=PAYABLE, issue=ISSUE + timedelta(days=40))
    viewer = admin_viewer(session, tenant)

    def names(**args: str) -> list[str]:
        found = listing.only(listing.parse_filters(args, suppliers.SUPPLIER_SORTS, "-amount_due"),
                             suppliers.SUPPLIER_FILTERS)
        assert not found.errors, found.errors
        stmt = suppliers.supplier_list(viewer, currency="EUR", today=TODAY, filters=found,
                                       dialect=listing.dialect_of(session))
        return [row[1] for row in session.execute(stmt)]

    assert names() == ["Papier SARL", "Lieferant GmbH"]  # most due first
    assert names(sort="name") == ["Lieferant GmbH", "Papier SARL"]
    assert names(q="p-3") == ["Lieferant GmbH"]  # an invoice's number
    assert names(q="600") == ["Papier SARL"]  # an invoice's amount
    assert names(q="90") == ["Lieferant GmbH"]  # what is due
    assert names(q="alpha") == []  # a client is no supplier
    assert names(amount_max="100") == ["Lieferant GmbH"]
    assert names(date_from=(ISSUE + timedelta(days=30)).isoformat()) == ["Lieferant GmbH"]
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    page = web.get("/suppliers?q=gmbh&sort=name")
    assert "Lieferant GmbH" in page_text(page) and "Papier SARL" not in page_text(page)
    assert 'href="/suppliers/export.csv?currency=EUR&amp;q=gmbh&amp;sort=name"' in page.get_data(as_text=True)
    exported = csv_rows(web.get("/suppliers/export.csv?currency=EUR&sort=-amount_due"))
    assert [(r["name"], r["amount_due"], r["open_invoices"]) for r in exported] == [
        ("Papier SARL", "600.00", "1"), ("Lieferant GmbH", "90.00", "2")]
    assert "Filter ignored" in page_text(web.get("/suppliers?status=paid&date_from=31/12"))
    body = web.get("/api/v1/suppliers?sort=nope")
    assert body.status_code in (400, 401)  # the API wants a token: checked in tests/test_payables.py


def test_clients_export_is_the_list_searched_and_sorted(app: Flask, session: Session, storage: FileStorage,
                                                        tenant: TenantFixture) -> None:
    app.config["INBOX_TODAY"] = TODAY.isoformat()
    book(session, storage, tenant)
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    assert 'href="/clients/export.csv?currency=EUR&amp;sort=name&amp;q=a"' in web.get(
        "/clients?q=a&sort=name").get_data(as_text=True)
    rows = csv_rows(web.get("/clients/export.csv?currency=EUR&sort=name"))
    assert [(r["name"], r["amount_due"]) for r in rows] == [
        ("Alpha SA", "120.00"), ("Beta SARL", "240.00"), ("Gamma SAS", "360.00")]
    assert [r["name"] for r in csv_rows(web.get("/clients/export.csv?q=beta"))] == ["Beta SARL"]
    # A too long search is ignored, as on the page: every client, most due first.
    ignored = csv_rows(web.get("/clients/export.csv?q=" + "x" * 101))
    assert [r["name"] for r in ignored] == ["Gamma SAS", "Beta SARL", "Alpha SA"]


def test_suppliers_list_is_paginated_with_its_filters(app: Flask, session: Session, tenant: TenantFixture) -> None:
    for i in range(55):  # PER_PAGE + 5, none with invoices: sorted by name
        suppliers.find_or_create_supplier(session, tenant.tenant.id, f"Fournisseur {i:02d}")
    suppliers.find_or_create_supplier(session, tenant.tenant.id, "Autre SARL")
    session.commit()
    web = app.test_client()
    assert login(web, tenant.admin.email).status_code == 302
    first = web.get("/suppliers?q=fournisseur&sort=name")
    body = first.get_data(as_text=True)
    assert "Fournisseur 49" in body and "Fournisseur 50" not in body and "Autre SARL" not in body
    assert "Page 1 of 2 · 55 in all" in page_text(first)
    assert 'href="/suppliers?q=fournisseur&amp;sort=name&amp;page=2" rel="next"' in body  # the filters kept
    second = web.get("/suppliers?q=fournisseur&sort=name&page=2")
    assert "Fournisseur 54" in page_text(second) and "Fournisseur 49" not in page_text(second)
    assert 'rel="prev"' in second.get_data(as_text=True) and 'rel="next"' not in second.get_data(as_text=True)
