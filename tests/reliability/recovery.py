"""Redis loses its data while messages wait in the queue: how long until every one is final again?

The scenario shared by ``tests/reliability/test_redis_recovery.py`` (bounded) and ``bench/faults.py``
(measured): real ``inbox smtp`` and ``inbox worker`` processes, a private redis-server, a real database.

1. Mail ``messages`` invoices over SMTP while no worker runs: every one is stored, committed and
   ``queued`` (its job waits in Redis).
2. Start the workers; as soon as they are running jobs, Redis loses everything (``FLUSHALL``, or a
   restart of a redis-server without persistence), so both waiting and running jobs vanish.
3. From the moment Redis answers again, measure until every message is final and no document is left
   ``extracting``. Recovery is the production path only: the gateway's periodic sweep and the workers.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import redis
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import func, select

from core.config import Settings
from core.db import make_engine, make_session_factory
from core.models import Document, DocumentStatus, InboundMessage, MessageStatus
from tests.reliability.faults import Process, Sender, smtp_env, wait_for_port, wait_until
from tests.services import RedisProcess, free_port, process_env

TERMINAL = {MessageStatus.PROCESSED.value, MessageStatus.IGNORED.value, MessageStatus.FAILED.value,
            MessageStatus.QUARANTINED.value}
FAULTS = ("flushall", "restart")


@dataclass
class RecoveryRun:
    accepted: int = 0
    waiting_at_loss: int = 0  # messages not final when Redis lost its data
    running_at_loss: int = 0  # jobs the workers were running at that moment
    recovery_seconds: float | None = None  # Redis answering again -> the last message final (None: timed out)
    statuses: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)  # accepted Message-IDs with no document
    doubled: list[str] = field(default_factory=list)  # accepted Message-IDs with more than one document
    failed: list[tuple[int, str | None]] = field(default_factory=list)

    def summary(self) -> str:
        took = "timed out" if self.recovery_seconds is None else f"{self.recovery_seconds:.1f} s"
        return (f"accepted {self.accepted}; at the loss {self.waiting_at_loss} message(s) not final, "
                f"{self.running_at_loss} job(s) running; recovery (Redis back -> last message final): {took}; "
                f"statuses {dict(self.statuses)}; lost {len(self.lost)}, doubled {len(self.doubled)}, "
                f"failed {len(self.failed)}")


def _progress(factory, tenant_id: int) -> tuple[int, int]:  # noqa: ANN001 - a sessionmaker
    """(messages not final, documents still extracting) of the tenant."""
    with factory() as session:
        waiting = session.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.tenant_id == tenant_id, InboundMessage.status.not_in(TERMINAL)))
        extracting = session.scalar(select(func.count()).select_from(Document).where(
            Document.tenant_id == tenant_id, Document.status == DocumentStatus.EXTRACTING.value))
    return waiting or 0, extracting or 0


def run_redis_loss(
    settings: Settings, redis_proc: RedisProcess, tenant_id: int, recipient: str, logs: Path, *,
    messages: int, workers: int = 2, sweep_interval: float = 30.0, fault: str = "flushall",
    timeout: float = 600.0,
) -> RecoveryRun:
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {FAULTS}")
    engine = make_engine(settings.database_url)
    factory = make_session_factory(engine)
    port = free_port()
    smtp = Process("smtp", dict(smtp_env(settings, port), SMTP_SWEEP_INTERVAL=str(sweep_interval)),
                   logs / "smtp.log")
    pool = [Process("worker", process_env(settings), logs / f"worker-{i}.log") for i in range(workers)]
    run = RecoveryRun()
    connection = redis.Redis.from_url(settings.redis_url)
    try:
        smtp.start()
        wait_for_port(port)
        sender = Sender(port, recipient, messages, rate=1000.0)
        sender.start()
        sender.join(timeout=timeout)
        run.accepted = sender.accepted
        # Every accepted message queued by the gateway (its job waits in Redis, no worker runs yet).
        assert wait_until(lambda: _queued(factory, tenant_id) == run.accepted, timeout=60, step=0.2), \
            "the gateway did not queue every accepted message"

        for worker in pool:
            worker.start()
        started = StartedJobRegistry(queue=Queue(settings.queue_name, connection=connection))
        wait_until(lambda: started.count > 0, timeout=60, step=0.01)
        run.running_at_loss = started.count
        if fault == "flushall":
            connection.flushall()
        else:
            redis_proc.stop()
            redis_proc.start()  # returns once it answers PING
        back = time.monotonic()
        run.waiting_at_loss = _progress(factory, tenant_id)[0]
        if wait_until(lambda: _progress(factory, tenant_id) == (0, 0), timeout=timeout, step=0.25):
            run.recovery_seconds = time.monotonic() - back
        accepted = {d.message_id for d in sender.deliveries if d.accepted}
        _tally(factory, tenant_id, accepted, run)
    finally:
        smtp.terminate()
        for worker in pool:
            worker.terminate()
        connection.close()
        engine.dispose()
    return run


def _queued(factory, tenant_id: int) -> int:  # noqa: ANN001 - a sessionmaker
    with factory() as session:
        return session.scalar(select(func.count()).select_from(InboundMessage).where(
            InboundMessage.tenant_id == tenant_id, InboundMessage.status == MessageStatus.QUEUED.value)) or 0


def _tally(factory, tenant_id: int, accepted: set[str], run: RecoveryRun) -> None:  # noqa: ANN001
    with factory() as session:
        rows = session.execute(select(InboundMessage.id, InboundMessage.message_id_header, InboundMessage.status,
                                      InboundMessage.reason).where(InboundMessage.tenant_id == tenant_id)).all()
        documents = Counter(session.scalars(select(Document.message_id).where(
            Document.tenant_id == tenant_id, Document.status != DocumentStatus.DISCARDED.value)))
    per_header: Counter[str] = Counter()
    for row in rows:
        per_header[row.message_id_header] += documents[row.id]
    run.statuses = Counter(row.status for row in rows)
    run.lost = sorted(m for m in accepted if per_header[m] == 0)
    run.doubled = sorted(m for m, n in per_header.items() if n > 1)
    run.failed = [(row.id, row.reason) for row in rows if row.status == MessageStatus.FAILED.value]
