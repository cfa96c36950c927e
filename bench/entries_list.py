"""The journal entries list at volume (issue 17 item 6): search, filters, sorts and CSV on 100,000 entries.

    PYTHONPATH=$PWD .venv/bin/python bench/entries_list.py [postgresql://postgres@127.0.0.1:5432/test]
                                                          [--entries 100000] [--requests 30] [--keep]

Creates a fresh database next to the given one, migrates it, fills one tenant with ``--entries`` entries of
2026 (three lines each: 411/401, 706/607, VAT; 30 % to process, 30 % ready, 40 % posted; a third purchases)
over 2,000 counterparties with plain SQL (``generate_series``: the drafting itself is measured by
``bench/accounting.py``), then times what a page of the list runs (``core.accounting.listing.entry_list``
counted, then its first 50 rows with their lines, as ``paginate`` does) and the CSV export of a search.
Prints p50 / p95 in ms. Not run in CI.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, selectinload

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.dashboard import create_database, drop_database, migrate, percentile, settings_for  # noqa: E402
from core import listing  # noqa: E402
from core.accounting import listing as entry_listing  # noqa: E402
from core.accounting.models import JournalEntry  # noqa: E402
from core.config import normalize_database_url  # noqa: E402
from core.models import Client, Role  # noqa: E402
from core.tenancy import access, accounts  # noqa: E402

CLIENTS = 2000


def fill(session: Session, entries: int) -> int:
    tenant, _address = accounts.create_tenant(session, "Grande Entreprise SA")
    user = accounts.create_user(session, "admin@big.bench", "correct horse battery", tenant, Role.ADMIN)
    session.commit()
    tid = tenant.id
    conn = session.connection()
    conn.execute(insert(Client.__table__), [
        {"tenant_id": tid, "name": f"Client {i:05d} SARL", "normalized_name": f"client {i:05d} sarl",
         "role": "client" if i % 3 else "supplier"} for i in range(CLIENTS)])
    first = conn.execute(select(func.min(Client.id)).where(Client.tenant_id == tid)).scalar_one()
    conn.execute(text("""
        INSERT INTO acc_entries (tenant_id, source, client_id, direction, journal, status, entry_date, piece_ref,
                                 label, issues, flags, edited, number, fiscal_year, valid_date, posted_at,
                                 posted_by_id, created_at, updated_at)
        SELECT :t, 'bench:' || g, :c0 + g % :n,
               CASE WHEN (g % :n) % 3 = 0 THEN 'payable' ELSE 'receivable' END,
               CASE WHEN (g % :n) % 3 = 0 THEN 'AC' ELSE 'VT' END,
               CASE WHEN g % 10 < 3 THEN 'to_process' WHEN g % 10 < 6 THEN 'ready' ELSE 'posted' END,
               date '2026-01-01' + (g % 365), 'F-2026-' || lpad(g::text, 6, '0'),
               'Client ' || lpad((g % :n)::text, 5, '0') || ' SARL F-2026-' || lpad(g::text, 6, '0'),
               (CASE WHEN g % 10 < 3 THEN '["VAT rate assumed"]' ELSE '[]' END)::json, '[]'::json, false,
               CASE WHEN g % 10 >= 6 THEN g END, CASE WHEN g % 10 >= 6 THEN 2026 END,
               CASE WHEN g % 10 >= 6 THEN date '2026-12-01' END, CASE WHEN g % 10 >= 6 THEN now() END,
               CASE WHEN g % 10 >= 6 THEN :u END, now(), now()
        FROM generate_series(1, :e) AS g"""), {"t": tid, "c0": first, "n": CLIENTS, "e": entries, "u": user.id})
    conn.execute(text("""
        WITH e AS (
            SELECT id, tenant_id, direction, label, ((id * 7919) % 999900 + 100) / 100.0 AS total
            FROM acc_entries WHERE tenant_id = :t)
        INSERT INTO acc_entry_lines (tenant_id, entry_id, position, account, account_label, aux, aux_label, label,
                                     debit, credit, vat_rate)
        SELECT e.tenant_id, e.id, p,
               CASE p WHEN 0 THEN CASE e.direction WHEN 'payable' THEN '401000' ELSE '411000' END
                      WHEN 1 THEN CASE e.direction WHEN 'payable' THEN '607000' ELSE '706000' END
                      ELSE CASE e.direction WHEN 'payable' THEN '445660' ELSE '445711' END END,
               '', CASE WHEN p = 0 THEN 'C' || e.id % 2000 END, CASE WHEN p = 0 THEN split_part(e.label, ' F-', 1) END,
               e.label,
               CASE WHEN p = 0 THEN e.total WHEN p = 1 THEN 0 ELSE 0 END,
               CASE WHEN p = 0 THEN 0 WHEN p = 1 THEN round(e.total / 1.2, 2)
                    ELSE e.total - round(e.total / 1.2, 2) END,
               CASE WHEN p > 0 THEN 20 END
        FROM e, generate_series(0, 2) AS p"""), {"t": tid})
    # The stored total, as core.accounting.rows.write_row keeps it: the sum of the debits.
    conn.execute(text("UPDATE acc_entries SET total = ((id * 7919) % 999900 + 100) / 100.0 WHERE tenant_id = :t"),
                 {"t": tid})
    session.commit()
    return tid


def page(session: Session, viewer: access.Viewer, status: str | None, args: dict[str, str]) -> int:
    """What the list page runs: the count, then 50 rows with their lines."""
    found = listing.only(listing.parse_filters(args, entry_listing.ENTRY_SORTS, entry_listing.ENTRY_DEFAULT_SORT),
                         entry_listing.ENTRY_FILTERS)
    assert not found.errors, found.errors
    stmt = entry_listing.entry_list(viewer, status, None, found, "postgresql")
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    session.scalars(stmt.options(selectinload(JournalEntry.lines)).limit(50)).all()
    return total


def export(session: Session, viewer: access.Viewer, status: str | None, args: dict[str, str]) -> int:
    found = listing.parse_filters(args, entry_listing.ENTRY_SORTS, entry_listing.ENTRY_DEFAULT_SORT)
    stmt = entry_listing.entry_list(viewer, status, None, found, "postgresql")
    return sum(1 for _row in entry_listing.entry_rows(session, viewer, stmt))


CASES: tuple[tuple[str, str | None, dict[str, str], Any], ...] = (
    ("to process (default tab)", "to_process", {}, page),
    ("posted, sorted by amount", "posted", {"sort": "-amount"}, page),
    ("search: piece number", None, {"q": "F-2026-054321"}, page),
    ("search: counterparty", "ready", {"q": "client 00043"}, page),
    ("search: amount", None, {"q": "9896,00"}, page),  # entry 50,000's total
    ("search: no match", None, {"q": "zzqx"}, page),
    ("filter: dates + amount range", "posted", {"date_from": "2026-03-01", "date_to": "2026-03-31",
                                                "amount_min": "1000", "amount_max": "5000", "sort": "amount"}, page),
    ("CSV: counterparty search", None, {"q": "client 00042"}, export),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url", nargs="?", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the database (for EXPLAIN)")
    args = parser.parse_args()
    name = f"{make_url(args.database_url).database}_bench_entries"
    url = create_database(args.database_url, name)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            migrate(settings_for(url, Path(tmp)))
        engine = create_engine(normalize_database_url(url))
        started = time.perf_counter()
        with Session(engine) as session:
            tid = fill(session, args.entries)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        print(f"filled {args.entries} entries in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        with Session(engine) as session:
            admin = session.execute(text("SELECT id FROM users WHERE email = 'admin@big.bench'")).scalar_one()
            viewer = access.viewer_for(session, tid, admin)
            print("| case | rows matched | p50 ms | p95 ms |\n|---|---:|---:|---:|")
            for label, status, query, run in CASES:
                times, matched = [], 0
                count = args.requests if run is page else max(3, args.requests // 10)
                for _ in range(count + 1):  # one warm-up
                    start = time.perf_counter()
                    matched = run(session, viewer, status, query)
                    times.append((time.perf_counter() - start) * 1000)
                    session.rollback()
                times = times[1:]
                print(f"| {label} | {matched:,} | {percentile(times, 50):.1f} | {percentile(times, 95):.1f} |",
                      flush=True)
        engine.dispose()
    finally:
        if args.keep:
            print(f"kept: {url}", file=sys.stderr)
        else:
            drop_database(args.database_url, name)


if __name__ == "__main__":
    main()
