"""The moving parts of the fault-injection suite: the real processes, a retrying sender, the faults.

Everything here is the real thing: ``inbox smtp`` and ``inbox worker`` processes, a redis-server, a
PostgreSQL cluster of the test's own (or SQLite), the storage directory on disk. Faults are what an
operator sees in production: SIGKILL, a Redis or PostgreSQL restart, a file system gone read-only.
"""

from __future__ import annotations

import os
import signal
import smtplib
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from email.utils import make_msgid
from pathlib import Path

from tests.invoicegen import make_email, make_invoice_pdf
from tests.services import process_env


class Process:
    """One ``inbox <command>`` child in its own process group, restartable after a SIGKILL."""

    def __init__(self, command: str, env: dict[str, str], log: Path) -> None:
        self.command, self.env, self.log = command, env, log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "dashboard.cli", self.command], env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def kill(self) -> None:
        """SIGKILL the whole process group: no clean-up code of ours runs (a fork's job horse dies too)."""
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 30) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as client:
                if client.noop()[0] == 250:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"SMTP gateway not answering on {port}")


def invoice_email(recipient: str, number: str, pdf: bytes, message_id: str) -> bytes:
    """The invoice ``number`` as an email with the given Message-ID (each delivery's own, kept across retries)."""
    raw = make_email(recipient, pdf, filename=f"{number}.pdf", subject=f"Facture {number}")
    head, _, rest = raw.partition(b"Message-ID: ")
    _, _, rest = rest.partition(b"\r\n")
    return head + b"Message-ID: " + message_id.encode() + b"\r\n" + rest


@dataclass
class Delivery:
    """What the sending MTA saw for one message."""

    message_id: str
    number: str
    accepted: bool = False
    attempts: int = 0
    temporary: list[int] = field(default_factory=list)  # 4xx codes received before the 250
    permanent: int | None = None  # a 5xx: the sender would give up (must never happen here)
    disconnects: int = 0
    error: str | None = None  # anything else: a bug of the test's sender, reported rather than hidden


class Sender:
    """An MTA's behaviour: deliver each message, retry on 4xx and on a dropped connection, never on 5xx."""

    def __init__(self, port: int, recipient: str, count: int, rate: float, threads: int = 4,
                 give_up_after: float = 180) -> None:
        self.port, self.recipient, self.threads = port, recipient, threads
        self.give_up_after = give_up_after
        self.interval = 1 / rate  # new messages start at this pace, so that the faults meet a running load
        self._due = time.monotonic()
        self.deliveries = [Delivery(make_msgid(domain=f"r{i}.fault.example"), f"REL-{i:05d}") for i in range(count)]
        self._next = 0
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def _take(self) -> Delivery | None:
        with self._lock:
            if self._next >= len(self.deliveries):
                return None
            delivery = self.deliveries[self._next]
            self._next += 1
            start, self._due = self._due, max(self._due, time.monotonic()) + self.interval
        time.sleep(max(0.0, start - time.monotonic()))
        return delivery

    def _raw(self, delivery: Delivery) -> bytes:
        pdf = make_invoice_pdf(number=delivery.number, issue_date=date(2026, 11, 2), due_date=date(2026, 12, 2),
                               net=Decimal(100 + int(delivery.number[4:])), tax=Decimal("20.00"))
        return invoice_email(self.recipient, delivery.number, pdf, delivery.message_id)

    def _deliver(self, delivery: Delivery) -> None:
        raw = self._raw(delivery)
        deadline = time.monotonic() + self.give_up_after
        pause = 0.2
        while time.monotonic() < deadline:
            delivery.attempts += 1
            try:
                with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
                    client.sendmail("compta@dupont-conseil.example", [self.recipient], raw)
                delivery.accepted = True
                return
            except smtplib.SMTPResponseException as exc:
                if 400 <= exc.smtp_code < 500:
                    delivery.temporary.append(exc.smtp_code)
                else:
                    delivery.permanent = exc.smtp_code
                    return
            except smtplib.SMTPRecipientsRefused as exc:
                codes = [code for code, _ in exc.recipients.values()]
                if all(400 <= code < 500 for code in codes):
                    delivery.temporary.extend(codes)
                else:
                    delivery.permanent = codes[0]
                    return
            except (OSError, smtplib.SMTPException):
                delivery.disconnects += 1  # the server died mid-transaction: no 250, so send again
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)

    def _run(self) -> None:
        while (delivery := self._take()) is not None:
            try:
                self._deliver(delivery)
            except Exception as exc:  # noqa: BLE001 - keep sending the others, say what happened
                delivery.error = repr(exc)

    def start(self) -> None:
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for thread in self._workers:
            thread.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._workers:
            thread.join(max(0.0, deadline - time.monotonic()))

    @property
    def accepted(self) -> int:
        return sum(d.accepted for d in self.deliveries)

    def summary(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for d in self.deliveries:
            counts["accepted (250)"] += d.accepted
            counts["4xx answers"] += len(d.temporary)
            counts["dropped connections"] += d.disconnects
            counts["5xx answers"] += d.permanent is not None
            counts["attempts"] += d.attempts
        return counts


class ImapFeeder:
    """Delivers messages into a Dovecot mailbox at a steady pace while the poller runs (as an MTA would)."""

    def __init__(self, server, recipient: str, count: int, rate: float) -> None:  # noqa: ANN001 - DovecotServer
        self.server, self.recipient, self.interval = server, recipient, 1 / rate
        self.message_ids = [make_msgid(domain=f"i{i}.fault.example") for i in range(count)]
        self.delivered = 0
        self.append_errors = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _raw(self, index: int) -> bytes:
        number = f"IMAP-{index:05d}"
        pdf = make_invoice_pdf(number=number, issue_date=date(2026, 11, 3), due_date=date(2026, 12, 3),
                               net=Decimal(500 + index), tax=Decimal("100.00"))
        return invoice_email(self.recipient, number, pdf, self.message_ids[index])

    def _run(self) -> None:
        for index in range(len(self.message_ids)):
            raw = self._raw(index)
            for attempt in range(20):  # an MTA retries a failed delivery (Dovecot can stumble under load)
                try:
                    with self.server.client() as client:
                        client.append("INBOX", raw)
                    break
                except Exception:  # noqa: BLE001 - imaplib's errors and socket errors alike
                    self.append_errors += 1
                    time.sleep(0.2 * (attempt + 1))
            self.delivered += 1
            time.sleep(self.interval)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def unseen(self) -> int:
        with self.server.client() as client:
            client.select_folder("INBOX", readonly=True)
            return len(client.search(["UNSEEN"]))


@contextmanager
def read_only(directory: Path):
    """The directory's file system turns read-only (EROFS on write), reads still work; then recovers."""
    # One call: util-linux binds then remounts the bind read-only (the source stays writable).
    done = subprocess.run(["mount", "--bind", "-o", "ro", str(directory), str(directory)], capture_output=True,
                          text=True)
    if done.returncode:
        raise RuntimeError(f"cannot make {directory} read-only: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True, capture_output=True)


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def smtp_env(settings, port: int) -> dict[str, str]:  # noqa: ANN001 - core.config.Settings
    return dict(process_env(settings), SMTP_HOST="127.0.0.1", SMTP_PORT=str(port), SMTP_SWEEP_INTERVAL="2",
                SMTP_SHUTDOWN_GRACE="2")

