"""Issuer profiles (issue #13 item 8): what validations taught about each issuer's documents, per tenant.

``IssuerProfile.data`` is the JSON profile of ``core.extraction.memory`` (bounded in size); its keys (VAT
numbers, IBANs, sender domains, the normalised name) are rows of ``IssuerProfileKey`` so that a new document
finds its issuer's profile with an indexed query. ``DocumentReading`` keeps the text a document was read from
(and what extraction gave) until a person validates it: learning needs both, and validation has no file
storage at hand. Every row belongs to one tenant and is only ever looked up with it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base
from core.models import UTCDateTime, utcnow


class IssuerProfile(Base):
    __tablename__ = "issuer_profiles"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    documents: Mapped[int] = mapped_column(Integer, default=0)  # validations learned from
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    keys: Mapped[list[IssuerProfileKey]] = relationship(back_populates="profile", cascade="all, delete-orphan",
                                                        passive_deletes=True)


class IssuerProfileKey(Base):
    """One way to recognise the issuer: ``kind`` is vat | iban | domain | name."""

    __tablename__ = "issuer_profile_keys"
    __table_args__ = (
        UniqueConstraint("profile_id", "kind", "value"),
        Index("ix_issuer_profile_keys_lookup", "tenant_id", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    profile_id: Mapped[int] = mapped_column(ForeignKey("issuer_profiles.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))
    value: Mapped[str] = mapped_column(String(320))

    profile: Mapped[IssuerProfile] = relationship(back_populates="keys")


class DocumentReading(Base):
    __tablename__ = "document_readings"

    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text, default="")
    extracted: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # field -> value as text
    profile_id: Mapped[int | None] = mapped_column(Integer)  # the profile it was read with, if any
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
