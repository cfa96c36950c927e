"""Accounting at volume (issue 18): 100,000 validated invoices -> draft entries -> posted -> the year's FEC.

    .venv/bin/python bench/accounting.py [--admin-url postgresql://postgres@127.0.0.1:5432/test]
                                         [--database-url URL] [--invoices 100000] [--clients 2000]

Creates a fresh PostgreSQL database on the ``--admin-url`` server (or uses ``--database-url``), migrates it,
fills one tenant with ``--invoices`` validated invoices of 2026 (sales and purchases, 5 % credit notes, VAT
20 / 10 / 5.5 / 2.1 % from the extracted net and tax), then measures, each on its own:

1. drafting their entries through ``core.accounting.entries.draft_for_invoices`` (batches of 1,000 committed);
2. posting them all in date order (``post_entries``: the invariants checked, EcritureNum given);
3. streaming the 2026 FEC to a file (``core.accounting.fec.stream``), with the Python heap's peak
   (tracemalloc) and the process RSS before and after: the goal is under 30 s with memory flat;
4. the FEC checker of the tests (``tests/fecchecker.py``) on the file.

Prints a markdown table. Not run in CI.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import tracemalloc
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy.orm import selectinload  # noqa: E402

from core.accounting import books as booksvc  # noqa: E402
from core.accounting import entries as entrysvc  # noqa: E402
from core.accounting import fec  # noqa: E402
from core.accounting.models import JournalEntry  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.models import Client, Invoice, StoredFile, Tenant  # noqa: E402
from core.tenancy import accounts  # noqa: E402
from dashboard.app import MIGRATIONS_DIR, create_app  # noqa: E402

RATES = (Decimal("20"), Decimal("10"), Decimal("5.5"), Decimal("2.1"))
BATCH = 1000


def rss_mb() -> float:
    """The process's resident memory now (Linux /proc), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fill(session_factory, invoices: int, clients: int) -> int:  # type: ignore[no-untyped-def]
    session = session_factory()
    tenant, _address = accounts.create_tenant(session, "Bench SAS")
    tenant.siren = "732829320"
    stored = StoredFile(tenant_id=tenant.id, sha256="0" * 64, size=1, content_type="application/pdf",
                        storage_key="none")
    session.add(stored)
    client_rows = [Client(tenant_id=tenant.id, name=f"Tiers {i}", normalized_name=f"tiers {i}") for i in range(clients)]
    session.add_all(client_rows)
    session.flush()
    rng = random.Random(18)
    for i in range(invoices):
        rate = RATES[i % 4]
        net = Decimal(rng.randint(1_000, 500_000)) / 100
        tax = (net * rate / 100).quantize(Decimal("0.01"))
        issue = date(2026, 1, 1) + timedelta(days=rng.randrange(365))
        session.add(Invoice(
            tenant_id=tenant.id, direction="payable" if i % 3 == 0 else "receivable",
            doc_type="credit_note" if i % 20 == 19 else "invoice", number=f"F-{i}", number_key=f"F-{i}",
            client_id=client_rows[rng.randrange(clients)].id, amount=net + tax, net_amount=net, tax_amount=tax,
            currency="EUR", issue_date=issue, due_date=issue + timedelta(days=30), file_id=stored.id))
        if i % BATCH == BATCH - 1:
            session.flush()
    session.commit()
    session.connection().exec_driver_sql("ANALYZE")
    session.commit()
    tenant_id = tenant.id
    session.close()
    return tenant_id


def draft_all(session_factory, tenant_id: int) -> float:  # type: ignore[no-untyped-def]
    session = session_factory()
    books = booksvc.load_books(session, tenant_id)
    chart = booksvc.chart_of(session, tenant_id)
    session.commit()
    ids = list(session.scalars(select(Invoice.id).where(Invoice.tenant_id == tenant_id).order_by(Invoice.id)))
    started = time.perf_counter()
    for first in range(0, len(ids), BATCH):
        batch = session.scalars(select(Invoice).where(Invoice.id.in_(ids[first:first + BATCH]))
                                .options(selectinload(Invoice.client))).all()
        entrysvc.draft_for_invoices(session, tenant_id, batch, books, chart)
        session.commit()
        session.expunge_all()
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


def post_all(session_factory, tenant_id: int) -> float:  # type: ignore[no-untyped-def]
    session = session_factory()
    books = booksvc.load_books(session, tenant_id)
    # Validation order = the order a person would post them in: by date.
    ids = list(session.scalars(select(JournalEntry.id).where(JournalEntry.tenant_id == tenant_id)
                               .order_by(JournalEntry.entry_date, JournalEntry.id)))
    started = time.perf_counter()
    for first in range(0, len(ids), BATCH):
        batch = session.scalars(select(JournalEntry).where(JournalEntry.id.in_(ids[first:first + BATCH]))
                                .options(selectinload(JournalEntry.lines)).order_by(JournalEntry.entry_date,
                                                                                     JournalEntry.id)).all()
        entrysvc.post_entries(session, tenant_id, [row.id for row in batch], None, remember=False,
                              today=date(2026, 12, 31), books=books)
        session.commit()
        session.expunge_all()
    elapsed = time.perf_counter() - started
    session.close()
    return elapsed


def export_fec(session_factory, tenant_id: int, target: Path,  # type: ignore[no-untyped-def]
               trace: bool = True) -> dict[str, float]:
    """One FEC export to ``target``; with ``trace``, the heap's peak (tracemalloc slows Python down about 2x,
    so the time is measured on an untraced run too)."""
    session = session_factory()
    before = rss_mb()
    if trace:
        tracemalloc.start()
    started, cpu = time.perf_counter(), time.process_time()
    size = 0
    with target.open("wb") as out:
        for chunk in fec.stream(session, tenant_id, 2026):
            out.write(chunk)
            size += len(chunk)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = 0
    if trace:
        _current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    after = rss_mb()
    session.close()
    return {"seconds": elapsed, "cpu": cpu, "bytes": size, "heap_peak_mb": peak / 2**20, "rss_before_mb": before,
            "rss_after_mb": after}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--admin-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--database-url")
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--export-only", action="store_true",
                        help="with --database-url of an earlier run: only the FEC exports and the checker")
    args = parser.parse_args()
    url = args.database_url
    if url is None:
        if args.export_only:
            parser.error("--export-only needs the --database-url of an earlier run")
        from tests.services import create_postgres_database

        url = create_postgres_database(args.admin_url)
    settings = replace(Settings.from_env(), database_url=url)
    with create_app(settings).app_context():
        upgrade(directory=str(MIGRATIONS_DIR), revision="heads")
    session_factory = make_session_factory(make_engine(url))

    if args.export_only:
        with session_factory() as session:
            tenant_id = session.scalars(select(Tenant.id).where(Tenant.name == "Bench SAS")).one()
        drafting = posting = float("nan")
    else:
        print(f"database: {url}", file=sys.stderr)
        started = time.perf_counter()
        tenant_id = fill(session_factory, args.invoices, args.clients)
        print(f"filled {args.invoices} invoices in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        drafting = draft_all(session_factory, tenant_id)
        print(f"drafted in {drafting:.1f} s", file=sys.stderr)
        posting = post_all(session_factory, tenant_id)
        print(f"posted in {posting:.1f} s", file=sys.stderr)
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "fec.txt"
        first = export_fec(session_factory, tenant_id, target)
        second = export_fec(session_factory, tenant_id, target, trace=False)
        from tests.fecchecker import check_fec

        checked = time.perf_counter()
        problems = check_fec("732829320FEC20261231.txt", target.read_bytes(), date(2026, 1, 1), date(2026, 12, 31))
        check_seconds = time.perf_counter() - checked
        lines = target.read_bytes().count(b"\n")
    print(f"| step ({args.invoices} invoices, PostgreSQL) | result |")
    print("|---|---:|")
    print(f"| draft entries (`draft_for_invoices`, batches of {BATCH}) | {drafting:.1f} s "
          f"({args.invoices / drafting:.0f}/s) |")
    print(f"| post them (`post_entries`, invariants + EcritureNum) | {posting:.1f} s "
          f"({args.invoices / posting:.0f}/s) |")
    print(f"| FEC stream under tracemalloc | {first['seconds']:.1f} s wall ({first['cpu']:.1f} s CPU in this process), "
          f"{first['bytes'] / 2**20:.1f} MB, {lines} lines; Python heap peak {first['heap_peak_mb']:.1f} MB; "
          f"RSS {first['rss_before_mb']:.0f} -> {first['rss_after_mb']:.0f} MB |")
    print(f"| FEC stream, untraced | {second['seconds']:.1f} s wall ({second['cpu']:.1f} s CPU in this process); "
          f"RSS {second['rss_before_mb']:.0f} -> {second['rss_after_mb']:.0f} MB |")
    print(f"| FEC checker (tests/fecchecker.py) | {len(problems)} problem(s), {check_seconds:.1f} s |")


if __name__ == "__main__":
    main()
