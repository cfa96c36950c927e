"""Dashboard response times on a large tenant: 100,000 invoices, 5,000 clients, on PostgreSQL.

    .venv/bin/python bench/dashboard.py [postgresql://postgres@127.0.0.1:5432/test] [--requests 50]
        [--only suppliers,search] [--payables 100000]

Creates a fresh database next to the one named (``<name>_bench_dashboard``), migrates it, seeds it with
bulk inserts, runs gunicorn (2 workers) on a free port with ``INBOX_COUNT_QUERIES=1``, logs in with
``requests`` and times each page and its API twin (p50/p95 over N requests). The large tenant also buys: 2,000 suppliers
("Société 00042 Fournitures") and ``--payables`` supplier invoices, for the suppliers list. It then compares
the SQL statements per request (``X-Query-Count``) between a tenant showing 10 rows and the big one showing 50:
they must be equal (no query per row). The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.config import Settings, normalize_database_url  # noqa: E402
from core.fields import number_key  # noqa: E402
from core.models import (  # noqa: E402
    CashMovement,
    Client,
    Document,
    InboundMessage,
    Invoice,
    Role,
    StoredFile,
    utcnow,
)
from core.models_profiles import DocumentReading  # noqa: E402
from core.receivables import summaries  # noqa: E402
from core.tenancy import accounts  # noqa: E402

PASSWORD = "bench password 2026"
PAGES = [  # (name, HTML path, API twin); {client} is a client of the tenant
    ("pending", "/pending", "/api/v1/documents?status=pending"),
    ("invoices", "/invoices", "/api/v1/invoices?type=invoice"),
    ("credit notes", "/credit-notes", "/api/v1/invoices?type=credit_note"),
    ("clients", "/clients", "/api/v1/clients"),
    ("client page", "/clients/{client}", "/api/v1/clients/{client}"),
    ("imports", "/imports", "/api/v1/messages"),
    ("analytics", "/analytics", "/api/v1/analytics"),
    # Issue 17 item 6: search, filters and sorts ({number}, {amount}: an existing invoice's).
    ("search: number", "/invoices?q={number}", "/api/v1/invoices?q={number}"),
    ("search: client name", "/invoices?q=client+00042", "/api/v1/invoices?q=client+00042"),
    ("search: amount", "/invoices?q={amount}", "/api/v1/invoices?q={amount}"),
    ("search: no match", "/invoices?q=zzqx", "/api/v1/invoices?q=zzqx"),
    ("filter: overdue, amounts", "/invoices?status=overdue&amount_min=1000&amount_max=5000&sort=-amount",
     "/api/v1/invoices?status=overdue&amount_min=1000&amount_max=5000&sort=-amount"),
    ("filter: dates, by client", "/invoices?date_from=2025-01-01&date_to=2025-03-31&sort=client",
     "/api/v1/invoices?date_from=2025-01-01&date_to=2025-03-31&sort=client"),
    ("pending: text search", "/pending?q=chantier+0042", "/api/v1/documents?status=pending&q=chantier+0042"),
    ("export CSV: client search", "/invoices/export.csv?q=client+00042", "/api/v1/invoices?q=client+00042"),
    # Issue 17: the suppliers list at 100,000 supplier invoices ({pnumber}: one of them).
    ("suppliers", "/suppliers", "/api/v1/suppliers"),
    ("suppliers: by name, page 20", "/suppliers?sort=name&page=20", "/api/v1/suppliers?sort=name&page=20"),
    ("suppliers: search name", "/suppliers?q=societe+00042", "/api/v1/suppliers?q=societe+00042"),
    ("suppliers: search number", "/suppliers?q={pnumber}", "/api/v1/suppliers?q={pnumber}"),
    ("suppliers: search most", "/suppliers?q=fournitures", "/api/v1/suppliers?q=fournitures"),
    ("suppliers: no match", "/suppliers?q=zzqx", "/api/v1/suppliers?q=zzqx"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def create_database(admin_url: str, name: str) -> str:
    engine = create_engine(normalize_database_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    engine = create_engine(normalize_database_url(admin_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


def settings_for(url: str, var_dir: Path) -> Settings:
    return Settings(var_dir=var_dir, database_url=url, redis_url="redis://127.0.0.1:1/0", storage_dir=var_dir / "s",
                    inbound_domain="in.bench.test", smtp_host="127.0.0.1", smtp_port=0, port=0,
                    secret_key="bench-secret-key", max_message_bytes=25 * 1024 * 1024, queue_name="bench")


def migrate(settings: Settings) -> None:
    from flask_migrate import upgrade

    from dashboard.app import MIGRATIONS_DIR, create_app
    from dashboard.extensions import db

    app = create_app(settings)
    with app.app_context():
        upgrade(directory=str(MIGRATIONS_DIR), revision="heads")
        db.engine.dispose()


def _insert_invoices(conn: Any, rows: list[dict[str, Any]]) -> None:
    """Invoices and, as validation records them, an expected cash movement at each invoice's due date."""
    returning = insert(Invoice.__table__).returning(Invoice.id, sort_by_parameter_order=True)
    ids = conn.execute(returning, rows).scalars().all()
    conn.execute(insert(CashMovement.__table__), [
        {"tenant_id": row["tenant_id"], "invoice_id": invoice_id, "direction": "in", "kind": "expected",
         "expected_date": row["due_date"], "amount": row["amount"], "currency": row["currency"],
         "created_at": row["created_at"]}
        for invoice_id, row in zip(ids, rows, strict=True) if row["doc_type"] == "invoice"])


def seed_payables(conn: Any, tid: int, file_id: int, count: int, supplier_count: int, rng: random.Random) -> None:
    """``supplier_count`` suppliers and ``count`` supplier invoices issued over 1,060 days, paid as a company
    pays: those due before 2026-10-01 are paid but 3 % (late or disputed), the later ones open (≈ 11 % open)."""
    now = utcnow()
    conn.execute(insert(Client.__table__), [
        {"tenant_id": tid, "role": "supplier", "name": f"Société {i:05d} Fournitures",
         "normalized_name": f"societe {i:05d} fournitures", "created_at": now} for i in range(supplier_count)])
    supplier_ids = [row[0] for row in conn.execute(
        text("SELECT id FROM clients WHERE tenant_id = :t AND role = 'supplier'"), {"t": tid})]
    names = dict(conn.execute(text("SELECT id, name FROM clients WHERE tenant_id = :t AND role = 'supplier'"),
                              {"t": tid}).all())
    rows = []
    for i in range(count):
        net = Decimal(rng.randrange(1_000, 2_000_000)) / 100
        amount = (net * Decimal("1.2")).quantize(Decimal("0.01"))
        issued = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 1060))
        paid = issued + timedelta(days=30) < date(2026, 10, 1) and rng.random() >= 0.03
        supplier = rng.choice(supplier_ids)
        number = f"ACH-{i:07d}"
        rows.append({
            "tenant_id": tid, "direction": "payable", "number_key": number_key(number), "number": number,
            "client_id": supplier, "status": "paid" if paid else "open", "amount_paid": amount if paid else 0,
            "paid_at": issued + timedelta(days=rng.randrange(10, 60)) if paid else None, "file_id": file_id,
            "created_at": now, "doc_type": "invoice", "issuer": names[supplier], "title": None, "amount": amount,
            "net_amount": net, "tax_amount": amount - net, "currency": "EUR", "issue_date": issued,
            "due_date": issued + timedelta(days=30)})
        if len(rows) == 10_000:
            conn.execute(insert(Invoice.__table__), rows)
            rows = []
    if rows:
        conn.execute(insert(Invoice.__table__), rows)


def seed_tenant(session: Any, name: str, email: str, invoices: int, clients: int,
                messages: int, payables: int = 0, supplier_count: int = 0) -> int:
    """A tenant with an admin, ``clients`` clients, ``invoices`` invoices (10 % credit notes), messages."""
    tenant, _address = accounts.create_tenant(session, name)
    accounts.create_user(session, email, PASSWORD, tenant, Role.ADMIN)
    session.commit()
    tid = tenant.id
    conn = session.connection()
    rng = random.Random(tid)
    file_id = conn.execute(insert(StoredFile.__table__).returning(StoredFile.id), {
        "tenant_id": tid, "sha256": f"{tid:064d}", "size": 1, "content_type": "application/pdf",
        "storage_key": f"bench/{tid}"}).scalar_one()
    now = utcnow()
    conn.execute(insert(Client.__table__), [
        {"tenant_id": tid, "name": f"Client {i:05d} SAS", "normalized_name": f"client {i:05d} sas", "created_at": now}
        for i in range(clients)])
    client_ids = [row[0] for row in conn.execute(text("SELECT id FROM clients WHERE tenant_id = :t"), {"t": tid})]
    rows = []
    # Issued from 2024-01-01 over 1,060 days, due 30 days later: the last ones are not due yet on the
    # day of the run (2026-11-24), so "not due", every ageing bucket and the forecast have amounts.
    for i in range(invoices):
        credit = i % 10 == 0
        net = Decimal(rng.randrange(10_000, 5_000_000)) / 100
        amount = (net * Decimal("1.2")).quantize(Decimal("0.01"))
        issued = date(2024, 1, 1) + timedelta(days=rng.randrange(0, 1060))
        number = f"{'AV' if credit else 'FA'}-{i:07d}"
        status = rng.choice(("open", "open", "paid", "partially_paid"))
        paid = {"open": Decimal("0"), "paid": amount, "partially_paid": (amount / 3).quantize(Decimal("0.01"))}
        rows.append({
            "tenant_id": tid, "direction": "receivable", "number_key": number_key(number), "number": number,
            "client_id": rng.choice(client_ids), "status": status, "amount_paid": paid[status],
            "paid_at": issued + timedelta(days=rng.randrange(10, 60)) if status == "paid" else None,
            "file_id": file_id, "created_at": now,
            "doc_type": "credit_note" if credit else "invoice", "issuer": name, "title": None,
            "amount": amount, "net_amount": net, "tax_amount": amount - net,
            "currency": "EUR", "issue_date": issued, "due_date": issued + timedelta(days=30),
        })
        if len(rows) == 10_000:
            _insert_invoices(conn, rows)
            rows = []
    if rows:
        _insert_invoices(conn, rows)
    if payables:
        seed_payables(conn, tid, file_id, payables, supplier_count, rng)
    message_rows = [{
        "tenant_id": tid, "source": "smtp", "recipient": "x@in.bench.test", "sender": f"sender{i}@example.com",
        "subject": f"Facture {i}", "raw_key": f"bench/raw/{i}", "raw_sha256": f"{i:064d}", "raw_size": 1000,
        "status": "processed", "attempts": 1, "received_at": now - timedelta(minutes=i)} for i in range(messages)]
    conn.execute(insert(InboundMessage.__table__), message_rows)
    message_ids = [row[0] for row in conn.execute(text("SELECT id FROM messages WHERE tenant_id = :t"), {"t": tid})]
    conn.execute(insert(Document.__table__), [{
        "tenant_id": tid, "message_id": mid, "part_index": 1, "file_id": file_id, "filename": "facture.pdf",
        "direction": "receivable", "status": "pending", "field_info": {}, "created_at": now, "updated_at": now,
        "number": f"P-{mid}", "doc_type": "invoice"} for mid in message_ids])
    # The text each pending document was read from (searched by the lists, issue 17 item 6).
    document_ids = [row[0] for row in conn.execute(text("SELECT id FROM documents WHERE tenant_id = :t"), {"t": tid})]
    conn.execute(insert(DocumentReading.__table__), [{
        "document_id": did, "tenant_id": tid, "extracted": {}, "created_at": now,
        "text": f"FACTURE P-{did}\nChantier {i:04d}, {name}\nMontant TTC {rng.randrange(100, 99999)},00 EUR\n"
                "Conditions de paiement : 30 jours fin de mois. " * 3} for i, did in enumerate(document_ids)])
    session.commit()
    return tid


def seed(url: str, settings: Settings, payables: int = 100_000) -> dict[str, Any]:
    from sqlalchemy.orm import Session

    engine = create_engine(normalize_database_url(url))
    started = time.perf_counter()
    with Session(engine) as session:
        big = seed_tenant(session, "Grande Entreprise SA", "admin@big.bench", 100_000, 5_000, 2_000,
                          payables, 2_000)
        small = seed_tenant(session, "Petite SARL", "admin@small.bench", 10, 10, 10, 10, 10)
        conn = session.connection()
        # The client with the most open invoices on each side: with none, the page would skip its eager
        # loads (no rows to load for) and the statement counts would differ for that reason alone.
        busiest = text("SELECT client_id FROM invoices WHERE tenant_id = :t AND status <> 'paid' "
                       "AND doc_type = 'invoice' GROUP BY client_id ORDER BY count(*) DESC, client_id LIMIT 1")
        big_client = conn.execute(busiest, {"t": big}).scalar_one()
        small_client = conn.execute(busiest, {"t": small}).scalar_one()
        # An invoice in the middle of each tenant, whose number and amount the search pages look for.
        sample = text("SELECT number, amount FROM invoices WHERE tenant_id = :t AND doc_type = 'invoice' ORDER BY id "
                      "OFFSET (SELECT count(*) / 2 FROM invoices WHERE tenant_id = :t) LIMIT 1")
        big_number, big_amount = conn.execute(sample, {"t": big}).one()
        small_number, small_amount = conn.execute(sample, {"t": small}).one()
        purchase = text("SELECT number FROM invoices WHERE tenant_id = :t AND direction = 'payable' ORDER BY id "
                        "OFFSET (SELECT count(*) / 2 FROM invoices WHERE tenant_id = :t AND direction = 'payable') "
                        "LIMIT 1")
        big_pnumber, small_pnumber = (conn.execute(purchase, {"t": t}).scalar_one() for t in (big, small))
        # Bulk inserts bypass the summaries' flush listener: rebuild them, as the migration does for
        # existing data (the time it takes is the migration's backfill time for such a tenant).
        rebuilt = time.perf_counter()
        summaries.rebuild(conn)
        session.commit()
        print(f"summaries rebuilt in {time.perf_counter() - rebuilt:.1f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
    engine.dispose()
    print(f"seeded in {time.perf_counter() - started:.1f} s", flush=True)
    return {"big": big, "small": small, "big_client": big_client, "small_client": small_client,
            "big_number": big_number, "small_number": small_number, "big_pnumber": big_pnumber,
            "small_pnumber": small_pnumber,
            "big_amount": f"{big_amount:.2f}".replace(".", ","),
            "small_amount": f"{small_amount:.2f}".replace(".", ",")}


def api_token(url: str, email: str) -> str:
    from sqlalchemy.orm import Session

    from core.models import User

    engine = create_engine(normalize_database_url(url))
    with Session(engine) as session:
        user = session.query(User).filter_by(email=email).one()
        token = accounts.create_token(session, user)
        session.commit()
    engine.dispose()
    return token


def login(base: str, email: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    response = browser.post(f"{base}/login", data={"email": email, "password": PASSWORD, "csrf_token": token},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 302, response.status_code
    return browser


def timed(
    client: requests.Session, url: str, count: int, headers: dict[str, str] | None = None
) -> tuple[list[float], int]:
    times, queries = [], -1
    for _ in range(count + 2):  # two warm-up requests (one per worker)
        start = time.perf_counter()
        response = client.get(url, headers=headers, timeout=60)
        times.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}")
        queries = int(response.headers.get("X-Query-Count", "-1"))
    return times[2:], queries


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database_url", nargs="?", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--only", default="", help="comma-separated page labels' beginnings: time only those")
    parser.add_argument("--payables", type=int, default=100_000, help="supplier invoices of the large tenant")
    parser.add_argument("--keep", action="store_true", help="keep the database (for EXPLAIN) instead of dropping it")
    args = parser.parse_args()
    name = f"{make_url(args.database_url).database}_bench_dashboard"
    url = create_database(args.database_url, name)
    server = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = settings_for(url, Path(tmp))
            migrate(settings)
            ids = seed(url, settings, args.payables)
            port = free_port()
            env = dict(os.environ, DATABASE_URL=url, VAR_DIR=tmp, STORAGE_DIR=str(settings.storage_dir),
                       SECRET_KEY="bench-secret-key", INBOUND_DOMAIN="in.bench.test", INBOX_COUNT_QUERIES="1",
                       REDIS_URL="redis://127.0.0.1:1/0")
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-w", "2", "-b", f"127.0.0.1:{port}", "--log-level", "warning",
                 "dashboard.wsgi:app"], cwd=ROOT, env=env)
            base = f"http://127.0.0.1:{port}"
            for _ in range(100):
                try:
                    requests.get(f"{base}/login", timeout=10)
                    break
                except requests.RequestException:  # booting: refused or not answering yet
                    time.sleep(0.2)
            big, small = login(base, "admin@big.bench"), login(base, "admin@small.bench")
            big_token, small_token = api_token(url, "admin@big.bench"), api_token(url, "admin@small.bench")
            print(f"\nload: {' '.join(f'{x:.1f}' for x in os.getloadavg())} (1/5/15 min)")
            print(f"{'page':<28} {'p50 ms':>8} {'p95 ms':>8} {'SQL (10 rows)':>14} {'SQL (50 rows)':>14}")
            only = tuple(x.strip() for x in args.only.split(",") if x.strip())
            for label, html, api in PAGES:
                if only and not label.startswith(only):
                    continue
                for kind, path in (("", html), (" (API)", api)):
                    token_big = {"Authorization": f"Bearer {big_token}"} if kind else None
                    token_small = {"Authorization": f"Bearer {small_token}"} if kind else None
                    big_path = path.format(client=ids["big_client"], number=ids["big_number"],
                                           amount=ids["big_amount"], pnumber=ids["big_pnumber"])
                    sep = "&" if "?" in big_path else "?"
                    big_path = big_path + (f"{sep}per_page=50" if kind else "")
                    small_path = path.format(client=ids["small_client"], number=ids["small_number"],
                                             amount=ids["small_amount"], pnumber=ids["small_pnumber"])
                    try:
                        times, q_big = timed(big, base + big_path, args.requests, token_big)
                        _, q_small = timed(small, base + small_path, 1, token_small)
                    except SystemExit as exc:
                        print(f"{label + kind:<28} {exc}")
                        continue
                    print(f"{label + kind:<28} {percentile(times, 50):>8.1f} {percentile(times, 95):>8.1f} "
                          f"{q_small:>14} {q_big:>14}", flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        if args.keep:
            print(f"kept: {url}")
        else:
            drop_database(args.database_url, name)


if __name__ == "__main__":
    main()
