"""The SMTP gateway: accepts mail for tenant addresses at the inbound domain, and nothing else.

The contract with senders: ``250`` means the raw message is on disk (fsynced) and its row committed,
once per tenant among the recipients. Whatever prevents that is answered ``451`` so that the sender
retries. Queueing the ingest job comes after the 250 is decided and is best effort; the sweep
(``worker.sweep``), run at start-up and periodically, queues what it missed.

aiosmtpd runs the sessions on one asyncio loop; database and file work runs in threads so that an
fsync or a lock wait does not stall the sessions. Group commit (``_GroupCommitter``): one commit thread
takes every session waiting for its 250, writes their files (each fsynced), fsyncs each storage
directory once and commits all their rows in one transaction. Messages whose jobs were enqueued after
their 250 are marked queued in that thread's next transaction. Every hand-off between threads costs
GIL switches that the loop, busy reading DATA, pays for: a message crosses as few as possible (one, to
the commit thread; recipients are looked up in the database only when ``RecipientCache`` does not
know them).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import signal
import ssl
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, AnyStr, TypeVar

import redis
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, syntax
from aiosmtpd.smtp import Session as SMTPSession
from rq import Queue
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from core import logs, metrics
from core.config import Settings, env
from core.db import make_engine, make_session_factory, session_scope
from core.files import make_storage
from core.inbound import intake
from core.inbound.addresses import AddressMatch
from core.models import InboundAddress, utcnow
from core.tenancy import accounts, quotas
from mailgate.senderauth import SenderScreen
from worker.dispatch import enqueue_messages
from worker.queue import get_queue
from worker.sweep import sweep_once

log = logging.getLogger(__name__)

T = TypeVar("T")
QueueFactory = Callable[[], Queue]

IDENT = "invoice-inbox ESMTP"  # the banner names no software version
REPLY_ACCEPTED = "250 2.0.0 OK: message accepted"
REPLY_RCPT_OK = "250 2.1.5 OK"
REPLY_UNKNOWN_RCPT = "550 5.1.1 No such recipient here"
REPLY_RELAY_DENIED = "550 5.7.1 Relay access denied"
REPLY_TOO_MANY_RCPTS = "452 4.5.3 Too many recipients"
REPLY_TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
REPLY_NOT_STORED = "451 4.3.0 Could not store the message, please try again later"
REPLY_TOO_MANY_REFUSED = "421 4.7.0 Too many refused recipients, try again later"

# What our own addresses look like (local parts are generated; +tags and dots allowed). Anything else
# at our domain (quoted local parts, %-hack, embedded @) is refused without a database lookup.
_PLAIN_LOCAL_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+=-]{0,63}")

# Beyond this many accepted messages waiting to be queued (Redis slow or down), new ones are left to
# the sweep instead of piling up work in memory.
_MAX_PENDING_QUEUEING = 1000
# Messages enqueued, then marked queued in one commit, per round of the queueing task.
_QUEUE_BATCH = 100
# Deliveries (sessions waiting for their 250) committed in one transaction at most.
_MAX_COMMIT_BATCH = 64
# Messages up to this size are written by the commit thread itself, just before their batch's commit.
# Bigger ones are written first in the store pool, several at once, so that one 25 MB file does not
# hold up the small messages of the batch it would be in.
_INLINE_WRITE_MAX = 1 << 20


@dataclass(frozen=True)
class Limits:
    """Per-server limits; each can be set in ``Settings.extra`` or the environment (names below)."""

    max_recipients: int = 50  # SMTP_MAX_RECIPIENTS
    max_connections: int = 100  # SMTP_MAX_CONNECTIONS
    max_connections_per_client: int = 20  # SMTP_MAX_CONNECTIONS_PER_IP; one client cannot take all slots
    command_timeout: float = 300.0  # SMTP_TIMEOUT; RFC 5321 4.5.3.2.7 asks servers to wait 5 minutes
    sweep_interval: float = 30.0  # SMTP_SWEEP_INTERVAL
    shutdown_grace: float = 8.0  # SMTP_SHUTDOWN_GRACE; under Docker's default 10 s stop timeout
    # DATA: the connection is dropped when no byte arrives for data_idle_timeout (RFC 5321 4.5.3.2.5:
    # 3 minutes per data block), or when the whole transfer takes longer than command_timeout plus the
    # expected size (SIZE= if declared, else the size limit) at data_min_rate bytes/s: 25 MB at the
    # default 20 kB/s gets ~27 minutes, a trickling client is still cut off.
    data_idle_timeout: float = 180.0  # SMTP_DATA_IDLE_TIMEOUT
    data_min_rate: float = 20_000.0  # SMTP_DATA_MIN_RATE (bytes/s)
    # Address enumeration: after this many refused recipients from one client IP (IPv6: its /64)
    # within refused_window seconds, every RCPT from it is answered 421 and the connection dropped.
    max_refused_recipients: int = 10  # SMTP_MAX_REFUSED_RCPTS
    refused_window: float = 600.0  # SMTP_REFUSED_WINDOW
    # Clients the per-client limits do not apply to: an MX relay of ours in front of the gateway, whose
    # one address carries everybody's mail. SMTP_LIMIT_EXEMPT="10.0.0.5,192.0.2.0/24" (IPs or networks).
    exempt_networks: tuple[str, ...] = ()
    # Seconds an accepted recipient is remembered (RecipientCache); 0 asks the database at every RCPT.
    recipient_cache_seconds: float = 10.0  # SMTP_RECIPIENT_CACHE_SECONDS

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        def pick(name: str, default: float) -> float:
            value = settings.extra.get(name) or env(name)
            return float(value) if value else default

        return cls(
            max_recipients=int(pick("SMTP_MAX_RECIPIENTS", cls.max_recipients)),
            max_connections=int(pick("SMTP_MAX_CONNECTIONS", cls.max_connections)),
            max_connections_per_client=int(pick("SMTP_MAX_CONNECTIONS_PER_IP", cls.max_connections_per_client)),
            command_timeout=pick("SMTP_TIMEOUT", cls.command_timeout),
            sweep_interval=pick("SMTP_SWEEP_INTERVAL", cls.sweep_interval),
            shutdown_grace=pick("SMTP_SHUTDOWN_GRACE", cls.shutdown_grace),
            data_idle_timeout=pick("SMTP_DATA_IDLE_TIMEOUT", cls.data_idle_timeout),
            data_min_rate=pick("SMTP_DATA_MIN_RATE", cls.data_min_rate),
            max_refused_recipients=int(pick("SMTP_MAX_REFUSED_RCPTS", cls.max_refused_recipients)),
            refused_window=pick("SMTP_REFUSED_WINDOW", cls.refused_window),
            exempt_networks=_networks(settings.extra.get("SMTP_LIMIT_EXEMPT") or env("SMTP_LIMIT_EXEMPT")),
            recipient_cache_seconds=pick("SMTP_RECIPIENT_CACHE_SECONDS", cls.recipient_cache_seconds),
        )

    def exempt(self, peer: str | None) -> bool:
        """True for a client the per-client limits (connections, refused recipients) do not apply to."""
        if not self.exempt_networks or peer is None:
            return False
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return False
        return any(address in ipaddress.ip_network(network) for network in self.exempt_networks)

    def data_budget(self, expected_bytes: int) -> float:
        """Seconds a whole DATA transfer of ``expected_bytes`` may take."""
        return self.command_timeout + expected_bytes / self.data_min_rate


def _networks(value: str | None) -> tuple[str, ...]:
    """Comma-separated IPs/networks, validated now so that a typo fails at start-up."""
    items = [item.strip() for item in (value or "").split(",") if item.strip()]
    return tuple(str(ipaddress.ip_network(item, strict=False)) for item in items)


class RefusalLimiter:
    """Refused recipients per client network in a sliding window, in memory, for one process.

    Enough for the few SMTP instances a deployment runs: an enumerating client gets ``limit`` answers
    per window from each instance. Memory is bounded: at most ``max_clients`` networks (least recently
    refused evicted first) of at most ``limit`` timestamps each.
    """

    def __init__(
        self, limit: int, window: float, *, max_clients: int = 10_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._refusals: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()  # used from the loop only today; cheap insurance

    @staticmethod
    def client_key(peer: str | None) -> str:
        """The unit that is limited: the IPv4 address, or the IPv6 /64 (one host usually owns one)."""
        if peer is None:
            return "?"
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return peer
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            return str(ipaddress.ip_network(f"{address}/64", strict=False))
        return str(address)

    def blocked(self, peer: str | None) -> bool:
        if self.limit <= 0:
            return False
        with self._lock:
            times = self._refusals.get(self.client_key(peer))
            return times is not None and len(times) >= self.limit and self._clock() - times[0] < self.window

    def record(self, peer: str | None) -> None:
        if self.limit <= 0:
            return
        key = self.client_key(peer)
        with self._lock:
            times = self._refusals.pop(key, None) or deque(maxlen=self.limit)
            times.append(self._clock())
            self._refusals[key] = times  # (re)inserted last: the most recently refused
            while len(self._refusals) > self.max_clients:
                self._refusals.popitem(last=False)

    def __len__(self) -> int:
        return len(self._refusals)


@dataclass(frozen=True)
class KnownRecipient:
    """A live inbound address as found at RCPT: whose it is, which row, and until when it is accepted."""

    tenant_id: int
    match: AddressMatch
    retires_at: datetime | None

    def live(self, now: datetime) -> bool:
        return InboundAddress.accepts_mail(self.retires_at, now)


class RecipientCache:
    """The addresses this gateway accepted lately, so that a company's stream of invoices costs no
    database round trip (and no thread hand-off) at every RCPT.

    Only addresses found are kept: an unknown one is looked up every time (it is rare, and the refusal
    limiter counts it). An entry keeps the address's end date, so a retiring address is refused at its
    ``retires_at`` to the second; what an admin changes meanwhile (an address rotated without grace, a
    company deleted) reaches this gateway within ``ttl`` seconds. Bounded: least recently used first out.
    """

    def __init__(self, ttl: float, *, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, KnownRecipient]] = OrderedDict()  # loop only

    def get(self, local_part: str) -> KnownRecipient | None:
        entry = self._entries.get(local_part)
        if entry is None:
            return None
        if self._clock() >= entry[0]:
            del self._entries[local_part]
            return None
        self._entries.move_to_end(local_part)
        return entry[1]

    def put(self, local_part: str, known: KnownRecipient) -> None:
        if self.ttl <= 0:
            return
        self._entries[local_part] = (self._clock() + self.ttl, known)
        self._entries.move_to_end(local_part)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


class QuotaCache:
    """Each company's quota usage as last read, for ``ttl`` seconds, plus what this process accepted for it
    since (so a flood is counted at once, with one query per company per ``ttl``). Loop only."""

    def __init__(self, ttl: float = 30.0, *, max_entries: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl, self.max_entries, self._clock = ttl, max_entries, clock
        self._entries: OrderedDict[int, tuple[float, quotas.Usage]] = OrderedDict()

    def get(self, tenant_id: int) -> quotas.Usage | None:
        entry = self._entries.get(tenant_id)
        if entry is None or self._clock() >= entry[0]:
            self._entries.pop(tenant_id, None)
            return None
        return entry[1]

    def put(self, tenant_id: int, usage: quotas.Usage) -> None:
        self._entries[tenant_id] = (self._clock() + self.ttl, usage)
        self._entries.move_to_end(tenant_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def note(self, tenant_ids: Iterator[int] | list[int], size: int) -> None:
        for tenant_id in tenant_ids:
            entry = self._entries.get(tenant_id)
            if entry is not None:
                entry[1].messages_last_hour += 1
                entry[1].storage_bytes += size


def make_tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The STARTTLS context when a certificate is configured, else None (STARTTLS not offered).

    Raises at start-up when the files cannot be loaded: better than silently serving plain text.
    """
    if settings.smtp_tls_cert is None:
        if settings.smtp_require_tls:
            raise ValueError("SMTP_REQUIRE_TLS needs a certificate: set SMTP_TLS_CERT (and SMTP_TLS_KEY)")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)  # server side, no client certificates
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    key = None if settings.smtp_tls_key is None else str(settings.smtp_tls_key)
    context.load_cert_chain(str(settings.smtp_tls_cert), key)  # key None: the key is in the cert file
    return context


class InboxEnvelope(Envelope):
    def __init__(self) -> None:
        super().__init__()
        self.tenants: dict[int, str] = {}  # tenant id -> the first recipient given for it, as given
        self.addresses: dict[int, AddressMatch] = {}  # tenant id -> the address that recipient names


@dataclass(frozen=True)
class _Delivery:
    """What storing needs (in the commit thread or the store pool), copied off the loop's envelope."""

    raw: bytes
    sender: str
    peer: str | None
    recipients: dict[int, str]
    addresses: dict[int, AddressMatch]  # found at RCPT: the row records it without asking again
    helo: str | None = None  # kept for the worker's SPF check
    sender_auth: dict[str, Any] | None = None  # verdicts evaluated before answering (mailgate.senderauth)


@dataclass(frozen=True)
class _Written:
    """A delivery whose files are written (contents fsynced, directories not yet), rows to commit."""

    delivery: _Delivery
    files: dict[int, intake.RawFile]  # tenant id -> its copy of the message


# What the commit thread is given: a delivery to write then commit, or one whose files are written.
_ToCommit = _Delivery | _Written
# What a batch commit gives each delivery: its message ids, or why it could not be stored.
_Outcome = list[int] | Exception


@dataclass
class _CommitResult:
    """What one run of the commit thread gives back: one outcome per delivery, and how marking went."""

    outcomes: list[_Outcome]
    marks_error: Exception | None = None


class _GroupCommitter:
    """Stores concurrent sessions' messages together: their files, one fsync per storage directory and
    one transaction (one WAL fsync) for every delivery waiting, instead of one of each per message.

    No timer: when nothing is being committed, a delivery is committed at once (alone, under light
    load); deliveries arriving during a commit wait for it to finish and then go together in the next
    one, so batches grow with the load. ``commit`` runs in ``pool`` (one thread: one commit at a time)
    and returns one outcome per delivery; each waiting session gets its own.

    Messages whose ingest jobs were enqueued are marked ``queued`` by the same thread, in the next
    transaction it commits anyway (``mark_queued``): under load, marking costs no commit of its own.
    """

    def __init__(
        self, commit: Callable[[list[_ToCommit], list[int]], _CommitResult], pool: ThreadPoolExecutor, max_batch: int
    ) -> None:
        self._commit = commit
        self._pool = pool
        self._max_batch = max_batch
        self._waiting: list[tuple[_ToCommit, asyncio.Future[list[int]]]] = []
        self._marks: list[tuple[list[int], asyncio.Future[None]]] = []
        self._runner: asyncio.Task[None] | None = None
        # Counters, read by tests and logged at DEBUG: how much batching happens.
        self.batches = 0
        self.deliveries = 0
        self.largest = 0
        self.marks_with_deliveries = 0  # commits that carried queued marks along with deliveries

    @property
    def waiting(self) -> int:
        """Deliveries waiting for the next commit (not counting the one being committed)."""
        return len(self._waiting)

    @property
    def marks_waiting(self) -> int:
        """Requests to mark messages queued waiting for the next commit."""
        return len(self._marks)

    @property
    def busy(self) -> bool:
        return self._runner is not None

    async def submit(self, item: _ToCommit) -> list[int]:
        """The message ids once committed; raises what prevented storing the message."""
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        self._start()
        return await future

    async def mark_queued(self, message_ids: list[int]) -> None:
        """``received`` -> ``queued`` for messages whose jobs are enqueued, once committed; raises if not."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._marks.append((message_ids, future))
        self._start()
        await future

    def _start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting or self._marks:
                batch = self._waiting[: self._max_batch]
                del self._waiting[: self._max_batch]
                marks, self._marks = self._marks, []
                mark_ids = [message_id for ids, _ in marks for message_id in ids]
                try:
                    result: _CommitResult = await loop.run_in_executor(
                        self._pool, self._commit, [item for item, _ in batch], mark_ids
                    )
                except Exception as exc:  # e.g. the directory fsync: nothing of the batch is committed
                    result = _CommitResult([exc] * len(batch), exc)
                except BaseException:  # cancelled (the loop is stopping): nobody gets a 250
                    futures: list[asyncio.Future[Any]] = [future for _, future in batch + self._waiting]
                    futures += [future for _, future in marks + self._marks]
                    for future in futures:
                        if not future.done():
                            future.set_exception(RuntimeError("server stopping"))
                    self._waiting.clear()
                    self._marks.clear()
                    raise
                if batch:
                    self.batches += 1
                    self.deliveries += len(batch)
                    self.largest = max(self.largest, len(batch))
                    log.debug("committed %d deliveries in one batch", len(batch))
                if mark_ids and batch:
                    self.marks_with_deliveries += 1
                for (_, future), outcome in zip(batch, result.outcomes, strict=True):
                    if future.done():  # the session went away while waiting (its rows are kept)
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
                for _, mark_future in marks:
                    if not mark_future.done():
                        if result.marks_error is None:
                            mark_future.set_result(None)
                        else:
                            mark_future.set_exception(result.marks_error)
        finally:
            self._runner = None


class _InFlight:
    """Counts work that a graceful stop waits for; entered on the loop, waited on from another thread."""

    def __init__(self) -> None:
        self._count = 0
        self._cond = threading.Condition()

    def enter(self) -> None:
        with self._cond:
            self._count += 1

    def leave(self) -> None:
        with self._cond:
            self._count -= 1
            self._cond.notify_all()

    @contextmanager
    def track(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def wait_idle(self, timeout: float | None) -> bool:
        """True once nothing is in flight, False if ``timeout`` seconds passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count == 0, timeout)


def _peer_ip(session: SMTPSession) -> str | None:
    peer: Any = session.peer  # (host, port[, flow, scope]) for TCP
    if isinstance(peer, tuple) and peer:
        return str(peer[0])[:64]
    return None if peer is None else str(peer)[:64]


class InboxHandler:
    """The aiosmtpd hooks, plus the server's background work: queueing accepted messages, sweeping."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        queue_factory: QueueFactory,
        limits: Limits,
        *,
        engine: Engine | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits
        self.session_factory = session_factory
        self.storage = make_storage(settings)
        self.in_flight = _InFlight()
        self.refusals = RefusalLimiter(limits.max_refused_recipients, limits.refused_window)
        self.recipients = RecipientCache(limits.recipient_cache_seconds)
        self.quota_limits = quotas.Limits.of(settings)
        self.quotas = QuotaCache()
        self.connections = 0  # only touched on the loop
        self.connections_by_client: dict[str, int] = {}  # RefusalLimiter.client_key -> open connections
        self._engine = engine  # disposed by close() when the handler owns it
        self._queue_factory = queue_factory
        self._queue: Queue | None = None
        self._queue_lock = threading.Lock()
        # Separate pools: a Redis outage (slow enqueues, failing sweeps) must never delay storing.
        # The store pool looks recipients up and writes the files too big to write in the commit thread.
        self._store_pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="smtp-store")
        self._queue_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="smtp-queue")
        self._sweep_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-sweep")
        self.sender_screen = SenderScreen(session_factory)  # SPF/DKIM/DMARC before 250, for "refuse" tenants
        self._commit_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="smtp-commit")
        self._committer = _GroupCommitter(self._commit_batch, self._commit_pool, _MAX_COMMIT_BATCH)
        self._to_queue: list[int] = []  # accepted, not handed to the queueing task yet
        self._queuer: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    # aiosmtpd hooks ----------------------------------------------------------------------------

    async def handle_RCPT(
        self, server: SMTP, session: SMTPSession, envelope: InboxEnvelope, address: str, rcpt_options: list[str]
    ) -> str:
        peer = _peer_ip(session)
        limited = not self.limits.exempt(peer)
        if limited and self.refusals.blocked(peer):
            # Every RCPT, known or not: answering known ones 250 would keep the enumeration going.
            log.warning("refused recipients over the limit, dropping: peer=%s rcpt=%r", peer, address)
            if isinstance(server, InboxSMTP):
                server.drop_after_reply = True
            return REPLY_TOO_MANY_REFUSED
        if len(envelope.rcpt_tos) >= self.limits.max_recipients:
            return REPLY_TOO_MANY_RCPTS
        local = address.rpartition("@")[0]
        local_part = accounts.parse_recipient(address, self.settings.inbound_domain)
        if local_part is None:
            if limited:
                self.refusals.record(peer)
            log.info("refused relay: peer=%s from=%r rcpt=%r", peer, envelope.mail_from, address)
            return REPLY_RELAY_DENIED
        if not _PLAIN_LOCAL_PART.fullmatch(local):
            if limited:
                self.refusals.record(peer)
            log.info("refused odd local part: peer=%s from=%r rcpt=%r", peer, envelope.mail_from, address)
            return REPLY_UNKNOWN_RCPT
        found = self.recipients.get(local_part)
        if found is None:
            try:
                found = await self._in_thread(self._store_pool, self._lookup, address)
            except Exception:
                log.exception("recipient lookup failed: peer=%s rcpt=%r", peer, address)
                return REPLY_TRY_LATER
            if found is not None:
                self.recipients.put(local_part, found)
        if found is None or not found.live(utcnow()):
            if limited:
                self.refusals.record(peer)
            log.info("refused unknown recipient: peer=%s from=%r rcpt=%r", peer, envelope.mail_from, address)
            return REPLY_UNKNOWN_RCPT
        refusal = await self._quota_refusal(found.tenant_id, declared_size(envelope.mail_options) or 0)
        if refusal is not None:  # the company is over a quota: a clear answer, not counted as probing
            log.info("refused over quota: peer=%s rcpt=%r (%s)", peer, address, refusal)
            return refusal
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if found.tenant_id not in envelope.tenants:
            envelope.tenants[found.tenant_id] = address
            envelope.addresses[found.tenant_id] = found.match
        return REPLY_RCPT_OK

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: InboxEnvelope) -> str:
        # original_content: the bytes as received (dot-unstuffed), never decoded or altered.
        raw, peer, helo = envelope.original_content or b"", _peer_ip(session), session.host_name
        refusal, sender_auth = await self.sender_screen.check(
            raw, list(envelope.tenants), peer=peer, mail_from=envelope.mail_from or "", helo=helo)
        if refusal is not None:
            return refusal  # 550 5.7.1: every recipient's company refuses mail failing DMARC
        delivery = _Delivery(
            raw=raw,
            sender=envelope.mail_from or "",
            peer=peer,
            recipients=dict(envelope.tenants),
            addresses=dict(envelope.addresses),
            helo=helo,
            sender_auth=sender_auth,
        )
        try:
            item: _ToCommit = delivery
            if len(raw) > _INLINE_WRITE_MAX:
                item = await self._in_thread(self._store_pool, self._write_files, delivery)
            message_ids = await self._committer.submit(item)  # after the commit that carries its rows
        except Exception:
            log.exception(
                "could not store a message, answered 451: peer=%s from=%r rcpt=%r",
                delivery.peer, delivery.sender, envelope.rcpt_tos,
            )
            return REPLY_NOT_STORED
        log.info(
            "accepted message(s) %s: peer=%s from=%r rcpt=%r size=%d",
            message_ids, delivery.peer, delivery.sender, envelope.rcpt_tos, len(delivery.raw),
        )
        self.quotas.note(list(delivery.recipients), len(delivery.raw))
        self._queue_soon(message_ids)
        return REPLY_ACCEPTED

    async def handle_exception(self, error: Exception) -> str:
        # Anything unexpected in a session: temporary failure (the sender retries), no details leaked.
        log.error("SMTP session error", exc_info=error)
        return REPLY_TRY_LATER

    async def _quota_refusal(self, tenant_id: int, incoming_bytes: int = 0) -> str | None:
        """``452`` / ``552`` with its text when the company is over a quota (core.tenancy.quotas), or would be
        with the ``incoming_bytes`` the client declared (SIZE=), else None."""
        if not (self.quota_limits.messages_per_hour or self.quota_limits.storage_bytes):
            return None
        usage = self.quotas.get(tenant_id)
        if usage is None:
            try:
                usage = await self._in_thread(self._store_pool, self._usage, tenant_id)
            except Exception:  # unknown usage: storing the mail matters more than the quota
                log.exception("quota usage of tenant %s could not be read", tenant_id)
                return None
            self.quotas.put(tenant_id, usage)
        problem = quotas.exceeded(usage, self.quota_limits, incoming_bytes)
        return None if problem is None else problem.smtp_reply

    # Blocking work, run in the pools -----------------------------------------------------------

    def _usage(self, tenant_id: int) -> quotas.Usage:
        with session_scope(self.session_factory) as session:
            return quotas.usage(session, tenant_id)

    def _lookup(self, address: str) -> KnownRecipient | None:
        with session_scope(self.session_factory) as session:
            found = accounts.live_address(session, address, self.settings.inbound_domain)
            return None if found is None else KnownRecipient(found.tenant_id, AddressMatch.of(found), found.retires_at)

    def _write_files(self, delivery: _Delivery) -> _Written:
        """Every tenant's copy on disk, contents fsynced; the directories are fsynced by the batch commit."""
        files = {
            tenant_id: intake.write_raw(self.storage, tenant_id, delivery.raw, sync_dir=False)
            for tenant_id in delivery.recipients
        }
        return _Written(delivery, files)

    def _commit_batch(self, batch: list[_ToCommit], marks: list[int]) -> _CommitResult:
        """The files of the batch written (those not written yet), the directories of every file fsynced
        once, then all rows, and the ``queued`` marks of ``marks``, in ONE commit.

        A delivery whose files cannot be written is refused alone. Within a delivery, every tenant gets
        the message or none does. If the batch's commit fails, each delivery is committed on its own, so
        that one bad message is refused alone. A failure leaves at most orphan files (nothing lost, the
        sender retries). A crash after the commit but before the 250 reaches the sender makes it retry:
        a duplicate, never a loss. Marks that fail leave their messages ``received``, for the sweep.
        """
        outcomes: list[_Outcome | None] = [None] * len(batch)
        written: list[tuple[int, _Written]] = []
        for index, item in enumerate(batch):
            try:
                written.append((index, item if isinstance(item, _Written) else self._write_files(item)))
            except Exception as exc:
                outcomes[index] = exc
        if written:
            self.storage.sync_dirs(raw_file.key for _, done in written for raw_file in done.files.values())
        inserted, marks_error = self._insert_batch([done for _, done in written], marks)
        for (index, _), outcome in zip(written, inserted, strict=True):
            outcomes[index] = outcome
        return _CommitResult([outcome for outcome in outcomes if outcome is not None], marks_error)

    def _insert_batch(self, batch: list[_Written], marks: list[int]) -> tuple[list[_Outcome], Exception | None]:
        """All rows and marks in one transaction; if it fails, delivery by delivery, then the marks alone."""
        if not batch and not marks:
            return [], None
        try:
            return list(self._insert_rows(batch, marks)), None
        except Exception as exc:
            if not batch:
                return [], exc
            if len(batch) == 1 and not marks:
                return [exc], None
            log.warning("batch commit of %d deliveries failed (%s), committing them one by one", len(batch), exc)
        outcomes: list[_Outcome] = []
        for written in batch:
            try:
                outcomes.extend(self._insert_rows([written], []))
            except Exception as exc:
                outcomes.append(exc)
        marks_error: Exception | None = None
        if marks:
            try:
                self._insert_rows([], marks)
            except Exception as exc:
                marks_error = exc
        return outcomes, marks_error

    def _insert_rows(self, batch: list[_Written], marks: list[int]) -> list[list[int]]:
        with session_scope(self.session_factory) as session:
            intake.mark_many_queued(session, marks)
            with session.no_autoflush:  # one INSERT for the whole batch, at the flush below
                rows = [
                    [
                        intake.add_message(
                            session, tenant_id, written.delivery.raw, raw_file,
                            recipient=written.delivery.recipients[tenant_id],
                            envelope_sender=written.delivery.sender, peer=written.delivery.peer,
                            helo=written.delivery.helo, sender_auth=written.delivery.sender_auth,
                            address=written.delivery.addresses.get(tenant_id), flush=False,
                        )
                        for tenant_id, raw_file in written.files.items()
                    ]
                    for written in batch
                ]
            session.flush()
        return [[message.id for message in messages] for messages in rows]

    def _get_queue(self) -> Queue:
        with self._queue_lock:
            if self._queue is None:
                self._queue = self._queue_factory()
            return self._queue

    def _enqueue(self, message_ids: list[int]) -> None:
        enqueue_messages(self._get_queue(), message_ids)

    def _sweep_once(self) -> int:
        return sweep_once(self.settings, self.session_factory, self._get_queue())

    async def _in_thread(self, pool: ThreadPoolExecutor, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(pool, func, *args)

    # Background work on the loop ---------------------------------------------------------------

    def _queue_soon(self, message_ids: list[int]) -> None:
        """Queue in the background: the 250 never waits for Redis. One task queues whatever is waiting,
        in rounds, so that messages accepted together are marked queued together."""
        if len(self._to_queue) >= _MAX_PENDING_QUEUEING:
            log.warning("queueing backlog full, message(s) %s left to the sweep", message_ids)
            return
        self._to_queue.extend(message_ids)
        if self._queuer is None or self._queuer.done():
            self.in_flight.enter()  # now, not when the task starts, so that wait_idle() cannot miss it
            self._queuer = asyncio.get_running_loop().create_task(self._queue_pending())
            self._queuer.add_done_callback(self._queueing_done)  # runs even if the task is cancelled unstarted

    def _queueing_done(self, task: asyncio.Task[None]) -> None:
        if self._queuer is task:
            self._queuer = None
        self.in_flight.leave()

    async def _queue_pending(self) -> None:
        while self._to_queue:
            message_ids = self._to_queue[:_QUEUE_BATCH]
            del self._to_queue[:_QUEUE_BATCH]
            await self._queue_now(message_ids)

    async def _queue_now(self, message_ids: list[int]) -> None:
        """Enqueue the messages' jobs together, then mark them queued (in the commit thread's next commit).

        Enqueue first, as ``worker.dispatch.queue_message`` does: a message is never marked queued without its job.
        If enqueueing fails, the messages stay ``received`` for the sweep.
        """
        try:
            await self._in_thread(self._queue_pool, self._enqueue, message_ids)
            await self._committer.mark_queued(message_ids)
        except Exception as exc:
            log.warning(
                "could not queue message(s) %s (%s); they stay received until the sweep queues them",
                message_ids, exc, exc_info=not isinstance(exc, redis.RedisError),
            )

    async def sweep(self) -> int:
        """One sweep in the sweep thread; a failure is logged and never raised."""
        try:
            return await self._in_thread(self._sweep_pool, self._sweep_once)
        except Exception as exc:
            log.warning(
                "sweep failed (%s); next try in %ss", exc, self.limits.sweep_interval,
                exc_info=not isinstance(exc, redis.RedisError),
            )
            return 0

    async def _sweep_forever(self) -> None:
        while True:
            await self.sweep()
            await asyncio.sleep(self.limits.sweep_interval)

    def start_background(self) -> None:
        """Start the periodic sweep (first run now); called on the loop when the server starts."""
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep_forever())

    def close(self) -> None:
        """After the loop stopped: let the threads finish their current item, release the database."""
        for pool in (self._store_pool, self._commit_pool, self._queue_pool, self._sweep_pool):
            pool.shutdown(wait=True, cancel_futures=True)
        self.sender_screen.close()
        if self._queue is not None:
            self._queue.connection.close()
        if self._engine is not None:
            self._engine.dispose()


class InboxSMTP(SMTP):
    """aiosmtpd's SMTP session with our envelope, connection counting and tracked DATA."""

    event_handler: InboxHandler

    def __init__(self, handler: InboxHandler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._counted = False
        self._client = "?"  # the client key (IP, IPv6 /64) counted against max_connections_per_client
        self.drop_after_reply = False  # set by a hook whose reply must end the connection
        self._data_deadline: float | None = None  # loop time by which DATA must be complete
        self._replies_counted: Any = None  # the metric counting this command's replies by code (RCPT, DATA)

    async def push(self, status: AnyStr) -> None:
        await super().push(status)
        counter = self._replies_counted
        if counter is not None and (code := metrics.reply_code(status)) != "354":  # 354: go ahead, not an answer
            counter.labels(code).inc()

    def _create_envelope(self) -> InboxEnvelope:
        return InboxEnvelope()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        first = self.transport is None  # STARTTLS calls this again for the same connection
        super().connection_made(transport)
        if first and not self._counted:
            self._counted = True
            metrics.SMTP_SESSIONS.inc()
            metrics.SMTP_SESSIONS_OPEN.inc()
            handler = self.event_handler
            handler.connections += 1
            self._client = RefusalLimiter.client_key(_peer_ip(self.session)) if self.session else "?"
            handler.connections_by_client[self._client] = handler.connections_by_client.get(self._client, 0) + 1

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self._counted = False
            metrics.SMTP_SESSIONS_OPEN.dec()
            handler = self.event_handler
            handler.connections -= 1
            left = handler.connections_by_client.get(self._client, 1) - 1
            if left > 0:
                handler.connections_by_client[self._client] = left
            else:  # no entry for a client without connections: the dict stays as small as the cap
                handler.connections_by_client.pop(self._client, None)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        handler = self.event_handler
        over = handler.connections_by_client.get(self._client, 0) > handler.limits.max_connections_per_client
        if over and not handler.limits.exempt(_peer_ip(self.session) if self.session else None):
            log.warning("per-client connection limit reached, refused peer=%s", self._client)
            await self.push(f"421 4.7.0 {self.hostname} Too many connections from your address, try again later")
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._data_deadline is not None:  # in DATA: progress pushes the idle timer, not the deadline
            left = self._data_deadline - self.loop.time()
            self._reset_timeout(max(0.001, min(self.event_handler.limits.data_idle_timeout, left)))

    @syntax("RCPT TO: <address>", extended=" [SP <mail-parameters>]")
    async def smtp_RCPT(self, arg: str | None) -> None:
        self._replies_counted = metrics.SMTP_RECIPIENTS
        try:
            await super().smtp_RCPT(arg)
        finally:
            self._replies_counted = None
        if self.drop_after_reply and self.transport is not None:
            self.transport.close()  # the reply already written is flushed first

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        # aiosmtpd's command timer would otherwise cut every DATA transfer at command_timeout.
        limits = self.event_handler.limits
        budget = limits.data_budget(self._expected_size())
        self._data_deadline = self.loop.time() + budget
        self._reset_timeout(min(limits.data_idle_timeout, budget))
        try:
            # Receiving, storing and answering are one unit that a graceful stop lets finish.
            with self.event_handler.in_flight.track():
                self._replies_counted = metrics.SMTP_MESSAGES
                await super().smtp_DATA(arg)
        finally:
            self._replies_counted = None
            self._data_deadline = None
            if self.transport is not None:
                self._reset_timeout()  # back to the command timeout for what follows

    def _expected_size(self) -> int:
        """SIZE= from MAIL FROM when declared (RFC 1870), else the size limit."""
        limit = self.data_size_limit or 0
        declared = declared_size(self.envelope.mail_options if self.envelope is not None else [])
        if declared is None:
            return limit
        return min(declared, limit) if limit else declared


def declared_size(mail_options: list[str]) -> int | None:
    """The message size the client declared with MAIL FROM ``SIZE=`` (RFC 1870), None when it did not."""
    for option in mail_options:
        name, _, value = option.partition("=")
        if name.upper() == "SIZE" and value.isdigit():
            return int(value)
    return None


class _TooBusy(asyncio.Protocol):
    """Answers a connection over the cap with 421 and closes it (RFC 5321 3.8)."""

    def __init__(self, hostname: str) -> None:
        self._hostname = hostname

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        log.warning("connection limit reached, refused peer=%s", (transport.get_extra_info("peername") or ["?"])[0])
        metrics.SMTP_SESSIONS.inc()
        transport.write(f"421 4.7.0 {self._hostname} Too many connections, try again later\r\n".encode())
        transport.close()


class InboxController(Controller):
    """aiosmtpd's threaded controller, plus the connection cap, the sweep and a graceful stop.

    Not restartable: ``stop()`` releases the handler's threads and database engine.
    """

    handler: InboxHandler

    def factory(self) -> asyncio.BaseProtocol:  # type: ignore[override]
        if self.handler.connections >= self.handler.limits.max_connections:
            return _TooBusy(self.SMTP_kwargs["hostname"])
        return InboxSMTP(self.handler, **self.SMTP_kwargs)

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self._serve()

    async def _serve(self) -> asyncio.AbstractServer:
        server = await super()._create_server()
        self.handler.start_background()
        return server

    def stop(self, no_assert: bool = False, *, grace: float | None = None) -> None:
        """Stop accepting connections, let messages in flight finish (up to ``grace`` s), then stop."""
        server = self.server
        if self._thread is not None and server is not None:
            self.loop.call_soon_threadsafe(server.close)
            grace = self.handler.limits.shutdown_grace if grace is None else grace
            if not self.handler.in_flight.wait_idle(grace):
                log.warning("stopping with messages still in flight; their senders will retry")
        super().stop(no_assert)
        self.handler.close()


def _keep_bodies_out_of_logs() -> None:
    # aiosmtpd logs every command line at INFO (AUTH arguments too) and every DATA line at DEBUG;
    # our own log lines say what matters without bodies or secrets.
    aiosmtpd_log = logging.getLogger("mail.log")
    if aiosmtpd_log.level < logging.WARNING:
        aiosmtpd_log.setLevel(logging.WARNING)


def build_controller(
    settings: Settings,
    *,
    hostname: str | None = None,
    port: int | None = None,
    queue_factory: QueueFactory | None = None,
    limits: Limits | None = None,
) -> InboxController:
    """A ready-to-``start()`` server on ``hostname:port`` (default: ``settings.smtp_host/smtp_port``).

    ``port`` must be a real port number: the controller connects to it once to check that it is up.
    """
    limits = limits or Limits.from_settings(settings)
    tls_context = make_tls_context(settings)
    engine = make_engine(settings.database_url)
    handler = InboxHandler(
        settings,
        make_session_factory(engine),
        queue_factory or (lambda: get_queue(settings)),
        limits,
        engine=engine,
    )
    _keep_bodies_out_of_logs()
    return InboxController(
        handler,
        hostname=settings.smtp_host if hostname is None else hostname,
        port=settings.smtp_port if port is None else port,
        server_hostname=settings.inbound_domain,  # the banner name; also spares a DNS lookup per session
        ident=IDENT,
        data_size_limit=settings.max_message_bytes,
        enable_SMTPUTF8=True,
        decode_data=False,
        timeout=limits.command_timeout,
        tls_context=tls_context,
        require_starttls=tls_context is not None and settings.smtp_require_tls,
    )


def main(settings: Settings) -> None:
    """Run the SMTP server in the foreground until SIGTERM or SIGINT, then stop gracefully."""
    logs.configure()  # LOG_FORMAT=json: one JSON object per line
    controller = build_controller(settings)
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            controller.start()
        except BaseException:
            controller.handler.close()
            raise
        log.info("SMTP listening on %s:%s", controller.hostname, controller.port)
        metrics.serve(settings.smtp_metrics_port, settings.metrics_host)
        while not stopping.wait(1.0):
            pass
        log.info("SMTP stopping: no new connections, finishing messages in flight")
        controller.stop()
        log.info("SMTP stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
