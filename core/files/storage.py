"""Durable file storage on a local (or mounted) directory.

Every write goes to a temporary file, is fsynced, renamed into place and the directory fsynced, so a
file that a caller was told is stored survives a crash. Keys are relative paths chosen by the callers.
A caller that stores many files at once (the SMTP gateway's group commit) may defer the directory fsync
(``write(..., sync_dir=False)``) and make the renames durable with one ``sync_dirs()`` per batch.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass


class StorageError(OSError):
    """The storage refused a write (full disk, permissions, ...)."""


# Directories a FileStorage remembers as created and checked (inside the root), at most.
_MAX_CHECKED_DIRS = 4096


class StorageKeys:
    """The key schemes, shared by every storage (a local directory, an object store)."""

    @staticmethod
    def raw_message_key(tenant_id: int, sha256: str) -> str:
        now = datetime.now(UTC)
        return f"raw/{tenant_id}/{now:%Y/%m}/{now:%Y%m%dT%H%M%S}-{sha256[:16]}-{secrets.token_hex(4)}.eml"

    @staticmethod
    def file_key(tenant_id: int, sha256: str) -> str:
        return f"files/{tenant_id}/{sha256[:2]}/{sha256}"


class FileStorage(StorageKeys):
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._resolved_root = self.root.resolve()  # once: resolving costs a system call per component
        # Key directory ("raw/7/2026/11") -> its resolved path, once created and checked to be inside
        # the root: a write into a known directory costs no resolve (an lstat per component) and no
        # mkdir. Plain dict operations, safe across the threads that share a FileStorage.
        self._checked_dirs: dict[str, Path] = {}

    def path(self, key: str) -> Path:
        path = (self._resolved_root / key).resolve()
        if not path.is_relative_to(self._resolved_root):
            raise ValueError(f"storage key escapes the storage root: {key!r}")
        return path

    def _write_path(self, key: str, *, recheck: bool = False) -> Path:
        """``path(key)`` for a write, its directory created (and fsynced into its parent) if missing."""
        directory, _, name = key.rpartition("/")
        known = None if recheck else self._checked_dirs.get(directory)
        if known is not None and name not in ("", ".", ".."):
            return known / name
        path = self.path(key)
        _make_dirs(path.parent)
        if name not in ("", ".", ".."):
            if len(self._checked_dirs) >= _MAX_CHECKED_DIRS:
                self._checked_dirs.clear()
            self._checked_dirs[directory] = path.parent
        return path

    def write(self, key: str, data: bytes, *, sync_dir: bool = True) -> None:
        """Write ``data`` at ``key`` durably; an existing file at ``key`` is replaced atomically.

        ``sync_dir=False``: the file's bytes are fsynced but not its name (the rename); the caller must
        call ``sync_dirs`` with this key before telling anyone the file is stored.
        """
        try:
            path = self._write_path(key)
            try:
                tmp, fd = _create_temporary(path)
            except FileNotFoundError:  # a remembered directory was removed meanwhile: create it again
                path = self._write_path(key, recheck=True)
                tmp, fd = _create_temporary(path)
            try:
                try:
                    _write_all(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            if sync_dir:
                _fsync_dir(path.parent)
        except OSError as exc:
            raise StorageError(exc.errno, f"cannot store {key}: {exc.strerror or exc}") from exc

    def sync_dirs(self, keys: Iterable[str]) -> None:
        """Make the names of files written with ``sync_dir=False`` durable: one fsync per directory."""
        directories = {self.path(key).parent for key in keys}
        try:
            for directory in sorted(directories):
                _fsync_dir(directory)
        except OSError as exc:
            raise StorageError(exc.errno, f"cannot sync a storage directory: {exc.strerror or exc}") from exc

    def read(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)


Storage = FileStorage  # the interface every storage offers (core.files.storage_s3.S3Storage too)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _create_temporary(path: Path) -> tuple[Path, int]:
    """A new temporary file beside ``path``, open for writing (renamed over ``path`` once complete)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o640)


def _write_all(fd: int, data: bytes) -> None:
    """Unbuffered: a file object would add a stat and a flush to the one write a message needs."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _make_dirs(directory: Path) -> None:
    """``mkdir -p`` whose new entries are durable too (a new month's directory must survive a crash)."""
    if directory.is_dir():
        return
    missing = []
    while not directory.exists():
        missing.append(directory)
        directory = directory.parent
    for new in reversed(missing):
        new.mkdir(exist_ok=True)  # exist_ok: another thread may create it at the same time
        _fsync_dir(new.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
