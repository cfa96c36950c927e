"""OAuth2 access tokens for XOAUTH2 IMAP logins (Gmail, Microsoft 365).

Either the admin pasted an access token (used as is until the server refuses it), or the mailbox has a
refresh token (from "Connect Gmail" / "Connect Microsoft 365", or pasted with the app's client id and
secret), exchanged at the provider's token endpoint (``core.inbound.oauth.refresh``) shortly before
each access token expires. The endpoints are settings (``Settings.oauth_google`` / ``oauth_microsoft``);
the tests point them at a local authorization server, never at the providers themselves.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

from core.config import OAuthApp
from core.inbound.oauth import OAuthFailed, Refreshed, refresh

OAuthError = OAuthFailed  # the poller's name for it (public_reason shows its message as is)
_MARGIN = 120  # refresh this many seconds before the token expires


class _Spec(Protocol):
    id: int
    secret: str | None
    oauth_provider: str | None
    oauth_client_id: str | None
    oauth_client_secret: str | None
    oauth_refresh_token: str | None


def client_secret_for(app: OAuthApp, spec: _Spec) -> str | None:
    """The mailbox's own client secret, or, for a mailbox connected through the operator's app (same
    client id, no secret of its own), the app's secret from the settings."""
    if spec.oauth_client_secret:
        return spec.oauth_client_secret
    return app.client_secret if spec.oauth_client_id == app.client_id else None


class AccessTokenCache:
    """The current access token per mailbox, refreshed shortly before it expires.

    ``on_refresh(mailbox_id, refreshed)`` and ``on_failure(mailbox_id, reason)`` let the poller record
    the token's state on the mailbox (expiry, a rotated refresh token, a refused refresh).
    """

    def __init__(
        self,
        apps: Callable[[str], OAuthApp | None] | None = None,
        on_refresh: Callable[[int, Refreshed], None] | None = None,
        on_failure: Callable[[int, str], None] | None = None,
    ) -> None:
        self._apps = apps or (lambda provider: OAuthApp.from_env(provider) if provider in ("google", "microsoft")
                              else None)
        self._on_refresh = on_refresh
        self._on_failure = on_failure
        self._tokens: dict[int, tuple[str, float]] = {}
        self._refresh_tokens: dict[int, str] = {}  # rotated by the provider since the spec was loaded
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
            try:
                refreshed = self._refresh(spec)
            except OAuthError as exc:
                if self._on_failure:
                    self._on_failure(spec.id, str(exc))
                raise
            if refreshed.refresh_token:
                self._refresh_tokens[spec.id] = refreshed.refresh_token
            self._tokens[spec.id] = (
                refreshed.access_token, time.monotonic() + max(60.0, refreshed.expires_in - _MARGIN)
            )
            if self._on_refresh:
                self._on_refresh(spec.id, refreshed)
            return refreshed.access_token

    def _refresh(self, spec: _Spec) -> Refreshed:
        app = self._apps(spec.oauth_provider or "")
        if app is None:
            raise OAuthError(f"unknown OAuth2 provider {spec.oauth_provider!r} (google or microsoft)")
        if not spec.oauth_client_id:
            raise OAuthError("a refresh token needs the provider and the client id")
        token = self._refresh_tokens.get(spec.id) or spec.oauth_refresh_token or ""
        return refresh(app, spec.oauth_client_id, client_secret_for(app, spec), token)
