"""What matching again at validation (issue 17 item 5) costs: ``match_new_invoice`` for one new invoice
against a tenant holding many open invoices and unmatched incoming transactions.

    .venv/bin/python bench/rematch.py [--invoices 100000] [--transactions 200] [--database URL]

Without ``--database``, a temporary SQLite file. Each run is rolled back, so every run sees the same data.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--transactions", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--database", help="an empty database URL (default: a temporary SQLite file)")
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import insert

    from core.banking.reconciliation import match_new_invoice
    from core.config import Settings
    from core.db import make_engine, make_session_factory
    from core.models import BankAccount, BankTransaction, Client, Invoice, StoredFile, Tenant
    from dashboard.app import MIGRATIONS_DIR, create_app

    tmp = Path(tempfile.mkdtemp(prefix="rematch-bench-"))
    url = args.database or f"sqlite:///{tmp / 'bench.db'}"
    settings = dataclasses.replace(Settings.from_env(), database_url=url, var_dir=tmp, storage_dir=tmp / "storage")
    with create_app(settings).app_context():
        upgrade(directory=str(MIGRATIONS_DIR), revision="heads")
    engine = make_engine(url)
    with make_session_factory(engine)() as session:
        tenant = Tenant(name="Bench")
        session.add(tenant)
        session.flush()
        stored = StoredFile(tenant_id=tenant.id, sha256="0" * 64, size=0, content_type="application/pdf",
                            storage_key="bench")
        account = BankAccount(tenant_id=tenant.id, iban="FR7600000000000000000000000", name="Bench")
        client = Client(tenant_id=tenant.id, name="Client", normalized_name="client")
        session.add_all([stored, account, client])
        session.flush()
        start = date(2026, 1, 1)
        session.execute(insert(Invoice), [
            {"tenant_id": tenant.id, "direction": "receivable", "doc_type": "invoice", "number": f"FA-{n:07d}",
             "number_key": f"FA-{n:07d}", "client_id": client.id, "amount": Decimal(100 + n % 5000),
             "currency": "EUR", "issue_date": start + timedelta(days=n % 300),
             "due_date": start + timedelta(days=30 + n % 300),
             "file_id": stored.id, "status": "open", "amount_paid": Decimal("0")}
            for n in range(args.invoices)
        ])  # fmt: skip
        session.execute(insert(BankTransaction), [
            {"tenant_id": tenant.id, "account_id": account.id, "fingerprint": f"bench-{n}",
             "booking_date": start + timedelta(days=n % 300), "amount": Decimal("12.34") + n, "currency": "EUR",
             "counterparty": f"Payer {n}", "remittance": f"VIR {n} DIVERS", "pending": False, "status": "unmatched"}
            for n in range(args.transactions)
        ])  # fmt: skip
        session.commit()
        times = []
        for _ in range(args.runs):
            invoice = Invoice(tenant_id=tenant.id, direction="receivable", doc_type="invoice", number="NEW-1",
                              number_key="NEW-1", client_id=client.id, amount=Decimal("999.99"), currency="EUR",
                              issue_date=start, due_date=start + timedelta(days=30), file_id=stored.id)
            session.add(invoice)
            session.flush()
            began = time.perf_counter()
            match_new_invoice(session, invoice)
            times.append(time.perf_counter() - began)
            session.rollback()
    engine.dispose()
    print(f"database {url.split(':')[0]}: {args.invoices:,} open invoices, {args.transactions:,} unmatched incoming "
          f"transactions: match_new_invoice median {statistics.median(times) * 1000:.0f} ms, "
          f"max {max(times) * 1000:.0f} ms over {args.runs} runs")


if __name__ == "__main__":
    main()
