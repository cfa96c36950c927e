"""Finding 4 of issue #14: behind the documented TLS proxy every client was the proxy, so anyone could lock
any account out (and with 50 failures, everyone).

The app trusts ``TRUSTED_PROXY_HOPS`` proxies (ProxyFix) and throttles per (account, client address) with
a backoff, per account and per client address, never refusing the right password for ever
(dashboard.blueprints.auth.LoginThrottle says exactly how).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from core.config import Settings
from dashboard.app import create_app
from tests.conftest import PASSWORD, TenantFixture

PROXY = "10.0.0.2"  # the TLS proxy: every request reaches the app from it
ATTACKER, USER = "203.0.113.9", "198.51.100.20"


@pytest.fixture
def proxied_app(settings: Settings) -> Iterator[Flask]:
    application = create_app(dataclasses.replace(settings, proxy_hops=1), TESTING=True, LOGIN_BACKOFF_SECONDS=1)
    yield application
    from dashboard.extensions import db

    with application.app_context():
        db.engine.dispose()


def attempt(app: Flask, client_ip: str, email: str, password: str, forwarded: str | None = None) -> int:
    """A login through the proxy, which appends the client's address to X-Forwarded-For."""
    client: FlaskClient = app.test_client()
    headers = {"X-Forwarded-For": forwarded or client_ip, "X-Forwarded-Proto": "https",
               "Referer": "https://localhost/login"}  # Flask-WTF checks the referrer on HTTPS
    environ = {"REMOTE_ADDR": PROXY}
    page = client.get("/login", headers=headers, environ_base=environ).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                           headers=headers, environ_base=environ)
    return response.status_code


def test_an_attacker_behind_the_proxy_cannot_lock_out_the_real_user(
    proxied_app: Flask, tenant: TenantFixture
) -> None:
    email = tenant.admin.email
    # Failures on the account and on many others from one address: the attacker is slowed down...
    codes = [attempt(proxied_app, ATTACKER, email, "wrong password") for _ in range(8)]
    codes += [attempt(proxied_app, ATTACKER, f"user{i}@acme.example", "wrong password") for i in range(60)]
    assert codes[:5] == [200] * 5 and codes[5] == 429  # from the 5th failure on, the pair waits
    # ...and forging X-Forwarded-For does not help: the proxy appends the real address after it.
    assert attempt(proxied_app, ATTACKER, email, PASSWORD, forwarded=f"{USER}, {ATTACKER}") == 429
    # The real user, elsewhere, gets in with the right password (before the fix: 429, the proxy's address).
    assert attempt(proxied_app, USER, email, PASSWORD) == 302


def test_a_spray_from_many_addresses_slows_but_never_locks_the_account(
    proxied_app: Flask, tenant: TenantFixture
) -> None:
    email = tenant.admin.email
    for i in range(25):  # one failure from each of 25 addresses: a spray on one account
        assert attempt(proxied_app, f"192.0.2.{i + 1}", email, "wrong password") == 200
    # An address that fails while the account is sprayed waits from its first failure...
    assert attempt(proxied_app, "192.0.2.99", email, "wrong again") == 200
    assert attempt(proxied_app, "192.0.2.99", email, PASSWORD) == 429
    # ...the real user from an address that never failed is not refused...
    assert attempt(proxied_app, USER, email, PASSWORD) == 302
    # ...and a mistyped password costs them the backoff, then the right one is accepted.
    assert attempt(proxied_app, "198.51.100.21", email, "typo password") == 200
    assert attempt(proxied_app, "198.51.100.21", email, PASSWORD) == 429
    time.sleep(1.2)  # LOGIN_BACKOFF_SECONDS=1
    assert attempt(proxied_app, "198.51.100.21", email, PASSWORD) == 302


def test_the_right_password_is_accepted_once_the_backoff_has_passed(proxied_app: Flask, tenant: TenantFixture) -> None:
    email = tenant.admin.email
    for _ in range(5):
        assert attempt(proxied_app, USER, email, "wrong password") == 200
    assert attempt(proxied_app, USER, email, PASSWORD) == 429  # the 5th failure: 1 s to wait, not counted
    time.sleep(1.2)
    assert attempt(proxied_app, USER, email, PASSWORD) == 302


def test_without_trusted_hops_the_forwarded_header_is_ignored(app: Flask, tenant: TenantFixture) -> None:
    for i in range(6):  # each claims another address: none is believed, all count on the real one
        attempt(app, f"192.0.2.{i + 1}", tenant.admin.email, "wrong password")
    assert attempt(app, USER, tenant.admin.email, PASSWORD) == 429
