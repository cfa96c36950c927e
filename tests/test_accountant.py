"""The accountant role (issue 18 with issue 17's people): a member who keeps the books.

An accountant reads every document of the company (never restricted to assigned clients), edits draft
entries, posts, reverses, exports (FEC, DATEV, CSV, EBP) and edits the chart of accounts, through the
dashboard and the API alike (one rule: ``access.can_keep_books``); a member is refused those (403); an
accountant does not manage people, company settings or a supplier's new IBAN. Admins invite or change
someone to the accountant role from the members page, the API and ``inbox user create --role``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounting import books as booksvc
from core.accounting.models import EntryStatus, JournalEntry
from core.files.storage import FileStorage
from core.models import Membership, Role, Tenant, User
from core.tenancy import access, accounts
from core.tenancy.people_models import Invitation
from dashboard.cli import cli
from tests.conftest import PASSWORD, TenantFixture
from tests.fecchecker import check_fec
from tests.test_accounting import validate
from tests.test_api import add_user
from tests.test_dashboard import csrf_token, login, post, text

SIREN = "732829320"
ACCOUNTANT, MEMBER = "compta@acme.example", "member@acme.example"


def api(client: FlaskClient, token: str, method: str, path: str, **kwargs: Any) -> Any:
    return client.open(f"/api/v1{path}", method=method, headers={"Authorization": f"Bearer {token}"}, **kwargs)


def logged_in(app: Flask, email: str) -> FlaskClient:
    web = app.test_client()
    assert login(web, email).status_code == 302
    return web


def ready_entry(session: Session, storage: FileStorage, tenant: TenantFixture, number: str) -> JournalEntry:
    _, entry = validate(session, storage, tenant, number, "120.00", net="100.00", tax="20.00")
    assert entry.status == EntryStatus.READY.value
    return entry


def user_id(session: Session, email: str) -> int:
    session.rollback()
    return session.scalars(select(User.id).where(User.email == email)).one()


def role_of(session: Session, tenant: TenantFixture, email: str) -> str | None:
    membership = accounts.membership(session, user_id(session, email), tenant.tenant.id)
    return membership.role if membership else None


def test_the_rule_is_one_function_for_memberships_and_viewers() -> None:
    for role, keeps in ((Role.ADMIN, True), (Role.ACCOUNTANT, True), (Role.MEMBER, False), (Role.SUPPORT, False)):
        assert access.can_keep_books(Membership(role=role.value)) is keeps
        assert access.can_keep_books(access.Viewer(1, 1, role.value, restricted=False)) is keeps


def test_an_accountant_posts_and_exports_through_the_page_and_the_api_a_member_gets_403(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    tid = tenant.tenant.id
    session.get(Tenant, tid).siren = SIREN
    session.get(Tenant, tid).datev_consultant_number, session.get(Tenant, tid).datev_client_number = "29098", "55003"
    session.commit()
    by_page, by_api, left = (ready_entry(session, storage, tenant, n) for n in ("A-1", "A-2", "A-3"))
    books_token = add_user(session, tenant, ACCOUNTANT, Role.ACCOUNTANT)
    member_token = add_user(session, tenant, MEMBER, Role.MEMBER)

    # The dashboard: the entry page offers posting, the post, the exports, the chart.
    web = logged_in(app, ACCOUNTANT)
    url = f"/accounting/entries/{by_page.id}"
    assert f'action="{url}/post"' in text(web.get(url))
    assert post(web, f"{url}/post", {"remember": "1"}, page=url).status_code == 302
    session.expire_all()
    assert session.get(JournalEntry, by_page.id).number == 1
    assert web.get("/accounting/exports").status_code == 200
    assert 'href="/accounting/exports"' in text(web.get("/accounting"))
    fec_file = web.get("/accounting/fec?year=2026")
    assert fec_file.status_code == 200
    assert check_fec(f"{SIREN}FEC20261231.txt", fec_file.data, date(2026, 1, 1), date(2026, 12, 31)) == []
    for kind in ("csv", "datev", "ebp"):
        assert web.get(f"/accounting/export?format={kind}").status_code == 200, kind
    assert post(web, "/accounting/accounts", {"number": "706100", "label": "Formations"},
                page="/accounting/accounts").status_code == 302
    assert booksvc.get_account(session, tid, "706100").label == "Formations"

    # The API: edit a draft, post, reverse, export, the chart.
    client = app.test_client()
    edited = api(client, books_token, "PUT", f"/accounting/entries/{by_api.id}", json={"label": "Client SA A-2"})
    assert edited.status_code == 200 and edited.get_json()["label"] == "Client SA A-2"
    posted = api(client, books_token, "POST", f"/accounting/entries/{by_api.id}/post", json={})
    assert posted.status_code == 200 and posted.get_json()["number"] == 2
    reversal = api(client, books_token, "POST", f"/accounting/entries/{by_page.id}/reverse")
    assert reversal.status_code == 201
    fec_api = api(client, books_token, "GET", "/accounting/fec?year=2026")
    assert fec_api.status_code == 200 and f"{SIREN}FEC20261231.txt" in fec_api.headers["Content-Disposition"]
    for kind in ("csv", "datev", "ebp"):
        assert api(client, books_token, "GET", f"/accounting/export?format={kind}").status_code == 200, kind
    assert api(client, books_token, "POST", "/accounting/accounts",
               json={"number": "706200", "label": "Abonnements"}).status_code == 201

    # A member: the same entry pages are readable, posting and exports are refused (page and API).
    member = logged_in(app, MEMBER)
    left_url = f"/accounting/entries/{left.id}"
    page = member.get(left_url)
    assert page.status_code == 200 and f'action="{left_url}/post"' not in text(page)
    assert 'href="/accounting/exports"' not in text(page) + text(member.get("/accounting"))  # no link to a 403
    assert post(member, f"{left_url}/post", {"remember": "1"}, page=left_url).status_code == 403
    assert member.get("/accounting/fec?year=2026").status_code == 403
    assert member.get("/accounting/export?format=csv").status_code == 403
    assert post(member, "/accounting/accounts", {"number": "706300", "label": "X"},
                page="/accounting/accounts").status_code == 403
    assert api(client, member_token, "POST", f"/accounting/entries/{left.id}/post", json={}).status_code == 403
    assert api(client, member_token, "POST", "/accounting/entries/post", json={"ids": [left.id]}).status_code == 403
    assert api(client, member_token, "GET", "/accounting/fec?year=2026").status_code == 403
    assert api(client, member_token, "GET", "/accounting/export?format=csv").status_code == 403
    session.expire_all()
    assert session.get(JournalEntry, left.id).status == EntryStatus.READY.value  # nothing posted by the member


def test_an_accountant_sees_every_client_but_manages_no_one(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    tid = tenant.tenant.id
    for number, client in (("V-1", "Alpha SA"), ("V-2", "Beta SARL")):
        validate(session, storage, tenant, number, "60.00", client=client, net="50.00", tax="10.00")
    books_token = add_user(session, tenant, ACCOUNTANT, Role.ACCOUNTANT)
    member_token = add_user(session, tenant, MEMBER, Role.MEMBER)
    session.get(Tenant, tid).restrict_access = True
    session.commit()
    client = app.test_client()
    # Restriction applies to members only: the accountant reads every client's invoices and entries.
    assert api(client, books_token, "GET", "/invoices").get_json()["total"] == 2
    assert api(client, books_token, "GET", "/accounting/entries?status=ready").get_json()["total"] == 2
    assert api(client, member_token, "GET", "/invoices").get_json()["total"] == 0

    # People, company settings: admins only, by the API and by the pages.
    member_id = user_id(session, MEMBER)
    assert api(client, books_token, "POST", "/invitations",
               json={"email": "new@acme.example", "role": "accountant"}).status_code == 403
    assert api(client, books_token, "PATCH", f"/users/{member_id}", json={"role": "accountant"}).status_code == 403
    assert api(client, books_token, "GET", "/users").status_code == 403
    assert api(client, books_token, "PUT", "/tenant", json={"legal_name": "Hijack SAS"}).status_code == 403
    web = logged_in(app, ACCOUNTANT)
    assert web.get("/settings/members").status_code == 403
    assert post(web, "/settings/members/invite", {"email": "new@acme.example", "role": "admin"}).status_code == 403
    assert post(web, f"/settings/members/{member_id}/role", {"role": "admin"}).status_code == 403
    assert post(web, "/settings/company", {"legal_name": "Hijack SAS"}).status_code == 403
    session.rollback()
    assert session.scalars(select(Invitation)).all() == []
    assert role_of(session, tenant, MEMBER) == "member" and session.get(Tenant, tid).legal_name != "Hijack SAS"


def test_a_supplier_iban_change_still_waits_for_an_admin(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture
) -> None:
    from tests.test_payables import OTHER_IBAN, _payable, with_identity

    with_identity(session, tenant)
    invoice = _payable(session, storage, tenant.tenant.id, "L-1", "100.00")
    _payable(session, storage, tenant.tenant.id, "L-2", "90.00", iban=OTHER_IBAN)  # a changed IBAN: held
    books_token = add_user(session, tenant, ACCOUNTANT, Role.ACCOUNTANT)
    client = app.test_client()
    refused = api(client, books_token, "POST", f"/suppliers/{invoice.client_id}/iban", json={"accept": True})
    assert refused.status_code == 403
    web = logged_in(app, ACCOUNTANT)
    page = f"/suppliers/{invoice.client_id}"
    assert post(web, f"{page}/iban", {"decision": "confirm"}, page=page).status_code == 403
    detail = api(client, tenant.token, "GET", f"/suppliers/{invoice.client_id}").get_json()
    assert detail["iban_change_pending"] and detail["iban"] != OTHER_IBAN


def test_admins_make_accountants_by_invitation_role_change_and_the_command_line(
    app: Flask, session: Session, tenant: TenantFixture
) -> None:
    client = app.test_client()
    invited = api(client, tenant.token, "POST", "/invitations", json={"email": "books@acme.example",
                                                                       "role": "accountant"})
    assert invited.status_code == 201 and invited.get_json()["role"] == "accountant"
    admin = logged_in(app, tenant.admin.email)
    members_page = admin.get("/settings/members")
    assert '<option value="accountant"' in text(members_page)
    french = admin.get("/settings/members", headers={"Accept-Language": "fr"})
    assert ">comptable</option>" in text(french) and "Un comptable travaille comme un membre" in text(french)
    token = csrf_token(members_page)
    assert admin.post("/settings/members/invite", data={"email": "second@acme.example", "role": "accountant",
                                                        "csrf_token": token}).status_code == 302
    session.rollback()
    assert sorted(session.scalars(select(Invitation.role))) == ["accountant", "accountant"]

    add_user(session, tenant, MEMBER, Role.MEMBER)
    member_id = user_id(session, MEMBER)
    assert admin.post(f"/settings/members/{member_id}/role", data={"role": "accountant",
                                                                   "csrf_token": token}).status_code == 302
    assert role_of(session, tenant, MEMBER) == "accountant"
    back = api(client, tenant.token, "PATCH", f"/users/{member_id}", json={"role": "member"})
    assert back.status_code == 200 and back.get_json()["role"] == "member"
    again = api(client, tenant.token, "PATCH", f"/users/{member_id}", json={"role": "accountant"})
    assert again.status_code == 200 and again.get_json()["role"] == "accountant"
    assert api(client, tenant.token, "PATCH", f"/users/{member_id}", json={"role": "support"}).status_code == 422

    created = app.test_cli_runner().invoke(cli, ["user", "create", "cli@acme.example", "--tenant", tenant.address,
                                                 "--role", "accountant", "--password", PASSWORD])
    assert created.exit_code == 0, created.output
    assert role_of(session, tenant, "cli@acme.example") == "accountant"
    assert login(app.test_client(), "cli@acme.example").status_code == 302
