"""FileStorage on a real directory: atomic durable writes, keys that cannot escape, remembered directories."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from core.files.storage import FileStorage, StorageError


def leftovers(root: Path) -> list[Path]:
    return [path for path in root.rglob(".*.tmp")]


def test_a_write_replaces_atomically_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "storage")
    key = FileStorage.file_key(3, "ab" * 32)
    storage.write(key, b"first")
    storage.write(key, b"second, longer" * 10_000)  # several os.write calls may be needed: all bytes land
    assert storage.read(key) == b"second, longer" * 10_000
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("key", ["../outside", "raw/../../outside", "/etc/passwd", "raw/7/../../../outside"])
def test_keys_that_leave_the_root_are_refused_even_after_a_write_in_that_directory(tmp_path: Path, key: str) -> None:
    storage = FileStorage(tmp_path / "storage")
    storage.write("raw/7/inside.eml", b"ok")  # the directory is now remembered
    with pytest.raises(ValueError, match="escapes the storage root"):
        storage.write(key, b"x")
    with pytest.raises(ValueError, match="escapes the storage root"):
        storage.read(key)
    assert not (tmp_path / "outside").exists()


def test_a_remembered_directory_removed_behind_its_back_is_created_again(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "storage")
    storage.write("raw/7/2026/11/a.eml", b"a")
    shutil.rmtree(tmp_path / "storage" / "raw")  # an operator cleaned up, or a restore replaced the tree
    storage.write("raw/7/2026/11/b.eml", b"b")
    assert storage.read("raw/7/2026/11/b.eml") == b"b"
    assert leftovers(tmp_path) == []


def test_a_failed_write_raises_storage_error_and_leaves_nothing(tmp_path: Path) -> None:
    storage = FileStorage(tmp_path / "storage")
    storage.write("raw/7/a.eml", b"a")
    shutil.rmtree(tmp_path / "storage" / "raw" / "7")
    (tmp_path / "storage" / "raw" / "7").write_text("a file where the directory was")
    with pytest.raises(StorageError):
        storage.write("raw/7/b.eml", b"b")
    assert leftovers(tmp_path) == []
