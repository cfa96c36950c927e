"""Finding 10 of issue #14: resources an anonymous sender can make us spend.

A message of 200,000 empty MIME parts cost the stdlib parser ~13 s and ~87 MB per 2 MB; the parser now
stops while it parses, at ``core.mail.parsed.MAX_PARTS``. Real SMTP over a socket and the real worker.
"""

from __future__ import annotations

import smtplib
import time
import tracemalloc

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.config import Settings
from core.mail import parsed
from core.models import InboundMessage, MessageStatus
from core.queue import enqueue_ingest, get_queue
from tests.conftest import TenantFixture
from tests.services import run_worker_burst
from tests.test_smtp import running_server


def part_bomb(to: str, parts: int = 200_000) -> bytes:
    head = (f"From: bomb@attacker.example\r\nTo: {to}\r\nSubject: parts\r\nMessage-ID: <bomb@attacker.example>\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n").encode()
    return head + b"--b\r\n\r\n" * parts + b"--b--\r\n"


def test_the_parser_stops_at_the_part_limit_while_parsing() -> None:
    raw = part_bomb("x@in.example.test")
    tracemalloc.start()
    started = time.perf_counter()
    with pytest.raises(parsed.TooManyParts):
        parsed.parse(raw)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert elapsed < 5 and peak < 10 * 1024 * 1024, (elapsed, peak)  # stdlib: 13 s and 87 MB per 2 MB
    fine = part_bomb("x@in.example.test", parts=parsed.MAX_PARTS - 2)  # the message and its parts: at the limit
    assert len(list(parsed.parse(fine).iter_parts())) == parsed.MAX_PARTS - 2
    parsed.forget()


def test_a_part_bomb_over_smtp_ends_failed_with_its_reason(
    settings: Settings, session: Session, tenant: TenantFixture, session_factory  # noqa: ANN001
) -> None:
    raw = part_bomb(tenant.address)
    with running_server(settings) as controller:
        with smtplib.SMTP(controller.hostname, controller.port, timeout=60) as smtp:
            smtp.sendmail("bomb@attacker.example", [tenant.address], raw)
        assert controller.handler.in_flight.wait_idle(30)
    with session_factory() as s:
        message = s.scalars(select(InboundMessage)).one()
    enqueue_ingest(get_queue(settings), message.id)
    started = time.monotonic()
    run_worker_burst(settings)
    elapsed = time.monotonic() - started
    with session_factory() as s:
        message = s.get(InboundMessage, message.id)
        assert message.status == MessageStatus.FAILED.value
        assert "more than 1000 MIME parts" in message.reason
    assert elapsed < 30, elapsed  # the worker's start included; the stdlib parse alone took 13 s+
