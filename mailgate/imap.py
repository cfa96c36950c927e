"""The IMAP poller: imports messages from configured mailboxes, each exactly once.

One thread per enabled mailbox, one connection each; a supervisor thread re-reads the settings every
``reload_interval`` seconds and starts, stops or restarts mailbox threads to match.

The contract, per message (UID in a folder with a given UIDVALIDITY):

1. the raw bytes are fetched with ``BODY.PEEK[]`` (the server does not mark it read),
2. stored (``intake.store_message``) and, in the SAME transaction, a ``MailboxImport`` row keyed by
   (mailbox, UIDVALIDITY, UID) plus the mailbox's new position are committed,
3. the ingest job is queued (best effort: Redis down leaves the message ``received`` for the sweep),
4. only then is the message flagged ``\\Seen`` or moved to the processed folder, and the row marked
   settled. A crash between 2 and 4 finishes step 4 on restart; it never imports again.

When UIDVALIDITY changes (the folder was recreated), UIDs mean nothing anymore: every message is looked
at again, and one whose bytes and Message-ID the tenant already has is recorded as a duplicate, not
stored twice.

The server's IDLE is used when offered (woken within a second by new mail), polling otherwise; any
failure is recorded on the mailbox (``last_error``) and retried with capped exponential backoff.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import random
import signal
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.utils import getaddresses
from typing import Any

import redis
from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from rq import Queue
from sqlalchemy.orm import Session, sessionmaker

from core import logs
from core.config import Settings, env
from core.db import make_engine, make_session_factory, session_scope
from core.files import make_storage
from core.files.storage import sha256_hex
from core.i18n import N_
from core.inbound import intake
from core.inbound import mailboxes as svc
from core.inbound.oauth import Refreshed
from core.mail.parsed import ReceivedEmail
from core.models import Mailbox, MailboxAuth, MailboxImportOutcome, MessageSource
from core.secrets import SecretBox
from core.tenancy import accounts, quotas
from mailgate.imap_oauth import AccessTokenCache, OAuthError
from worker.dispatch import queue_message
from worker.policy import BULK
from worker.queue import get_queue

log = logging.getLogger(__name__)

SEEN = b"\\Seen"
ROUTING_HEADERS = ("Delivered-To", "X-Original-To", "To", "Cc")
MAX_ROUTING_ADDRESSES = 200  # bounds the lookups a message with a huge Cc list can cause
FETCH_BATCH = 50  # UIDs whose sizes are fetched at once
FETCH_BYTES = 32 * 1024 * 1024  # bodies fetched in one command stay under this


@dataclass(frozen=True)
class PollerConfig:
    """Timings; each can be set in the environment (names below)."""

    poll_interval: float = 60.0  # IMAP_POLL_INTERVAL: without IDLE, seconds between checks
    idle_timeout: float = 25 * 60.0  # IMAP_IDLE_TIMEOUT: IDLE is renewed before servers' 30 min limit
    backoff_base: float = 2.0  # IMAP_BACKOFF_BASE: first retry delay after a failure
    backoff_max: float = 300.0  # IMAP_BACKOFF_MAX: the cap
    reload_interval: float = 30.0  # IMAP_RELOAD_INTERVAL: how often settings changes are picked up
    timeout: float = 60.0  # IMAP_TIMEOUT: socket timeout for commands
    shutdown_grace: float = 8.0  # IMAP_SHUTDOWN_GRACE

    @classmethod
    def from_env(cls) -> PollerConfig:
        def pick(name: str, default: float) -> float:
            value = env(name)
            return float(value) if value else default

        return cls(
            poll_interval=pick("IMAP_POLL_INTERVAL", cls.poll_interval),
            idle_timeout=pick("IMAP_IDLE_TIMEOUT", cls.idle_timeout),
            backoff_base=pick("IMAP_BACKOFF_BASE", cls.backoff_base),
            backoff_max=pick("IMAP_BACKOFF_MAX", cls.backoff_max),
            reload_interval=pick("IMAP_RELOAD_INTERVAL", cls.reload_interval),
            timeout=pick("IMAP_TIMEOUT", cls.timeout),
            shutdown_grace=pick("IMAP_SHUTDOWN_GRACE", cls.shutdown_grace),
        )

    def backoff(self, failures: int) -> float:
        """Capped exponential delay with jitter (so that many mailboxes do not retry in lockstep)."""
        delay = min(self.backoff_max, self.backoff_base * (2 ** min(failures - 1, 20)))
        return delay * random.uniform(0.5, 1.0)


@dataclass(frozen=True)
class MailboxSpec:
    """A snapshot of a mailbox's settings with its secrets decrypted; never logged (repr hides them)."""

    id: int
    tenant_id: int | None
    host: str
    port: int
    security: str
    username: str
    auth: str
    folder: str
    processed_folder: str | None
    unrouted_folder: str | None
    version: datetime
    secret: str | None
    oauth_provider: str | None
    oauth_client_id: str | None
    oauth_client_secret: str | None
    oauth_refresh_token: str | None

    def __repr__(self) -> str:
        return f"MailboxSpec(id={self.id}, {self.username}@{self.host}:{self.port}/{self.folder})"

    @property
    def label(self) -> str:
        return f"mailbox {self.id} ({self.username}@{self.host}/{self.folder})"

    def redact(self, text: str) -> str:
        for secret in (self.secret, self.oauth_client_secret, self.oauth_refresh_token):
            if secret:
                text = text.replace(secret, "***")
        return text

    @classmethod
    def load(cls, mailbox: Mailbox, box: SecretBox) -> MailboxSpec:
        def reveal(value: str | None) -> str | None:
            return box.decrypt(value) if value else None

        return cls(
            id=mailbox.id,
            tenant_id=mailbox.tenant_id,
            host=mailbox.host,
            port=mailbox.port,
            security=mailbox.security,
            username=mailbox.username,
            auth=mailbox.auth,
            folder=mailbox.folder,
            processed_folder=mailbox.processed_folder,
            unrouted_folder=mailbox.unrouted_folder,
            version=mailbox.updated_at,
            secret=reveal(mailbox.secret_encrypted),
            oauth_provider=mailbox.oauth_provider,
            oauth_client_id=mailbox.oauth_client_id,
            oauth_client_secret=reveal(mailbox.oauth_client_secret_encrypted),
            oauth_refresh_token=reveal(mailbox.oauth_refresh_token_encrypted),
        )


def describe_error(exc: BaseException, spec: MailboxSpec | None = None) -> str:
    """A one-line reason a person can act on, with any secret removed."""
    detail = exc.args[0] if len(exc.args) == 1 else exc
    if isinstance(detail, bytes):  # imaplib passes the server's answer as bytes
        detail = detail.decode("utf-8", "replace")
    text = f"{type(exc).__name__}: {detail}".replace("\r", " ").replace("\n", " ")
    return (spec.redact(text) if spec else text)[: svc.MAX_ERROR_LENGTH]


def public_reason(exc: BaseException) -> str:
    """What a tenant's admin sees in ``last_error``: what went wrong, never what the remote server said.

    The server's greeting and answers stay out (a mailbox pointed at another service would read its
    banner here); the operator's log keeps ``describe_error``.
    """
    if isinstance(exc, quotas.QuotaExceeded):  # ours: the message waits on the server until there is room
        return N_("Not imported, left on the server: {reason}").format(reason=exc)[: svc.MAX_ERROR_LENGTH]
    if isinstance(exc, OAuthError):
        return str(exc)[: svc.MAX_ERROR_LENGTH]  # ours, with the provider's token endpoint answer
    if isinstance(exc, svc.TargetRefused):
        return svc.TARGET_REFUSED
    if isinstance(exc, svc.NoServer):
        return svc.NO_SERVER
    if isinstance(exc, LoginError):
        return N_("The server refused the login (authentication failed): check the user name and the password "
                  "or token.")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return N_("The server's TLS certificate could not be verified (CERTIFICATE_VERIFY_FAILED).")
    if isinstance(exc, ssl.SSLError):
        return N_("The TLS connection to the server failed: check the port and the security setting.")
    if isinstance(exc, socket.gaierror):
        return svc.UNRESOLVED
    if isinstance(exc, ConnectionRefusedError):
        return N_("The connection was refused: check the host and the port.")
    if isinstance(exc, TimeoutError | socket.timeout):
        return N_("The server did not answer in time.")
    if isinstance(exc, IMAPClientError | imaplib.IMAP4.error | imaplib.IMAP4.abort):
        return N_("The server did not answer as an IMAP server: check the host and the port.")
    if isinstance(exc, OSError):
        return N_("The connection to the server failed (network error).")
    return N_("Unexpected error ({kind}): the operator's log has the details.").format(kind=type(exc).__name__)


# Routing (catch-all mailboxes) ---------------------------------------------------------------


def route_recipients(session: Session, raw: bytes, domain: str) -> dict[int, str]:
    """Tenant id -> the first of its addresses named in Delivered-To / X-Original-To / To / Cc."""
    headers = ReceivedEmail(raw).headers
    addresses: list[str] = []
    for name in ROUTING_HEADERS:
        values = [str(v) for v in headers.get_all(name) or []]
        addresses += [addr for _name, addr in getaddresses(values) if addr]
    tenants: dict[int, str] = {}
    seen: set[str] = set()
    for address in addresses:
        key = address.lower()
        if key in seen or len(seen) >= MAX_ROUTING_ADDRESSES:
            continue
        seen.add(key)
        tenant = accounts.resolve_recipient(session, address, domain)
        if tenant is not None:
            tenants.setdefault(tenant.id, address[:320])
    return tenants


# Connecting ----------------------------------------------------------------------------------


def ssl_context() -> ssl.SSLContext:
    """System trust store, plus ``IMAP_CA_FILE`` for a private CA (or a test's self-signed cert)."""
    context = ssl.create_default_context()
    if ca_file := env("IMAP_CA_FILE"):
        context.load_verify_locations(ca_file)
    return context


def connect(spec: MailboxSpec, timeout: float, tokens: AccessTokenCache | None = None) -> IMAPClient:
    """A logged-in client; raises on any failure (the caller records it and backs off)."""
    if svc.is_placeholder(spec.host):  # the demo provider's mailbox: no DNS lookup, a plain reason
        raise svc.NoServer(svc.NO_SERVER)
    if spec.security == "plain" and not svc.is_loopback(spec.host):
        raise ValueError("unencrypted IMAP is only allowed to a loopback server")
    if spec.tenant_id is not None:  # a tenant's choice of host: only allowed addresses (the operator's: any)
        svc.check_target(spec.host, spec.port)
    if spec.security == "ssl":
        client = IMAPClient(spec.host, port=spec.port, ssl=True, ssl_context=ssl_context(), timeout=timeout)
    else:
        client = IMAPClient(spec.host, port=spec.port, ssl=False, timeout=timeout)
        if spec.security == "starttls":
            client.starttls(ssl_context())
    try:
        # The address really connected to, not the one resolved a moment ago (DNS rebinding): checked
        # before any credential is sent.
        if spec.tenant_id is not None and not svc.address_allowed(str(client.socket().getpeername()[0])):
            raise svc.TargetRefused(svc.TARGET_REFUSED)
        if spec.auth == MailboxAuth.XOAUTH2.value:
            token = (tokens or AccessTokenCache()).access_token(spec)
            client.oauth2_login(spec.username, token)
        else:
            client.login(spec.username, spec.secret or "")
    except BaseException:
        _close(client)
        raise
    return client


def _close(client: IMAPClient) -> None:
    try:
        client.logout()
    except Exception:  # already broken: just drop the socket
        with contextlib.suppress(Exception):
            client.shutdown()


def _ensure_folder(client: IMAPClient, folder: str) -> None:
    if not client.folder_exists(folder):
        client.create_folder(folder)


# One mailbox ---------------------------------------------------------------------------------


@dataclass
class _Imported:
    import_id: int
    uid: int
    outcome: MailboxImportOutcome
    queue_ids: list[int]


class MailboxWorker(threading.Thread):
    """Keeps one mailbox imported: connect, catch up, wait for news (IDLE or poll), repeat."""

    def __init__(
        self,
        mailbox_id: int,
        version: datetime,
        settings: Settings,
        session_factory: sessionmaker[Session],
        queue_factory: Callable[[], Queue],
        config: PollerConfig,
    ) -> None:
        super().__init__(name=f"imap-{mailbox_id}", daemon=True)
        self.mailbox_id = mailbox_id
        self.version = version
        self.settings = settings
        self.session_factory = session_factory
        self.queue_factory = queue_factory
        self.config = config
        self.halt = threading.Event()
        self.storage = make_storage(settings)
        self.quota_limits = quotas.Limits.of(settings)
        self.box = SecretBox.from_settings(settings.secret_key)
        self.tokens = AccessTokenCache(settings.oauth_app, on_refresh=self._token_refreshed,
                                       on_failure=self._token_refused)
        self._queue: Queue | None = None
        self._spec: MailboxSpec | None = None

    def run(self) -> None:
        failures = 0
        while not self.halt.is_set():
            try:
                self._session()
                failures = 0
            except Exception as exc:
                failures += 1
                delay = self.config.backoff(failures)
                log.warning("%s failed (%s); retrying in %.1fs", self._label(), describe_error(exc, self._spec), delay)
                reason = public_reason(exc)
                self._record(svc.record_error, self._spec.redact(reason) if self._spec else reason)
                self.halt.wait(delay)

    def _token_refreshed(self, mailbox_id: int, refreshed: Refreshed) -> None:
        rotated = self.box.encrypt(refreshed.refresh_token) if refreshed.refresh_token else None
        self._record(svc.record_token_refresh, refreshed.expires_in, rotated)

    def _token_refused(self, mailbox_id: int, reason: str) -> None:
        self._record(svc.record_refresh_failure, reason)

    def _label(self) -> str:
        return self._spec.label if self._spec else f"mailbox {self.mailbox_id}"

    def _record(self, func: Callable[..., None], *args: Any) -> None:
        try:
            with session_scope(self.session_factory) as session:
                func(session, self.mailbox_id, *args)
        except Exception as exc:  # the database is down too: the log is all we have
            log.warning("%s: could not record its state: %s", self._label(), describe_error(exc))

    def _load(self) -> tuple[MailboxSpec, int | None, int | None]:
        with session_scope(self.session_factory) as session:
            mailbox = session.get(Mailbox, self.mailbox_id)
            if mailbox is None or not mailbox.enabled:
                raise _Gone()
            return MailboxSpec.load(mailbox, self.box), mailbox.uidvalidity, mailbox.last_uid

    def _session(self) -> None:
        """One connection's life: returns when halted, raises on failure."""
        try:
            spec, known_validity, last_uid = self._load()
        except _Gone:
            self.halt.set()
            return
        self._spec = spec
        client = connect(spec, self.config.timeout, self.tokens)
        try:
            for folder in (spec.processed_folder, spec.unrouted_folder):
                if folder:
                    _ensure_folder(client, folder)
            selected = client.select_folder(spec.folder)
            uidvalidity = int(selected[b"UIDVALIDITY"])
            uidnext = int(selected.get(b"UIDNEXT", 0)) or None
            first_sync = known_validity != uidvalidity or last_uid is None
            if known_validity is not None and known_validity != uidvalidity:
                log.warning(
                    "%s: UIDVALIDITY changed (%s -> %s); every message is checked again",
                    spec.label, known_validity, uidvalidity,
                )
            idle = client.has_capability("IDLE")
            log.info(
                "%s connected (uidvalidity=%s, %s)", spec.label, uidvalidity,
                "IDLE" if idle else f"no IDLE: polling every {self.config.poll_interval:g}s",
            )
            self._settle_pending(client, spec, uidvalidity)
            if first_sync:
                candidates = client.search("ALL" if spec.processed_folder else "UNSEEN")
                handled = self._import_all(client, spec, uidvalidity, candidates)
                if self.halt.is_set():
                    return  # the position stays at the last message handled
                # Read history (already \Seen) is not imported: continue after what exists now.
                last_uid = max((uidnext or 1) - 1, handled or 0, *candidates)
                self._position(uidvalidity, last_uid)
            self._record(svc.record_success)
            while not self.halt.is_set():
                found = [u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid]
                if found:
                    last_uid = self._import_all(client, spec, uidvalidity, found) or last_uid
                    self._record(svc.record_success)
                    continue  # more may have come meanwhile
                self._wait_for_news(client)
                self._record(svc.record_success)
        finally:
            _close(client)

    def _position(self, uidvalidity: int, last_uid: int) -> None:
        with session_scope(self.session_factory) as session:
            svc.set_position(session, self.mailbox_id, uidvalidity, last_uid)

    def _wait_for_news(self, client: IMAPClient) -> None:
        if not client.has_capability("IDLE"):
            self.halt.wait(self.config.poll_interval)
            client.noop()
            return
        client.idle()
        try:
            deadline = time.monotonic() + self.config.idle_timeout
            while not self.halt.is_set() and time.monotonic() < deadline:
                if client.idle_check(timeout=1):
                    return
        finally:
            client.idle_done()

    # Importing ---------------------------------------------------------------------------------

    def _import_all(self, client: IMAPClient, spec: MailboxSpec, uidvalidity: int, uids: list[int]) -> int | None:
        """Import ``uids`` in ascending order; returns the highest one handled."""
        highest: int | None = None
        for start in range(0, len(uids), FETCH_BATCH):
            if self.halt.is_set():
                break
            chunk = sorted(uids)[start : start + FETCH_BATCH]
            sizes = client.fetch(chunk, ["RFC822.SIZE"])
            done: list[_Imported] = []
            try:
                limit = self.settings.max_message_bytes
                for group in self._body_groups(chunk, sizes):
                    wanted = [u for u in group if int(sizes[u].get(b"RFC822.SIZE", 0)) <= limit]
                    bodies = client.fetch(wanted, ["BODY.PEEK[]"]) if wanted else {}
                    for uid in group:
                        size = int(sizes[uid].get(b"RFC822.SIZE", 0))
                        raw = bodies.get(uid, {}).get(b"BODY[]")
                        if raw is None and size <= limit:
                            continue  # expunged meanwhile by someone else: nothing to import
                        done.append(self._import_one(spec, uidvalidity, uid, raw, size))
                        highest = uid
                        if self.halt.is_set():
                            break
                    if self.halt.is_set():
                        break
            finally:
                if done:  # what is committed gets queued and flagged even if a later one failed
                    self._queue_ids([i for d in done for i in d.queue_ids])
                    self._settle(client, spec, done)
        return highest

    def _body_groups(self, chunk: list[int], sizes: dict[int, Any]) -> list[list[int]]:
        groups: list[list[int]] = [[]]
        total = 0
        for uid in chunk:
            if uid not in sizes:
                continue  # expunged meanwhile
            size = int(sizes[uid].get(b"RFC822.SIZE", 0))
            if size > self.settings.max_message_bytes:
                groups.append([uid])  # alone, and its body is not fetched (see _import_one)
                groups.append([])
                total = 0
                continue
            if total + size > FETCH_BYTES and groups[-1]:
                groups.append([])
                total = 0
            groups[-1].append(uid)
            total += size
        return [g for g in groups if g]

    def _import_one(
        self, spec: MailboxSpec, uidvalidity: int, uid: int, raw: bytes | None, size: int
    ) -> _Imported:
        with session_scope(self.session_factory) as session:
            existing = svc.find_import(session, spec.id, uidvalidity, uid)
            if existing is not None:  # imported by an earlier run that died before flagging it
                return _Imported(existing.id, uid, MailboxImportOutcome(existing.outcome), [])
            if raw is None:  # only bodies over the limit are not fetched
                reason = f"message too large ({size} bytes, limit {self.settings.max_message_bytes}); left unread"
                log.warning("%s: uid %s %s", spec.label, uid, reason)
                row = svc.record_import(
                    session, spec.id, uidvalidity, uid, MailboxImportOutcome.REJECTED, reason=reason, settled=True
                )
                svc.set_position(session, spec.id, uidvalidity, uid)
                return _Imported(row.id, uid, MailboxImportOutcome.REJECTED, [])
            digest = sha256_hex(raw)
            sender, _subject, message_id = intake.header_summary(raw)
            if spec.tenant_id is not None:
                targets = {spec.tenant_id: spec.username}
            else:
                targets = route_recipients(session, raw, self.settings.inbound_domain)
            stored: list[int] = []
            duplicates: list[int] = []
            for tenant_id, recipient in targets.items():
                copy = intake.earlier_copy(session, tenant_id, raw_sha256=digest, message_id_header=message_id,
                                           sender=sender)
                if copy is not None:  # e.g. UIDVALIDITY changed: the same message under a new UID
                    duplicates.append(copy[0].id)
                    continue
                if self.quota_limits.messages_per_hour or self.quota_limits.storage_bytes:
                    # Over quota: nothing of it is committed, it stays on the server, the mailbox says why.
                    quotas.check(session, tenant_id, self.quota_limits, len(raw))
                message = intake.store_message(
                    session, self.storage, tenant_id, raw,
                    recipient=recipient, source=MessageSource.IMAP, peer=spec.host[:64],
                )
                stored.append(message.id)
            if not targets:
                outcome = MailboxImportOutcome.UNROUTED
                reason = "no tenant address in Delivered-To, X-Original-To, To or Cc"
                log.warning("%s: uid %s message %s unrouted: %s", spec.label, uid, message_id, reason)
            else:
                outcome = MailboxImportOutcome.STORED if stored else MailboxImportOutcome.DUPLICATE
                reason = None
            row = svc.record_import(
                session, spec.id, uidvalidity, uid, outcome,
                message_ids=stored + duplicates, message_id_header=message_id, reason=reason,
            )
            svc.set_position(session, spec.id, uidvalidity, uid)
            return _Imported(row.id, uid, outcome, stored)

    def _queue_ids(self, message_ids: list[int]) -> None:
        try:
            if self._queue is None:
                self._queue = self.queue_factory()
            for message_id in message_ids:
                queue_message(self.session_factory, self._queue, message_id)
        except Exception as exc:
            log.warning(
                "could not queue message(s) %s (%s); they stay received until the sweep queues them",
                message_ids, describe_error(exc), exc_info=not isinstance(exc, redis.RedisError),
            )

    # Flagging / moving -------------------------------------------------------------------------

    def _settle_pending(self, client: IMAPClient, spec: MailboxSpec, uidvalidity: int) -> None:
        with session_scope(self.session_factory) as session:
            pending = [
                _Imported(row.id, int(row.uid), MailboxImportOutcome(row.outcome), [])
                for row in svc.unsettled_imports(session, spec.id, uidvalidity)
            ]
        if pending:
            log.info("%s: finishing %d message(s) stored before a restart", spec.label, len(pending))
            present = set(client.search(["UID", ",".join(str(p.uid) for p in pending)]))
            self._settle(client, spec, [p for p in pending if p.uid in present], also=[p.import_id for p in pending])

    def _settle(self, client: IMAPClient, spec: MailboxSpec, done: list[_Imported], also: list[int] = ()) -> None:
        """Flag or move what was committed, then mark it settled (one command per kind)."""
        processed = [d.uid for d in done if d.outcome in (MailboxImportOutcome.STORED, MailboxImportOutcome.DUPLICATE)]
        unrouted = [d.uid for d in done if d.outcome == MailboxImportOutcome.UNROUTED]
        if processed:
            self._file(client, processed, spec.processed_folder)
        if unrouted and spec.unrouted_folder:
            self._file(client, unrouted, spec.unrouted_folder)
        # Unrouted without a folder for them: left unread where they are, and recorded.
        with session_scope(self.session_factory) as session:
            svc.mark_settled(session, sorted({d.import_id for d in done} | set(also)))

    def _file(self, client: IMAPClient, uids: list[int], folder: str | None) -> None:
        if not folder:
            client.add_flags(uids, [SEEN], silent=True)
            return
        client.add_flags(uids, [SEEN], silent=True)  # read in the processed folder too
        if client.has_capability("MOVE"):
            client.move(uids, folder)
            return
        client.copy(uids, folder)
        client.delete_messages(uids, silent=True)
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()


class _Gone(Exception):
    """The mailbox was deleted or disabled."""


# The process ---------------------------------------------------------------------------------


class ImapPoller:
    """Runs a ``MailboxWorker`` per enabled mailbox and keeps the set in line with the settings."""

    def __init__(
        self,
        settings: Settings,
        config: PollerConfig | None = None,
        catch_all_urls: list[str] | None = None,
        queue_factory: Callable[[], Queue] | None = None,
    ) -> None:
        self.settings = settings
        self.config = config or PollerConfig.from_env()
        self.catch_all_urls = catch_all_urls or []
        self.engine = make_engine(settings.database_url)
        self.session_factory = make_session_factory(self.engine)
        # Bulk (worker.policy): a mailbox's first poll may bring years of mail.
        self.queue_factory = queue_factory or (lambda: get_queue(settings, priority=BULK))
        self.workers: dict[int, MailboxWorker] = {}
        self.retiring: list[MailboxWorker] = []

    def register_catch_alls(self) -> None:
        box = SecretBox.from_settings(self.settings.secret_key)
        with session_scope(self.session_factory) as session:
            for url in self.catch_all_urls:
                mailbox = svc.ensure_catch_all(session, box, url)
                log.info("catch-all mailbox %s: %s@%s/%s", mailbox.id, mailbox.username, mailbox.host, mailbox.folder)

    def reconcile(self) -> None:
        with session_scope(self.session_factory) as session:
            wanted = {m.id: m.updated_at for m in svc.enabled_mailboxes(session)}
        self.retiring = [w for w in self.retiring if w.is_alive()]
        for mailbox_id, worker in list(self.workers.items()):
            if wanted.get(mailbox_id) != worker.version:
                worker.halt.set()  # finishes the message in hand, then logs out
                self.retiring.append(worker)
                del self.workers[mailbox_id]
        busy = {w.mailbox_id for w in self.retiring}
        for mailbox_id, version in wanted.items():
            # Never two connections importing the same mailbox: wait for the old one to finish.
            if mailbox_id not in self.workers and mailbox_id not in busy:
                worker = MailboxWorker(
                    mailbox_id, version, self.settings, self.session_factory, self.queue_factory, self.config
                )
                self.workers[mailbox_id] = worker
                worker.start()

    def run(self, stop: threading.Event) -> None:
        self.register_catch_alls()
        try:
            while not stop.is_set():
                try:
                    self.reconcile()
                except Exception as exc:  # database down: keep the running workers, try again
                    log.warning("could not read the mailbox settings (%s)", describe_error(exc))
                stop.wait(self.config.reload_interval)
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        workers = list(self.workers.values()) + self.retiring
        for worker in workers:
            worker.halt.set()
        deadline = time.monotonic() + self.config.shutdown_grace
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        self.workers.clear()
        self.retiring.clear()
        self.engine.dispose()


def quiet_library_loggers() -> None:
    # imapclient logs protocol lines at DEBUG (message bodies); ours say what matters without them.
    for name in ("imapclient", "imapclient.imaplib"):
        logger = logging.getLogger(name)
        if logger.level < logging.INFO:
            logger.setLevel(logging.INFO)


def main(settings: Settings, catch_all_urls: list[str] | None = None) -> None:
    """Run the poller in the foreground until SIGTERM or SIGINT, then stop gracefully."""
    logs.configure()  # LOG_FORMAT=json: one JSON object per line
    quiet_library_loggers()
    urls = list(catch_all_urls or []) + (env("IMAP_CATCH_ALL") or "").split()
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        log.info("IMAP poller starting")
        ImapPoller(settings, catch_all_urls=urls).run(stop)
        log.info("IMAP poller stopped")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


__all__ = ["IMAPClientError", "ImapPoller", "MailboxWorker", "PollerConfig", "connect", "main", "route_recipients"]
