"""File records: one stored copy of each content per tenant, and the row that points to it."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.files.storage import FileStorage, sha256_hex
from core.models import StoredFile


def store_file(session: Session, storage: FileStorage, tenant_id: int, data: bytes, content_type: str) -> StoredFile:
    """The tenant's stored copy of ``data`` (written once per content; the row is reused).

    Two jobs storing the same new file at the same moment: one insert fails on the unique constraint,
    that job is retried and then finds the row.
    """
    digest = sha256_hex(data)
    stored = session.scalars(
        select(StoredFile).where(StoredFile.tenant_id == tenant_id, StoredFile.sha256 == digest)
    ).first()
    key = FileStorage.file_key(tenant_id, digest)
    if stored is not None:
        if not storage.exists(stored.storage_key):  # the row survived a lost file: write it back
            storage.write(stored.storage_key, data)
        return stored
    if not storage.exists(key):
        storage.write(key, data)  # file first: a row never points to nothing
    stored = StoredFile(tenant_id=tenant_id, sha256=digest, size=len(data), content_type=content_type,
                        storage_key=key)
    session.add(stored)
    session.flush()
    return stored
