"""Load: the dashboard under wrk at 100 connections, and the SMTP gateway under Postfix's smtp-source.

    .venv/bin/python bench/load.py dashboard [--connections 100] [--seconds 60] [--web-workers 2]
    .venv/bin/python bench/load.py smtp [--seconds 600] [--sessions 10] [--workers 2]

``dashboard`` seeds PostgreSQL as bench/dashboard.py does (100,000 invoices, 5,000 clients), runs gunicorn as
the Procfile does, logs in, and lets wrk (Debian package) hammer the pages with the session cookie, then the
API twins with the bearer token; it prints requests/s, p50/p95/p99 and error counts (non-2xx, socket).

``smtp`` runs the real gateway (``inbox smtp``) and RQ workers on SQLite with a private redis-server, and
smtp-source (Debian package postfix; postfix itself is never started) delivers a 200 kB invoice email over
``--sessions`` parallel sessions for ``--seconds``. It prints the messages accepted per second, smtp-source's
errors, then waits for the workers to drain the queue and prints end-to-end latency (stored -> pending
verification) p50/p95 and the drain time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _bench_dashboard():  # noqa: ANN202 - bench/dashboard.py, loaded under another name than the package
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_dashboard", ROOT / "bench" / "dashboard.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


_seeding = _bench_dashboard()
api_token, create_database, drop_database = _seeding.api_token, _seeding.create_database, _seeding.drop_database
free_port, login, migrate, seed, settings_for = (_seeding.free_port, _seeding.login, _seeding.migrate, _seeding.seed,
                                                 _seeding.settings_for)

WRK_SCRIPT = """
local paths = {%(paths)s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %%d, "seconds": %%.2f, "p50": %%.1f, "p95": %%.1f, "p99": %%.1f, ' ..
    '"non2xx": %%d, "connect": %%d, "read": %%d, "write": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, e.status, e.connect, e.read, e.write, e.timeout))
end
"""


def _wrk(base: str, paths: list[str], header: str, connections: int, seconds: int, workdir: Path) -> dict:
    script = workdir / "paths.lua"
    script.write_text(WRK_SCRIPT % {"paths": ", ".join(json.dumps(p) for p in paths)})
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-H", header, "-s", str(script), base],
        capture_output=True, text=True, check=True,
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["rps"] = result["requests"] / result["seconds"]
    return result


def run_dashboard(args: argparse.Namespace) -> None:
    name = "test_bench_load"
    url = create_database(args.database_url, name)
    tmp = Path(tempfile.mkdtemp(prefix="inbox-load-"))
    settings = settings_for(url, tmp)
    server = None
    try:
        migrate(settings)
        ids = seed(url, settings)
        token = api_token(url, "admin@big.bench")
        port = free_port()
        env = dict(os.environ, DATABASE_URL=url, VAR_DIR=str(tmp), STORAGE_DIR=str(settings.storage_dir),
                   SECRET_KEY=settings.secret_key, INBOUND_DOMAIN=settings.inbound_domain, REDIS_URL=settings.redis_url)
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", str(args.web_workers), "-b", f"127.0.0.1:{port}",
             "--log-level", "warning", "--backlog", "2048", "dashboard.wsgi:app"], cwd=ROOT, env=env)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                browser = login(base, "admin@big.bench")
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        cookie = "; ".join(f"{c.name}={c.value}" for c in browser.cookies)
        client = ids["big_client"]
        pages = ["/pending", "/invoices", "/clients", f"/clients/{client}", "/analytics", "/imports", "/credit-notes"]
        apis = ["/api/v1/documents?status=pending", "/api/v1/invoices", "/api/v1/clients",
                f"/api/v1/clients/{client}", "/api/v1/analytics"]
        print(f"gunicorn {args.web_workers} sync workers; wrk 2 threads, {args.connections} connections, "
              f"{args.seconds} s per run; load average {os.getloadavg()[0]:.1f}", flush=True)
        for label, paths, header in (("pages (session cookie)", pages, f"Cookie: {cookie}"),
                                     ("API (bearer token)", apis, f"Authorization: Bearer {token}")):
            r = _wrk(base, paths, header, args.connections, args.seconds, tmp)
            print(f"{label:24} {r['rps']:7.1f} req/s  p50 {r['p50']:7.1f} ms  p95 {r['p95']:7.1f} ms  "
                  f"p99 {r['p99']:7.1f} ms  non-2xx {r['non2xx']}  socket errors "
                  f"{r['connect'] + r['read'] + r['write']}  timeouts {r['timeout']}  ({r['requests']} requests)",
                  flush=True)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        drop_database(args.database_url, name)
        shutil.rmtree(tmp, ignore_errors=True)


def _invoice_email(recipient: str) -> bytes:
    from tests.invoicegen import make_email, make_invoice_pdf

    pdf = make_invoice_pdf(number="LOAD-1", issue_date=date(2026, 11, 2), due_date=date(2026, 12, 2),
                           net=Decimal("1000.00"), tax=Decimal("200.00"))
    pdf += b"%" + os.urandom(150_000).hex().encode()[:150_000]  # a comment after %%EOF: ~200 kB, still a PDF
    raw = make_email(recipient, pdf, filename="facture.pdf")
    # smtp-source sends the same file every time: without a Message-ID each copy is a new message (with
    # one, every copy after the first would be recognised as a repeat and skipped).
    # smtp-source ends each line with CRLF itself: the file has bare LFs.
    return b"".join(line.rstrip(b"\r\n") + b"\n" for line in raw.splitlines(keepends=True)
                    if not line.startswith(b"Message-ID:"))


def _wait_for_port(port: int, timeout: float = 120) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def run_smtp(args: argparse.Namespace) -> None:
    from sqlalchemy import create_engine, func, select
    from sqlalchemy.orm import Session

    from core.models import Document, DocumentStatus, InboundMessage
    from core.tenancy import accounts
    from tests.services import RedisProcess, process_env

    tmp = Path(tempfile.mkdtemp(prefix="inbox-load-smtp-"))
    redis_proc = RedisProcess(tmp / "redis")
    redis_proc.start()
    url = f"sqlite:///{tmp / 'inbox.db'}"
    settings = replace(settings_for(url, tmp), redis_url=redis_proc.url)
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    migrate(settings)
    engine = create_engine(url)
    with Session(engine) as session:
        tenant, address = accounts.create_tenant(session, "Charge SA")
        session.commit()
        tenant_id, recipient = tenant.id, accounts.address_of(address, settings.inbound_domain)
    message_file = tmp / "message.eml"
    message_file.write_bytes(_invoice_email(recipient))
    port = free_port()
    env = dict(process_env(settings), SMTP_HOST="127.0.0.1", SMTP_PORT=str(port))
    logs = tmp / "logs"
    logs.mkdir()
    children = [subprocess.Popen([sys.executable, "-m", "dashboard.cli", "smtp"], env=env, cwd=ROOT,
                                 stdout=(logs / "smtp.log").open("w"), stderr=subprocess.STDOUT)]
    children += [subprocess.Popen([sys.executable, "-m", "dashboard.cli", "worker"], env=process_env(settings),
                                  cwd=ROOT, stdout=(logs / f"worker{i}.log").open("w"), stderr=subprocess.STDOUT)
                 for i in range(args.workers)]
    _wait_for_port(port)
    print(f"smtp-source: {args.sessions} sessions, {message_file.stat().st_size} bytes a message, {args.seconds} s; "
          f"{args.workers} worker(s); load average {os.getloadavg()[0]:.1f}", flush=True)
    started = time.monotonic()
    source = subprocess.Popen(
        ["smtp-source", "-s", str(args.sessions), "-m", "1000000", "-F", str(message_file), "-f",
         "billing@supplier.example", "-t", recipient, f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        source.wait(timeout=args.seconds)
    except subprocess.TimeoutExpired:
        source.send_signal(signal.SIGTERM)
    sent_for = time.monotonic() - started
    _, errors = source.communicate(timeout=30)
    error_lines = [line for line in errors.splitlines() if line.strip()]

    def counts() -> tuple[int, int]:
        with Session(engine) as session:
            stored = session.scalar(select(func.count()).select_from(InboundMessage)
                                    .where(InboundMessage.tenant_id == tenant_id)) or 0
            waiting = session.scalar(select(func.count()).select_from(Document)
                                     .where(Document.status == DocumentStatus.EXTRACTING.value)) or 0
            waiting += session.scalar(select(func.count()).select_from(InboundMessage)
                                      .where(InboundMessage.status.in_(("received", "queued")))) or 0
        return stored, waiting

    stored, waiting = counts()
    print(f"accepted {stored} messages in {sent_for:.0f} s: {stored / sent_for:.1f} msg/s; "
          f"smtp-source error lines: {len(error_lines)}; backlog at the end of the load: {waiting}", flush=True)
    for line in error_lines[:5]:
        print(f"  {line}")
    drain_started = time.monotonic()
    while counts()[1] and time.monotonic() - drain_started < 3600:
        time.sleep(2)
    drained = time.monotonic() - drain_started
    with Session(engine) as session:
        rows = session.execute(select(InboundMessage.received_at, InboundMessage.processed_at)
                               .where(InboundMessage.tenant_id == tenant_id)).all()
        statuses = dict(session.execute(select(Document.status, func.count()).group_by(Document.status)).all())
        outcomes = dict(session.execute(select(InboundMessage.status, func.count())
                                        .group_by(InboundMessage.status)).all())
        reasons = set(session.scalars(select(InboundMessage.reason).distinct().limit(5)))
    print(f"messages {outcomes} (reasons {reasons}); documents {statuses}", flush=True)
    latencies = sorted((done - received).total_seconds() for received, done in rows if done and received)
    if latencies:
        p50, p95 = latencies[len(latencies) // 2], latencies[min(len(latencies) - 1, int(len(latencies) * 0.95))]
        print(f"drained in {drained:.0f} s after the load; stored -> processed by a worker: p50 {p50:.2f} s, "
              f"p95 {p95:.2f} s, max {latencies[-1]:.2f} s over {len(latencies)} messages", flush=True)
    for child in children:
        child.send_signal(signal.SIGTERM)
    for child in children:
        child.wait(timeout=60)
    redis_proc.stop()
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    web = sub.add_parser("dashboard")
    web.add_argument("database_url", nargs="?", default="postgresql://postgres@127.0.0.1:5432/test")
    web.add_argument("--connections", type=int, default=100)
    web.add_argument("--seconds", type=int, default=60)
    web.add_argument("--web-workers", type=int, default=2)
    mail = sub.add_parser("smtp")
    mail.add_argument("--seconds", type=int, default=600)
    mail.add_argument("--sessions", type=int, default=10)
    mail.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    tool, package = ("wrk", "wrk") if args.what == "dashboard" else ("smtp-source", "postfix")
    if shutil.which(tool) is None:
        raise SystemExit(f"{tool} is missing: apt-get install {package}")
    run_dashboard(args) if args.what == "dashboard" else run_smtp(args)


if __name__ == "__main__":
    main()
