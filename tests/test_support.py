"""Settings → Forwarding, the support console, the audit trail and ``GET /api/v1/forwarding-codes``.

Through the Flask test client with CSRF on; the codes come from confirmation emails run through the real
``ingest_message``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.documents import processing
from core.files.storage import FileStorage
from core.inbound import forwarding, intake
from core.models import AuditEvent, DocumentStatus, InboundMessage, Role, User
from core.tenancy import accounts
from tests.conftest import PASSWORD, TenantFixture
from tests.test_dashboard import XSS, XSS_ESCAPED, csrf_token, login, make_document, text
from tests.test_forwarding import CODE, GOOGLE_PASS, VF, gmail_email

OTHER_CODE = "907856341"
SUPPORT_EMAIL = "support@operator.example"
MEMBER_EMAIL = "member@acme.example"


@dataclass
class World:
    acme: TenantFixture
    globex: TenantFixture
    support: User
    member: User
    acme_message: InboundMessage
    globex_message: InboundMessage


def _ingest(session: Session, storage: FileStorage, tenant: TenantFixture, raw: bytes) -> InboundMessage:
    message = intake.store_message(session, storage, tenant.tenant.id, raw, recipient=tenant.address)
    session.commit()
    processing.ingest_message(session, storage, message.id)
    session.commit()
    return message


@pytest.fixture
def world(session: Session, storage: FileStorage, tenant: TenantFixture, other_tenant: TenantFixture) -> World:
    support = accounts.create_user(session, SUPPORT_EMAIL, PASSWORD, tenant.tenant, Role.SUPPORT)
    member = accounts.create_user(session, MEMBER_EMAIL, PASSWORD, tenant.tenant, Role.MEMBER)
    session.commit()
    acme_message = _ingest(session, storage, tenant, gmail_email(tenant.address))  # forged: no DKIM verdict
    other_raw = gmail_email(other_tenant.address).replace(CODE.encode(), OTHER_CODE.encode())
    globex_message = _ingest(session, storage, other_tenant, other_raw)
    return World(tenant, other_tenant, support, member, acme_message, globex_message)


def logged_in(app: Flask, email: str) -> FlaskClient:
    client = app.test_client()
    assert login(client, email).status_code == 302
    return client


def events(session: Session, tenant_id: int) -> list[AuditEvent]:
    session.expire_all()
    return list(session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == tenant_id).order_by(AuditEvent.id)))


# Settings → Forwarding -----------------------------------------------------------------------


def test_admin_sees_the_codes_of_their_address_and_the_guides(app: Flask, world: World) -> None:
    page = logged_in(app, world.acme.admin.email).get("/settings/forwarding")
    html = text(page)
    assert page.status_code == 200
    assert CODE in html and "compta.dupont@gmail.com" in html
    assert OTHER_CODE not in html  # another tenant's code never shows
    assert world.acme.address in html and world.globex.address not in html  # the guides use our address
    assert "Forwarding and POP/IMAP" in html and "Add a forwarding address" in html
    assert "550 5.7.520 Access denied" in html and "AS(7555)" in html
    assert "Gmail's confirmation email arrived on" in html
    # Unverified: shown with a warning, and the link is text, never a link to follow.
    assert "Unverified sender" in html and "may be forged" in html
    assert VF in html and f'href="{VF}"' not in html


def test_an_authenticated_code_has_a_clickable_link(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(forwarding.TRUSTED_AUTHSERV_ENV, "mx.operator.example")
    _ingest(session, storage, tenant, gmail_email(tenant.address, auth_results=[GOOGLE_PASS]))
    html = text(logged_in(app, tenant.admin.email).get("/settings/forwarding"))
    assert f'href="{VF}"' in html and "Verified sender" in html and "may be forged" not in html


def test_the_settings_page_links_to_forwarding_and_audit_for_admins_only(app: Flask, world: World) -> None:
    assert "/settings/forwarding" in text(logged_in(app, world.acme.admin.email).get("/settings"))
    assert "/settings/forwarding" not in text(logged_in(app, MEMBER_EMAIL).get("/settings"))


def test_members_and_support_cannot_open_codes_or_the_trail_in_settings(app: Flask, world: World) -> None:
    for email in (MEMBER_EMAIL, SUPPORT_EMAIL):
        client = logged_in(app, email)
        for url in ("/settings/forwarding", "/settings/audit"):
            response = client.get(url)
            assert response.status_code == 403 and CODE not in text(response), (email, url)


# Support console -----------------------------------------------------------------------------


def test_support_reads_are_audited_and_the_admin_sees_them(app: Flask, session: Session, world: World) -> None:
    client = logged_in(app, SUPPORT_EMAIL)
    acme_id = world.acme.tenant.id
    console = text(client.get("/support"))
    assert "Acme SAS" in console and "Globex" not in console  # only the tenants they support
    assert events(session, acme_id) == []  # listing one's own assignments reads no tenant data

    found = text(client.get("/support", query_string={"q": world.acme.address.upper()}))
    assert f"/support/tenants/{acme_id}" in found
    nothing = text(client.get("/support", query_string={"q": "Globex"}))
    assert f"/support/tenants/{world.globex.tenant.id}" not in nothing and "No company you support matches" in nothing

    overview = client.get(f"/support/tenants/{acme_id}")
    assert overview.status_code == 200 and world.acme.address in text(overview)
    imports = text(client.get(f"/support/tenants/{acme_id}/imports"))
    assert "Gmail forwarding confirmation (code stored for support and admins)" in imports
    trail = text(client.get(f"/support/tenants/{acme_id}/messages/{world.acme_message.id}"))
    assert CODE in trail and world.acme_message.raw_sha256 in trail
    codes = text(client.get(f"/support/tenants/{acme_id}/codes"))
    assert CODE in codes and OTHER_CODE not in codes and f'href="{VF}"' not in codes and "may be forged" in codes

    recorded = events(session, acme_id)
    assert [e.action for e in recorded] == [
        "support.search", "support.view_tenant", "support.view_imports", "support.view_message", "support.view_codes",
    ]
    assert all(e.actor_email == SUPPORT_EMAIL and e.actor_id == world.support.id for e in recorded)
    assert all(e.ip == "127.0.0.1" for e in recorded)
    assert recorded[3].target == f"message:{world.acme_message.id}"
    assert events(session, world.globex.tenant.id) == []

    audit_page = text(logged_in(app, world.acme.admin.email).get("/settings/audit"))
    assert SUPPORT_EMAIL in audit_page and "support.view_codes" in audit_page and "127.0.0.1" in audit_page
    assert "Support read the forwarding confirmation codes" in audit_page
    filtered = text(logged_in(app, world.acme.admin.email).get("/settings/audit?action=support.view_m"))
    assert "support.view_message" in filtered and "support.view_codes" not in filtered


def test_support_sees_only_the_tenants_they_support(app: Flask, session: Session, world: World) -> None:
    client = logged_in(app, SUPPORT_EMAIL)
    acme, globex = world.acme.tenant.id, world.globex.tenant.id
    for url in (
        f"/support/tenants/{globex}",
        f"/support/tenants/{globex}/codes",
        f"/support/tenants/{globex}/imports",
        f"/support/tenants/{acme}/messages/{world.globex_message.id}",  # another tenant's message via ours
        "/support/tenants/999999",
        "/support/tenants/99999999999",
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert OTHER_CODE not in text(response)
    assert events(session, globex) == []


def test_users_without_a_support_membership_have_no_console(app: Flask, world: World) -> None:
    client = logged_in(app, world.acme.admin.email)
    assert client.get("/support").status_code == 403
    assert client.get(f"/support/tenants/{world.acme.tenant.id}/codes").status_code == 403
    assert "/support" not in text(client.get("/pending"))  # and no menu entry


def test_support_cannot_change_anything(
    app: Flask, session: Session, storage: FileStorage, world: World
) -> None:
    doc = make_document(session, storage, world.acme.tenant.id, number="F-1")
    client = logged_in(app, SUPPORT_EMAIL)
    token = csrf_token(client.get("/pending"))
    acme = world.acme.tenant.id
    for url in (f"/support/tenants/{acme}/codes", f"/support/tenants/{acme}", "/support", "/settings/forwarding"):
        assert client.post(url, data={"csrf_token": token}).status_code == 405, url
    refused = client.post(f"/documents/{doc.id}", data={"action": "discard", "csrf_token": token})
    assert refused.status_code == 403
    session.refresh(doc)
    assert doc.status == DocumentStatus.PENDING.value


def test_support_reads_of_ordinary_pages_are_audited(app: Flask, session: Session, world: World) -> None:
    client = logged_in(app, SUPPORT_EMAIL)
    assert client.get("/imports").status_code == 200
    recorded = events(session, world.acme.tenant.id)
    assert [(e.action, e.target, e.actor_email) for e in recorded] == [("support.view_page", "/imports", SUPPORT_EMAIL)]
    logged_in(app, world.acme.admin.email).get("/imports")  # an admin's own reads are not support reads
    assert len(events(session, world.acme.tenant.id)) == 1


def test_support_console_escapes_what_senders_wrote(
    app: Flask, session: Session, storage: FileStorage, world: World
) -> None:
    raw = gmail_email(world.acme.address, sender=f"{XSS} <evil@x.example>", subject=XSS, body=XSS)
    message = _ingest(session, storage, world.acme, raw)
    client = logged_in(app, SUPPORT_EMAIL)
    for url in (f"/support/tenants/{world.acme.tenant.id}/imports",
                f"/support/tenants/{world.acme.tenant.id}/messages/{message.id}"):
        html = text(client.get(url))
        assert XSS not in html and XSS_ESCAPED in html


# API -----------------------------------------------------------------------------------------


def api_get(app: Flask, token: str | None, **params: str):  # noqa: ANN201
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return app.test_client().get("/api/v1/forwarding-codes", headers=headers, query_string=params)


def test_api_admins_read_their_own_codes(app: Flask, session: Session, world: World) -> None:
    response = api_get(app, world.acme.token)
    assert response.status_code == 200
    body = response.get_json()
    assert body["tenant"]["id"] == world.acme.tenant.id and body["total"] == 1
    item = body["items"][0]
    assert item["code"] == CODE and item["provider"] == "gmail" and item["requester"] == "compta.dupont@gmail.com"
    # Checked on receipt (core.mail.senderauth): no DKIM signature of Google, so not authenticated.
    assert item["authenticated"] is False and item["verified"] is False
    assert item["link"] is None and item["unverified_link"] == VF
    assert api_get(app, world.acme.token, tenant=world.acme.address).status_code == 200
    # Another tenant, by id or address: as if it did not exist.
    for ref in (str(world.globex.tenant.id), world.globex.address, "nobody@in.example.test", "x" * 300, "9" * 30):
        response = api_get(app, world.acme.token, tenant=ref)
        assert response.status_code == 404 and OTHER_CODE not in response.get_data(as_text=True)
    assert events(session, world.acme.tenant.id) == []  # admins reading their own data: no support trail


def test_api_members_and_anonymous_are_refused(app: Flask, session: Session, world: World) -> None:
    member_token = accounts.create_token(session, world.member, world.acme.tenant)
    session.commit()
    assert api_get(app, member_token).status_code == 403
    assert api_get(app, None).status_code == 401
    assert api_get(app, "ii_not-a-token").status_code == 401


def test_api_support_reads_are_audited(app: Flask, session: Session, world: World) -> None:
    token = accounts.create_token(session, world.support, world.acme.tenant)
    session.commit()
    own = api_get(app, token)
    assert own.status_code == 200 and own.get_json()["items"][0]["code"] == CODE
    by_address = api_get(app, token, tenant=world.acme.address)
    assert by_address.status_code == 200
    assert api_get(app, token, tenant=world.globex.address).status_code == 404
    assert api_get(app, token, tenant=str(world.globex.tenant.id)).status_code == 404
    recorded = events(session, world.acme.tenant.id)
    assert [(e.action, e.actor_email, e.detail.get("via")) for e in recorded] == [
        ("support.view_codes", SUPPORT_EMAIL, "api")] * 2
    assert events(session, world.globex.tenant.id) == []
    # Read-only, whatever the route.
    posted = app.test_client().post("/api/v1/forwarding-codes", headers={"Authorization": f"Bearer {token}"})
    assert posted.status_code in (403, 405)


def test_api_a_token_opens_its_own_tenant_only(app: Flask, session: Session, world: World) -> None:
    """Issue 14, finding 9: staff supporting two tenants read the second with a token of the second, never
    with the first's (``?tenant=`` names another tenant: 404, as if it did not exist)."""
    accounts.create_user(session, SUPPORT_EMAIL, PASSWORD, world.globex.tenant, Role.SUPPORT)
    acme_token = accounts.create_token(session, world.support, world.acme.tenant)
    globex_token = accounts.create_token(session, world.support, world.globex.tenant)
    session.commit()
    for ref in (world.globex.address, str(world.globex.tenant.id)):
        response = api_get(app, acme_token, tenant=ref)
        assert response.status_code == 404 and OTHER_CODE not in response.get_data(as_text=True)
    assert events(session, world.globex.tenant.id) == []
    response = api_get(app, globex_token, tenant=world.globex.address)
    assert response.status_code == 200 and response.get_json()["items"][0]["code"] == OTHER_CODE
    assert [e.action for e in events(session, world.globex.tenant.id)] == ["support.view_codes"]
    # The other tenant's token holder, an admin there, does not open Acme either.
    response = api_get(app, world.globex.token, tenant=world.acme.address)
    assert response.status_code == 404 and CODE not in response.get_data(as_text=True)


def test_api_support_reads_of_any_endpoint_are_audited(app: Flask, session: Session, world: World) -> None:
    """Issue 14, finding 8: the console promises every support read is on the tenant's trail, API included."""
    token = accounts.create_token(session, world.support, world.acme.tenant)
    session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    for path in ("/api/v1/messages", f"/api/v1/messages/{world.acme_message.id}", "/api/v1/invoices?page=1",
                 "/api/v1/tenant"):
        assert app.test_client().get(path, headers=headers).status_code == 200, path
    assert app.test_client().get("/api/v1/messages/2000000000", headers=headers).status_code == 404
    recorded = events(session, world.acme.tenant.id)
    assert [(e.action, e.target, e.actor_email, e.detail.get("via")) for e in recorded] == [
        ("support.view_api", "/api/v1/messages", SUPPORT_EMAIL, "api"),
        ("support.view_api", f"/api/v1/messages/{world.acme_message.id}", SUPPORT_EMAIL, "api"),
        ("support.view_api", "/api/v1/invoices?page=1", SUPPORT_EMAIL, "api"),
        ("support.view_api", "/api/v1/tenant", SUPPORT_EMAIL, "api"),
    ]
    # The tenant's own admins and members reading through the API leave no support trail.
    assert app.test_client().get("/api/v1/messages", headers={"Authorization": f"Bearer {world.acme.token}"}
                                 ).status_code == 200
    assert len(events(session, world.acme.tenant.id)) == 4
    admin = logged_in(app, world.acme.admin.email)
    trail = text(admin.get("/settings/audit"))
    assert "Support read data through the API" in trail and "/api/v1/invoices?page=1" in trail


def test_members_never_read_a_confirmation_code_in_a_subject(app: Flask, session: Session, world: World) -> None:
    """Issue 14, finding 6: the subject carries Gmail's code; members see it redacted on /imports and in
    the API, admins and support see it whole."""
    member_token = accounts.create_token(session, world.member, world.acme.tenant)
    support_token = accounts.create_token(session, world.support, world.acme.tenant)
    session.commit()
    assert CODE in world.acme_message.subject  # else this test proves nothing
    member = logged_in(app, MEMBER_EMAIL)
    page = text(member.get("/imports"))
    assert CODE not in page and "Gmail Forwarding Confirmation" in page
    for path in ("/api/v1/messages", f"/api/v1/messages/{world.acme_message.id}", "/imports/status?ids="
                 f"{world.acme_message.id}"):
        if path.startswith("/api"):
            body = app.test_client().get(path, headers={"Authorization": f"Bearer {member_token}"})
        else:
            body = member.get(path)
        assert body.status_code == 200 and CODE not in body.get_data(as_text=True), path
    assert CODE in text(logged_in(app, world.acme.admin.email).get("/imports"))
    assert CODE in text(logged_in(app, SUPPORT_EMAIL).get("/imports"))
    for token in (world.acme.token, support_token):
        body = app.test_client().get("/api/v1/messages", headers={"Authorization": f"Bearer {token}"})
        assert CODE in body.get_data(as_text=True)
