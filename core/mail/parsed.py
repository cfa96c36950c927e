"""Reading an email once: several services look at the same raw message in one ingest job (sender
authentication, forwarding confirmations, sender control, bank statements, attachments), and the standard
library's parser is most of their cost (~5 ms for a 275 kB email, measured; more than the rest of the job's
Python work together apart from the extraction).

The ingest job builds one ``ReceivedEmail`` and passes it to each of them: its header block (one cap,
``MAX_HEADER_BYTES``) is cut once, its MIME tree parsed on first use (bounded by ``MAX_PARTS``) and kept
for the others. Nothing is cached behind the callers' backs: the object lives as long as the job holds it.
"""

from __future__ import annotations

import re
from email import policy
from email.feedparser import BytesFeedParser
from email.message import EmailMessage, Message
from email.parser import BytesHeaderParser

_BLANK_LINE = re.compile(rb"\n\r?\n")
# Header bytes read of a message: more is a malformed or hostile message (real headers are a few kB).
MAX_HEADER_BYTES = 256 * 1024


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
    """``BytesParser(policy=policy.default).parsebytes(raw)``, bounded: raises ``TooManyParts`` as soon as
    the ``max_parts``-th part would be built."""
    parser = _BoundedParser(max_parts)
    view = memoryview(raw)
    for start in range(0, len(raw), _CHUNK):  # in chunks: what follows the limit is never even split
        parser.feed(bytes(view[start : start + _CHUNK]))
    message = parser.close()
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage
    return message


class ReceivedEmail:
    """One received e-mail as the ingest job's consumers read it: the raw bytes, the header block, and the
    MIME tree on demand (parsed once, then shared: read it, never change it)."""

    __slots__ = ("raw", "max_parts", "_header_block", "_headers", "_message")

    def __init__(self, raw: bytes, max_parts: int = MAX_PARTS) -> None:
        self.raw, self.max_parts = raw, max_parts
        self._header_block: bytes | None = None
        self._headers: Message | None = None
        self._message: EmailMessage | None = None

    @classmethod
    def of(cls, email: bytes | ReceivedEmail) -> ReceivedEmail:
        """The given one, or a new one around raw bytes (a caller outside an ingest job)."""
        return email if isinstance(email, ReceivedEmail) else cls(email)

    @property
    def header_block(self) -> bytes:
        """The headers' bytes (up to ``MAX_HEADER_BYTES``), without the body."""
        if self._header_block is None:
            self._header_block = header_block(self.raw[:MAX_HEADER_BYTES])
        return self._header_block

    @property
    def headers(self) -> Message:
        """The header block parsed as sent (``compat32``: values undecoded, nothing normalised), which is
        what sender authentication, routing and sender control compare."""
        if self._headers is None:
            self._headers = BytesHeaderParser(policy=policy.compat32).parsebytes(self.header_block)
        return self._headers

    @property
    def message(self) -> EmailMessage:
        """The MIME tree (``policy.default``); raises ``TooManyParts``, each time it is asked again."""
        if self._message is None:
            self._message = parse(self.raw, self.max_parts)
        return self._message


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
