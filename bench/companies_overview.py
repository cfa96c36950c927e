"""The cross-company overview (issue 17): what an accountant in many companies waits for, per company.

    .venv/bin/python bench/companies_overview.py [--companies 100] [--invoices 500] [--rounds 20]
    .venv/bin/python bench/companies_overview.py --fresh-postgres postgresql://postgres@127.0.0.1:5432/test

Fills a fresh, migrated database (a SQLite file by default; with ``--fresh-postgres ADMIN_URL`` a new
database on that server, dropped afterwards) with ``--companies`` companies, each with ``--invoices``
receivable invoices (a third overdue), 20 documents waiting for review and 50 bank transactions (half
unmatched), plus one accountant in all of them: admin in half, a restricted member with one assigned
client in the other half (the counts then go through the access policy). Prints the median and p95 time
of ``core.tenancy.companies.overview`` (what ``/companies`` and ``GET /api/v1/companies`` run) and the
number of SQL statements it sends.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from flask_migrate import upgrade  # noqa: E402
from sqlalchemy import event  # noqa: E402

from core.config import Settings  # noqa: E402
from core.db import make_engine, make_session_factory  # noqa: E402
from core.models import (  # noqa: E402
    BankAccount,
    BankTransaction,
    Client,
    ClientAssignment,
    Document,
    Invoice,
    Membership,
    StoredFile,
    User,
)
from core.tenancy import accounts, companies  # noqa: E402
from dashboard.app import MIGRATIONS_DIR, create_app  # noqa: E402

TODAY = date(2026, 11, 24)


def fill(url: str, count: int, invoices: int) -> int:
    session = make_session_factory(make_engine(url))()
    accountant = User(email="cabinet@compta.example", password_hash=accounts.hash_password("bench password 1"))
    session.add(accountant)
    session.flush()
    for n in range(count):
        tenant, _address = accounts.create_tenant(session, f"Client company {n}")
        restricted = n % 2 == 1
        tenant.restrict_access = restricted
        session.add(Membership(user_id=accountant.id, tenant_id=tenant.id, role="member" if restricted else "admin"))
        stored = StoredFile(tenant_id=tenant.id, sha256=f"{n:064d}", size=1, content_type="application/pdf",
                            storage_key=f"none-{n}")
        session.add(stored)
        clients = [Client(tenant_id=tenant.id, name=f"Client {i}", normalized_name=f"client {i}") for i in range(10)]
        session.add_all(clients)
        session.flush()
        if restricted:
            session.add(ClientAssignment(tenant_id=tenant.id, user_id=accountant.id, client_id=clients[0].id))
        for i in range(invoices):
            due = TODAY + timedelta(days=(i % 3 - 1) * 20)
            session.add(Invoice(tenant_id=tenant.id, direction="receivable", doc_type="invoice", number=f"F-{i}",
                                number_key=f"F-{i}", client_id=clients[i % 10].id, amount=Decimal("100.00"),
                                currency="EUR", issue_date=due - timedelta(days=30), due_date=due,
                                file_id=stored.id, amount_paid=Decimal(0), status="open"))
        for i in range(20):
            session.add(Document(tenant_id=tenant.id, file_id=stored.id, filename=f"d{i}.pdf", status="pending",
                                 field_info={}))
        account = BankAccount(tenant_id=tenant.id, iban=f"FR76300060000112345678{n:05d}")
        session.add(account)
        session.flush()
        session.add_all(BankTransaction(tenant_id=tenant.id, account_id=account.id, fingerprint=f"{n}-{i}",
                                        booking_date=TODAY, amount=Decimal("10.00"),
                                        status="unmatched" if i % 2 else "ignored") for i in range(50))
        session.flush()
    session.commit()
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("ANALYZE")
        session.commit()
    user_id = accountant.id
    session.close()
    return user_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fresh-postgres", metavar="ADMIN_URL")
    parser.add_argument("--companies", type=int, default=100)
    parser.add_argument("--invoices", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    admin_url = args.fresh_postgres
    if admin_url:
        from tests.services import create_postgres_database, drop_postgres_database

        url = create_postgres_database(admin_url)
    else:
        url = f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    try:
        app = create_app(replace(Settings.from_env(), database_url=url))
        with app.app_context():
            upgrade(directory=str(MIGRATIONS_DIR), revision="heads")
            from dashboard.extensions import db

            db.engine.dispose()
        started = time.perf_counter()
        user_id = fill(url, args.companies, args.invoices)
        print(f"filled in {time.perf_counter() - started:.1f} s")
        engine = make_engine(url)
        statements = [0]
        event.listen(engine, "before_cursor_execute", lambda *_a: statements.__setitem__(0, statements[0] + 1))
        session = make_session_factory(engine)()
        runs = []
        for _ in range(args.rounds):
            statements[0] = 0
            began = time.perf_counter()
            rows = companies.overview(session, user_id, TODAY)
            runs.append(time.perf_counter() - began)
            session.rollback()
        per_call = statements[0]
        assert len(rows) == args.companies
        admin_row = next(r for r in rows if r.role == "admin")
        member_row = next(r for r in rows if r.role == "member")
        runs.sort()
        p95 = runs[min(len(runs) - 1, int(len(runs) * 0.95))]
        print(f"{engine.dialect.name}, {args.companies} companies x {args.invoices} invoices, "
              f"{args.rounds} rounds (load average {os.getloadavg()[0]:.1f})")
        print("| median (ms) | p95 (ms) | SQL statements per call | admin row | restricted member row |")
        print("|---:|---:|---:|---|---|")
        print(f"| {statistics.median(runs) * 1000:.1f} | {p95 * 1000:.1f} | {per_call} | "
              f"{admin_row.pending_documents}/{admin_row.overdue_invoices}/{admin_row.unmatched_transactions} | "
              f"{member_row.pending_documents}/{member_row.overdue_invoices}/{member_row.unmatched_transactions} |")
        session.close()
        engine.dispose()
    finally:
        if admin_url:
            drop_postgres_database(admin_url, url)


if __name__ == "__main__":
    main()
