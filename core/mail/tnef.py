"""Files inside Outlook's ``winmail.dat`` (TNEF), read with ``tnefparse`` after a cheap bounded pre-scan.

tnefparse copies the remaining bytes for every TNEF object, so a crafted file with millions of tiny
objects would take minutes: the pre-scan counts objects first and refuses more than ``MAX_OBJECTS``.
"""

from __future__ import annotations

import logging
import struct

from core.i18n import N_
from core.reasons import Reason, reason

logger = logging.getLogger(__name__)

TNEF_SIGNATURE = b"\x78\x9f\x3e\x22"
MAX_TNEF_BYTES = 30 * 1024 * 1024
MAX_OBJECTS = 2000
MAX_FILES = 50

# Notes on what was left out of a winmail.dat: parts of the message's reason (core/reasons.py), translated.
TNEF_TOO_LARGE = N_("the winmail.dat file is larger than {size} MB and was not unpacked")
TNEF_TOO_MANY_PARTS = N_("the winmail.dat file has too many parts and was not unpacked")
TNEF_UNREADABLE = N_("the winmail.dat (Outlook) file could not be read ({error})")
TNEF_FIRST_FILES = N_("only the first {count} files of winmail.dat were taken")


def is_tnef(data: bytes) -> bool:
    return data[:4] == TNEF_SIGNATURE


def _object_count(data: bytes) -> int:
    offset, count = 6, 0
    while offset + 9 <= len(data):
        (length,) = struct.unpack_from("<I", data, offset + 5)
        offset += 11 + length
        count += 1
        if count > MAX_OBJECTS:
            break
    return count


def expand_tnef(data: bytes) -> tuple[list[tuple[str, bytes]], list[Reason]]:
    """([(file name, bytes)], notes); never raises."""
    if len(data) > MAX_TNEF_BYTES:
        return [], [reason(TNEF_TOO_LARGE, size=MAX_TNEF_BYTES // (1024 * 1024))]
    if _object_count(data) > MAX_OBJECTS:
        return [], [reason(TNEF_TOO_MANY_PARTS)]
    try:
        from tnefparse import TNEF

        parsed = TNEF(data, do_checksum=False)
        files: list[tuple[str, bytes]] = []
        for attachment in parsed.attachments[:MAX_FILES]:
            content = attachment.data if isinstance(attachment.data, bytes) else b""
            if not content:
                continue
            try:
                name = attachment.long_filename() or attachment.name
            except Exception:  # a name in an unexpected code page
                name = ""
            files.append((name if isinstance(name, str) else "", content))
    except Exception as exc:  # truncated or corrupt: say so, keep the rest of the email
        logger.info("winmail.dat unreadable: %s", type(exc).__name__)
        return [], [reason(TNEF_UNREADABLE, error=type(exc).__name__)]
    if len(parsed.attachments) > MAX_FILES:
        return files, [reason(TNEF_FIRST_FILES, count=MAX_FILES)]
    return files, []
