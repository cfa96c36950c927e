"""Per-tenant invoice2data templates (issue #4): written by a company's reviewers in the dashboard, tried
before the bundled templates on that company's documents only.

The YAML source is stored as written (it was validated on save, see ``core.documents.templates``). Workers
keep the compiled templates of each tenant in memory and compile them again when the tenant's
``(count, max(updated_at), sum(version))`` changes: every save bumps ``version`` and ``updated_at``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base
from core.models import UTCDateTime, utcnow


class ExtractionTemplate(Base):
    __tablename__ = "extraction_templates"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    issuer: Mapped[str] = mapped_column(String(300))
    source: Mapped[str] = mapped_column(Text)  # the YAML, as the reviewer wrote it
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)  # +1 on every change: worker caches compare it
