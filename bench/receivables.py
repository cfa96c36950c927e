"""Receivables read cost: the clients list, one client's balance and the analytics summary, computed on read.

    .venv/bin/python bench/receivables.py [--database-url URL] [--clients 2000] [--invoices 50000] [--rounds 5]

Fills a fresh, migrated database (SQLite file by default) with one tenant, ``--clients`` clients and
``--invoices`` invoices (a mix of open, partly paid and paid, one expected cash movement each), then
prints the median time of each read over ``--rounds`` runs as a markdown table.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._synthetic import bench_tenant, bench_viewer, commit_filled, migrated_database, open_session  # noqa: E402
from core.models import CashMovement, Client, Invoice  # noqa: E402
from core.receivables import analytics  # noqa: E402
from core.receivables import invoices as receivables  # noqa: E402

TODAY = date(2026, 11, 24)


def fill(url: str, clients: int, invoices: int) -> tuple[int, int]:
    session = open_session(url)
    tenant, user, stored = bench_tenant(session)
    client_rows = [Client(tenant_id=tenant.id, name=f"Client {i}", normalized_name=f"client {i}")
                   for i in range(clients)]
    session.add_all(client_rows)
    session.flush()
    rng = random.Random(5)
    for i in range(invoices):
        due = TODAY + timedelta(days=rng.randint(-150, 80))
        amount = Decimal(rng.randint(100, 500_000)) / 100
        state = rng.random()
        paid = amount if state < 0.5 else (amount / 2).quantize(Decimal("0.01")) if state < 0.6 else Decimal(0)
        invoice = Invoice(
            tenant_id=tenant.id, direction="receivable", doc_type="invoice", number=f"F-{i}", number_key=f"F-{i}",
            client_id=client_rows[rng.randrange(clients)].id, amount=amount, currency="EUR",
            issue_date=due - timedelta(days=30), due_date=due, file_id=stored.id, amount_paid=paid,
            status="paid" if paid == amount else "partially_paid" if paid else "open",
            paid_at=due + timedelta(days=rng.randint(-10, 30)) if paid == amount else None,
        )
        session.add(invoice)
        if i % 1000 == 999:
            session.flush()
    session.flush()
    session.add_all(CashMovement(tenant_id=tenant.id, invoice_id=inv.id, direction="in", kind="expected",
                                 expected_date=inv.due_date, amount=inv.amount, currency="EUR")
                    for inv in session.query(Invoice).filter(Invoice.tenant_id == tenant.id))
    commit_filled(session)
    ids = (tenant.id, user.id)
    session.close()
    return ids


def timed(fn, rounds: int) -> float:  # noqa: ANN001
    runs = []
    for _ in range(rounds):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--clients", type=int, default=2000)
    parser.add_argument("--invoices", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    url = migrated_database(args.database_url)
    started = time.perf_counter()
    tenant_id, user_id = fill(url, args.clients, args.invoices)
    # Through the ORM, so this includes keeping the receivables summaries up to date at every flush.
    print(f"filled in {time.perf_counter() - started:.1f} s")
    session, viewer = bench_viewer(url, tenant_id, user_id)
    some_client = session.query(Client.id).filter(Client.tenant_id == tenant_id).first()[0]
    rows = [
        ("clients list, page 1 by amount due", lambda: receivables.client_balances(
            session, viewer, currency="EUR", today=TODAY, sort="-amount_due")),
        ("one client's balance", lambda: receivables.client_balance(
            session, viewer, some_client, currency="EUR", today=TODAY)),
        ("analytics summary", lambda: analytics.summary(session, viewer, currency="EUR", today=TODAY)),
    ]
    print(f"{session.get_bind().dialect.name}, {args.clients} clients, {args.invoices} invoices\n")
    print("| read | median (ms) |\n|---|---:|")
    for label, fn in rows:
        print(f"| {label} | {timed(fn, args.rounds):.1f} |")


if __name__ == "__main__":
    main()
