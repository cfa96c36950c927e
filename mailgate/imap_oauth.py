"""OAuth2 access tokens for XOAUTH2 IMAP logins (Gmail, Microsoft 365).

Either the admin pasted an access token (used as is until the server refuses it), or a refresh token
plus the app's client id/secret, exchanged here at the provider's token endpoint (RFC 6749 section 6).
The tests run the exchange against a local stand-in endpoint (``IMAP_OAUTH_TOKEN_URL``), never against
the providers themselves (see docs/imap.md).
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from typing import Any, Protocol

from core.config import env

TOKEN_ENDPOINTS = {
    "google": "https://oauth2.googleapis.com/token",
    # "common" works for work/school accounts; MICROSOFT_TENANT pins a directory (tenant id or domain).
    "microsoft": "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
}
SCOPES = {
    "google": "https://mail.google.com/",
    "microsoft": "https://outlook.office.com/IMAP.AccessAsUser.All offline_access",
}
_MARGIN = 120  # refresh this many seconds before the token expires
_MAX_RESPONSE = 64 * 1024


class OAuthError(Exception):
    """The provider refused the exchange; the message says what it answered (never the secrets)."""


class _Spec(Protocol):
    id: int
    secret: str | None
    oauth_provider: str | None
    oauth_client_id: str | None
    oauth_client_secret: str | None
    oauth_refresh_token: str | None


def token_endpoint(provider: str) -> str:
    # An operator-level override (a provider's regional endpoint, or the test suite's local one).
    if override := env("IMAP_OAUTH_TOKEN_URL"):
        return override
    if provider not in TOKEN_ENDPOINTS:
        raise OAuthError(f"unknown OAuth2 provider {provider!r} (google or microsoft)")
    return TOKEN_ENDPOINTS[provider].format(tenant=(env("MICROSOFT_TENANT") or "common"))


def refresh_access_token(spec: _Spec, timeout: float = 30) -> tuple[str, float]:
    """(access token, lifetime in seconds) from the provider, for ``spec``'s refresh token."""
    if not (spec.oauth_provider and spec.oauth_client_id and spec.oauth_refresh_token):
        raise OAuthError("a refresh token needs the provider and the client id")
    form: dict[str, str] = {
        "grant_type": "refresh_token",
        "refresh_token": spec.oauth_refresh_token,
        "client_id": spec.oauth_client_id,
    }
    if spec.oauth_client_secret:
        form["client_secret"] = spec.oauth_client_secret
    if spec.oauth_provider == "microsoft":
        form["scope"] = SCOPES["microsoft"]
    request = urllib.request.Request(  # noqa: S310 - fixed https endpoints
        token_endpoint(spec.oauth_provider),
        data=urllib.parse.urlencode(form).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            payload: dict[str, Any] = json.loads(response.read(_MAX_RESPONSE))
    except urllib.error.HTTPError as exc:
        body = exc.read(_MAX_RESPONSE).decode(errors="replace")
        try:
            detail = json.loads(body).get("error_description") or json.loads(body).get("error") or body
        except ValueError:
            detail = body
        raise OAuthError(f"token endpoint answered {exc.code}: {str(detail)[:300]}") from None
    token = payload.get("access_token")
    if not isinstance(token, str) or not token:
        raise OAuthError("token endpoint answered without an access_token")
    return token, float(payload.get("expires_in") or 3600)


class AccessTokenCache:
    """The current access token per mailbox, refreshed shortly before it expires."""

    def __init__(self) -> None:
        self._tokens: dict[int, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def access_token(self, spec: _Spec) -> str:
        if not spec.oauth_refresh_token:
            if not spec.secret:
                raise OAuthError("no access token and no refresh token configured")
            return spec.secret  # pasted by the admin; when it expires the login fails visibly
        with self._lock:
            cached = self._tokens.get(spec.id)
            if cached and cached[1] > time.monotonic():
                return cached[0]
            token, lifetime = refresh_access_token(spec)
            self._tokens[spec.id] = (token, time.monotonic() + max(60.0, lifetime - _MARGIN))
            return token
