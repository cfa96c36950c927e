"""Reading an email once: several services look at the same raw message in one ingest job (bank statements,
attachments, forwarding confirmations), and the standard library's parser is most of their cost (~5 ms for a
275 kB email, measured; more than the rest of the job's Python work together apart from the extraction).
"""

from __future__ import annotations

import re
import threading
from email import policy
from email.feedparser import BytesFeedParser
from email.message import EmailMessage

_BLANK_LINE = re.compile(rb"\n\r?\n")
_last = threading.local()  # (raw, message) of this thread's last parse


# MIME parts (the message itself included) the parser builds before it gives up. Each costs the stdlib
# parser ~65 us and ~0.4 kB even when empty: 200,000 empty parts fit in 2 MB (13 s, 87 MB, measured).
MAX_PARTS = 1000
_CHUNK = 64 * 1024


class TooManyParts(ValueError):
    """The email has more MIME parts than ``MAX_PARTS``: parsing stopped there."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} MIME parts")
        self.limit = limit


class _BoundedParser(BytesFeedParser):
    """The stdlib feed parser, stopped while it parses (not after) at its ``limit``-th part."""

    def __init__(self, limit: int) -> None:
        super().__init__(policy=policy.default)
        self._limit, self._parts = limit, 0

    def _new_message(self) -> None:  # called by the feed parser for the message and each part
        self._parts += 1
        if self._parts > self._limit:
            raise TooManyParts(self._limit)
        super()._new_message()  # type: ignore[misc]


def parse(raw: bytes, max_parts: int = MAX_PARTS) -> EmailMessage:
    """``BytesParser(policy=policy.default).parsebytes(raw)``, parsed once for the same bytes object.

    Raises ``TooManyParts`` as soon as the ``max_parts``-th part would be built. The message is shared
    between the callers of one job: read it, never change it. One message per thread is kept until the
    next parse or ``forget()`` (the worker calls it after each job).
    """
    cached = getattr(_last, "value", None)
    if cached is not None and cached[0] is raw:
        return cached[1]
    parser = _BoundedParser(max_parts)
    view = memoryview(raw)
    for start in range(0, len(raw), _CHUNK):  # in chunks: what follows the limit is never even split
        parser.feed(bytes(view[start : start + _CHUNK]))
    message = parser.close()
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    _last.value = (raw, message)
    return message


def forget() -> None:
    """Drop this thread's kept message (its memory is the email's size, twice)."""
    _last.value = None


def header_block(raw: bytes) -> bytes:
    """The bytes up to and including the first empty line: what a header parser needs, without the body.

    Parsing only this gives the same headers as parsing the whole message (they end at the first empty
    line), without feeding megabytes of body through the parser line by line.
    """
    if raw.startswith((b"\n", b"\r\n")):  # no header at all
        return b""
    # One search that stops at the first blank line: ``find`` of each line ending would scan a CRLF
    # message's whole body for a bare ``\n\n`` that is not there.
    blank = _BLANK_LINE.search(raw)
    return raw[: blank.end()] if blank else raw
