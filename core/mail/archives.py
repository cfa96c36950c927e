"""Files inside a zip attachment, bounded so that a zip bomb ends as a reason, never a crash or a full disk.

Limits: member count, total uncompressed bytes (read, not trusted from the header), compression ratio per
member, and nesting (a zip inside a zip is opened, one level deeper is not). Member names may hold
``../`` or absolute paths: only the last path component is ever used (``sanitize_filename`` does it).
"""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field

from core.i18n import N_
from core.reasons import Reason, reason

logger = logging.getLogger(__name__)

MAX_MEMBERS = 50  # files taken from one archive (nested ones included)
MAX_TOTAL_UNCOMPRESSED = 50 * 1024 * 1024
MAX_RATIO = 100  # uncompressed / compressed; PDFs and photos compress far less than this
MAX_NESTING = 1  # a zip inside the attached zip is opened; one inside that is not
ZIP_TYPES = frozenset(("application/zip", "application/x-zip-compressed", "application/x-zip"))

# Notes on what was left out of an archive: parts of the message's reason (core/reasons.py), translated.
ARCHIVE_UNREADABLE = N_("the archive {archive} could not be opened ({error})")
ARCHIVE_FIRST_FILES = N_("only the first {count} files of {archive} were taken")
ARCHIVE_ENCRYPTED = N_("{archive} is password-protected")
ARCHIVE_BOMB = N_("{archive} looks like a zip bomb (a file expands {ratio} times); it was not unpacked")
ARCHIVE_TOO_LARGE = N_("{archive} expands beyond {size} MB; the rest was not unpacked")
ARCHIVE_NESTED = N_("archives nested deeper than {levels} levels in {archive} were not opened")
ARCHIVE_MEMBER_UNREADABLE = N_("a file in {archive} could not be read ({error})")


def is_zip(data: bytes) -> bool:
    return data[:4] == b"PK\x03\x04"


@dataclass
class Expanded:
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (member name, bytes)
    notes: list[Reason] = field(default_factory=list)

    def note(self, text: Reason) -> None:
        if text not in self.notes:
            self.notes.append(text)


def expand_zip(data: bytes, name: str, *, max_total: int = MAX_TOTAL_UNCOMPRESSED) -> Expanded:
    """The files of the zip ``data`` (named ``name`` for the reasons); never raises."""
    out = Expanded()
    budget = [max_total]
    _expand(data, name, 0, out, budget)
    return out


def _expand(data: bytes, name: str, depth: int, out: Expanded, budget: list[int]) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:
        out.note(reason(ARCHIVE_UNREADABLE, archive=name, error=type(exc).__name__))
        return
    with archive:
        for info in members:
            if info.is_dir():
                continue
            if len(out.files) >= MAX_MEMBERS:
                out.note(reason(ARCHIVE_FIRST_FILES, count=MAX_MEMBERS, archive=name))
                return
            if info.flag_bits & 0x1:
                out.note(reason(ARCHIVE_ENCRYPTED, archive=name))
                continue
            if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > 1024 * 1024:
                out.note(reason(ARCHIVE_BOMB, archive=name, ratio=info.file_size // max(info.compress_size, 1)))
                return
            if info.file_size > budget[0]:
                out.note(reason(ARCHIVE_TOO_LARGE, archive=name, size=MAX_TOTAL_UNCOMPRESSED // (1024 * 1024)))
                return
            content = _read_bounded(archive, info, budget[0], out, name)
            if content is None:
                return
            budget[0] -= len(content)
            if is_zip(content):
                if depth >= MAX_NESTING:
                    out.note(reason(ARCHIVE_NESTED, levels=MAX_NESTING + 1, archive=name))
                    continue
                _expand(content, info.filename, depth + 1, out, budget)
                continue
            out.files.append((info.filename, content))


def _read_bounded(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, out: Expanded, name: str
) -> bytes | None:
    """The member's bytes, reading at most ``limit`` + 1 (the header's size may lie); None stops the archive."""
    try:
        with archive.open(info) as member:
            content = member.read(limit + 1)
    except Exception as exc:  # bad CRC, unsupported compression, truncated
        logger.info("zip member skipped: %s", type(exc).__name__)
        out.note(reason(ARCHIVE_MEMBER_UNREADABLE, archive=name, error=type(exc).__name__))
        return b""
    if len(content) > limit:
        out.note(reason(ARCHIVE_TOO_LARGE, archive=name, size=MAX_TOTAL_UNCOMPRESSED // (1024 * 1024)))
        return None
    return content
