"""Nothing acknowledged is lost, nothing is imported twice, while the processes around it fail.

A sender that behaves like a real MTA (retry on 4xx and on a dropped connection) delivers a load over
SMTP into the real gateway while real workers drain the queue. During the load the test SIGKILLs the
SMTP process, SIGKILLs workers in the middle of jobs, stops and restarts Redis (losing what it held: no
persistence), restarts PostgreSQL and turns the storage file system read-only for a while. Afterwards
every message that got a ``250`` must be in a terminal state exactly once, with exactly one document.

Bounded in CI (``RELIABILITY_MESSAGES``, default 80); the full run is documented in docs/reliability.md:

    RELIABILITY_MESSAGES=1000 make reliability
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from core.config import Settings
from core.db import make_engine, make_session_factory, session_scope
from core.inbound import mailboxes as mailbox_service
from core.models import Document, InboundMessage, MessageStatus
from core.secrets import SecretBox
from core.tenancy import accounts
from tests.conftest import _base_settings, _migrate
from tests.dovecot import IMAP_PASSWORD, DovecotServer
from tests.reliability.faults import ImapFeeder, Process, Sender, read_only, smtp_env, wait_for_port, wait_until
from tests.reliability.pgcluster import PostgresCluster
from tests.services import RedisProcess, free_port, process_env
from worker.policy import BULK
from worker.queue import get_queue, queues_of
from worker.sweep import sweep_once

MESSAGES = int(os.environ.get("RELIABILITY_MESSAGES", "80"))
IMAP_MESSAGES = MESSAGES // 4  # a quarter more arrives in a mailbox the IMAP poller reads
IMAP_ENV = {"IMAP_POLL_INTERVAL": "0.5", "IMAP_BACKOFF_BASE": "0.2", "IMAP_BACKOFF_MAX": "1",
            "IMAP_RELOAD_INTERVAL": "0.5", "IMAP_TIMEOUT": "10"}
WORKERS = 2
SEND_SECONDS = float(os.environ.get("RELIABILITY_SEND_SECONDS", "30"))  # the load lasts about this long
TERMINAL = {MessageStatus.PROCESSED.value, MessageStatus.IGNORED.value, MessageStatus.FAILED.value,
            MessageStatus.QUARANTINED.value}

pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, PostgresCluster | None]]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'inbox.db'}", None
        return
    cluster = PostgresCluster()
    cluster.init()
    try:
        yield cluster.url, cluster
    finally:
        cluster.destroy()


def _counts(settings: Settings, recipient_tenant: int) -> dict[str, object]:
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            messages = session.execute(
                select(InboundMessage.id, InboundMessage.message_id_header, InboundMessage.status,
                       InboundMessage.reason).where(InboundMessage.tenant_id == recipient_tenant)
            ).all()
            documents = session.execute(
                select(Document.message_id, Document.status, Document.reason, Document.number)
                .where(Document.tenant_id == recipient_tenant)
            ).all()
            extracting = session.scalar(
                select(func.count()).select_from(Document).where(Document.status == "extracting")
            )
    finally:
        engine.dispose()
    return {"messages": messages, "documents": documents, "extracting": extracting}


def _settle(settings: Settings, tenant_id: int, timeout: float) -> dict[str, object]:
    """Let the system recover as it does in production, only sooner: the gateway's sweep, RQ's maintenance
    (abandoned jobs) and scheduler (retries with backoff)."""
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    queue: Queue = get_queue(settings)
    bulk: Queue = get_queue(settings, queue.connection, BULK)  # IMAP imports and further documents
    deadline = time.monotonic() + timeout
    try:
        while True:
            counts = _counts(settings, tenant_id)
            waiting = [m for m in counts["messages"] if m.status not in TERMINAL]
            if (not waiting and not counts["extracting"]) or time.monotonic() > deadline:
                return counts
            try:
                # What the gateway's periodic sweep and the workers' maintenance do, run more often than
                # their production intervals so that the test does not wait for minutes.
                sweep_once(settings, factory, queue, stale_after=timedelta(seconds=20), received_grace=timedelta(0))
                for each in [queue, *queues_of(bulk)]:  # every queue of worker.policy, bulk shards too
                    StartedJobRegistry(queue=each).cleanup()
                    # Retries wait 10, 60 then 300 s for RQ's scheduler: let them run now.
                    scheduled = ScheduledJobRegistry(queue=each)
                    for job_id in scheduled.get_job_ids():
                        with contextlib.suppress(InvalidJobOperation, NoSuchJobError):
                            scheduled.requeue(job_id)
            except (redis.RedisError, OSError):
                pass
            time.sleep(1)
    finally:
        queue.connection.close()
        engine.dispose()


def test_acknowledged_mail_survives_every_fault(backend, dovecot: DovecotServer, tmp_path: Path) -> None:
    database_url, cluster = backend
    redis_proc = RedisProcess(tmp_path / "redis")
    redis_proc.start()
    settings = _base_settings(tmp_path / "var", database_url, redis_proc.url)
    settings.storage_dir.mkdir(parents=True)
    _migrate(settings)
    engine = make_engine(database_url)
    with session_scope(make_session_factory(engine)) as session:
        tenant, address = accounts.create_tenant(session, "Fiable SA")
        session.flush()
        tenant_id, recipient = tenant.id, accounts.address_of(address, settings.inbound_domain)
        mailbox_service.save_mailbox(session, SecretBox(settings.secret_key), tenant_id, mailbox_service.MailboxInput(
            host=dovecot.host, port=str(dovecot.port), security="plain", username="inbox", secret=IMAP_PASSWORD,
            folder="INBOX", processed_folder="",
        ))
    engine.dispose()

    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()
    smtp = Process("smtp", smtp_env(settings, port), logs / "smtp.log")
    workers = [Process("worker", process_env(settings), logs / f"worker-{i}.log") for i in range(WORKERS)]
    sender = Sender(port, recipient, MESSAGES, rate=max(MESSAGES / SEND_SECONDS, 1.0))
    imap = Process("imap", dict(process_env(settings), **IMAP_ENV), logs / "imap.log")
    feeder = ImapFeeder(dovecot, recipient, IMAP_MESSAGES, rate=max(IMAP_MESSAGES / SEND_SECONDS, 0.5))
    faults: list[str] = []
    try:
        smtp.start()
        wait_for_port(port)
        for worker in workers:
            worker.start()
        imap.start()
        sender.start()
        feeder.start()

        def reached(share: float) -> bool:
            time.sleep(2)  # faults apart, so that each one meets a running system
            return wait_until(lambda: sender.accepted >= share * MESSAGES, timeout=300)

        assert reached(0.15)
        smtp.kill()
        faults.append(f"SIGKILL smtp at {sender.accepted} accepted")
        time.sleep(1)
        smtp.start()
        wait_for_port(port)

        assert reached(0.30)
        busy = Queue(settings.queue_name, connection=redis.Redis.from_url(settings.redis_url))
        wait_until(lambda: StartedJobRegistry(queue=busy).count > 0, timeout=10, step=0.01)
        running = StartedJobRegistry(queue=busy).count
        for worker in workers:
            worker.kill()
        faults.append(f"SIGKILL both workers with {running} job(s) running")
        for worker in workers:
            worker.start()

        assert reached(0.40)
        imap.kill()
        faults.append(f"SIGKILL imap poller with {feeder.delivered} message(s) delivered to the mailbox")
        time.sleep(1)
        imap.start()

        assert reached(0.50)
        redis_proc.stop()
        faults.append(f"Redis stopped at {sender.accepted} accepted (its data is lost: no persistence)")
        time.sleep(3)
        redis_proc.start()

        if cluster is not None:
            assert reached(0.60)
            cluster.restart()
            faults.append(f"PostgreSQL restarted (fast) at {sender.accepted} accepted")

        assert reached(0.75)
        with read_only(settings.storage_dir):
            faults.append(f"storage read-only for 3 s from {sender.accepted} accepted")
            time.sleep(3)

        sender.join(timeout=600)
        feeder.join(timeout=600)
        wait_until(lambda: feeder.unseen() == 0, timeout=120, step=0.5)  # the poller flags what it stored
        counts = _settle(settings, tenant_id, timeout=max(300, MESSAGES))
    finally:
        imap.terminate()
        smtp.terminate()
        for worker in workers:
            worker.terminate()
        redis_proc.stop()

    accepted = {d.message_id for d in sender.deliveries if d.accepted} | set(feeder.message_ids)
    unseen = feeder.unseen()
    messages = counts["messages"]
    documents = counts["documents"]
    per_header: Counter[str] = Counter()
    docs_per_message = Counter(d.message_id for d in documents if d.status != "discarded")
    not_terminal = [m for m in messages if m.status not in TERMINAL]
    failed = [(m.id, m.reason) for m in messages if m.status == MessageStatus.FAILED.value]
    failed_docs = [(d.message_id, d.reason) for d in documents if d.status == "failed"]
    for m in messages:
        per_header[m.message_id_header] += docs_per_message[m.id]
    lost = [mid for mid in accepted if per_header[mid] == 0]
    doubled = [mid for mid, n in per_header.items() if n > 1]
    numbers = Counter(d.number for d in documents if d.status != "discarded")

    for log in sorted(logs.iterdir()):  # what went wrong, in the processes' own words
        errors = [line for line in log.read_text(errors="replace").splitlines() if "Error" in line]
        print(f"  {log.name}: {len(errors)} error line(s)" + "".join(f"\n    {e[:300]}" for e in errors[-5:]))
    report = sender.summary()
    print(f"\n[reliability/{'postgresql' if cluster else 'sqlite'}] {MESSAGES} messages; faults:")
    for fault in faults:
        print(f"  - {fault}")
    print(f"  SMTP sender: {dict(report)}")
    print(f"  IMAP: {feeder.delivered} delivered to the mailbox ({feeder.append_errors} append retries), "
          f"{unseen} left unflagged")
    print(f"  stored messages: {len(messages)} ({Counter(m.status for m in messages)}), "
          f"documents: {len(documents)} ({Counter(d.status for d in documents)})")
    print(f"  lost: {len(lost)}, imported twice: {len(doubled)}, not terminal: {len(not_terminal)}, "
          f"failed messages: {len(failed)}, failed documents: {len(failed_docs)}")

    assert report["5xx answers"] == 0, "a sender was told to give up during a fault (must be 4xx)"
    refused = [d for d in sender.deliveries if not d.accepted]
    assert not refused, f"{len(refused)} message(s) never got a 250 after retrying: {refused[:3]}"
    assert not not_terminal, f"not in a terminal state: {not_terminal[:5]}"
    assert not lost, f"acknowledged but lost: {lost[:5]}"
    assert not doubled, f"imported twice: {doubled[:5]}"
    assert not failed and not failed_docs, f"failed because of a passing fault: {failed[:3]} {failed_docs[:3]}"
    assert unseen == 0, f"{unseen} message(s) left unflagged in the IMAP mailbox"
    assert all(n == 1 for n in numbers.values()) and len(numbers) == MESSAGES + IMAP_MESSAGES
