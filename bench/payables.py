"""Payables: the suppliers list, a payment run's plan and the SEPA file (pain.001.001.09, validated against
its XSD), on synthetic data.

    .venv/bin/python bench/payables.py [--database-url URL] [--suppliers 500] [--invoices 20000] [--run 1000]

Fills a fresh, migrated database (SQLite file by default) with one tenant (identity set, approval "none":
every payable approved), ``--suppliers`` suppliers with valid IBANs and ``--invoices`` unpaid payables, a
``--run`` of them due before the others, then prints the time of each step as a markdown table.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schwifty import IBAN  # noqa: E402

from bench._synthetic import bench_tenant, bench_viewer, commit_filled, migrated_database, open_session  # noqa: E402
from core.models import Client, Invoice  # noqa: E402
from core.payables import runs, suppliers  # noqa: E402
from core.tenancy import company  # noqa: E402

TODAY = date(2026, 12, 4)


def fill(url: str, supplier_count: int, invoices: int, run: int) -> tuple[int, int]:
    session = open_session(url)
    tenant, user, stored = bench_tenant(session)
    company.update_identity(session, tenant.id, {"legal_name": "Bench SAS", "country": "FR",
                                                 "iban": "FR7630006000011234567890189"})
    rows = [Client(tenant_id=tenant.id, name=f"Fournisseur {i}", normalized_name=f"fournisseur {i}", role="supplier",
                   iban=IBAN.generate("DE", bank_code="37040044", account_code=str(1000 + i)).compact,
                   town="Berlin", country="DE") for i in range(supplier_count)]
    session.add_all(rows)
    session.flush()
    for i in range(invoices):
        due = TODAY - timedelta(days=i % 20) if i < run else TODAY + timedelta(days=30 + i % 60)
        session.add(Invoice(tenant_id=tenant.id, direction="payable", doc_type="invoice", number=f"A-{i}",
                            number_key=f"A-{i}", client_id=rows[i % supplier_count].id,
                            amount=Decimal(100 + i % 9000) + Decimal("0.45"), currency="EUR", file_id=stored.id,
                            issue_date=due - timedelta(days=30), due_date=due))
        if i % 1000 == 999:
            session.flush()
    commit_filled(session)
    ids = (tenant.id, user.id)
    session.close()
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url")
    parser.add_argument("--suppliers", type=int, default=500)
    parser.add_argument("--invoices", type=int, default=20_000)
    parser.add_argument("--run", type=int, default=1000)
    args = parser.parse_args()
    url = migrated_database(args.database_url)
    started = time.perf_counter()
    tenant_id, user_id = fill(url, args.suppliers, args.invoices, args.run)
    print(f"filled in {time.perf_counter() - started:.1f} s")
    session, viewer = bench_viewer(url, tenant_id, user_id)
    results: list[tuple[str, float, str]] = []

    started = time.perf_counter()
    page, total = suppliers.supplier_balances(session, viewer, currency="EUR", today=TODAY)
    results.append(("suppliers list, page 1 by amount due", time.perf_counter() - started, f"{total} suppliers"))
    started = time.perf_counter()
    plan = runs.plan(session, viewer, TODAY)
    results.append(("payment run plan (due by today)", time.perf_counter() - started,
                    f"{len(plan.invoices)} to pay, {len(plan.skipped)} left out"))
    started = time.perf_counter()
    run, _plan = runs.create_run(session, viewer, TODAY, TODAY, None)
    session.commit()
    elapsed = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    results.append(("payment run: plan, SEPA file written, XSD-validated (libxml2), stored", elapsed,
                    f"{run.count} transfers, {len(run.xml) / 1e6:.2f} MB XML; process max RSS {rss:.0f} MB"))
    print(f"{session.get_bind().dialect.name}, {args.suppliers} suppliers, {args.invoices} payables\n")
    print("| step | time (ms) | |\n|---|---:|---|")
    for label, seconds, note in results:
        print(f"| {label} | {seconds * 1000:.0f} | {note} |")
    assert page and run.count == min(args.run, runs.MAX_INVOICES)


if __name__ == "__main__":
    main()
