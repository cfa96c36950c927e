"""Connect Gmail / Microsoft 365: what one connection and one token renewal cost, against the local
authorization server of the tests (dashboard/devoauth.py via tests/oauthserver.py, real HTTP on
loopback), into a real database.

    .venv/bin/python bench/oauth_connect.py [--rounds 100] [--provider google|microsoft]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Connect: the admin's "Connect" POST (state + PKCE verifier into the session, redirect), the provider's
authorization endpoint (a real HTTP GET, as the browser follows it), then our callback (state checks, the
code exchanged at the token endpoint over HTTP, the refresh token encrypted, the mailbox and an audit
event committed) -- timed end to end, per round. The first round creates the mailbox, the others
reconnect it. Refresh: ``core.inbound.oauth.refresh`` as the poller calls it before each XOAUTH2 login.
The provider's own work is a few dictionary lookups: the numbers are ours plus loopback HTTP.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import requests  # noqa: E402 - after the path fix-up
from sqlalchemy import func, select  # noqa: E402

from core.config import OAUTH_DEFAULTS, OAuthApp  # noqa: E402
from core.inbound import oauth  # noqa: E402
from core.models import Mailbox  # noqa: E402
from dashboard.app import create_app  # noqa: E402
from tests.conftest import PASSWORD, _base_settings, _migrate, make_tenant  # noqa: E402
from tests.oauthserver import CLIENT_ID, CLIENT_SECRET, OAuthTestServer  # noqa: E402
from tests.services import create_postgres_database, drop_postgres_database  # noqa: E402
from tests.test_imap import csrf_of  # noqa: E402

ADMIN = "admin@bench.example"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return (f"{name}: n={len(ms)} median {statistics.median(ms):.1f} ms, p95 {percentile(ms, 0.95):.1f} ms, "
            f"max {max(ms):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--provider", choices=oauth.PROVIDERS, default="google")
    parser.add_argument("--database-url", help="a PostgreSQL admin URL (a throw-away database is created)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-oauth-"))
    db_url = create_postgres_database(args.database_url) if args.database_url else f"sqlite:///{workdir / 'inbox.db'}"
    server = OAuthTestServer().start()
    try:
        base = _base_settings(workdir / "var", db_url, "redis://127.0.0.1:1/0")
        _migrate(base)
        app_settings = OAuthApp(
            provider=args.provider, authorize_url=f"{server.url}/authorize", token_url=f"{server.url}/token",
            scopes=OAUTH_DEFAULTS[args.provider]["scopes"], imap_host="127.0.0.1", imap_port=993,
            imap_security="plain", client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
        )
        settings = replace(base, **{f"oauth_{args.provider}": app_settings})
        app = create_app(settings, TESTING=True)
        from dashboard.extensions import db

        with app.app_context():
            make_tenant(db.session, "Bench SAS", ADMIN)
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        client.post("/login", data={"email": ADMIN, "password": PASSWORD, "csrf_token": csrf_of(page)})
        token = csrf_of(client.get("/settings/mailboxes").get_data(as_text=True))
        http = requests.Session()
        connects: list[float] = []
        steps: dict[str, list[float]] = {"connect POST": [], "provider's authorize": [], "callback": []}
        for _ in range(args.rounds):
            started = time.perf_counter()
            start = client.post(f"/settings/mailboxes/connect/{args.provider}", data={"csrf_token": token})
            t1 = time.perf_counter()
            answer = http.get(start.headers["Location"], allow_redirects=False, timeout=10)
            t2 = time.perf_counter()
            back = urlsplit(answer.headers["Location"])
            done = client.get(f"{back.path}?{back.query}")
            t3 = time.perf_counter()
            connects.append(t3 - started)
            for name, seconds in zip(steps, (t1 - started, t2 - t1, t3 - t2), strict=True):
                steps[name].append(seconds)
            assert done.status_code == 302 and "/settings/mailboxes/" in done.headers["Location"], done.headers
        with app.app_context():
            assert db.session.scalar(select(func.count(Mailbox.id))) == 1  # reconnections update it
            db.engine.dispose()

        refresh_token = server.issued_refresh_tokens[-1]
        refreshes: list[float] = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            oauth.refresh(app_settings, CLIENT_ID, CLIENT_SECRET, refresh_token)
            refreshes.append(time.perf_counter() - started)
        backend = "postgresql" if args.database_url else "sqlite"
        print(f"{args.provider}, {backend}")
        print(summary("connect round trip (POST connect + authorize + callback)", connects))
        for name, seconds in steps.items():
            print("  " + summary(name, seconds))
        print(summary("access token renewal (refresh grant)", refreshes))
    finally:
        server.close()
        if args.database_url:
            drop_postgres_database(args.database_url, db_url)


if __name__ == "__main__":
    main()
