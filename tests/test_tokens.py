"""API tokens (issue 14, finding 9): listed, revoked, optionally expiring, each valid in one tenant only;
through the settings page (CSRF on), the API and the ``inbox token`` commands."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import ApiToken, AuditEvent, Membership, Role, utcnow
from core.tenancy import accounts
from dashboard.cli import cli
from tests.conftest import PASSWORD, TenantFixture
from tests.test_dashboard import csrf_token, login, text


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def row_of(session: Session, token: str) -> ApiToken:
    session.expire_all()
    return session.scalars(select(ApiToken).where(ApiToken.prefix == token[:8])).one()


def test_expired_and_revoked_tokens_get_401(app: Flask, session: Session, tenant: TenantFixture) -> None:
    short = accounts.create_token(session, tenant.admin, tenant.tenant, label="ci", expires_in_days=1)
    session.commit()
    api = app.test_client()
    assert api.get("/api/v1/tenant", headers=bearer(short)).status_code == 200
    row_of(session, short).expires_at = utcnow() - timedelta(seconds=1)  # a day later
    session.commit()
    response = api.get("/api/v1/tenant", headers=bearer(short))
    assert response.status_code == 401 and 'error="invalid_token"' in response.headers["WWW-Authenticate"]

    # Listed with its state; revoked through the API, after which it opens nothing (twice: still revoked).
    listing = api.get("/api/v1/tokens", headers=bearer(tenant.token)).get_json()
    states = {item["prefix"]: item["state"] for item in listing["items"]}
    assert states == {short[:8]: "expired", tenant.token[:8]: "active"}
    assert all("token_hash" not in item and tenant.token not in str(item) for item in listing["items"])
    own = row_of(session, tenant.token)
    assert api.delete(f"/api/v1/tokens/{own.id}", headers=bearer(tenant.token)).get_json()["state"] == "revoked"
    assert api.get("/api/v1/tenant", headers=bearer(tenant.token)).status_code == 401
    assert api.delete(f"/api/v1/tokens/{own.id}", headers=bearer(tenant.token)).status_code == 401


def test_a_member_lists_and_revokes_only_their_own_tokens(app: Flask, session: Session, tenant: TenantFixture,
                                                          other_tenant: TenantFixture) -> None:
    member = accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    member_token = accounts.create_token(session, member, tenant.tenant)
    session.commit()
    api = app.test_client()
    items = api.get("/api/v1/tokens", headers=bearer(member_token)).get_json()["items"]
    assert [item["prefix"] for item in items] == [member_token[:8]]
    admins = row_of(session, tenant.token)
    assert api.delete(f"/api/v1/tokens/{admins.id}", headers=bearer(member_token)).status_code == 404
    theirs = row_of(session, other_tenant.token)
    assert api.delete(f"/api/v1/tokens/{theirs.id}", headers=bearer(tenant.token)).status_code == 404
    assert api.get("/api/v1/tenant", headers=bearer(tenant.token)).status_code == 200
    assert api.get("/api/v1/tenant", headers=bearer(other_tenant.token)).status_code == 200
    # The admin sees (and may revoke) every token of the company, none of another's.
    prefixes = {i["prefix"] for i in api.get("/api/v1/tokens", headers=bearer(tenant.token)).get_json()["items"]}
    assert prefixes == {tenant.token[:8], member_token[:8]}


def test_a_token_is_valid_in_its_own_tenant_only(app: Flask, session: Session, tenant: TenantFixture,
                                                 other_tenant: TenantFixture) -> None:
    """The same person, admin of two companies: the token of one reads that one, whatever the other."""
    session.add(Membership(user_id=tenant.admin.id, tenant_id=other_tenant.tenant.id, role=Role.ADMIN.value))
    session.commit()
    body = app.test_client().get("/api/v1/tenant", headers=bearer(tenant.token)).get_json()
    assert body["id"] == tenant.tenant.id
    # Leaving the token's company ends the token, although the user is still admin elsewhere.
    session.delete(session.scalars(select(Membership).where(Membership.user_id == tenant.admin.id,
                                                            Membership.tenant_id == tenant.tenant.id)).one())
    session.commit()
    assert app.test_client().get("/api/v1/tenant", headers=bearer(tenant.token)).status_code == 401


def test_settings_page_creates_lists_and_revokes_tokens_with_csrf(app: Flask, session: Session,
                                                                   tenant: TenantFixture) -> None:
    client = app.test_client()
    assert login(client, tenant.admin.email).status_code == 302
    page = client.get("/settings/tokens")
    assert page.status_code == 200 and tenant.token[:8] in text(page) and tenant.token not in text(page)
    assert client.post("/settings/tokens", data={"label": "no csrf"}).status_code == 400
    token = csrf_token(page)
    refused = client.post("/settings/tokens", data={"label": "x", "expires_in_days": "0", "csrf_token": token})
    assert refused.status_code == 302 and session.scalar(select(ApiToken).where(ApiToken.label == "x")) is None
    created = client.post("/settings/tokens", data={"label": "accounting export", "expires_in_days": "30",
                                                    "csrf_token": token})
    assert created.status_code == 200
    value = created.get_data(as_text=True).split('<code data-role="token">')[1].split("</code>")[0]
    row = row_of(session, value)
    assert row.label == "accounting export" and row.tenant_id == tenant.tenant.id
    assert timedelta(days=29) < row.expires_at - utcnow() <= timedelta(days=30)
    assert app.test_client().get("/api/v1/tenant", headers=bearer(value)).status_code == 200

    assert client.post(f"/settings/tokens/{row.id}/revoke").status_code == 400  # no CSRF token: unchanged
    assert app.test_client().get("/api/v1/tenant", headers=bearer(value)).status_code == 200
    assert client.post(f"/settings/tokens/{row.id}/revoke", data={"csrf_token": token}).status_code == 302
    assert app.test_client().get("/api/v1/tenant", headers=bearer(value)).status_code == 401
    assert 'data-role="state">revoked' in text(client.get("/settings/tokens"))
    actions = set(session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant.tenant.id)))
    assert {"token.create", "token.revoke"} <= actions


def test_token_commands_create_list_and_revoke(app: Flask, session: Session, tenant: TenantFixture) -> None:
    runner = app.test_cli_runner()
    created = runner.invoke(cli, ["token", "create", tenant.admin.email, "--tenant", tenant.address,
                                  "--label", "nightly", "--expires-days", "7"])
    assert created.exit_code == 0, created.output
    value = created.output.strip().splitlines()[-1]
    assert app.test_client().get("/api/v1/tenant", headers=bearer(value)).status_code == 200
    listed = runner.invoke(cli, ["token", "list", "--tenant", tenant.address])
    assert listed.exit_code == 0 and value[:8] in listed.output and "nightly" in listed.output
    assert value not in listed.output
    row = row_of(session, value)
    revoked = runner.invoke(cli, ["token", "revoke", str(row.id), "--tenant", tenant.address])
    assert revoked.exit_code == 0, revoked.output
    assert app.test_client().get("/api/v1/tenant", headers=bearer(value)).status_code == 401
    assert "revoked" in runner.invoke(cli, ["token", "list", "--tenant", tenant.address]).output
    assert runner.invoke(cli, ["token", "create", tenant.admin.email, "--expires-days", "0"]).exit_code != 0


def test_the_token_owner_rule_is_one_function(session: Session, tenant: TenantFixture) -> None:
    """Admins see every token of the company, anyone else their own: one rule for the API and the page."""
    assert accounts.token_owner_filter(Role.ADMIN, tenant.admin.id) is None
    assert accounts.token_owner_filter(Role.MEMBER.value, 7) == 7
    assert accounts.token_owner_filter(Role.SUPPORT, 8) == 8
