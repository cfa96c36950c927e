"""Receiving messages: store the raw bytes durably and record them, before anyone is told "accepted"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser
from typing import Any

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from core.files.storage import FileStorage, sha256_hex
from core.inbound import addresses
from core.mail.parsed import header_block
from core.models import InboundMessage, MessageSource, MessageStatus, utcnow


def header_summary(raw: bytes) -> tuple[str, str, str | None]:
    """(From, Subject, Message-ID) read from the header block only; never raises on bad headers."""
    raw = header_block(raw)  # three headers: the body is never parsed
    try:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
        values = [headers.get(name) for name in ("From", "Subject", "Message-ID")]
        texts = ["" if v is None else str(v) for v in values]
    except Exception:  # a malformed header must not refuse the message: store it, explain later
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
        texts = [str(headers.get(name) or "") for name in ("From", "Subject", "Message-ID")]
    # NUL is dropped: PostgreSQL text cannot hold it, and a message must not be refused for it.
    sender, subject, message_id = (" ".join(t.replace("\x00", "").split()) for t in texts)
    return sender[:320], subject[:998], (message_id[:998] or None)


@dataclass(frozen=True)
class RawFile:
    """A raw message written to the storage (by ``write_raw``), not recorded yet."""

    key: str
    sha256: str
    size: int


def store_message(
    session: Session,
    storage: FileStorage,
    tenant_id: int,
    raw: bytes,
    *,
    recipient: str,
    envelope_sender: str = "",
    source: MessageSource = MessageSource.SMTP,
    peer: str | None = None,
    helo: str | None = None,
    sender_auth: dict[str, Any] | None = None,
) -> InboundMessage:
    """Write the raw message durably, then add its row (the caller commits before acknowledging).

    Raises ``StorageError`` when the bytes cannot be stored: the caller must then answer with a
    temporary failure so that the sender retries.
    """
    raw_file = write_raw(storage, tenant_id, raw)
    return add_message(
        session, tenant_id, raw, raw_file,
        recipient=recipient, envelope_sender=envelope_sender, source=source, peer=peer,
        helo=helo, sender_auth=sender_auth,
    )


def write_raw(storage: FileStorage, tenant_id: int, raw: bytes, *, sync_dir: bool = True) -> RawFile:
    """The first half of ``store_message``: the raw bytes on disk, fsynced.

    ``sync_dir=False`` leaves the directory fsync to the caller (``FileStorage.sync_dirs``), which must
    run it before committing the row: the SMTP gateway does it once for a batch of messages.
    """
    digest = sha256_hex(raw)
    key = storage.raw_message_key(tenant_id, digest)
    storage.write(key, raw, sync_dir=sync_dir)
    return RawFile(key=key, sha256=digest, size=len(raw))


def add_message(
    session: Session,
    tenant_id: int,
    raw: bytes,
    raw_file: RawFile,
    *,
    recipient: str,
    envelope_sender: str = "",
    source: MessageSource = MessageSource.SMTP,
    peer: str | None = None,
    helo: str | None = None,
    sender_auth: dict[str, Any] | None = None,
    address: addresses.AddressMatch | None = None,
    flush: bool = True,
) -> InboundMessage:
    """The second half of ``store_message``: the row of a message whose file ``write_raw`` stored.

    ``flush=False`` leaves the INSERT to the caller's next flush (one statement for a batch of rows).

    ``helo`` (the SMTP client's name) is kept for the worker's SPF check; ``sender_auth`` holds verdicts
    the gateway already evaluated (core.mail.senderauth), so the worker does not check again.
    ``address``: the inbound address ``recipient`` names, when the caller has looked it up already.
    """
    key, digest = raw_file.key, raw_file.sha256
    envelope_sender = envelope_sender.replace("\x00", "")
    sender, subject, message_id = header_summary(raw)
    message = InboundMessage(
        tenant_id=tenant_id,
        source=source.value,
        recipient=recipient[:320],
        sender=sender or envelope_sender[:320],
        envelope_sender=envelope_sender[:320] or None,
        subject=subject,
        message_id_header=message_id,
        peer=peer,
        helo=(helo or "").replace("\x00", "")[:255] or None,
        sender_auth=sender_auth,
        raw_key=key,
        raw_sha256=digest,
        raw_size=raw_file.size,
        status=MessageStatus.RECEIVED.value,
    )
    addresses.note_recipient_address(session, message, address)  # mail to a retiring address is flagged
    session.add(message)
    if flush:
        session.flush()
    return message


def mark_queued(session: Session, message_id: int) -> None:
    """``received`` → ``queued``, in one conditional UPDATE: the job may already have run (it is enqueued
    first) and finished the message; reading the row then writing it back would undo that."""
    session.execute(
        update(InboundMessage)
        .where(InboundMessage.id == message_id, InboundMessage.status == MessageStatus.RECEIVED.value)
        .values(status=MessageStatus.QUEUED.value, queued_at=utcnow())
        .execution_options(synchronize_session="fetch")  # a loaded row follows what the database did
    )


def mark_many_queued(session: Session, message_ids: list[int]) -> None:
    """``mark_queued`` for many messages in one statement (the SMTP gateway marks its batches at once)."""
    if message_ids:
        session.execute(
            update(InboundMessage)
            .where(InboundMessage.id.in_(message_ids), InboundMessage.status == MessageStatus.RECEIVED.value)
            .values(status=MessageStatus.QUEUED.value, queued_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def messages_to_requeue(
    session: Session, stale_after: timedelta, *, received_grace: timedelta = timedelta(0)
) -> list[int]:
    """Messages stored but never queued, and queued ones that no job finished within ``stale_after``.

    The sweep re-enqueues them; job ids are deterministic, so a message whose job is still waiting in
    Redis is not processed twice. ``received_grace`` leaves out messages received more recently than
    that: their receiver is still queueing them, and two enqueues racing could both create the job.
    """
    now = utcnow()
    stmt = select(InboundMessage.id).where(
        or_(
            (InboundMessage.status == MessageStatus.RECEIVED.value)
            & (InboundMessage.received_at <= now - received_grace),
            (InboundMessage.status == MessageStatus.QUEUED.value) & (InboundMessage.queued_at < now - stale_after),
        )
    )
    return list(session.scalars(stmt.order_by(InboundMessage.id)))


def queued_message_ids(session: Session) -> list[int]:
    """Every message marked ``queued``: its job was created before the mark, so the sweep can ask Redis
    whether that job still exists (it vanishes when Redis loses its data)."""
    stmt = select(InboundMessage.id).where(InboundMessage.status == MessageStatus.QUEUED.value)
    return list(session.scalars(stmt.order_by(InboundMessage.id)))


def messages_query(tenant_id: int, status: str | None = None) -> Select[Any]:
    """Every message received for the tenant (or those with ``status``), newest first."""
    stmt = select(InboundMessage).where(InboundMessage.tenant_id == tenant_id)
    if status:
        stmt = stmt.where(InboundMessage.status == MessageStatus(status).value)
    return stmt.order_by(InboundMessage.received_at.desc(), InboundMessage.id.desc())


def earlier_copy(
    session: Session, tenant_id: int, *, raw_sha256: str, message_id_header: str | None, sender: str | None,
    before_id: int | None = None,
) -> tuple[InboundMessage, bool] | None:
    """The tenant's first message that one with these bytes and headers repeats, and whether it is the
    same bytes; None if it is new. The one repeat rule of every transport (IMAP asks before storing, the
    ingest job after; SMTP, whose sender retries after a lost reply, and uploads are seen by the job).

    A repeat is either byte-identical (an SMTP retry after a lost reply, an IMAP re-import) or carries the
    same Message-ID *and* the same From (the same mail arriving by two routes, e.g. forwarded and fetched
    from a mailbox: the Received headers differ, the Message-ID does not). Requiring the same From keeps
    apart the rare mailers that reuse one Message-ID for different mail. Earlier copies that failed are not
    counted, so a retry of a failed delivery is processed. Lowest id wins (``before_id``: only messages
    stored before that one), so re-running a job gives the same answer.
    """
    base = select(InboundMessage).where(
        InboundMessage.tenant_id == tenant_id, InboundMessage.status != MessageStatus.FAILED.value,
    )
    if before_id is not None:
        base = base.where(InboundMessage.id < before_id)
    same_raw = session.scalars(
        base.where(InboundMessage.raw_sha256 == raw_sha256).order_by(InboundMessage.id).limit(1)
    ).first()
    same_id = None
    if message_id_header:
        same_id = session.scalars(
            base.where(InboundMessage.message_id_header == message_id_header, InboundMessage.sender == sender)
            .order_by(InboundMessage.id).limit(1)
        ).first()
    if same_id is not None and (same_raw is None or same_id.id <= same_raw.id):
        return same_id, same_id.raw_sha256 == raw_sha256
    if same_raw is not None:
        return same_raw, True
    return None
