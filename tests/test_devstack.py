"""``inbox start``'s local OAuth2 provider (issue 17): started only when no Google app is configured, with
the started processes' OAUTH_GOOGLE_* settings pointed at it, and a real flow through it."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from core.config import OAuthApp, Settings
from core.inbound import oauth
from dashboard.devstack import start_local_oauth

CALLBACK = "http://127.0.0.1:8000/settings/mailboxes/oauth/callback"


def test_a_configured_google_app_is_left_alone(settings: Settings) -> None:
    real = replace(settings.oauth_google, client_id="real-app.apps.googleusercontent.com")
    env: dict[str, str] = {}
    assert start_local_oauth(replace(settings, oauth_google=real), env) is None
    assert env == {}


def test_without_a_google_app_the_demo_gets_a_local_provider(settings: Settings,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    env: dict[str, str] = {}
    provider = start_local_oauth(replace(settings, oauth_google=OAuthApp.from_env("google")), env)
    assert provider is not None
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
        provider.close()
