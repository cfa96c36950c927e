"""OAuth2 for mailboxes: "Connect Gmail" / "Connect Microsoft 365" and the poller's access tokens.

The authorization-code flow with PKCE (RFC 6749 section 4.1, RFC 7636 S256) through authlib's client:
``begin`` builds the provider's authorization URL, ``finish`` exchanges the code (with the verifier)
for a refresh token, ``refresh`` turns that refresh token into access tokens for XOAUTH2 logins.
The provider endpoints and the app's credentials are settings (``core.config.OAuthApp``); the tests
point them at a local authorization server, never at Google or Microsoft (docs/mailboxes-oauth.md).

Where the state and verifier are kept between ``begin`` and ``finish`` is the transport's business
(the dashboard keeps them in the user's signed session, bound to the tenant and the user).
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session

from core.config import OAuthApp
from core.errors import ServiceError
from core.i18n import N_

PROVIDERS = ("google", "microsoft")
PROVIDER_NAMES = {"google": "Google", "microsoft": "Microsoft"}
TIMEOUT = 20.0  # seconds for one call to the token endpoint
_MAX_DETAIL = 300


class OAuthFailed(ServiceError):
    """The flow or a token exchange failed; the message says why in words a person can act on (never a
    secret: the provider's error code and description at most)."""


@dataclass(frozen=True)
class Authorization:
    """What ``begin`` hands the transport: where to send the browser, and what to keep until the callback."""

    url: str
    state: str
    code_verifier: str


@dataclass(frozen=True)
class Grant:
    """The tokens of a finished flow; ``account`` is the address that consented (from the ID token)."""

    access_token: str
    refresh_token: str
    expires_in: float
    scope: str | None
    account: str | None

    def __repr__(self) -> str:
        return f"Grant(account={self.account!r}, expires_in={self.expires_in}, scope={self.scope!r})"


@dataclass(frozen=True)
class Refreshed:
    access_token: str
    expires_in: float
    refresh_token: str | None  # a new one when the provider rotates them (Microsoft does): store it

    def __repr__(self) -> str:
        return f"Refreshed(expires_in={self.expires_in}, rotated={self.refresh_token is not None})"


def _client(app: OAuthApp, client_id: str | None = None, client_secret: str | None = None,
            **kwargs: Any) -> OAuth2Session:
    secret = app.client_secret if client_secret is None else client_secret
    return OAuth2Session(
        client_id or app.client_id,
        secret or None,
        # Both providers take the secret in the form body; a public client (no secret) sends none.
        token_endpoint_auth_method="client_secret_post" if secret else "none",  # noqa: S106 - a method name
        code_challenge_method="S256",
        **kwargs,
    )


def begin(app: OAuthApp, redirect_uri: str, login_hint: str = "") -> Authorization:
    """The authorization URL for ``app`` with a fresh state and PKCE verifier."""
    if not app.configured:
        raise OAuthFailed(N_("The operator has not registered an OAuth app for this provider yet."))
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 asks 43 to 128
    extra: dict[str, str] = {}
    if app.provider == "google":
        # offline + consent: Google sends a refresh token only then (and again at a reconnection).
        extra |= {"access_type": "offline", "prompt": "consent"}
    else:
        extra["prompt"] = "select_account"
    if login_hint:
        extra["login_hint"] = login_hint
    with _client(app, scope=app.scopes, redirect_uri=redirect_uri) as client:
        url, _ = client.create_authorization_url(app.authorize_url, state=state, code_verifier=verifier, **extra)
    return Authorization(url=url, state=state, code_verifier=verifier)


def _detail(exc: BaseException) -> str:
    if isinstance(exc, AuthlibBaseError):
        text = f"{exc.error}: {exc.description}" if exc.description else str(exc.error)
    elif isinstance(exc, requests.HTTPError) and exc.response is not None:
        text = f"HTTP {exc.response.status_code}"
    elif isinstance(exc, requests.Timeout):
        text = "no answer in time"
    elif isinstance(exc, requests.ConnectionError):
        text = "could not connect"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())[:_MAX_DETAIL]


def _claims(id_token: object) -> dict[str, Any]:
    """The ID token's claims, unverified: it came straight from the token endpoint over the TLS connection
    we opened, which OpenID Connect Core 3.1.3.7 accepts in place of its signature. It only names the
    account; the IMAP server checks the access token itself."""
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, UnicodeDecodeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _account(claims: dict[str, Any]) -> str | None:
    for name in ("email", "preferred_username", "upn"):  # Google: email; Microsoft: preferred_username
        value = claims.get(name)
        if isinstance(value, str) and "@" in value and len(value) <= 320:
            return value.strip()
    return None


def _lifetime(token: dict[str, Any]) -> float:
    try:
        return max(0.0, float(token.get("expires_in") or 3600))
    except (TypeError, ValueError):
        return 3600.0


def finish(app: OAuthApp, code: str, redirect_uri: str, code_verifier: str) -> Grant:
    """Exchange the authorization code for tokens; ``OAuthFailed`` with the reason otherwise."""
    name = PROVIDER_NAMES.get(app.provider, app.provider)
    try:
        with _client(app, redirect_uri=redirect_uri) as client:
            token = client.fetch_token(
                app.token_url, grant_type="authorization_code", code=code, code_verifier=code_verifier,
                timeout=TIMEOUT,
            )
    except (AuthlibBaseError, requests.RequestException, ValueError) as exc:
        raise OAuthFailed(
            N_("{provider} refused to hand over the mailbox's tokens ({detail}). Nothing was saved: connect again.")
            .format(provider=name, detail=_detail(exc))
        ) from None
    access, refresh = token.get("access_token"), token.get("refresh_token")
    if not isinstance(access, str) or not access:
        raise OAuthFailed(N_("{provider} answered without an access token. Nothing was saved: connect again.")
                          .format(provider=name))
    if not isinstance(refresh, str) or not refresh:
        raise OAuthFailed(
            N_("{provider} answered without a refresh token, so the mailbox could not be read for long. Nothing "
               "was saved: remove the app's access from the account's security settings, then connect again.")
            .format(provider=name)
        )
    scope = token.get("scope")
    scope = " ".join(scope) if isinstance(scope, list) else scope if isinstance(scope, str) else None
    return Grant(access_token=access, refresh_token=refresh, expires_in=_lifetime(token), scope=scope,
                 account=_account(_claims(token.get("id_token"))))


def missing_mail_scope(app: OAuthApp, granted: str | None) -> bool:
    """True when the provider says the mail scope was not granted (Google lets a person untick it)."""
    if granted is None:  # RFC 6749 5.1: no scope in the answer means the scope asked for
        return False
    wanted = [s for s in app.scopes.split() if s.lower() not in ("openid", "email", "profile", "offline_access")]
    have = {s.lower() for s in granted.split()}
    # Microsoft answers the short form of its resource scopes (IMAP.AccessAsUser.All without its URL).
    return not all(s.lower() in have or s.rsplit("/", 1)[-1].lower() in have for s in wanted)


def refresh(app: OAuthApp, client_id: str, client_secret: str | None, refresh_token: str) -> Refreshed:
    """A fresh access token for ``refresh_token`` (RFC 6749 section 6)."""
    name = PROVIDER_NAMES.get(app.provider, app.provider)
    extra: dict[str, str] = {}
    if app.provider == "microsoft":  # Microsoft wants the scopes again at each refresh
        extra["scope"] = app.scopes
    try:
        with _client(app, client_id, client_secret or "") as client:
            token = client.refresh_token(app.token_url, refresh_token=refresh_token, timeout=TIMEOUT, **extra)
    except (AuthlibBaseError, requests.RequestException, ValueError) as exc:
        raise OAuthFailed(
            N_("{provider} refused to renew the access ({detail}): if this persists, connect the mailbox again.")
            .format(provider=name, detail=_detail(exc))
        ) from None
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise OAuthFailed(N_("{provider}'s token endpoint answered without an access token.").format(provider=name))
    rotated = token.get("refresh_token")
    return Refreshed(
        access_token=access,
        expires_in=_lifetime(token),
        refresh_token=rotated if isinstance(rotated, str) and rotated and rotated != refresh_token else None,
    )
