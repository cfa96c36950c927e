"""Issue 17, items 1, 2 and 7: people and companies self-service, on SQLite and PostgreSQL.

Invitations (outbox without a relay; a real SMTP relay on loopback with aiosmtpd, with and without
authentication), roles and removals (never the last admin), password reset (no enumeration, single use,
expiry, rate limit), TOTP two-factor (login step, replay refused, required by the company), companies
(create, name taken, switch, cross-company overview scoped to memberships, sign-up), and their bad inputs.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pyotp
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import ServiceError
from core.files.storage import FileStorage
from core.models import (
    ApiToken,
    AuditEvent,
    BankAccount,
    BankTransaction,
    Client,
    ClientAssignment,
    Membership,
    Role,
    Tenant,
    User,
    utcnow,
)
from core.outbound import mail
from core.outbound.models import OutboxMessage
from core.tenancy import accounts
from core.tenancy.people_models import Invitation, PasswordReset, SecondFactor
from dashboard.app import create_app
from dashboard.cli import cli
from tests.bankhelpers import make_invoice
from tests.conftest import PASSWORD, TenantFixture
from tests.services import free_port
from tests.test_dashboard import csrf_token, login, make_document
from tests.test_smtp_hardening import tls_files  # noqa: F401 (fixture: self-signed certificate, 127.0.0.1)

NEW_PASSWORD = "a brand new passphrase"
LINK = re.compile(r"http://localhost(/invitations/accept\?token=[A-Za-z0-9_\-]+)")
RESET_LINK = re.compile(r"http://localhost(/password/reset\?token=[A-Za-z0-9_\-]+)")


def logged_in(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    assert login(client, email, password).status_code == 302
    return client


def post_form(client: FlaskClient, url: str, data: dict[str, str], page: str = "/settings/members") -> object:
    return client.post(url, data={**data, "csrf_token": csrf_token(client.get(page))})


def invite(client: FlaskClient, email: str, role: str = "member") -> object:
    return post_form(client, "/settings/members/invite", {"email": email, "role": role})


def audit_actions(session: Session, tenant_id: int) -> list[str]:
    session.rollback()
    return list(session.scalars(select(AuditEvent.action).where(AuditEvent.tenant_id == tenant_id)
                                .order_by(AuditEvent.id)))


def last_link(session: Session, pattern: re.Pattern[str] = LINK) -> str:
    session.rollback()
    body = session.scalars(select(OutboxMessage.body).order_by(OutboxMessage.id.desc())).first()
    found = pattern.search(body or "")
    assert found, body
    return found.group(1)


def required(session: Session, tenant_id: int) -> bool:
    session.rollback()
    return bool(session.scalar(select(Tenant.require_2fa).where(Tenant.id == tenant_id)))


def count(session: Session, model: type) -> int:
    session.rollback()
    return session.scalar(select(func.count()).select_from(model)) or 0


# Invitations ------------------------------------------------------------------------------------


def test_invite_outbox_join_and_the_link_works_once(app: Flask, session: Session, tenant: TenantFixture) -> None:
    admin = logged_in(app, tenant.admin.email)
    answer = invite(admin, "Colleague@Acme.example")
    assert answer.status_code == 302
    assert "the message is in the outbox" in admin.get("/settings/members").get_data(as_text=True)

    # No relay: the mail is kept, readable by the company's admins on the Outbox page.
    outbox = admin.get("/settings/outbox").get_data(as_text=True)
    assert "colleague@acme.example" in outbox and "You are invited to Acme SAS" in outbox
    path = last_link(session)
    assert path.split("=", 1)[1] in outbox
    row = session.scalars(select(Invitation)).one()
    assert row.email == "colleague@acme.example" and row.role == "member" and row.token_hash not in outbox

    invitee = app.test_client()
    page = invitee.get(path)
    assert page.status_code == 200 and "Acme SAS" in page.get_data(as_text=True)
    token = path.split("=", 1)[1]
    mismatch = invitee.post("/invitations/accept", data={
        "token": token, "password": NEW_PASSWORD, "password_again": "other", "csrf_token": csrf_token(page)})
    assert mismatch.status_code == 400 and count(session, User) == 1
    short = invitee.post("/invitations/accept", data={
        "token": token, "password": "short", "password_again": "short", "csrf_token": csrf_token(page)})
    assert short.status_code == 400 and "at least 8 characters" in short.get_data(as_text=True)
    assert count(session, User) == 1  # nothing half-created
    joined = invitee.post("/invitations/accept", data={
        "token": token, "password": NEW_PASSWORD, "password_again": NEW_PASSWORD, "csrf_token": csrf_token(page)})
    assert joined.status_code == 302 and joined.headers["Location"].endswith("/pending")
    assert invitee.get("/pending").status_code == 200  # logged in, working on Acme
    session.rollback()
    user = accounts.user_by_email(session, "colleague@acme.example")
    assert user is not None and [m.role for m in user.memberships] == ["member"]
    assert accounts.authenticate(session, "colleague@acme.example", NEW_PASSWORD) is not None

    # The same link again: refused with the reason, nothing changes.
    again = app.test_client().get(path)
    assert again.status_code == 400 and "already used" in again.get_data(as_text=True)
    assert audit_actions(session, tenant.tenant.id)[-2:] == ["members.invite", "members.join"]
    trail = admin.get("/settings/audit").get_data(as_text=True)
    assert "An admin invited someone" in trail and "Someone joined through an invitation" in trail


def test_bad_invitation_links_say_why_and_create_nothing(app: Flask, session: Session,
                                                         tenant: TenantFixture) -> None:
    admin = logged_in(app, tenant.admin.email)
    invite(admin, "late@acme.example")
    path = last_link(session)
    row = session.scalars(select(Invitation)).one()
    row.expires_at = utcnow() - timedelta(minutes=1)
    session.commit()
    visitor = app.test_client()
    expired = visitor.get(path)
    assert expired.status_code == 400 and "has expired" in expired.get_data(as_text=True)
    posted = visitor.post("/invitations/accept", data={"token": path.split("=", 1)[1], "password": NEW_PASSWORD,
                                                       "password_again": NEW_PASSWORD,
                                                       "csrf_token": csrf_token(visitor.get("/login"))})
    assert posted.status_code == 400 and count(session, User) == 1
    for token in ("", "nonsense", "x" * 5000):
        answer = visitor.get(f"/invitations/accept?token={token}")
        assert answer.status_code == 400 and "not valid" in answer.get_data(as_text=True)

    # A second invitation of the same address withdraws the first; a withdrawn link says so.
    invite(admin, "twice@acme.example")
    first = last_link(session)
    invite(admin, "twice@acme.example")
    withdrawn = visitor.get(first)
    assert withdrawn.status_code == 400 and "withdrawn" in withdrawn.get_data(as_text=True)
    assert visitor.get(last_link(session)).status_code == 200

    # Already a member, a bad address, a role that cannot be invited: refused, no invitation added.
    before = count(session, Invitation)
    for email, role, reason in ((tenant.admin.email, "member", "already a member"),
                                ("not-an-address", "member", "not an e-mail address"),
                                ("x@acme.example", "support", "choose admin, accountant or member")):
        invite(admin, email, role)
        assert reason in admin.get("/settings/members").get_data(as_text=True), reason
    assert count(session, Invitation) == before


def test_an_existing_account_joins_with_its_own_password(app: Flask, session: Session, tenant: TenantFixture,
                                                         other_tenant: TenantFixture) -> None:
    """An accountant already using invoice-inbox for Globex joins Acme without a new account."""
    admin = logged_in(app, tenant.admin.email)
    invite(admin, other_tenant.admin.email, "admin")
    path = last_link(session)
    visitor = app.test_client()
    page = visitor.get(path)
    assert "already has an account" in page.get_data(as_text=True)
    token = path.split("=", 1)[1]
    wrong = visitor.post("/invitations/accept", data={"token": token, "password": "not the password",
                                                      "csrf_token": csrf_token(page)})
    assert wrong.status_code == 400 and count(session, Membership) == 2
    right = visitor.post("/invitations/accept", data={"token": token, "password": PASSWORD,
                                                      "csrf_token": csrf_token(page)})
    assert right.status_code == 302 and right.headers["Location"].endswith("/login")
    session.rollback()
    user = session.get(User, other_tenant.admin.id)
    assert {m.tenant.name: m.role for m in user.memberships} == {"Globex SARL": "admin", "Acme SAS": "admin"}


# Roles and removals -------------------------------------------------------------------------------


def test_roles_and_removal_never_leave_a_company_without_an_admin(app: Flask, session: Session,
                                                                   tenant: TenantFixture) -> None:
    colleague = accounts.create_user(session, "anne@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    their_token = accounts.create_token(session, colleague, tenant.tenant)
    session.commit()
    admin = logged_in(app, tenant.admin.email)
    me = tenant.admin.id
    post_form(admin, f"/settings/members/{me}/role", {"role": "member"})
    assert "last admin" in admin.get("/settings/members").get_data(as_text=True)
    post_form(admin, f"/settings/members/{me}/remove", {})
    assert "last admin" in admin.get("/settings/members").get_data(as_text=True)
    post_form(admin, f"/settings/members/{colleague.id}/role", {"role": "root"})
    assert "choose admin, accountant or member" in admin.get("/settings/members").get_data(as_text=True)

    post_form(admin, f"/settings/members/{colleague.id}/role", {"role": "admin"})
    session.rollback()
    assert accounts.membership(session, colleague.id, tenant.tenant.id).role == "admin"
    post_form(admin, f"/settings/members/{colleague.id}/role", {"role": "member"})
    post_form(admin, f"/settings/members/{colleague.id}/remove", {})
    session.rollback()
    assert accounts.membership(session, colleague.id, tenant.tenant.id) is None
    assert session.scalars(select(ApiToken).where(ApiToken.user_id == colleague.id)).one().revoked_at is not None
    assert accounts.identify_token(session, their_token) is None
    stopped = app.test_client().get("/api/v1/tenant", headers={"Authorization": f"Bearer {their_token}"})
    assert stopped.status_code == 401
    assert audit_actions(session, tenant.tenant.id)[-3:] == ["members.role_changed", "members.role_changed",
                                                             "members.removed"]
    # A member cannot manage people.
    member = accounts.create_user(session, "bob@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    session.commit()
    bob = logged_in(app, "bob@acme.example")
    token = csrf_token(bob.get("/pending"))
    refused = bob.post("/settings/members/invite", data={"email": "x@acme.example", "csrf_token": token})
    assert refused.status_code == 403
    assert bob.post(f"/settings/members/{me}/remove", data={"csrf_token": token}).status_code == 403
    assert bob.get("/settings/outbox").status_code == 403
    assert member.id


def test_every_new_form_needs_its_csrf_token(app: Flask, tenant: TenantFixture) -> None:
    admin = logged_in(app, tenant.admin.email)
    for url in ("/settings/members/invite", f"/settings/members/{tenant.admin.id}/role",
                f"/settings/members/{tenant.admin.id}/remove", "/settings/members/require-2fa", "/companies",
                "/account/2fa/enable", "/account/2fa/disable"):
        assert admin.post(url, data={"email": "x@acme.example", "role": "member", "name": "X"}).status_code == 400, url
    anonymous = app.test_client()
    for url in ("/password/forgot", "/password/reset", "/invitations/accept", "/login/code"):
        assert anonymous.post(url, data={"email": "x@acme.example"}).status_code == 400, url


# A real SMTP relay on loopback --------------------------------------------------------------------


@dataclass
class Relay:
    port: int
    received: list[tuple[str, list[str], bytes]] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)


class Collector:
    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.relay.received.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


@pytest.fixture
def relay() -> Iterator[Relay]:
    found = Relay(free_port())

    def check(server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login == b"inbox" and data.password == b"s3cret/pw"
        if ok:
            found.logins.append("inbox")
        return AuthResult(success=ok, handled=False)

    controller = Controller(Collector(found), hostname="127.0.0.1", port=found.port, authenticator=check,
                            auth_require_tls=False)
    controller.start()
    yield found
    controller.stop()


def app_with(settings: Settings, **changes: object) -> Flask:
    return create_app(replace(settings, **changes), TESTING=True)


def test_invitation_goes_through_the_configured_relay(settings: Settings, session: Session, tenant: TenantFixture,
                                                      relay: Relay) -> None:
    app = app_with(settings, mail_relay_url=f"smtp://inbox:s3cret%2Fpw@127.0.0.1:{relay.port}",
                   mail_from="Invoices <no-reply@acme.example>")
    admin = logged_in(app, tenant.admin.email)
    invite(admin, "relayed@acme.example")
    assert "Invitation sent to relayed@acme.example" in admin.get("/settings/members").get_data(as_text=True)
    assert relay.logins == ["inbox"]
    (sender, recipients, content), = relay.received
    assert sender == "no-reply@acme.example" and recipients == ["relayed@acme.example"]
    assert b"Subject: You are invited to Acme SAS" in content and b"/invitations/accept?token=" in content
    session.rollback()
    row = session.scalars(select(OutboxMessage)).one()
    assert row.state == mail.SENT and row.sent_at is not None


def test_a_refusing_or_absent_relay_is_reported_not_a_crash(settings: Settings, session: Session,
                                                            tenant: TenantFixture, relay: Relay) -> None:
    wrong_password = app_with(settings, mail_relay_url=f"smtp://inbox:wrong@127.0.0.1:{relay.port}")
    admin = logged_in(wrong_password, tenant.admin.email)
    invite(admin, "a@acme.example")
    assert "the mail relay refused it" in admin.get("/settings/members").get_data(as_text=True)
    nobody = app_with(settings, mail_relay_url=f"smtp://127.0.0.1:{free_port()}")
    invite(logged_in(nobody, tenant.admin.email), "b@acme.example")
    session.rollback()
    states = session.scalars(select(OutboxMessage.state).order_by(OutboxMessage.id)).all()
    assert states == [mail.FAILED, mail.FAILED] and relay.received == []
    assert count(session, Invitation) == 2  # the invitations exist: an admin can withdraw or resend them
    with pytest.raises(ValueError):
        mail.parse_relay("http://example.com")
    assert mail.parse_relay("smtps://u:p%40ss@mx.example:2465") == mail.Relay("mx.example", 2465, True, "u", "p@ss")
    assert mail.parse_relay("smtp://mx.example").port == 25 and mail.parse_relay("") is None


@pytest.mark.parametrize("scheme", ["smtps", "smtp"])
def test_the_relay_over_tls_verifies_its_certificate(settings: Settings, session: Session, tenant: TenantFixture,
                                                     tls_files: tuple[Path, Path],  # noqa: F811
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     scheme: str) -> None:
    """smtps://: TLS from the first byte; smtp:// to a relay that requires STARTTLS before AUTH."""
    cert, key = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    found = Relay(free_port())
    # aiosmtpd does not count implicit TLS as TLS for AUTH (it would hide AUTH): told so for smtps only.
    tls = ({"ssl_context": context, "auth_require_tls": False} if scheme == "smtps"
           else {"tls_context": context, "require_starttls": True})
    controller = Controller(Collector(found), hostname="127.0.0.1", port=found.port,
                            authenticator=lambda *args: AuthResult(success=True), **tls)
    controller.start()
    try:
        app = app_with(settings, mail_relay_url=f"{scheme}://inbox:pw@127.0.0.1:{found.port}")
        admin = logged_in(app, tenant.admin.email)
        invite(admin, "untrusted@acme.example")  # a self-signed certificate: refused, and said why
        session.rollback()
        refused = session.scalars(select(OutboxMessage)).one()
        assert refused.state == mail.FAILED and "CERTIFICATE_VERIFY_FAILED" in (refused.error or "")
        monkeypatch.setenv("MAIL_RELAY_CA_FILE", str(cert))
        invite(admin, "trusted@acme.example")
    finally:
        controller.stop()
    session.rollback()
    sent = session.scalars(select(OutboxMessage).order_by(OutboxMessage.id.desc())).first()
    assert (sent.state, sent.error) == (mail.SENT, None)
    assert [rcpts for _sender, rcpts, _content in found.received] == [["trusted@acme.example"]]


# Password reset ----------------------------------------------------------------------------------


def test_password_reset_tells_nothing_and_works_once(app: Flask, session: Session, tenant: TenantFixture) -> None:
    visitor = app.test_client()
    page = visitor.get("/password/forgot")
    answers = []
    for email in ("nobody@acme.example", tenant.admin.email):
        answer = visitor.post("/password/forgot", data={"email": email, "csrf_token": csrf_token(page)})
        shown = re.sub(r'name="csrf_token" value="[^"]+"', "", answer.get_data(as_text=True))  # signed per render
        answers.append((answer.status_code, shown))
    assert answers[0] == answers[1]  # the same page, whether the account exists or not
    session.rollback()
    (row,) = session.scalars(select(OutboxMessage)).all()
    assert row.recipient == tenant.admin.email and row.tenant_id is None and row.kind == "password_reset"
    # No admin reads a reset link in the company's outbox.
    admin = logged_in(app, tenant.admin.email)
    assert "Reset your" not in admin.get("/settings/outbox").get_data(as_text=True)

    path = last_link(session, RESET_LINK)
    form = visitor.get(path)
    assert form.status_code == 200
    token = path.split("=", 1)[1]
    short = visitor.post("/password/reset", data={"token": token, "password": "short", "password_again": "short",
                                                  "csrf_token": csrf_token(form)})
    assert short.status_code == 400
    done = visitor.post("/password/reset", data={"token": token, "password": NEW_PASSWORD,
                                                 "password_again": NEW_PASSWORD, "csrf_token": csrf_token(form)})
    assert done.status_code == 302 and done.headers["Location"].endswith("/login")
    assert login(app.test_client(), tenant.admin.email, NEW_PASSWORD).status_code == 302
    assert login(app.test_client(), tenant.admin.email, PASSWORD).status_code == 200  # the old one is refused
    reused = visitor.get(path)
    assert reused.status_code == 400 and "already used" in reused.get_data(as_text=True)
    assert "account.password_reset" in audit_actions(session, tenant.tenant.id)

    visitor.post("/password/forgot", data={"email": tenant.admin.email,
                                           "csrf_token": csrf_token(visitor.get("/password/forgot"))})
    second = last_link(session, RESET_LINK)
    assert second != path
    reset_row = session.scalars(select(PasswordReset).order_by(PasswordReset.id.desc())).first()
    reset_row.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    expired = visitor.get(second)
    assert expired.status_code == 400 and "has expired" in expired.get_data(as_text=True)


def test_password_reset_requests_are_rate_limited(app: Flask, session: Session, tenant: TenantFixture) -> None:
    visitor = app.test_client()
    token = csrf_token(visitor.get("/password/forgot"))
    statuses = [visitor.post("/password/forgot", data={"email": tenant.admin.email, "csrf_token": token}).status_code
                for _ in range(7)]
    assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
    assert count(session, PasswordReset) == 5


# Two-factor ----------------------------------------------------------------------------------------


def code_at(secret: str, offset_steps: int) -> str:
    return pyotp.TOTP(secret).at(time.time() + 30 * offset_steps)


def turn_on_2fa(client: FlaskClient) -> str:
    page = client.get("/account/2fa").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', page).group(1)
    token = csrf_token(client.get("/account/2fa"))
    client.post("/account/2fa/enable", data={"code": "000000" if code_at(secret, 0) != "000000" else "111111",
                                             "csrf_token": token})
    assert "not the current one" in client.get("/account/2fa").get_data(as_text=True)
    client.post("/account/2fa/enable", data={"code": code_at(secret, 0), "csrf_token": token})
    assert "two-factor-state\"><strong>On" in client.get("/account/2fa").get_data(as_text=True)
    return secret


def test_two_factor_login_replay_and_company_requirement(app: Flask, session: Session,
                                                         tenant: TenantFixture) -> None:
    admin = logged_in(app, tenant.admin.email)
    secret = turn_on_2fa(admin)
    session.rollback()
    stored = session.scalars(select(SecondFactor)).one()
    assert secret not in stored.secret  # encrypted at rest

    browser = app.test_client()
    first = login(browser, tenant.admin.email)
    assert first.status_code == 302 and first.headers["Location"].endswith("/login/code")
    assert browser.get("/pending").status_code == 302  # not logged in yet
    page = browser.get("/login/code")
    used = code_at(secret, 0)  # the set-up used this step: a replay is refused
    assert browser.post("/login/code", data={"code": used, "csrf_token": csrf_token(page)}).status_code == 400
    fresh = code_at(secret, 1)
    assert browser.post("/login/code", data={"code": fresh, "csrf_token": csrf_token(page)}).status_code == 302
    assert browser.get("/pending").status_code == 200

    # The company requires it: a member without it is sent to set it up, then works.
    accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    session.commit()
    post_form(browser, "/settings/members/require-2fa", {"required": "1"})
    assert "Every member now needs" in browser.get("/settings/members").get_data(as_text=True)
    session.rollback()
    assert required(session, tenant.tenant.id)
    member = logged_in(app, "member@acme.example")
    sent_away = member.get("/pending")
    assert sent_away.status_code == 302 and sent_away.headers["Location"].endswith("/account/2fa")
    turn_on_2fa(member)
    assert member.get("/pending").status_code == 200
    refused = member.post("/account/2fa/disable", data={"code": "123456", "csrf_token": csrf_token(
        member.get("/account/2fa"))})
    assert refused.status_code == 302
    assert "requires two-factor" in member.get("/account/2fa").get_data(as_text=True)
    actions = audit_actions(session, tenant.tenant.id)
    assert actions.count("account.2fa_enabled") == 2 and "settings.require_2fa" in actions


def test_requiring_two_factor_needs_it_on_the_admins_own_account(app: Flask, session: Session,
                                                                   tenant: TenantFixture) -> None:
    admin = logged_in(app, tenant.admin.email)
    post_form(admin, "/settings/members/require-2fa", {"required": "1"})
    assert "your own account first" in admin.get("/settings/members").get_data(as_text=True)
    assert not required(session, tenant.tenant.id)


def test_a_company_requiring_two_factor_requires_it_of_api_tokens(app: Flask, session: Session,
                                                                   tenant: TenantFixture) -> None:
    member_user = accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    member_token = accounts.create_token(session, member_user, tenant.tenant)  # before the requirement
    session.commit()
    api = app.test_client()

    def status(token: str) -> tuple[int, str]:
        answer = api.get("/api/v1/tenant", headers={"Authorization": f"Bearer {token}"})
        return answer.status_code, (answer.get_json() or {}).get("error", "")

    assert status(member_token)[0] == 200
    admin = logged_in(app, tenant.admin.email)
    turn_on_2fa(admin)
    post_form(admin, "/settings/members/require-2fa", {"required": "1"})
    session.rollback()
    assert required(session, tenant.tenant.id)
    # The member's token stops, saying why; the admin's (who has it on) works.
    code, reason = status(member_token)
    assert code == 403 and reason == accounts.TOKEN_OWNER_NEEDS_2FA
    assert status(tenant.token)[0] == 200
    # Nobody without it gets a new token: domain, command line, page (sent to set it up first).
    with pytest.raises(ServiceError, match="turn it on for your account"):
        accounts.create_token(session, member_user, tenant.tenant)
    session.rollback()
    refused = app.test_cli_runner().invoke(cli, ["token", "create", "member@acme.example"])
    assert refused.exit_code != 0 and "two-factor" in refused.output
    member = logged_in(app, "member@acme.example")
    page = member.post("/settings/tokens", data={"label": "x", "csrf_token": csrf_token(member.get("/account/2fa"))})
    assert page.status_code == 302 and page.headers["Location"].endswith("/account/2fa")
    assert session.scalar(select(func.count()).select_from(ApiToken).where(ApiToken.user_id == member_user.id)) == 1
    # Once the member turns it on, the old token works again and a new one can be made.
    turn_on_2fa(member)
    assert status(member_token)[0] == 200
    made = app.test_cli_runner().invoke(cli, ["token", "create", "member@acme.example"])
    assert made.exit_code == 0 and status(made.output.strip().splitlines()[-1])[0] == 200


# Companies ----------------------------------------------------------------------------------------


def test_create_a_company_switch_and_name_taken(app: Flask, session: Session, tenant: TenantFixture,
                                                other_tenant: TenantFixture) -> None:
    admin = logged_in(app, tenant.admin.email)
    page = admin.get("/companies")
    created = admin.post("/companies", data={"name": "  Acme   Holding ", "csrf_token": csrf_token(page)})
    assert created.status_code == 302
    flashed = admin.get("/settings").get_data(as_text=True)
    session.rollback()
    holding = session.scalars(select(Tenant).where(Tenant.name == "Acme Holding")).one()
    address = accounts.address_of(accounts.primary_address(session, holding.id), "in.example.test")
    assert address in flashed  # its inbound address, at once
    assert accounts.membership(session, tenant.admin.id, holding.id).role == "admin"
    assert "company.created" in audit_actions(session, holding.id)

    tenants = count(session, Tenant)
    for name, reason in (("globex sarl", "already exists"), ("   ", "needs a name"), ("x" * 201, "at most 200")):
        refused = admin.post("/companies", data={"name": name, "csrf_token": csrf_token(page)})
        assert refused.status_code == 400 and reason in refused.get_data(as_text=True), name
    assert count(session, Tenant) == tenants  # nothing half-created

    switched = admin.post("/tenant", data={"tenant_id": str(tenant.tenant.id), "csrf_token": csrf_token(page)})
    assert switched.status_code == 302
    assert "You are now working on Acme SAS" in admin.get("/pending").get_data(as_text=True)
    # Switching to a company one does not belong to: 404.
    assert admin.post("/tenant", data={"tenant_id": str(other_tenant.tenant.id),
                                       "csrf_token": csrf_token(page)}).status_code == 404


def test_cross_company_overview_counts_what_each_membership_may_see(
    app: Flask, session: Session, storage: FileStorage, tenant: TenantFixture, other_tenant: TenantFixture
) -> None:
    accountant = accounts.create_user(session, "cabinet@compta.example", PASSWORD, tenant.tenant, Role.ADMIN)
    accounts.create_user(session, "cabinet@compta.example", PASSWORD, other_tenant.tenant, Role.MEMBER)
    third, _address = accounts.create_tenant(session, "Initech SAS")  # the accountant is not in it
    session.commit()
    for tid in (tenant.tenant.id, other_tenant.tenant.id, third.id):
        make_document(session, storage, tid, filename=f"pending-{tid}.pdf")
        account = BankAccount(tenant_id=tid, iban=f"FR76300060000112345678901{tid:02d}")
        session.add(account)
        session.flush()
        session.add(BankTransaction(tenant_id=tid, account_id=account.id, fingerprint=f"t{tid}",
                                    booking_date=date(2026, 1, 10), amount=Decimal("10.00")))
    past = date(2026, 1, 1)
    make_invoice(session, storage, tenant.tenant.id, "A-1", "100.00", "Client A", due_date=past)
    make_invoice(session, storage, other_tenant.tenant.id, "G-1", "100.00", "Client G", due_date=past)
    make_invoice(session, storage, other_tenant.tenant.id, "G-2", "100.00", "Client H", due_date=past)
    # In Globex the accountant is a restricted member assigned to Client G only.
    session.get(Tenant, other_tenant.tenant.id).restrict_access = True
    client_g = session.scalars(select(Client).where(Client.name == "Client G")).one()
    session.add(ClientAssignment(tenant_id=other_tenant.tenant.id, user_id=accountant.id, client_id=client_g.id))
    session.commit()

    web = logged_in(app, "cabinet@compta.example")
    html = web.get("/companies").get_data(as_text=True)
    assert "Initech" not in html
    rows = {name: cells for name, cells in re.findall(
        r'<tr id="company-\d+">\s*<td>([^<]+)</td>(.*?)</tr>', html, re.S)}
    numbers = {name: re.findall(r'data-role="(\w+)">(\d+)<', cells) for name, cells in rows.items()}
    assert numbers == {"Acme SAS": [("pending", "1"), ("overdue", "1"), ("unmatched", "1")],
                       "Globex SARL": [("pending", "1"), ("overdue", "1"), ("unmatched", "0")]}
    token = accounts.create_token(session, accountant, tenant.tenant)
    session.commit()
    listed = app.test_client().get("/api/v1/companies", headers={"Authorization": f"Bearer {token}"}).get_json()
    assert [(c["name"], c["overdue_invoices"]) for c in listed["items"]] == [("Acme SAS", 1), ("Globex SARL", 1)]


def test_signup_is_off_by_default_and_creates_nothing_half(settings: Settings, session: Session,
                                                           tenant: TenantFixture) -> None:
    closed = app_with(settings)
    assert closed.test_client().get("/signup").status_code == 404
    assert "Create an account" not in closed.test_client().get("/login").get_data(as_text=True)
    app = app_with(settings, signup_enabled=True)
    visitor = app.test_client()
    page = visitor.get("/signup")
    assert page.status_code == 200
    users, tenants = count(session, User), count(session, Tenant)
    for data, reason in (({"email": "new@startup.example", "password": NEW_PASSWORD, "company": "ACME sas"},
                          "already exists"),
                         ({"email": tenant.admin.email, "password": NEW_PASSWORD, "company": "Startup"},
                          "already has an account"),
                         ({"email": "new@startup.example", "password": "short", "company": "Startup"},
                          "at least 8 characters")):
        refused = visitor.post("/signup", data={**data, "csrf_token": csrf_token(page)})
        assert refused.status_code == 400 and reason in refused.get_data(as_text=True), reason
    assert (count(session, User), count(session, Tenant)) == (users, tenants)
    done = visitor.post("/signup", data={"email": "new@startup.example", "password": NEW_PASSWORD,
                                         "company": "Startup SAS", "csrf_token": csrf_token(page)})
    assert done.status_code == 302
    assert "Startup SAS is ready" in visitor.get("/settings").get_data(as_text=True)


# API -----------------------------------------------------------------------------------------------


def test_api_users_invitations_companies(app: Flask, session: Session, tenant: TenantFixture) -> None:
    api = app.test_client()
    admin = {"Authorization": f"Bearer {tenant.token}"}
    invited = api.post("/api/v1/invitations", json={"email": "api@acme.example", "role": "admin"}, headers=admin)
    assert invited.status_code == 201 and invited.get_json()["mail"] == "kept"
    assert "token" not in invited.get_json() and "link" not in invited.get_json()
    assert api.post("/api/v1/invitations", json={"email": tenant.admin.email}, headers=admin).status_code == 422
    assert api.post("/api/v1/invitations", json={"email": "a@b.example", "x": 1}, headers=admin).status_code == 422
    listed = api.get("/api/v1/invitations", headers=admin).get_json()
    assert listed["total"] == 1 and listed["items"][0]["state"] == "pending"
    withdrawn = api.delete(f"/api/v1/invitations/{invited.get_json()['id']}", headers=admin)
    assert withdrawn.get_json()["state"] == "revoked"

    users = api.get("/api/v1/users", headers=admin).get_json()["items"]
    assert users == [{"id": tenant.admin.id, "email": tenant.admin.email, "role": "admin", "two_factor": False}]
    assert api.patch(f"/api/v1/users/{tenant.admin.id}", json={"role": "member"}, headers=admin).status_code == 409
    assert api.delete(f"/api/v1/users/{tenant.admin.id}", headers=admin).status_code == 409

    member_token = accounts.create_token(session, accounts.create_user(
        session, "m@acme.example", PASSWORD, tenant.tenant, Role.MEMBER), tenant.tenant)
    session.commit()
    member = {"Authorization": f"Bearer {member_token}"}
    assert api.get("/api/v1/users", headers=member).status_code == 403
    assert api.post("/api/v1/invitations", json={"email": "z@acme.example"}, headers=member).status_code == 403

    created = api.post("/api/v1/companies", json={"name": "Acme Export"}, headers=member)
    assert created.status_code == 201
    body = created.get_json()
    assert body["role"] == "admin" and body["inbound_address"].endswith("@in.example.test")
    assert api.post("/api/v1/companies", json={"name": "acme export"}, headers=member).status_code == 422
    names = [c["name"] for c in api.get("/api/v1/companies", headers=member).get_json()["items"]]
    assert names == ["Acme Export", "Acme SAS"]


def test_signups_are_rate_limited_and_passwords_bounded(settings: Settings, session: Session) -> None:
    app = app_with(settings, signup_enabled=True)
    visitor = app.test_client()
    token = csrf_token(visitor.get("/signup"))
    huge = visitor.post("/signup", data={"email": "big@startup.example", "password": "x" * 5000,
                                         "company": "Big", "csrf_token": token})
    assert huge.status_code == 400 and "at most 1024 characters" in huge.get_data(as_text=True)
    statuses = []
    for i in range(6):  # one browser each (a sign-up logs its browser in), all from the same address
        fresh = app.test_client()
        statuses.append(fresh.post("/signup", data={
            "email": f"s{i}@startup.example", "password": NEW_PASSWORD, "company": f"Startup {i}",
            "csrf_token": csrf_token(fresh.get("/signup"))}).status_code)
    assert statuses[:4] == [302] * 4 and statuses[4:] == [429, 429]  # the 5th request in the window waits
    assert count(session, Tenant) == 4


def test_the_mail_is_written_in_the_inviting_admins_language(app: Flask, session: Session,
                                                              tenant: TenantFixture) -> None:
    admin = logged_in(app, tenant.admin.email)
    french = {"Accept-Language": "fr-FR,fr;q=0.9"}
    token = csrf_token(admin.get("/settings/members", headers=french))
    admin.post("/settings/members/invite", data={"email": "lea@acme.example", "role": "member", "csrf_token": token},
               headers=french)
    session.rollback()
    row = session.scalars(select(OutboxMessage)).one()
    assert row.subject == "Vous êtes invité sur Acme SAS dans invoice-inbox"
    assert "en tant que membre" in row.body and LINK.search(row.body)
    page = admin.get("/settings/outbox", headers=french).get_data(as_text=True)
    assert "Boîte d’envoi" in page and "conservé" in page
