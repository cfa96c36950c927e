"""``inbox start``'s local OAuth2 providers (issue 17): one for Google and one for Microsoft, each started
only when no app of that provider is configured, with the started processes' OAUTH_<PROVIDER>_* settings
pointed at it; a real flow through each; and the mailbox it connects says plainly that no IMAP server is
behind it (never a DNS error about imap.gmail.com)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from sqlalchemy import select

from core.config import OAuthApp, Settings
from core.inbound import oauth
from core.inbound.mailboxes import NO_SERVER
from core.models import Mailbox
from dashboard.devoauth import DEMO_IMAP_HOST
from dashboard.devstack import start_local_oauth
from tests.conftest import TenantFixture
from tests.test_imap import logged_in, mailbox_row, running_poller, wait_for
from tests.test_mailbox_oauth import make_app, start

CALLBACK = "http://127.0.0.1:8000/settings/mailboxes/oauth/callback"


def unconfigured(settings: Settings) -> Settings:
    return replace(settings, oauth_google=OAuthApp.from_env("google"),
                   oauth_microsoft=OAuthApp.from_env("microsoft"))


def test_a_configured_app_is_left_alone(settings: Settings) -> None:
    real = replace(settings.oauth_google, client_id="real-app.apps.googleusercontent.com")
    env: dict[str, str] = {}
    started = start_local_oauth(replace(unconfigured(settings), oauth_google=real), env)
    try:
        assert list(started) == ["microsoft"]  # only the provider without an app gets a local one
        assert env and all(name.startswith("OAUTH_MICROSOFT_") for name in env)
    finally:
        for server in started.values():
            server.close()
    both = replace(settings, oauth_google=real,
                   oauth_microsoft=replace(settings.oauth_microsoft, client_id="real-app-guid"))
    env = {}
    assert start_local_oauth(both, env) == {} and env == {}


def test_without_a_google_app_the_demo_gets_a_local_provider(settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    env: dict[str, str] = {}
    started = start_local_oauth(unconfigured(settings), env)
    provider = started["google"]
    try:
        assert env["OAUTH_GOOGLE_AUTHORIZE_URL"] == f"{provider.url}/authorize"
        assert env["OAUTH_GOOGLE_TOKEN_URL"] == f"{provider.url}/token"
        for name, value in env.items():  # the app the started processes build from that environment
            monkeypatch.setenv(name, value)
        app = OAuthApp.from_env("google")
        assert app.configured and app.token_url == f"{provider.url}/token"

        flow = oauth.begin(app, CALLBACK, login_hint="claire@conseil.example")
        page = requests.get(flow.url, timeout=10)
        assert page.status_code == 200 and "Allow access to claire@conseil.example" in page.text
        decide = dict(parse_qsl(urlsplit(flow.url).query)) | {"decision": "allow"}
        back = requests.get(f"{provider.url}/decide", params=decide, allow_redirects=False, timeout=10)
        answer = dict(parse_qsl(urlsplit(back.headers["Location"]).query))
        assert answer["state"] == flow.state
        grant = oauth.finish(app, answer["code"], CALLBACK, flow.code_verifier)
        assert grant.account == "claire@conseil.example" and grant.refresh_token
        # A "Deny" on the page refuses that flow only; the next one is asked again.
        second = oauth.begin(app, CALLBACK)
        denied = requests.get(f"{provider.url}/decide", allow_redirects=False, timeout=10,
                              params=dict(parse_qsl(urlsplit(second.url).query)) | {"decision": "deny"})
        assert "error=access_denied" in denied.headers["Location"]
        assert "Allow access to demo.mailbox@gmail.localhost" in requests.get(oauth.begin(app, CALLBACK).url,
                                                                             timeout=10).text
    finally:
        for server in started.values():
            server.close()


def test_both_connect_buttons_work_and_the_demo_mailbox_says_no_server_is_behind_it(
    settings: Settings, session_factory, tenant: TenantFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    env: dict[str, str] = {}
    started = start_local_oauth(unconfigured(settings), env)
    try:
        assert set(started) == {"google", "microsoft"}
        assert env["OAUTH_MICROSOFT_TOKEN_URL"] == f"{started['microsoft'].url}/token"
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        demo = unconfigured(settings)  # what the started processes read from that environment
        assert demo.oauth_google.imap_host == demo.oauth_microsoft.imap_host == DEMO_IMAP_HOST
        with make_app(demo) as app:
            client = logged_in(app, tenant.admin.email)
            for provider, address in (("google", "claire@conseil.example"), ("microsoft", "paul@conseil.example")):
                authorize = start(client, provider, hint=address)
                assert authorize.startswith(started[provider].url)
                page = requests.get(authorize, timeout=10)
                assert f"Allow access to {address}" in page.text  # the consent page, as a person sees it
                decide = dict(parse_qsl(urlsplit(authorize).query)) | {"decision": "allow"}
                back = requests.get(f"{started[provider].url}/decide", params=decide, allow_redirects=False,
                                    timeout=10)
                callback = urlsplit(back.headers["Location"])
                assert client.get(f"{callback.path}?{callback.query}", follow_redirects=True).status_code == 200
            with session_factory() as session:
                boxes = {m.username: (m.id, m.host, m.oauth_provider) for m in session.scalars(select(Mailbox))}
            assert {u: (h, p) for u, (_i, h, p) in boxes.items()} == {
                "claire@conseil.example": (DEMO_IMAP_HOST, "google"),
                "paul@conseil.example": (DEMO_IMAP_HOST, "microsoft")}
            with running_poller(demo):
                for mailbox_id, _host, _provider in boxes.values():
                    wait_for(lambda mid=mailbox_id: mailbox_row(session_factory, mid).last_error, what="a state")
            for mailbox_id, _host, _provider in boxes.values():
                assert mailbox_row(session_factory, mailbox_id).last_error == NO_SERVER
            listing = client.get("/settings/mailboxes").get_data(as_text=True)
            assert "no IMAP server behind this mailbox" in listing and "could not be resolved" not in listing
    finally:
        for server in started.values():
            server.close()
