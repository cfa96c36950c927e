"""Several hosts: two SMTP gateways, two workers and two web processes share one PostgreSQL, one Redis and
one S3 object store (SeaweedFS); one gateway and one worker are SIGKILLed during the load. Every message
that got a 250 ends processed exactly once, its files in the bucket, and both web processes are ready.

Bounded in CI (``MULTIHOST_MESSAGES``, default 60); the issue's full run: ``MULTIHOST_MESSAGES=1000``.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from core.db import make_engine, make_session_factory, session_scope
from core.models import Document, InboundMessage, StoredFile
from core.tenancy import accounts
from tests.conftest import _base_settings, _migrate
from tests.reliability.faults import Process, Sender, smtp_env, wait_for_port, wait_until
from tests.reliability.pgcluster import PostgresCluster
from tests.reliability.test_faults import TERMINAL, _settle
from tests.s3server import SeaweedS3
from tests.services import RedisProcess, free_port, process_env

MESSAGES = int(os.environ.get("MULTIHOST_MESSAGES", "60"))
JOB_TIMEOUT = 60

pytestmark = pytest.mark.timeout(1800)


class MxSender(Sender):
    """An MTA in front of several MX hosts of equal preference: each attempt goes to the next one, so a
    dead gateway costs a retry, never the message."""

    def __init__(self, ports: list[int], *args, **kwargs) -> None:  # noqa: ANN002, ANN003 - Sender's
        self._ports = itertools.cycle(ports)
        self._ports_lock = threading.Lock()
        super().__init__(ports[0], *args, **kwargs)

    @property
    def port(self) -> int:
        with self._ports_lock:
            return next(self._ports)

    @port.setter
    def port(self, _value: int) -> None:  # Sender.__init__ assigns one port: the cycle replaces it
        pass


def _web(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
             "dashboard.wsgi:app"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def test_two_of_everything_share_the_services_and_lose_nothing(tmp_path: Path) -> None:
    cluster = PostgresCluster()
    cluster.init()
    redis_proc = RedisProcess(tmp_path / "redis")
    s3 = SeaweedS3(tmp_path / "s3")
    processes: list[Process] = []
    webs: list[subprocess.Popen[bytes]] = []
    try:
        redis_proc.start()
        s3.start()
        # RQ re-runs a job whose worker died once the job's heartbeat expires, JOB_TIMEOUT + 60 s after it
        # started: a shorter limit than the default 300 s keeps the test's wait short.
        settings = replace(_base_settings(tmp_path / "var", cluster.url, redis_proc.url), job_timeout=JOB_TIMEOUT)
        _migrate(settings)
        engine = make_engine(cluster.url)
        with session_scope(make_session_factory(engine)) as session:
            tenant, address = accounts.create_tenant(session, "Multi SA")
            session.flush()
            tenant_id, recipient = tenant.id, accounts.address_of(address, settings.inbound_domain)
        engine.dispose()
        logs = tmp_path / "logs"
        logs.mkdir()
        shared = dict(process_env(settings), JOB_TIMEOUT=str(JOB_TIMEOUT), **s3.env())
        ports = [free_port(), free_port()]
        gateways = [Process("smtp", dict(smtp_env(settings, port), JOB_TIMEOUT=str(JOB_TIMEOUT), **s3.env()),
                            logs / f"smtp-{i}.log")
                    for i, port in enumerate(ports)]
        workers = [Process("worker", shared, logs / f"worker-{i}.log") for i in range(2)]
        processes = [*gateways, *workers]
        for gateway, port in zip(gateways, ports, strict=True):
            gateway.start()
            wait_for_port(port)
        for worker in workers:
            worker.start()
        web_ports = [free_port(), free_port()]
        webs = [_web(shared, port, logs / f"web-{i}.log") for i, port in enumerate(web_ports)]

        sender = MxSender(ports, recipient, MESSAGES, rate=max(MESSAGES / 20, 1.0))
        started = time.monotonic()
        sender.start()
        assert wait_until(lambda: sender.accepted >= MESSAGES // 3, timeout=300)
        gateways[0].kill()  # one MX host dies; its senders retry on the other
        assert wait_until(lambda: sender.accepted >= MESSAGES // 2, timeout=300)
        workers[0].kill()  # one worker host dies, perhaps in the middle of a job
        sender.join(timeout=600)
        sent = time.monotonic() - started
        counts = _settle(settings, tenant_id, timeout=max(300, MESSAGES))
        final = time.monotonic() - started  # the last message final (the settle loop looks every second)
        assert wait_until(lambda: all(_ready(port) for port in web_ports), timeout=60, step=0.5)

        engine = make_engine(cluster.url)
        with make_session_factory(engine)() as session:
            keys = list(session.scalars(select(StoredFile.storage_key).where(StoredFile.tenant_id == tenant_id)))
            raw_keys = list(session.scalars(
                select(InboundMessage.raw_key).where(InboundMessage.tenant_id == tenant_id)))
            pending = session.scalar(select(Document.id).where(Document.tenant_id == tenant_id).limit(1))
        engine.dispose()
    finally:
        for web in webs:
            web.terminate()
            web.wait(timeout=30)
        for process in processes:
            process.terminate()
        s3_keys = set(s3.keys("inbox/")) if s3.process is not None else set()
        s3.stop()
        redis_proc.stop()
        cluster.destroy()

    accepted = {d.message_id for d in sender.deliveries if d.accepted}
    docs_per_message = Counter(d.message_id for d in counts["documents"] if d.status != "discarded")
    per_header: Counter[str] = Counter()
    for m in counts["messages"]:
        per_header[m.message_id_header] += docs_per_message[m.id]
    lost = [mid for mid in accepted if per_header[mid] == 0]
    doubled = [mid for mid, n in per_header.items() if n > 1]
    not_terminal = [m for m in counts["messages"] if m.status not in TERMINAL]
    failed = [(m.id, m.reason) for m in counts["messages"] if m.status == "failed"]
    print(f"\n[multihost] {MESSAGES} messages over 2 gateways (one killed), 2 workers (one killed): "
          f"sender {dict(sender.summary())}; messages {Counter(m.status for m in counts['messages'])}; "
          f"lost {len(lost)}, doubled {len(doubled)}, failed {len(failed)}; {len(s3_keys)} objects in the bucket; "
          f"last 250 after {sent:.0f} s, every message final after {final:.0f} s")
    assert len(accepted) == MESSAGES, "every message got its 250 in the end (the MTA retried on the other MX)"
    assert not lost and not doubled and not not_terminal and not failed, (lost[:3], doubled[:3], failed[:3])
    assert pending is not None
    assert {f"inbox/{key}" for key in [*keys, *raw_keys]} <= s3_keys  # every byte in the shared bucket
    assert not list(settings.storage_dir.rglob("*")) if settings.storage_dir.exists() else True  # nothing local
