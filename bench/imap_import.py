"""IMAP import: the real poller against a real Dovecot, into a real database, file storage and Redis.

    .venv/bin/python bench/imap_import.py [--messages 500] [--kb 100] [--latency-rounds 20]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

Backlog phase: ``--messages`` e-mails of ~``--kb`` kB (an incompressible attachment) wait in the
mailbox; the poller is started and the time until every one is stored (file fsynced, row committed,
ingest job queued) AND flagged \\Seen on the server is measured: messages/s.

Latency phase: with the poller idle in IDLE, one message is appended at a time; the time from the end
of the APPEND to its row being committed is measured (observed by polling the table every 10 ms).
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402 - after the path fix-up

from core.db import make_engine, make_session_factory  # noqa: E402
from core.inbound import mailboxes as svc  # noqa: E402
from core.models import InboundMessage  # noqa: E402
from core.secrets import SecretBox  # noqa: E402
from core.tenancy import accounts  # noqa: E402
from mailgate.imap import ImapPoller, PollerConfig  # noqa: E402
from tests.conftest import _base_settings, _migrate  # noqa: E402
from tests.dovecot import DovecotServer  # noqa: E402
from tests.services import RedisProcess, create_postgres_database, drop_postgres_database  # noqa: E402

PASSWORD = "bench-imap-password"


def message(n: int, kb: int) -> bytes:
    payload = base64.encodebytes(random.Random(n).randbytes(kb * 1024 * 3 // 4)).replace(b"\n", b"\r\n")
    return (
        f"From: billing@supplier.example\r\nTo: factures@acme.example\r\nSubject: Facture {n}\r\n"
        f"Message-ID: <bench-{n}@supplier.example>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nFacture {n}\r\n'
        f'--b\r\nContent-Type: application/octet-stream; name="annexe.bin"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode() + payload + b"\r\n--b--\r\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--kb", type=int, default=100)
    parser.add_argument("--latency-rounds", type=int, default=20)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-imap-"))
    workdir.chmod(0o755)  # Dovecot's mail processes (run as "nobody" under root) must reach it
    redis_proc = RedisProcess(workdir / "redis")
    redis_proc.start()
    db_url = create_postgres_database(args.database_url) if args.database_url else f"sqlite:///{workdir / 'inbox.db'}"
    settings = _base_settings(workdir / "var", db_url, redis_proc.url)
    _migrate(settings)
    dovecot = DovecotServer(workdir / "dovecot", users={"inbox": PASSWORD})
    (workdir / "dovecot").mkdir()
    dovecot.start()
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    stop = threading.Event()
    try:
        with factory() as session:
            tenant, _ = accounts.create_tenant(session, "Bench")
            data = svc.MailboxInput(host=dovecot.host, port=str(dovecot.port), security="plain", username="inbox",
                                    secret=PASSWORD)
            svc.save_mailbox(session, SecretBox(settings.secret_key), tenant.id, data)
            session.commit()

        def stored() -> int:
            with factory() as session:
                return session.scalar(select(func.count(InboundMessage.id))) or 0

        with dovecot.client() as client:
            for n in range(args.messages):
                client.append("INBOX", message(n, args.kb))
        config = PollerConfig(reload_interval=0.2, backoff_base=0.2, backoff_max=1)
        poller = ImapPoller(settings, config)
        started = time.perf_counter()
        thread = threading.Thread(target=poller.run, args=(stop,), daemon=True)
        thread.start()
        with dovecot.client() as client:
            client.select_folder("INBOX", readonly=True)
            while stored() < args.messages or client.search("UNSEEN"):
                time.sleep(0.05)
        backlog = time.perf_counter() - started

        latencies = []
        with dovecot.client() as client:
            for n in range(args.messages, args.messages + args.latency_rounds):
                before = stored()
                client.append("INBOX", message(n, args.kb))
                sent = time.perf_counter()
                while stored() == before:
                    time.sleep(0.01)
                latencies.append(time.perf_counter() - sent)
        db = "PostgreSQL" if args.database_url else "SQLite"
        print(f"| {db} | {args.messages} × {args.kb} kB | {backlog:.1f} s | {args.messages / backlog:.1f} msg/s "
              f"| {statistics.median(latencies) * 1000:.0f} ms | {max(latencies) * 1000:.0f} ms |")
    finally:
        stop.set()
        dovecot.stop()
        redis_proc.stop()
        engine.dispose()
        if args.database_url:
            drop_postgres_database(args.database_url, db_url)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("IMAP_TIMEOUT", "60")
    main()
