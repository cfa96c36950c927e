"""Receiving messages: store the raw bytes durably and record them, before anyone is told "accepted"."""

from __future__ import annotations

from datetime import timedelta
from email import policy
from email.parser import BytesHeaderParser

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from core.models import InboundMessage, MessageSource, MessageStatus, utcnow
from core.storage import FileStorage, sha256_hex


def _header_summary(raw: bytes) -> tuple[str, str, str | None]:
    """(From, Subject, Message-ID) read from the header block only; never raises on bad headers."""
    try:
        headers = BytesHeaderParser(policy=policy.default).parsebytes(raw)
        values = [headers.get(name) for name in ("From", "Subject", "Message-ID")]
        texts = ["" if v is None else str(v) for v in values]
    except Exception:  # a malformed header must not refuse the message: store it, explain later
        headers = BytesHeaderParser(policy=policy.compat32).parsebytes(raw)
        texts = [str(headers.get(name) or "") for name in ("From", "Subject", "Message-ID")]
    sender, subject, message_id = (" ".join(t.split()) for t in texts)
    return sender[:320], subject[:998], (message_id[:998] or None)


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
) -> InboundMessage:
    """Write the raw message durably, then add its row (the caller commits before acknowledging).

    Raises ``StorageError`` when the bytes cannot be stored: the caller must then answer with a
    temporary failure so that the sender retries.
    """
    digest = sha256_hex(raw)
    key = storage.raw_message_key(tenant_id, digest)
    storage.write(key, raw)
    sender, subject, message_id = _header_summary(raw)
    message = InboundMessage(
        tenant_id=tenant_id,
        source=source.value,
        recipient=recipient[:320],
        sender=sender or envelope_sender[:320],
        envelope_sender=envelope_sender[:320] or None,
        subject=subject,
        message_id_header=message_id,
        peer=peer,
        raw_key=key,
        raw_sha256=digest,
        raw_size=len(raw),
        status=MessageStatus.RECEIVED.value,
    )
    session.add(message)
    session.flush()
    return message


def mark_queued(session: Session, message_id: int) -> None:
    message = session.get(InboundMessage, message_id)
    if message is not None and message.status == MessageStatus.RECEIVED.value:
        message.status = MessageStatus.QUEUED.value
        message.queued_at = utcnow()


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
