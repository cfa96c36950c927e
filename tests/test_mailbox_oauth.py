"""Issue 17 item 3: "Connect Gmail" / "Connect Microsoft 365" through the OAuth2 code flow with PKCE.

The provider is tests/oauthserver.py, a real HTTP authorization server on loopback (the provider endpoints
are settings); the dashboard is driven with Flask's test client, the hop through the provider with a real
HTTP client, exactly as a browser follows the redirects; the mailbox is then read by the real poller from
a real Dovecot whose ``oauth2`` passdb checks each XOAUTH2 access token at the server's introspection
endpoint. Nothing of ours is mocked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from core.config import OAUTH_DEFAULTS, OAuthApp, Settings
from core.inbound import oauth
from core.models import AuditEvent, Mailbox, Role
from core.secrets import SecretBox
from core.tenancy import accounts
from dashboard.app import create_app
from tests.conftest import PASSWORD, TenantFixture
from tests.dovecot import IMAP_PASSWORD, DovecotServer
from tests.oauthserver import CLIENT_ID, CLIENT_SECRET, OAuthTestServer
from tests.test_imap import count_messages, csrf_of, logged_in, mailbox_row, make_raw, running_poller, wait_for

ACCOUNT = "factures@acme.example"
MAIL_SCOPES = {"google": "https://mail.google.com/", "microsoft": "https://outlook.office.com/IMAP.AccessAsUser.All"}
CALLBACK = "http://localhost/settings/mailboxes/oauth/callback"
BUTTONS = {"google": "Connect Gmail", "microsoft": "Connect Microsoft 365"}


@pytest.fixture(params=["google", "microsoft"])
def provider_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def provider(provider_name: str) -> Iterator[OAuthTestServer]:
    server = OAuthTestServer(
        account=ACCOUNT, mail_scope=MAIL_SCOPES[provider_name],
        account_claim="email" if provider_name == "google" else "preferred_username",
    ).start()
    yield server
    server.close()


def oauth_settings(settings: Settings, server: OAuthTestServer, imap_port: int = 993) -> Settings:
    """``settings`` with both providers' endpoints on the test server, their real scopes, and the IMAP
    server of connected mailboxes on loopback."""

    def app(name: str) -> OAuthApp:
        return OAuthApp(
            provider=name, authorize_url=f"{server.url}/authorize", token_url=f"{server.url}/token",
            scopes=OAUTH_DEFAULTS[name]["scopes"], imap_host="127.0.0.1", imap_port=imap_port,
            imap_security="plain", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        )

    return replace(settings, oauth_google=app("google"), oauth_microsoft=app("microsoft"))


@contextmanager
def make_app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings, TESTING=True)
    try:
        yield application
    finally:
        from dashboard.extensions import db

        with application.app_context():
            db.engine.dispose()


@pytest.fixture
def oauth_app(settings: Settings, provider: OAuthTestServer) -> Iterator[Flask]:
    with make_app(oauth_settings(settings, provider)) as app:
        yield app


def box_of(app: Flask) -> SecretBox:
    return SecretBox(app.extensions["inbox.settings"].secret_key)


def start(client: FlaskClient, provider_name: str, hint: str = "") -> str:
    """Press "Connect ..." on the mailboxes page: the provider's authorization URL it redirects to."""
    page = client.get("/settings/mailboxes")
    assert page.status_code == 200 and BUTTONS[provider_name] in page.get_data(as_text=True)
    response = client.post(f"/settings/mailboxes/connect/{provider_name}",
                           data={"csrf_token": csrf_of(page.get_data(as_text=True)), "login_hint": hint})
    assert response.status_code == 303, response.get_data(as_text=True)
    return response.headers["Location"]


def consent(authorize_url: str) -> str:
    """The browser at the provider: its answer is a redirect back to our callback (path and query)."""
    answer = requests.get(authorize_url, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = urlsplit(answer.headers["Location"])
    assert f"{back.scheme}://{back.netloc}{back.path}" == CALLBACK
    return f"{back.path}?{back.query}"


def connect(client: FlaskClient, provider_name: str, hint: str = "") -> tuple[str, str]:
    """The whole round trip; (the page it ends on, the callback URL used)."""
    callback = consent(start(client, provider_name, hint))
    response = client.get(callback, follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True), callback


def mailbox_count(session_factory) -> int:
    with session_factory() as session:
        return session.scalar(select(func.count(Mailbox.id))) or 0


def audit_actions(session_factory) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(AuditEvent.action).where(AuditEvent.action.like("mailbox.%"))))


# The flow ------------------------------------------------------------------------------------


@pytest.fixture
def dovecot_oauth(provider: OAuthTestServer) -> Iterator[DovecotServer]:
    """A Dovecot whose XOAUTH2 logins are checked at the test provider's introspection endpoint."""
    workdir = Path(tempfile.mkdtemp(prefix="inbox-dovecot-"))
    workdir.chmod(0o755)
    server = DovecotServer(workdir, users={ACCOUNT: IMAP_PASSWORD},
                           oauth2_introspection_url=f"{provider.url}/introspect")
    server.start()
    yield server
    server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


def test_connect_then_poll_over_xoauth2_end_to_end(
    settings: Settings, session_factory, tenant: TenantFixture, provider: OAuthTestServer, provider_name: str,
    dovecot_oauth: DovecotServer,
) -> None:
    dovecot = dovecot_oauth
    configured = oauth_settings(settings, provider, imap_port=dovecot.port)
    provider.behaviour.rotate_refresh_tokens = provider_name == "microsoft"  # as Microsoft does
    with make_app(configured) as app:
        client = logged_in(app, tenant.admin.email)
        page = client.get("/settings/mailboxes")
        # The page may send its "Connect" form on to the provider's sign-in page (CSP form-action).
        assert f"form-action 'self' {provider.url}" in page.headers["Content-Security-Policy"]
        authorize = urlsplit(start(client, provider_name, hint=ACCOUNT))
        query = dict(parse_qsl(authorize.query))
        assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{provider.url}/authorize"
        assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
        assert query["redirect_uri"] == CALLBACK and query["code_challenge_method"] == "S256"
        assert query["login_hint"] == ACCOUNT and len(query["state"]) >= 43
        assert MAIL_SCOPES[provider_name] in query["scope"].split()
        if provider_name == "google":
            assert (query["access_type"], query["prompt"]) == ("offline", "consent")
        else:
            assert "offline_access" in query["scope"].split()
        with client.session_transaction() as browser_session:  # the verifier never left our side
            verifier = browser_session["mailbox_oauth"][query["state"]]["verifier"]
        assert verifier not in authorize.geturl()

        html = client.get(consent(authorize.geturl()), follow_redirects=True).get_data(as_text=True)
        assert f"mailbox {ACCOUNT} connected" in html and "Connected through" in html
        exchange = provider.calls("POST /token")[-1]
        assert exchange["grant_type"] == "authorization_code" and exchange["code_verifier"] == verifier
        refresh_token = provider.issued_refresh_tokens[-1]
        with session_factory() as session:
            mailbox = session.scalars(select(Mailbox)).one()
            assert (mailbox.tenant_id, mailbox.username, mailbox.auth) == (tenant.tenant.id, ACCOUNT, "xoauth2")
            assert (mailbox.host, mailbox.port, mailbox.oauth_provider) == ("127.0.0.1", dovecot.port,
                                                                            provider_name)
            assert mailbox.oauth_client_id == CLIENT_ID and mailbox.oauth_client_secret_encrypted is None
            assert refresh_token not in mailbox.oauth_refresh_token_encrypted
            assert box_of(app).decrypt(mailbox.oauth_refresh_token_encrypted) == refresh_token
            assert mailbox.oauth_connected_at is not None and mailbox.oauth_token_expires_at is not None
            mailbox_id = mailbox.id
        assert refresh_token not in html and CLIENT_SECRET not in html
        assert audit_actions(session_factory) == ["mailbox.oauth_connect"]

        with dovecot.client(ACCOUNT) as imap:
            imap.append("INBOX", make_raw(1))
        with running_poller(configured):
            wait_for(lambda: count_messages(session_factory, tenant.tenant.id) == 1, what="the message")
            wait_for(lambda: mailbox_row(session_factory, mailbox_id).last_success_at, what="the success")
        assert "method=XOAUTH2" in dovecot.log_path.read_text()
        refresh = provider.calls("POST /token")[-1]
        assert refresh["grant_type"] == "refresh_token" and refresh["refresh_token"] == refresh_token
        assert refresh["client_secret"] == CLIENT_SECRET  # the operator's app secret, from the settings
        if provider_name == "microsoft":
            assert MAIL_SCOPES["microsoft"] in refresh["scope"].split()
            # The rotated refresh token replaced the old one, encrypted.
            stored = box_of(app).decrypt(mailbox_row(session_factory, mailbox_id).oauth_refresh_token_encrypted)
            assert stored == provider.issued_refresh_tokens[-1] != refresh_token
        row = mailbox_row(session_factory, mailbox_id)
        assert row.last_error is None and row.last_success_at is not None and row.oauth_refresh_error is None


def test_a_refused_refresh_shows_on_the_mailbox_and_reconnect_repairs_it(
    settings: Settings, session_factory, tenant: TenantFixture, provider: OAuthTestServer, provider_name: str,
    dovecot_oauth: DovecotServer,
) -> None:
    configured = oauth_settings(settings, provider, imap_port=dovecot_oauth.port)
    with make_app(configured) as app:
        client = logged_in(app, tenant.admin.email)
        connect(client, provider_name)
        with session_factory() as session:
            mailbox = session.scalars(select(Mailbox)).one()
            mailbox.processed_folder = "Factures"  # a choice of the admin's, kept by a reconnection
            session.commit()
            mailbox_id, first_token = mailbox.id, mailbox.oauth_refresh_token_encrypted
        provider.revoke_all()  # the person removed the app's access at the provider
        with running_poller(configured):
            wait_for(lambda: mailbox_row(session_factory, mailbox_id).oauth_refresh_error, what="the refusal")
        row = mailbox_row(session_factory, mailbox_id)
        assert "Token has been expired or revoked" in row.oauth_refresh_error
        assert row.oauth_refresh_error_at is not None and "renew the access" in (row.last_error or "")
        page = client.get(f"/settings/mailboxes/{mailbox_id}").get_data(as_text=True)
        assert "Access renewal refused" in page and 'id="reconnect"' in page
        assert "access renewal refused: reconnect" in client.get("/settings/mailboxes").get_data(as_text=True)

        response = client.post(f"/settings/mailboxes/{mailbox_id}/reconnect", data={"csrf_token": csrf_of(page)})
        assert response.status_code == 303
        assert dict(parse_qsl(urlsplit(response.headers["Location"]).query))["login_hint"] == ACCOUNT
        html = client.get(consent(response.headers["Location"]), follow_redirects=True).get_data(as_text=True)
        assert "connected" in html
        with session_factory() as session:
            mailbox = session.scalars(select(Mailbox)).one()  # the same mailbox, not a second one
            assert mailbox.id == mailbox_id and mailbox.processed_folder == "Factures"
            assert mailbox.oauth_refresh_token_encrypted != first_token and mailbox.oauth_refresh_error is None
            assert box_of(app).decrypt(mailbox.oauth_refresh_token_encrypted) == provider.issued_refresh_tokens[-1]
        # Connecting the same account again from the list also updates it.
        connect(client, provider_name)
        assert mailbox_count(session_factory) == 1


# Bad input: nothing half-saved, a reason a person can act on -----------------------------------


@pytest.mark.parametrize("provider_name", ["google"])
def test_wrong_reused_expired_and_foreign_states_are_refused(
    settings: Settings, session_factory, session, tenant: TenantFixture, other_tenant: TenantFixture,
    provider: OAuthTestServer, oauth_app: Flask,
) -> None:
    client = logged_in(oauth_app, tenant.admin.email)
    callback = consent(start(client, "google"))
    path, query = callback.split("?", 1)
    params = dict(parse_qsl(query))
    # A state that was never handed out (or forged): refused, and the real one still works afterwards.
    page = client.get(path, query_string={**params, "state": "forged-state"}, follow_redirects=True)
    assert "unknown or was already used" in page.get_data(as_text=True)
    # Another session of the same admin (another browser) cannot use this session's state.
    other_browser = logged_in(oauth_app, tenant.admin.email)
    assert "unknown or was already used" in other_browser.get(callback, follow_redirects=True).get_data(as_text=True)
    assert mailbox_count(session_factory) == 0 and provider.calls("POST /token") == []
    # The real one, once; replayed: refused.
    assert "connected" in client.get(callback, follow_redirects=True).get_data(as_text=True)
    assert "unknown or was already used" in client.get(callback, follow_redirects=True).get_data(as_text=True)
    assert mailbox_count(session_factory) == 1 and len(provider.calls("POST /token")) == 1

    # Expired: more than 10 minutes between the button and the answer.
    callback = consent(start(client, "google"))
    with client.session_transaction() as browser_session:
        flows = browser_session["mailbox_oauth"]
        for flow in flows.values():
            flow["at"] = time.time() - 601
        browser_session["mailbox_oauth"] = flows
    assert "expired" in client.get(callback, follow_redirects=True).get_data(as_text=True)

    # Started for one company, answered after switching to another one the admin also manages.
    accounts.create_user(session, tenant.admin.email, PASSWORD, other_tenant.tenant, Role.ADMIN)
    session.commit()
    callback = consent(start(client, "google"))
    with client.session_transaction() as browser_session:
        browser_session["tenant_id"] = other_tenant.tenant.id
    html = client.get(callback, follow_redirects=True).get_data(as_text=True)
    assert "another user or for another company" in html
    assert mailbox_count(session_factory) == 1 and len(provider.calls("POST /token")) == 1
    assert audit_actions(session_factory) == ["mailbox.oauth_connect"]


@pytest.mark.parametrize("provider_name", ["google"])
@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ({"consent": "deny"}, "Access was not allowed at Google: the mailbox was not connected."),
        ({"consent": "error", "error_description": "<script>alert(1)</script>"},
         "Google answered with an error (server_error: &lt;script&gt;alert(1)&lt;/script&gt;)"),
        ({"consent": "no_mail_scope"}, "The permission to read the mail was not granted at Google"),
        ({"token_status": 500}, "Google refused to hand over the mailbox&#39;s tokens (HTTP 500)"),
        ({"token_status": 400}, "Google refused to hand over the mailbox&#39;s tokens (invalid_grant: Bad Request)"),
        ({"no_refresh_token": True}, "Google answered without a refresh token"),
    ],
)
def test_provider_refusals_and_token_endpoint_failures_save_nothing(
    session_factory, tenant: TenantFixture, provider: OAuthTestServer, oauth_app: Flask,
    setup: dict[str, object], message: str,
) -> None:
    client = logged_in(oauth_app, tenant.admin.email)
    for name, value in setup.items():
        setattr(provider.behaviour, name, value)
    callback = consent(start(client, "google"))
    response = client.get(callback)
    assert response.status_code == 302 and response.headers["Location"].endswith("/settings/mailboxes")
    html = client.get("/settings/mailboxes").get_data(as_text=True)
    assert message in html and "<script>alert(1)" not in html
    assert mailbox_count(session_factory) == 0 and audit_actions(session_factory) == []
    with client.session_transaction() as browser_session:
        assert browser_session["mailbox_oauth"] == {}  # the state was used up


def test_token_endpoint_unreachable(settings: Settings, session_factory, tenant: TenantFixture) -> None:
    server = OAuthTestServer().start()
    configured = oauth_settings(settings, server)
    dead = replace(configured.oauth_google, token_url="http://127.0.0.1:9/token")  # discard port: refused
    with make_app(replace(configured, oauth_google=dead)) as app:
        client = logged_in(app, tenant.admin.email)
        html, _ = connect(client, "google")
        assert "Google refused to hand over the mailbox&#39;s tokens (could not connect)" in html
        assert mailbox_count(session_factory) == 0
    server.close()


@pytest.mark.parametrize("provider_name", ["microsoft"])
def test_connect_is_for_admins_with_csrf_and_a_configured_app(
    settings: Settings, session, session_factory, tenant: TenantFixture, provider: OAuthTestServer, oauth_app: Flask,
) -> None:
    accounts.create_user(session, "member@acme.example", PASSWORD, tenant.tenant, Role.MEMBER)
    accounts.create_user(session, "support@acme.example", PASSWORD, tenant.tenant, Role.SUPPORT)
    session.commit()
    admin = logged_in(oauth_app, tenant.admin.email)
    token = csrf_of(admin.get("/settings/mailboxes").get_data(as_text=True))
    assert admin.post("/settings/mailboxes/connect/microsoft").status_code == 400  # no CSRF token
    assert admin.post("/settings/mailboxes/connect/yahoo", data={"csrf_token": token}).status_code == 404
    bad_hint = admin.post("/settings/mailboxes/connect/microsoft", data={"csrf_token": token,
                                                                         "login_hint": "not an address"})
    assert bad_hint.status_code == 302
    assert "Enter the mailbox&#39;s e-mail address" in admin.get("/settings/mailboxes").get_data(as_text=True)
    member = logged_in(oauth_app, "member@acme.example")
    member_token = csrf_of(member.get("/imports").get_data(as_text=True))
    assert member.post("/settings/mailboxes/connect/microsoft", data={"csrf_token": member_token}).status_code == 403
    support = logged_in(oauth_app, "support@acme.example")
    support_page = support.get("/settings/mailboxes").get_data(as_text=True)
    assert "Connect Microsoft 365" not in support_page
    assert support.post("/settings/mailboxes/connect/microsoft",
                        data={"csrf_token": csrf_of(support_page)}).status_code == 403
    assert provider.calls("GET /authorize") == []

    # Without an app registered by the operator, no button, and the route says why.
    with make_app(settings) as app:  # the defaults: no client id
        admin = logged_in(app, tenant.admin.email)
        page = admin.get("/settings/mailboxes")
        html = page.get_data(as_text=True)
        assert "Connect Gmail is not available" in html and 'id="connect-google"' not in html
        assert "form-action 'self';" in page.headers["Content-Security-Policy"] + ";"
        response = admin.post("/settings/mailboxes/connect/google", data={"csrf_token": csrf_of(html)})
        assert response.status_code == 302 and response.headers["Location"].endswith("/settings/mailboxes")
        assert "has not registered an OAuth app" in admin.get("/settings/mailboxes").get_data(as_text=True)
    assert mailbox_count(session_factory) == 0


@pytest.mark.parametrize("provider_name", ["microsoft"])
def test_the_reasons_are_in_french_for_a_french_browser(
    session_factory, tenant: TenantFixture, provider: OAuthTestServer, oauth_app: Flask,
) -> None:
    client = logged_in(oauth_app, tenant.admin.email)
    provider.behaviour.consent = "deny"
    french = {"Accept-Language": "fr-FR,fr;q=0.9"}
    page = client.get("/settings/mailboxes", headers=french).get_data(as_text=True)
    assert "Connecter Microsoft 365" in page
    response = client.post("/settings/mailboxes/connect/microsoft", headers=french,
                           data={"csrf_token": csrf_of(page)})
    html = client.get(consent(response.headers["Location"]), headers=french,
                      follow_redirects=True).get_data(as_text=True)
    assert "L&#39;accès n&#39;a pas été autorisé chez Microsoft : la boîte n&#39;a pas été connectée." in html
    provider.behaviour.consent, provider.behaviour.token_status = "allow", 500
    response = client.post("/settings/mailboxes/connect/microsoft", headers=french,
                           data={"csrf_token": csrf_of(page)})
    html = client.get(consent(response.headers["Location"]), headers=french,
                      follow_redirects=True).get_data(as_text=True)
    assert "Microsoft a refusé de remettre les jetons de la boîte (HTTP 500)" in html
    assert mailbox_count(session_factory) == 0


def test_scope_check_and_id_token_account() -> None:
    google = OAuthApp(provider="google", authorize_url="https://a.example/auth", token_url="https://a.example/t",
                      scopes=OAUTH_DEFAULTS["google"]["scopes"], imap_host="imap.gmail.com", client_id="c")
    microsoft = replace(google, provider="microsoft", scopes=OAUTH_DEFAULTS["microsoft"]["scopes"])
    assert not oauth.missing_mail_scope(google, None)  # RFC 6749 5.1: omitted means as asked
    assert not oauth.missing_mail_scope(google, "openid https://www.googleapis.com/auth/userinfo.email "
                                                "https://mail.google.com/")
    assert oauth.missing_mail_scope(google, "openid https://www.googleapis.com/auth/userinfo.email")
    assert not oauth.missing_mail_scope(microsoft, "IMAP.AccessAsUser.All openid profile email")
    assert not oauth.missing_mail_scope(microsoft, "https://outlook.office.com/IMAP.AccessAsUser.All")
    assert oauth.missing_mail_scope(microsoft, "openid profile email offline_access")

    def token(claims: dict[str, object]) -> str:
        return "e30." + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=") + ".sig"

    assert oauth._account(oauth._claims(token({"email": "a@b.example"}))) == "a@b.example"
    assert oauth._account(oauth._claims(token({"preferred_username": "x@corp.example"}))) == "x@corp.example"
    assert oauth._account(oauth._claims(token({"preferred_username": "not-an-address"}))) is None
    for garbage in (None, "", "a.b", "a.!!!.c", "a." + base64.urlsafe_b64encode(b"[1]").decode() + ".c"):
        assert oauth._claims(garbage) == {}
    # The authorization URL: PKCE S256 of the verifier kept, Google's offline access.
    start = oauth.begin(google, "https://inbox.example/cb", "a@b.example")
    query = dict(parse_qsl(urlsplit(start.url).query))
    expected = base64.urlsafe_b64encode(hashlib.sha256(start.code_verifier.encode()).digest())
    assert query["code_challenge"] == expected.decode().rstrip("=") and query["state"] == start.state
    assert 43 <= len(start.code_verifier) <= 128 and query["access_type"] == "offline"
    with pytest.raises(oauth.OAuthFailed):
        oauth.begin(replace(google, client_id=""), "https://inbox.example/cb")


@pytest.mark.parametrize("provider_name", ["google"])
def test_saving_the_form_of_a_connected_mailbox_keeps_its_connection(
    settings: Settings, session_factory, tenant: TenantFixture, provider: OAuthTestServer, oauth_app: Flask,
) -> None:
    from mailgate.imap import MailboxSpec
    from mailgate.imap_oauth import client_secret_for

    client = logged_in(oauth_app, tenant.admin.email)
    connect(client, "google")
    with session_factory() as session:
        mailbox = session.scalars(select(Mailbox)).one()
        kept = mailbox.oauth_refresh_token_encrypted
    page = client.get(f"/settings/mailboxes/{mailbox.id}").get_data(as_text=True)
    form = {"name": mailbox.name, "host": mailbox.host, "port": str(mailbox.port), "security": mailbox.security,
            "username": mailbox.username, "auth": "xoauth2", "secret": "", "oauth_provider": "google",
            "oauth_client_id": CLIENT_ID, "oauth_client_secret": "", "oauth_refresh_token": "", "folder": "INBOX",
            "processed_folder": "Factures", "enabled": "1", "csrf_token": csrf_of(page)}
    assert client.post(f"/settings/mailboxes/{mailbox.id}", data=form).status_code in (302, 303)
    with session_factory() as session:
        saved = session.get(Mailbox, mailbox.id)
        assert saved.processed_folder == "Factures" and saved.oauth_refresh_token_encrypted == kept
        spec = MailboxSpec.load(saved, box_of(oauth_app))
    app = oauth_app.extensions["inbox.settings"].oauth_google
    assert spec.oauth_client_secret is None and client_secret_for(app, spec) == CLIENT_SECRET
    refreshed = oauth.refresh(app, spec.oauth_client_id, client_secret_for(app, spec), spec.oauth_refresh_token)
    assert refreshed.access_token in provider.access_tokens
