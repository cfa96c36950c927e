"""Durable file storage: a local directory (``storage``) or an S3-compatible object store (``storage_s3``),
behind one interface; keys are per tenant and content-addressed. ``records.store_file`` stores a file once
per content and tenant and returns its row; ``make_storage`` picks the store from the settings."""

from __future__ import annotations

from core.config import Settings
from core.files.storage import FileStorage


def make_storage(settings: Settings) -> FileStorage:
    """``STORAGE_URL=s3://bucket/prefix``: an S3-compatible object store; otherwise the local directory."""
    if settings.storage_url:
        from core.files.storage_s3 import S3Storage  # boto3 is imported only when an object store is configured

        return S3Storage(  # type: ignore[return-value]  # same interface, duck-typed
            settings.storage_url, endpoint_url=settings.s3_endpoint_url, region=settings.s3_region,
            access_key_id=settings.s3_access_key_id, secret_access_key=settings.s3_secret_access_key,
        )
    return FileStorage(settings.storage_dir)
