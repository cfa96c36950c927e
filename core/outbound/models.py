"""What the application sent, or kept to be read: the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.models import UTCDateTime, utcnow


class OutboxMessage(Base):
    """A message the application sent or, with no relay configured, only kept here to be read.

    ``tenant_id`` is the company whose admins may read it on the Outbox page (invitations); None for mail
    no admin may read (password resets: a link to someone else's account), shown by ``inbox outbox``.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_tenant_created", "tenant_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int | None] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    recipient: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))  # invitation | password_reset | ...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # "kept" (no relay: read it here), "sent" (the relay accepted it) or "failed" (``error`` says why).
    state: Mapped[str] = mapped_column(String(16), default="kept")
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
