"""One company's data as one archive, and its erasure (issue 15: the tenant data lifecycle).

Export format (a ZIP file, documented in docs/tenant-export.md):

- ``manifest.json``: ``{"format": "invoice-inbox-tenant-export", "version": 1, "tenant": {...},
  "exported_at": ISO time, "tables": {table: rows}, "files": count}``;
- ``tables/<table>.jsonl``: one JSON object per row, every column, of every table holding the company's
  rows (messages, documents, invoices, clients, bank entries, matches, settings, members, ...); dates
  ISO 8601, amounts as strings; secrets (password hashes, token hashes, mailbox credentials) left out;
- ``raw/...``: each stored e-mail as received (``.eml``), at its storage key;
- ``files/...``: each stored file (PDF, XML, image), at its storage key (``files`` table: name, type).

Erasure removes the stored files first (a repeated run finds nothing left to remove), then every row
(the company row and, through the schema's cascades, everything that belongs to it) and the accounts
left belonging to no company; it returns what it removed.
"""

from __future__ import annotations

import base64
import json
import logging
import zipfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import Table, delete, func, select, update
from sqlalchemy.orm import Session

import core.schema  # noqa: F401  (every table: a company's rows are in all of them)
from core.files.storage import FileStorage
from core.models import Base, InboundMessage, Membership, MessageStatus, StoredFile, Tenant, User, utcnow

log = logging.getLogger(__name__)

FORMAT = "invoice-inbox-tenant-export"
VERSION = 1


def _is_secret(column: str) -> bool:
    """Never exported: credentials, encrypted (mailbox passwords, OAuth tokens) or hashed (passwords, API tokens)."""
    return column.endswith(("_encrypted", "_hash")) or column in {"password", "secret"}

# Tables owned through a parent rather than a tenant_id column: (table, its column, parent table).
CHILD_TABLES = (("mailbox_imports", "mailbox_id", "mailboxes"), ("invoice_files", "invoice_id", "invoices"))


def _tenant_tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if "tenant_id" in t.c and t.name != "tenants"]


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    return value


def _rows(session: Session, table: Table, tenant_id: int) -> Iterator[dict[str, Any]]:
    columns = [c for c in table.c if not _is_secret(c.name)]
    stmt = select(*columns).where(table.c.tenant_id == tenant_id).order_by(*table.primary_key.columns)
    for row in session.execute(stmt).mappings():
        yield {k: _json(v) for k, v in row.items()}


def _child_rows(session: Session, table: Table, column: str, parent: Table, tenant_id: int) -> Iterator[dict]:
    columns = [c for c in table.c if not _is_secret(c.name)]
    parents = select(parent.c.id).where(parent.c.tenant_id == tenant_id)
    stmt = select(*columns).where(table.c[column].in_(parents)).order_by(*table.primary_key.columns)
    for row in session.execute(stmt).mappings():
        yield {k: _json(v) for k, v in row.items()}


def _members(session: Session, tenant_id: int) -> Iterator[dict[str, Any]]:
    stmt = (select(User.id, User.email, User.locale, Membership.role)
            .join(Membership, Membership.user_id == User.id).where(Membership.tenant_id == tenant_id)
            .order_by(User.id))
    for row in session.execute(stmt).mappings():
        yield dict(row)


def export_tenant(session: Session, storage: FileStorage, tenant_id: int, out: IO[bytes]) -> dict[str, Any]:
    """Write the company's archive to ``out`` (a file opened for writing); returns its manifest."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise LookupError(f"no tenant {tenant_id}")
    metadata = Base.metadata.tables
    counts: dict[str, int] = {}
    files = 0
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        def write_rows(name: str, rows: Iterator[dict[str, Any]]) -> None:
            n = 0
            with archive.open(f"tables/{name}.jsonl", "w") as entry:
                for row in rows:
                    entry.write(json.dumps(row, ensure_ascii=False, default=str).encode() + b"\n")
                    n += 1
            counts[name] = n

        for table in _tenant_tables():
            write_rows(table.name, _rows(session, table, tenant_id))
        for name, column, parent in CHILD_TABLES:
            if name in metadata and parent in metadata:
                write_rows(name, _child_rows(session, metadata[name], column, metadata[parent], tenant_id))
        write_rows("members", _members(session, tenant_id))
        for key in _storage_keys(session, tenant_id):
            try:
                data = storage.read(key)
            except FileNotFoundError:
                log.warning("tenant %s export: %s is missing from storage", tenant_id, key)
                continue
            archive.writestr(key, data)
            files += 1
        manifest = {
            "format": FORMAT, "version": VERSION, "exported_at": datetime.now(UTC).isoformat(),
            "tenant": {"id": tenant.id, "name": tenant.name, "created_at": _json(getattr(tenant, "created_at", None))},
            "tables": counts, "files": files,
        }
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    return manifest


def _storage_keys(session: Session, tenant_id: int) -> list[str]:
    raw = session.scalars(select(InboundMessage.raw_key).where(InboundMessage.tenant_id == tenant_id))
    stored = session.scalars(select(StoredFile.storage_key).where(StoredFile.tenant_id == tenant_id))
    return sorted({key for key in [*raw, *stored] if key})


def delete_tenant(session: Session, storage: FileStorage, tenant_id: int) -> dict[str, int]:
    """Erase the company: stored files, then its rows and the accounts left without a company.

    Returns what was removed: ``{"stored files": n, "<table>": rows, ..., "accounts": n}``. The caller
    commits. Safe to run again after a failure: what is gone stays gone, the rest is removed.
    """
    if session.get(Tenant, tenant_id) is None:
        raise LookupError(f"no tenant {tenant_id}")
    removed: dict[str, int] = {}
    keys = _storage_keys(session, tenant_id)
    for key in keys:  # first: a failure here leaves the rows, so that a second run finds these keys again
        storage.delete(key)
    removed["stored files"] = len(keys)
    for table in _tenant_tables():
        count = session.scalar(select(func.count()).select_from(table).where(table.c.tenant_id == tenant_id)) or 0
        if count:
            removed[table.name] = count
    members = list(session.scalars(select(Membership.user_id).where(Membership.tenant_id == tenant_id)))
    # Rows in dependency order (children first), then the company: explicit rather than relying on every
    # database enforcing the schema's ON DELETE CASCADE the same way.
    metadata = Base.metadata.tables
    for name, column, parent in CHILD_TABLES:
        if name in metadata and parent in metadata:
            parents = select(metadata[parent].c.id).where(metadata[parent].c.tenant_id == tenant_id)
            session.execute(delete(metadata[name]).where(metadata[name].c[column].in_(parents)))
    for table in reversed(_tenant_tables()):
        session.execute(delete(table).where(table.c.tenant_id == tenant_id))
    session.execute(delete(Tenant.__table__).where(Tenant.__table__.c.id == tenant_id))
    orphans = [user_id for user_id in members
               if not session.scalar(select(func.count()).select_from(Membership).where(Membership.user_id == user_id))]
    if orphans:
        session.execute(delete(User.__table__).where(User.__table__.c.id.in_(orphans)))
    removed["accounts"] = len(orphans)
    session.expire_all()
    return removed


# Raw e-mails the retention may delete: finished ones. A failed or quarantined message keeps its e-mail,
# which a retry or a release needs.
PURGEABLE = (MessageStatus.PROCESSED.value, MessageStatus.IGNORED.value)


def purge_raw_messages(session: Session, storage: FileStorage, older_than: timedelta, *, batch: int = 1000) -> int:
    """Delete the raw e-mails received more than ``older_than`` ago (all companies), keeping their extracted
    files, documents and invoices; returns how many. The stored file goes first and the mark after, so an
    interrupted run leaves nothing marked that still exists, and a second run finishes the rest."""
    cutoff = utcnow() - older_than
    purged = 0
    while True:
        rows = session.execute(
            select(InboundMessage.id, InboundMessage.raw_key)
            .where(InboundMessage.status.in_(PURGEABLE), InboundMessage.received_at < cutoff,
                   InboundMessage.raw_purged_at.is_(None))
            .order_by(InboundMessage.id).limit(batch)
        ).all()
        if not rows:
            return purged
        for row in rows:
            storage.delete(row.raw_key)
        session.execute(update(InboundMessage).where(InboundMessage.id.in_([r.id for r in rows]))
                        .values(raw_purged_at=utcnow()).execution_options(synchronize_session=False))
        session.commit()
        purged += len(rows)
