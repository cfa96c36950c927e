"""Inbound addresses (issue #8): what the address rules cost per received email.

    .venv/bin/python bench/addresses.py [--tenants 5000] [--lookups 3000]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Builds ``--tenants`` tenants, each with one address that retired, one retiring and one current (3 rows per
tenant), then times, per call, on one session as the gateway's threads do:

- ``rcpt``: ``accounts.resolve_recipient`` (the RCPT decision: known, retiring, retired or unknown), over a
  mix of current, retiring (tagged, upper case), retired and never-issued addresses;
- ``note``: ``addresses.note_recipient_address``, the lookup ``intake.store_message`` added to record which
  address a message was sent to and whether it was retiring (one more indexed SELECT per stored message);
- ``new``: ``accounts.new_local_part`` (the random address itself).

Reports p50/p95 in microseconds. ``--database-url`` names a PostgreSQL server: a scratch database is
created there and dropped at the end; the default is a SQLite file in a temporary directory.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import insert  # noqa: E402 - after the path fix-up

from bench.dashboard import migrate, settings_for  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.inbound import addresses  # noqa: E402
from core.models import InboundAddress, InboundMessage, Tenant, utcnow  # noqa: E402
from core.tenancy import accounts  # noqa: E402
from tests.services import create_postgres_database, drop_postgres_database  # noqa: E402

DOMAIN = "in.bench.test"


def build(url: str, tenants: int) -> list[tuple[int, str, str]]:
    """(tenant id, local part, kind) for every address created."""
    engine = make_engine(url)
    now = utcnow()
    rows: list[tuple[int, str, str]] = []
    with engine.begin() as conn:
        ids = conn.execute(
            insert(Tenant.__table__).returning(Tenant.id, sort_by_parameter_order=True),
            [{"name": f"Tenant {n}", "restrict_access": False, "created_at": now} for n in range(tenants)],
        ).scalars().all()
        values = []
        for tenant_id in ids:
            for kind, ends in (("retired", now - timedelta(days=1)), ("retiring", now + timedelta(days=10)),
                               ("current", None)):
                local = accounts.new_local_part()
                values.append({"tenant_id": tenant_id, "local_part": local, "created_at": now, "retires_at": ends})
                rows.append((tenant_id, local, kind))
        conn.execute(insert(InboundAddress.__table__), values)
    engine.dispose()
    return rows


def timed(calls: int, func: Callable[[int], object]) -> tuple[float, float]:
    samples = []
    for n in range(calls):
        start = time.perf_counter()
        func(n)
        samples.append((time.perf_counter() - start) * 1e6)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95)]


def run(url: str, tenants: int, lookups: int) -> None:
    rows = build(url, tenants)
    rng = random.Random(8)
    picks = [rng.choice(rows) for _ in range(lookups)]

    def recipient(n: int) -> str:
        tenant_id, local, kind = picks[n]
        if n % 7 == 0:
            return f"inbox-{'a' * 13}@{DOMAIN}"  # never issued
        return f"{local.upper()}+factures@{DOMAIN}" if kind == "retiring" else f"{local}@{DOMAIN}"

    engine = make_engine(url)
    factory = make_session_factory(engine)
    with factory() as session:
        # Each call as in the gateway: a short read in its own transaction.
        def rcpt(n: int) -> object:
            found = accounts.resolve_recipient(session, recipient(n), DOMAIN)
            session.rollback()
            return found

        def note(n: int) -> object:
            tenant_id, local, _kind = picks[n]
            message = InboundMessage(tenant_id=tenant_id, recipient=f"{local}@{DOMAIN}")
            addresses.note_recipient_address(session, message)
            session.rollback()
            return message

        timed(200, rcpt)  # warm-up: connections, statement caches
        results = {"rcpt": timed(lookups, rcpt), "note": timed(lookups, note),
                   "new": timed(lookups, lambda _n: accounts.new_local_part())}
    engine.dispose()
    kind = "PostgreSQL" if url.startswith("postgresql") else "SQLite"
    print(f"{kind}, {tenants} tenants x 3 addresses, {lookups} calls each")
    for name, (p50, p95) in results.items():
        print(f"  {name:5s} p50 {p50:8.1f} us   p95 {p95:8.1f} us")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tenants", type=int, default=5000)
    parser.add_argument("--lookups", type=int, default=3000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.database_url:
            url = create_postgres_database(args.database_url)
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        try:
            migrate(settings_for(url, Path(tmp)))
            run(url, args.tenants, args.lookups)
        finally:
            if args.database_url:
                drop_postgres_database(args.database_url, url)


if __name__ == "__main__":
    main()
