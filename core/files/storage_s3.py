"""Durable file storage on any S3-compatible object store (``STORAGE_URL=s3://bucket/prefix``).

The same interface as ``FileStorage`` (``core.files.storage``), so the SMTP gateway, the workers and the
dashboard do not know where the bytes are. A ``write`` returns once the store acknowledged the PUT: that
acknowledgement is the durability the gateway waits for before its ``250`` (an error answers ``451``).
Keys are the callers' keys (content-addressed per tenant) under the URL's prefix. Reads stream in chunks
for downloads. Errors other than a missing key are ``StorageError``: the jobs retry them.
"""

from __future__ import annotations

import errno
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from core.files.storage import StorageError, StorageKeys

_MISSING = {"NoSuchKey", "404", "NotFound"}
CHUNK = 256 * 1024


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending with "/"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"STORAGE_URL must look like s3://bucket/prefix, not {url!r}")
        prefix = parts.path.strip("/")
        return cls(parts.netloc, f"{prefix}/" if prefix else "")


class S3Storage(StorageKeys):
    def __init__(self, url: str, *, endpoint_url: str | None = None, region: str | None = None,
                 access_key_id: str | None = None, secret_access_key: str | None = None,
                 timeout: float = 10.0) -> None:
        self.location = S3Location.parse(url)
        self.url = url
        config = Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 2, "mode": "standard"},
                        s3={"addressing_style": "path"})
        self._client = boto3.session.Session().client(
            "s3", endpoint_url=endpoint_url or None, region_name=region or None,
            aws_access_key_id=access_key_id or None, aws_secret_access_key=secret_access_key or None, config=config,
        )

    def _key(self, key: str) -> str:
        if not key or key.startswith("/") or any(part in ("", ".", "..") for part in key.split("/")):
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return self.location.prefix + key

    def write(self, key: str, data: bytes, *, sync_dir: bool = True) -> None:
        """Store ``data`` at ``key``; returns once the object store acknowledged it (``sync_dir``: no meaning)."""
        try:
            self._client.put_object(Bucket=self.location.bucket, Key=self._key(key), Body=data)
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(errno.EIO, f"cannot store {key}: {type(exc).__name__}") from exc

    def sync_dirs(self, keys: Iterable[str]) -> None:
        """Nothing to do: every ``write`` was acknowledged by the store before it returned."""

    def _get(self, key: str) -> Any:
        try:
            return self._client.get_object(Bucket=self.location.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                raise FileNotFoundError(key) from exc
            raise StorageError(errno.EIO, f"cannot read {key}: {type(exc).__name__}") from exc
        except BotoCoreError as exc:
            raise StorageError(errno.EIO, f"cannot read {key}: {type(exc).__name__}") from exc

    def read(self, key: str) -> bytes:
        body = self._get(key)["Body"]
        try:
            return body.read()
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageError(errno.EIO, f"cannot read {key}: {type(exc).__name__}") from exc
        finally:
            body.close()

    def open_stream(self, key: str) -> Iterator[bytes]:
        """The object in chunks, for a download that never holds a whole file in memory.

        Raises ``FileNotFoundError`` at once when the key is missing (before the response starts)."""
        body = self._get(key)["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(CHUNK)
            finally:
                body.close()

        return chunks()

    def exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.location.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise StorageError(errno.EIO, f"cannot look up {key}: {type(exc).__name__}") from exc
        except BotoCoreError as exc:
            raise StorageError(errno.EIO, f"cannot look up {key}: {type(exc).__name__}") from exc
        return True

    def delete(self, key: str) -> None:
        try:
            self._client.delete_object(Bucket=self.location.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageError(errno.EIO, f"cannot delete {key}: {type(exc).__name__}") from exc
