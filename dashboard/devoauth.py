"""A small, strict local OAuth2 authorization server: the tests' provider and ``inbox start``'s.

It plays Google's or Microsoft's part in "Connect Gmail" / "Connect Microsoft 365": ``/authorize`` (the
consent page, answered at once as the test chooses: allow, deny, an error, or the mail scope unticked),
``/token`` (authorization code with PKCE S256 verified, refresh tokens, optionally rotated), and
``/introspect`` (RFC 7662), which Dovecot's ``oauth2`` passdb asks about every XOAUTH2 login. Every request
is recorded for the asserts.

Why it is not under tests/: ``inbox start`` (dashboard/devstack.py, the embedded demo only) runs one on a
free loopback port for each of Google and Microsoft that has no app configured, so that a newcomer can try
both "Connect" buttons without registering an app (``start_for_demo``); their mailboxes point at a
placeholder IMAP host whose state says that no server is behind it. Production never starts it: nothing
but devstack imports it, and its tokens open no real mailbox. State is in memory: the tokens it issued are
forgotten when it stops.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

CLIENT_ID = "inbox-test-client.apps.example"
CLIENT_SECRET = "test-client-secret-3f9a1c"  # noqa: S105 - the test server's own


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return _b64(hashlib.sha256(verifier.encode()).digest())


@dataclass
class Behaviour:
    """What the next flows meet; a test changes it between steps."""

    consent: str = "allow"  # allow | deny | error (server_error with a description) | no_mail_scope
    consent_page: bool = False  # show an "Allow" / "Deny" page first (the browser test clicks)
    error_description: str = "The service is unavailable."
    token_status: int = 200  # != 200: the token endpoint answers that status (invalid_grant body under 500)
    no_refresh_token: bool = False
    rotate_refresh_tokens: bool = False  # a new refresh token at each refresh (as Microsoft does)
    expires_in: int = 3600


@dataclass
class Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    expires: float
    account: str = ""  # who consented, named in the ID token
    used: bool = False


@dataclass
class OAuthTestServer:
    account: str = "factures@acme.example"  # the address that "consents" (ID token's email)
    account_claim: str = "email"  # Microsoft names it in preferred_username
    mail_scope: str = "https://mail.google.com/"
    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    codes: dict[str, Code] = field(default_factory=dict)
    refresh_tokens: set[str] = field(default_factory=set)
    access_tokens: set[str] = field(default_factory=set)
    issued_refresh_tokens: list[str] = field(default_factory=list)
    # The demo's provider consents as the address typed in "Connect Gmail" (login_hint), so that each
    # newcomer's mailbox gets the name they chose; the tests keep one fixed account.
    account_from_hint: bool = False

    def start(self, port: int = 0) -> OAuthTestServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                parts = urlsplit(self.path)
                query = dict(parse_qsl(parts.query))
                server.requests.append((f"GET {parts.path}", query))
                if parts.path == "/authorize" and server.behaviour.consent_page:
                    return self._answer(200, server.consent_page(query))
                decision = None
                if parts.path == "/decide":  # the consent page's buttons decide this flow only
                    decision = "allow" if query.pop("decision", "") == "allow" else "deny"
                elif parts.path != "/authorize":
                    return self._answer(404, {"error": "not_found"})
                status, location = server.authorize(query, decision)
                if location is None:
                    return self._answer(status, {"error": "invalid_request"})
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", "0"))
                form = dict(parse_qsl(self.rfile.read(length).decode()))
                server.requests.append((f"POST {self.path}", form))
                if self.path == "/token":
                    status, body = server.token(form)
                elif self.path == "/introspect":
                    active = form.get("token") in server.access_tokens
                    status, body = 200, ({"active": True, "username": server.account} if active
                                         else {"active": False})
                else:
                    status, body = 404, {"error": "not_found"}
                self._answer(status, body)

            def _answer(self, status: int, body: object) -> None:
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if isinstance(body, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{self._http.server_port}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    # Endpoints ---------------------------------------------------------------------------------

    def authorize(self, query: dict[str, str], decision: str | None = None) -> tuple[int, str | None]:
        redirect_uri = query.get("redirect_uri", "")
        if (query.get("response_type") != "code" or query.get("client_id") != CLIENT_ID or not redirect_uri
                or query.get("code_challenge_method") != "S256" or len(query.get("code_challenge", "")) != 43
                or not query.get("state")):
            return 400, None
        back = {"state": query["state"]}
        consent = decision or self.behaviour.consent
        if consent == "deny":
            back |= {"error": "access_denied", "error_description": "The user denied access."}
        elif consent == "error":
            back |= {"error": "server_error", "error_description": self.behaviour.error_description}
        else:
            scope = query.get("scope", "")
            if consent == "no_mail_scope":
                scope = " ".join(s for s in scope.split() if s != self.mail_scope)
            code = secrets.token_urlsafe(24)
            self.codes[code] = Code(CLIENT_ID, redirect_uri, query["code_challenge"], scope, time.time() + 60,
                                    account=self.consenting(query))
            back["code"] = code
        return 302, f"{redirect_uri}?{urlencode(back)}"

    def consenting(self, query: dict[str, str]) -> str:
        """The address that consents: the login hint when this server takes it, else the fixed account."""
        hint = query.get("login_hint", "").strip()
        if self.account_from_hint and "@" in hint and len(hint) <= 254 and not any(c.isspace() for c in hint):
            return hint
        return self.account

    def consent_page(self, query: dict[str, str]) -> str:
        fields = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                         for k, v in query.items())
        who = html.escape(self.consenting(query))
        scopes = html.escape(query.get("scope", ""))
        return (f"<!doctype html><title>Sign in - test provider</title><h1>Allow access to {who}</h1>"
                "<p>A local OAuth2 provider for tests and <code>inbox start</code>, not Google or Microsoft: "
                f'its tokens open no real mailbox.</p><p>Scopes: {scopes}</p><form action="/decide">{fields}'
                '<button name="decision" value="allow">Allow</button>'
                '<button name="decision" value="deny">Deny</button></form>')

    def _client_ok(self, form: dict[str, str]) -> bool:
        return form.get("client_id") == CLIENT_ID and hmac.compare_digest(form.get("client_secret", ""), CLIENT_SECRET)

    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        b = self.behaviour
        if b.token_status >= 500:
            return b.token_status, {"error": "temporarily_unavailable"}
        if b.token_status != 200:
            return b.token_status, {"error": "invalid_grant", "error_description": "Bad Request"}
        if not self._client_ok(form):
            return 401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
        grant = form.get("grant_type")
        if grant == "authorization_code":
            code = self.codes.get(form.get("code", ""))
            if code is None or code.used or code.expires < time.time():
                return 400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
            code.used = True  # single use, even when the rest is wrong
            if form.get("redirect_uri") != code.redirect_uri:
                return 400, {"error": "redirect_uri_mismatch", "error_description": "Bad Request"}
            if s256(form.get("code_verifier", "")) != code.challenge:
                return 400, {"error": "invalid_grant", "error_description": "Missing code verifier."}
            body = self._tokens(code.scope, with_refresh=not b.no_refresh_token)
            body["id_token"] = self._id_token(code.account or self.account)
            return 200, body
        if grant == "refresh_token":
            if form.get("refresh_token") not in self.refresh_tokens:
                return 400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            if b.rotate_refresh_tokens:
                self.refresh_tokens.discard(form["refresh_token"])
            return 200, self._tokens(form.get("scope", ""), with_refresh=b.rotate_refresh_tokens)
        return 400, {"error": "unsupported_grant_type"}

    def _tokens(self, scope: str, with_refresh: bool) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        self.access_tokens.add(access)
        body: dict[str, Any] = {"access_token": access, "token_type": "Bearer",
                                "expires_in": self.behaviour.expires_in}
        if scope:
            body["scope"] = scope
        if with_refresh:
            refresh = "rt-" + secrets.token_urlsafe(32)
            self.refresh_tokens.add(refresh)
            self.issued_refresh_tokens.append(refresh)
            body["refresh_token"] = refresh
        return body

    def _id_token(self, account: str) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = _b64(json.dumps({"iss": self.url, "aud": CLIENT_ID, "sub": "4711", self.account_claim: account,
                                  "iat": int(time.time()), "exp": int(time.time()) + 3600}).encode())
        signature = _b64(hmac.new(CLIENT_SECRET.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest())
        return f"{header}.{claims}.{signature}"

    def revoke_all(self) -> None:
        self.refresh_tokens.clear()
        self.access_tokens.clear()

    def calls(self, what: str) -> list[dict[str, str]]:
        return [form for name, form in self.requests if name == what]


# The IMAP host of the mailboxes the demo's providers connect: a name under ".invalid", which never resolves
# (RFC 6761), so the poller says plainly that no server is behind it (core.inbound.mailboxes.is_placeholder)
# instead of failing on imap.gmail.com, which the demo has no access to (no network, no real account).
DEMO_IMAP_HOST = "imap.demo-provider.invalid"
# Per provider: who consents when no address is typed, the claim naming it, the mail scope.
DEMO_PROVIDERS = {
    "google": ("demo.mailbox@gmail.localhost", "email", "https://mail.google.com/"),
    "microsoft": ("demo.mailbox@outlook.localhost", "preferred_username",
                  "https://outlook.office.com/IMAP.AccessAsUser.All"),
}


def start_for_demo(provider: str = "google") -> OAuthTestServer:
    """The provider behind "Connect Gmail" (or "Connect Microsoft 365") in ``inbox start``: a consent page
    to click, the typed address as the account, on a free loopback port (its URL in ``.url``)."""
    account, claim, scope = DEMO_PROVIDERS[provider]
    server = OAuthTestServer(account=account, account_claim=claim, mail_scope=scope, account_from_hint=True)
    server.behaviour.consent_page = True
    return server.start()


def demo_environment(server: OAuthTestServer, provider: str = "google") -> dict[str, str]:
    """The OAUTH_<PROVIDER>_* settings that point the started processes' "Connect" button at ``server``,
    and its mailboxes at the placeholder IMAP host."""
    prefix = f"OAUTH_{provider.upper()}_"
    return {
        f"{prefix}CLIENT_ID": CLIENT_ID,
        f"{prefix}CLIENT_SECRET": CLIENT_SECRET,
        f"{prefix}AUTHORIZE_URL": f"{server.url}/authorize",
        f"{prefix}TOKEN_URL": f"{server.url}/token",
        f"{prefix}IMAP_HOST": DEMO_IMAP_HOST,
    }
