"""SMTP ingest: the real gateway against a bare aiosmtpd server that discards the data (the ceiling).

    .venv/bin/python bench/smtp_ingest.py [--messages 300] [--concurrency 8] [--rounds 3] [--pdf-kb 200]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres] [--e2e-seconds 10] [--e2e-rate 10]
        [--workers 1] [--skip-throughput] [--keep]     (WORKER_CLASS=simple|fork in the environment)

Throughput phase: ``--messages`` e-mails, each with a ~``--pdf-kb`` kB invoice PDF, over ``--concurrency``
connections (each sends its share one after the other), into (1) the real gateway (``inbox smtp``
subprocess: durable file + committed row before the 250, queueing into a private redis-server) and
(2) a bare aiosmtpd server with the same settings that answers 250 without storing anything. Both run
at once and are loaded in alternation, ``--rounds`` times, so that the machine's background load hits
both alike. Reports accepted messages/s, p50/p95 time to the 250 (MAIL FROM sent -> 250 received) and
the ratio (overall and per round).

End-to-end phase: one message every 1/``--e2e-rate`` s for ``--e2e-seconds`` s, one connection each,
with one ``inbox worker`` subprocess; reports the time from each message's 250 until its document is
*pending verification*, observed by polling the documents table every 50 ms.

``--database-url`` names a PostgreSQL server: a scratch database is created there and dropped at the end.
The default is a SQLite file in a temporary directory (synchronous=FULL, as in production).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402 - after the path fix-up

from core.config import Settings  # noqa: E402
from core.db import make_engine, make_session_factory, session_scope  # noqa: E402
from core.models import Document, InboundMessage  # noqa: E402
from core.tenancy import accounts  # noqa: E402
from tests.invoicegen import make_email, make_invoice_pdf  # noqa: E402
from tests.services import (  # noqa: E402
    RedisProcess,
    create_postgres_database,
    drop_postgres_database,
    free_port,
    process_env,
)

DOMAIN = "in.bench.test"
DRAIN_TIMEOUT = 120.0  # end-to-end: how long after the last send to wait for documents to be pending
SENDER = "compta@dupont-conseil.example"


# The message -------------------------------------------------------------------------------


def invoice_pdf(target_kb: int, number: str = "FA-2026-0420") -> bytes:
    """A real invoice PDF (text layer intact) grown to ~target_kb with an incompressible embedded file.

    Embedded files are what Factur-X invoices carry too; the extractor reads the text layer as usual.
    """
    from pypdf import PdfReader, PdfWriter

    pdf = make_invoice_pdf(number=number, net=Decimal("1250.00"), tax=Decimal("250.00"))
    missing = target_kb * 1024 - len(pdf)
    if missing <= 0:
        return pdf
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_attachment("annexe-releve.bin", random.Random(42).randbytes(missing))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def wire_payload(raw: bytes) -> bytes:
    """The DATA bytes as on the wire: dot-stuffed, CRLF-terminated, with the final dot line."""
    lines = raw.split(b"\r\n")
    stuffed = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


class Messages:
    """Unique messages (a distinct Message-ID each) built from one template without re-encoding the PDF."""

    def __init__(self, recipient: str, pdf: bytes) -> None:
        template = wire_payload(make_email(recipient, pdf, subject="Facture FA-2026-0420", sender=SENDER))
        head, sep, rest = template.partition(b"Message-ID: ")
        _, _, after = rest.partition(b"\r\n")
        self._head, self._tail = head + sep, b"\r\n" + after
        self.size = len(template)

    def message_id(self, tag: str, n: int) -> str:
        return f"<bench-{tag}-{n}@dupont-conseil.example>"

    def payload(self, tag: str, n: int) -> bytes:
        return self._head + self.message_id(tag, n).encode() + self._tail


# A minimal SMTP client (asyncio, no pipelining): little client CPU, so the server is what is measured.


class SMTPError(Exception):
    pass


class Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Client:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
        client = cls(reader, writer)
        await client.expect(220)
        await client.command(b"EHLO bench.example", 250)
        return client

    async def expect(self, code: int) -> bytes:
        lines = []
        while True:
            line = await self.reader.readline()
            if not line:
                raise SMTPError("connection closed")
            lines.append(line)
            if line[3:4] != b"-":
                break
        if not lines[-1].startswith(str(code).encode()):
            raise SMTPError(b"".join(lines).decode(errors="replace").strip())
        return b"".join(lines)

    async def command(self, line: bytes, code: int) -> bytes:
        self.writer.write(line + b"\r\n")
        return await self.expect(code)

    async def send(self, recipient: str, payload: bytes) -> None:
        await self.command(f"MAIL FROM:<{SENDER}> SIZE={len(payload)}".encode(), 250)
        await self.command(f"RCPT TO:<{recipient}>".encode(), 250)
        await self.command(b"DATA", 354)
        self.writer.write(payload)
        await self.expect(250)

    async def close(self) -> None:
        with suppress(SMTPError, OSError):
            await self.command(b"QUIT", 221)
        self.writer.close()
        with suppress(OSError):
            await self.writer.wait_closed()


@dataclass
class LoadResult:
    accepted: int
    failed: int
    seconds: float
    latencies: list[float]  # MAIL FROM sent -> 250 received, per accepted message
    cpu: float = 0.0  # CPU seconds (user + system, all threads) the server process used meanwhile

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    @property
    def cpu_ms_per_message(self) -> float:
        return 1000 * self.cpu / self.accepted if self.accepted else float("nan")

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


async def load(port: int, recipient: str, messages: Messages, tag: str, total: int, concurrency: int) -> LoadResult:
    latencies: list[float] = []
    failures: list[str] = []
    counter = iter(range(total))

    async def connection() -> None:
        client = await Client.open(port)
        try:
            for n in counter:
                payload = messages.payload(tag, n)
                started = time.perf_counter()
                try:
                    await client.send(recipient, payload)
                except SMTPError as exc:
                    failures.append(str(exc))
                    await client.command(b"RSET", 250)
                    continue
                latencies.append(time.perf_counter() - started)
        finally:
            await client.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if failures:
        print(f"  {len(failures)} failure(s), first: {failures[0]}", file=sys.stderr)
    return LoadResult(len(latencies), len(failures), elapsed, latencies)


# Processes ---------------------------------------------------------------------------------


def cpu_seconds(pid: int, children: bool = False) -> float:
    """User + system CPU time of a process so far (Linux /proc): less sensitive to other load than rates.

    ``children``: plus that of its children that have exited (forked jobs, pdftotext).
    """
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


@contextmanager
def child(args: list[str], env: dict[str, str], log_path: Path, port: int | None = None) -> Iterator[subprocess.Popen]:
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        if port is not None:
            wait_for_port(port, proc)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def serve_sink(port: int, size_limit: int) -> None:
    """The ceiling: aiosmtpd with the gateway's settings, a handler that discards the data."""
    from aiosmtpd.controller import Controller

    class Discard:
        async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001 - aiosmtpd hook
            return "250 2.0.0 OK: message discarded"

    controller = Controller(Discard(), hostname="127.0.0.1", port=port, server_hostname=DOMAIN,
                            data_size_limit=size_limit, enable_SMTPUTF8=True, decode_data=False)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    controller.start()
    stopping.wait()
    controller.stop()


# The run -----------------------------------------------------------------------------------


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    recipient: str
    workdir: Path


@contextmanager
def stack(database_url: str | None, keep: bool = False) -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="smtp-bench-"))
    redis_proc = RedisProcess(workdir / "redis")
    admin_url = database_url
    db_url = create_postgres_database(admin_url) if admin_url else f"sqlite:///{workdir / 'inbox.db'}"
    try:
        redis_proc.start()
        settings = Settings(
            var_dir=workdir / "var", database_url=db_url, redis_url=redis_proc.url, storage_dir=workdir / "storage",
            inbound_domain=DOMAIN, smtp_host="127.0.0.1", smtp_port=0, port=0, secret_key="bench",
            max_message_bytes=25 * 1024 * 1024, queue_name="inbox-bench",
        )
        env = process_env(settings)
        subprocess.run([sys.executable, "-m", "dashboard.cli", "db", "upgrade", "heads"], cwd=REPO, env=env,
                       check=True, capture_output=True)
        engine = make_engine(db_url)
        with session_scope(make_session_factory(engine)) as session:
            _, address = accounts.create_tenant(session, "Bench SAS")
            recipient = accounts.address_of(address, DOMAIN)
        engine.dispose()
        yield Stack(settings, env, recipient, workdir)
    finally:
        redis_proc.stop()
        if admin_url:
            drop_postgres_database(admin_url, db_url)
        if keep:
            print(f"kept {workdir} (logs: smtp*.log, worker.log)")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def combine(results: list[LoadResult]) -> LoadResult:
    return LoadResult(
        sum(r.accepted for r in results), sum(r.failed for r in results), sum(r.seconds for r in results),
        [x for r in results for x in r.latencies], sum(r.cpu for r in results),
    )


def measured(pid: int, *load_args: object) -> LoadResult:
    """One load run against the server process ``pid``, with the CPU time that process spent on it."""
    before = cpu_seconds(pid)
    result = asyncio.run(load(*load_args))  # type: ignore[arg-type]
    result.cpu = cpu_seconds(pid) - before
    return result


def throughput(
    st: Stack, messages: Messages, total: int, concurrency: int, rounds: int
) -> tuple[LoadResult, LoadResult, list[float]]:
    """Both servers up at once, loaded in alternation for ``rounds`` rounds of total/rounds messages, so
    that a change in the machine's background load hits both alike; returns (gateway, ceiling, ratios)."""
    gateway_port, sink_port = free_port(), free_port()
    # Every bench connection comes from 127.0.0.1: the per-client cap is not what is measured here.
    env = {**st.env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(gateway_port),
           "SMTP_MAX_CONNECTIONS_PER_IP": "100000", "SMTP_MAX_CONNECTIONS": str(max(concurrency * 2, 100))}
    sink_args = [sys.executable, str(Path(__file__).resolve()), "--serve-sink", str(sink_port)]
    per_round = max(concurrency, total // rounds)
    gateway_runs: list[LoadResult] = []
    sink_runs: list[LoadResult] = []
    with (
        child([sys.executable, "-m", "dashboard.cli", "smtp"], env, st.workdir / "smtp.log", gateway_port) as gw,
        child(sink_args, st.env, st.workdir / "sink.log", sink_port) as sink,
    ):
        for port in (gateway_port, sink_port):
            asyncio.run(load(port, st.recipient, messages, "warm", concurrency, concurrency))
        for n in range(rounds):
            for port, pid, tag, runs in (
                (gateway_port, gw.pid, "gw", gateway_runs), (sink_port, sink.pid, "sink", sink_runs)
            ):
                runs.append(measured(pid, port, st.recipient, messages, f"{tag}{n}", per_round, concurrency))
    ratios = [g.rate / c.rate for g, c in zip(gateway_runs, sink_runs, strict=True)]
    return combine(gateway_runs), combine(sink_runs), ratios


def end_to_end(
    st: Stack, messages: Messages, pdf_kb: int, rate: float, seconds: float, workers: int = 1
) -> tuple[list[float], int, float, float]:
    """Latencies 250 -> pending (inf: not pending DRAIN_TIMEOUT s after the last send), messages sent, the
    processing rate (documents pending per second from the first send to the last pending one) and the
    workers' CPU time per message in ms (their own, their forked jobs' and subprocesses')."""
    port = free_port()
    # Its own queue: the throughput phase left hundreds of jobs on the first one.
    # Every message is its own connection from 127.0.0.1: the per-client cap is not what is measured.
    env = {**st.env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "QUEUE_NAME": "inbox-bench-e2e",
           "SMTP_MAX_CONNECTIONS_PER_IP": "100000"}
    engine = make_engine(st.settings.database_url)
    total = int(rate * seconds)
    accepted_at: dict[str, float] = {}
    pending_at: dict[str, float] = {}

    def poll(tag: str) -> None:
        with engine.connect() as conn:
            rows = conn.execute(
                select(InboundMessage.message_id_header)
                .join(Document, Document.message_id == InboundMessage.id)
                .where(Document.status == "pending", InboundMessage.message_id_header.like(f"<bench-{tag}-%"))
            )
            now = time.perf_counter()
            for (message_id,) in rows:
                pending_at.setdefault(message_id, now)

    # One invoice number per message: the same invoice twice would be a "duplicate", not "pending".
    def unique_payloads(tag: str, count: int) -> list[bytes]:
        return [
            wire_payload(make_email(st.recipient, invoice_pdf(pdf_kb, f"FA-{tag}-{n:05d}"), sender=SENDER,
                                    subject=f"Facture FA-{tag}-{n:05d}").replace(
                b"Message-ID: ", b"Message-ID: " + messages.message_id(tag, n).encode() + b"\r\nX-Old-Id: ", 1))
            for n in range(count)
        ]

    payloads: dict[str, list[bytes]] = {"e2ewarm": unique_payloads("e2ewarm", 3), "e2e": unique_payloads("e2e", total)}

    async def send_one(tag: str, n: int) -> None:
        client = await Client.open(port)
        try:
            await client.send(st.recipient, payloads[tag][n])
            accepted_at[messages.message_id(tag, n)] = time.perf_counter()
        finally:
            await client.close()

    async def poller(tag: str, expected: int, deadline: float) -> None:
        loop = asyncio.get_running_loop()
        while len(pending_at) < expected and time.perf_counter() < deadline:
            await loop.run_in_executor(None, poll, tag)
            await asyncio.sleep(0.05)

    started: dict[str, float] = {}

    async def run(tag: str, count: int, per_second: float, drain_timeout: float = DRAIN_TIMEOUT) -> None:
        start = started[tag] = time.perf_counter()
        watcher = asyncio.create_task(poller(tag, count, start + count / per_second + drain_timeout))
        senders = []
        for n in range(count):
            await asyncio.sleep(max(0.0, start + n / per_second - time.perf_counter()))
            senders.append(asyncio.create_task(send_one(tag, n)))
        await asyncio.gather(*senders)
        await watcher

    smtp_args = [sys.executable, "-m", "dashboard.cli", "smtp"]
    worker_args = [sys.executable, "-m", "dashboard.cli", "worker"]
    try:
        with ExitStack() as processes:
            processes.enter_context(child(smtp_args, env, st.workdir / "smtp-e2e.log", port))
            worker_pids = [
                processes.enter_context(child(worker_args, env, st.workdir / f"worker{n or ''}.log")).pid
                for n in range(workers)
            ]
            asyncio.run(run("e2ewarm", 3, 1.0, 30.0))  # worker start-up and first-import costs out of the numbers
            if len(pending_at) < 3:
                tail = (st.workdir / "worker.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"warm-up messages never reached pending; worker log:\n{tail}")
            pending_at.clear()
            accepted_at.clear()
            cpu_before = sum(cpu_seconds(pid, children=True) for pid in worker_pids)
            asyncio.run(run("e2e", total, rate))
            worker_cpu = sum(cpu_seconds(pid, children=True) for pid in worker_pids) - cpu_before
    finally:
        engine.dispose()
    latencies = [pending_at[m] - accepted_at[m] if m in pending_at else float("inf") for m in accepted_at]
    drain = max(pending_at.values(), default=started["e2e"]) - started["e2e"]
    cpu_ms = 1000 * worker_cpu / len(pending_at) if pending_at else float("nan")
    return latencies, total, (len(pending_at) / drain if drain > 0 else 0.0), cpu_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="alternating gateway/ceiling rounds")
    parser.add_argument("--pdf-kb", type=int, default=200)
    parser.add_argument("--database-url", default=None, help="a PostgreSQL server (admin URL); default SQLite")
    parser.add_argument("--e2e-rate", type=float, default=10.0, help="messages/s in the end-to-end phase")
    parser.add_argument("--e2e-seconds", type=float, default=10.0, help="0 skips the end-to-end phase")
    parser.add_argument("--workers", type=int, default=1, help="worker processes in the end-to-end phase")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and its logs")
    parser.add_argument("--serve-sink", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sink is not None:
        serve_sink(args.serve_sink, 25 * 1024 * 1024)
        return

    pdf = invoice_pdf(args.pdf_kb)
    with stack(args.database_url, args.keep) as st:
        messages = Messages(st.recipient, pdf)
        backend = "PostgreSQL" if args.database_url else "SQLite"
        print(f"backend={backend} pdf={len(pdf) / 1024:.0f} kB message={messages.size / 1024:.0f} kB "
              f"messages={args.messages} concurrency={args.concurrency} cpus={os.cpu_count()}")
        if not args.skip_throughput:
            gateway, sink, ratios = throughput(st, messages, args.messages, args.concurrency, args.rounds)
            print("| server | accepted | failed | messages/s | p50 to 250 (ms) | p95 to 250 (ms) | CPU ms/message "
                  "| CPU busy |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|")
            for name, result in (("gateway", gateway), ("bare aiosmtpd (ceiling)", sink)):
                print(f"| {name} | {result.accepted} | {result.failed} | {result.rate:.1f} | "
                      f"{result.pct(50) * 1000:.0f} | {result.pct(95) * 1000:.0f} | "
                      f"{result.cpu_ms_per_message:.1f} | {100 * result.cpu / result.seconds:.0f}% |")
            print(f"ratio gateway/ceiling: {gateway.rate / sink.rate:.2f} overall; per round "
                  + ", ".join(f"{r:.2f}" for r in ratios) + f"; median {statistics.median(ratios):.2f}")
            # CPU per message barely moves with other load: the ratio a CPU-bound gateway would reach.
            print(f"CPU ratio (ceiling CPU/message over gateway CPU/message): "
                  f"{sink.cpu_ms_per_message / gateway.cpu_ms_per_message:.2f}")
        if args.e2e_seconds > 0:
            latencies, sent, drain_rate, cpu_ms = end_to_end(
                st, messages, args.pdf_kb, args.e2e_rate, args.e2e_seconds, args.workers
            )
            done = [x for x in latencies if x != float("inf")]
            print(f"end-to-end at {args.e2e_rate:g} msg/s for {args.e2e_seconds:g} s, {args.workers} worker(s): "
                  f"{len(done)}/{sent} pending; 250 -> pending p50 {percentile(latencies, 50):.2f} s, "
                  f"p95 {percentile(latencies, 95):.2f} s, max {max(latencies, default=float('nan')):.2f} s; "
                  f"worker throughput {drain_rate:.2f} msg/s; worker CPU {cpu_ms:.0f} ms/message "
                  f"(at most {1000 / cpu_ms:.1f} msg/s on one idle core)")


if __name__ == "__main__":
    main()
