"""Per-company quotas (issue #14, finding 10): messages received per hour, and storage used.

The operator sets the limits (``TENANT_MAX_MESSAGES_PER_HOUR``, ``TENANT_MAX_STORAGE_MB``; 0 turns one
off); each company is measured on its own. Over a limit, new mail is refused with a reason a person (or
a sending server) can act on: the SMTP gateway answers ``452 4.2.2`` (too many this hour: the sender
retries later) or ``552 5.2.2`` (storage full), the API ``429``, and the Imports page says so.
Nothing already received is touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.config import Settings
from core.errors import ServiceError
from core.i18n import N_
from core.models import InboundMessage, StoredFile, utcnow

RATE, STORAGE = "rate", "storage"
RATE_REASON = N_(
    "Your company received {count} emails and uploads in the last hour; its limit is {limit}. New ones are "
    "refused until the hour has passed (sending servers retry on their own); ask your operator to raise it."
)
STORAGE_REASON = N_(
    "Your company's emails and files use {used} MB of its {limit} MB. New ones are refused: ask your "
    "operator to raise the quota."
)
SMTP_RATE = "452 4.2.2 Too many messages for this company in the last hour; try again later"
SMTP_STORAGE = "552 5.2.2 Mailbox full: this company's storage quota is used up"
NEAR = 0.9  # the Imports page warns from 90 % of a limit


@dataclass(frozen=True)
class Limits:
    messages_per_hour: int  # 0: no limit
    storage_bytes: int  # 0: no limit

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(settings.tenant_max_messages_per_hour, settings.tenant_max_storage_mb * 1024 * 1024)


@dataclass
class Usage:
    messages_last_hour: int
    storage_bytes: int


class QuotaExceeded(ServiceError):
    """A company is over one of its quotas; ``kind`` is RATE or STORAGE, the message is the reason."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind

    @property
    def smtp_reply(self) -> str:
        return SMTP_RATE if self.kind == RATE else SMTP_STORAGE


def usage(session: Session, tenant_id: int, now: datetime | None = None) -> Usage:
    """This hour's messages (index on tenant, received_at) and the bytes of raw messages and files."""
    since = (now or utcnow()) - timedelta(hours=1)
    recent = session.scalar(select(func.count()).select_from(InboundMessage).where(
        InboundMessage.tenant_id == tenant_id, InboundMessage.received_at >= since)) or 0
    raw = session.scalar(select(func.coalesce(func.sum(InboundMessage.raw_size), 0)).where(
        InboundMessage.tenant_id == tenant_id)) or 0
    files = session.scalar(select(func.coalesce(func.sum(StoredFile.size), 0)).where(
        StoredFile.tenant_id == tenant_id)) or 0
    return Usage(int(recent), int(raw) + int(files))


def exceeded(found: Usage, limits: Limits, incoming_bytes: int = 0) -> QuotaExceeded | None:
    """The quota ``found`` is over (storage first: waiting an hour does not cure it), else None."""
    if limits.storage_bytes and found.storage_bytes + incoming_bytes > limits.storage_bytes:
        return QuotaExceeded(STORAGE, STORAGE_REASON.format(used=found.storage_bytes // (1024 * 1024),
                                                            limit=limits.storage_bytes // (1024 * 1024)))
    if limits.messages_per_hour and found.messages_last_hour >= limits.messages_per_hour:
        return QuotaExceeded(RATE, RATE_REASON.format(count=found.messages_last_hour, limit=limits.messages_per_hour))
    return None


def check(session: Session, tenant_id: int, limits: Limits, incoming_bytes: int = 0) -> None:
    """Raise ``QuotaExceeded`` when the company may not receive a message of ``incoming_bytes`` now."""
    problem = exceeded(usage(session, tenant_id), limits, incoming_bytes)
    if problem is not None:
        raise problem


def notice(session: Session, tenant_id: int, limits: Limits) -> str | None:
    """What the Imports page says: the reason when over a quota, a warning when near one, else None."""
    found = usage(session, tenant_id)
    problem = exceeded(found, limits)
    if problem is not None:
        return str(problem)
    near = Limits(int(limits.messages_per_hour * NEAR), int(limits.storage_bytes * NEAR))
    warning = exceeded(found, near)
    if warning is None:
        return None
    return NEAR_REASON.format(reason=str(warning))


NEAR_REASON = N_("Close to a quota: {reason}")
