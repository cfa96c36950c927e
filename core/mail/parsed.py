"""Reading an email once: several services look at the same raw message in one ingest job (bank statements,
attachments, forwarding confirmations), and the standard library's parser is most of their cost (~5 ms for a
275 kB email, measured; more than the rest of the job's Python work together apart from the extraction).
"""

from __future__ import annotations

import re
import threading
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

_BLANK_LINE = re.compile(rb"\n\r?\n")
_last = threading.local()  # (raw, message) of this thread's last parse


def parse(raw: bytes) -> EmailMessage:
    """``BytesParser(policy=policy.default).parsebytes(raw)``, parsed once for the same bytes object.

    The message is shared between the callers of one job: read it, never change it. One message per
    thread is kept until the next parse or ``forget()`` (the worker calls it after each job).
    """
    cached = getattr(_last, "value", None)
    if cached is not None and cached[0] is raw:
        return cached[1]
    message = BytesParser(policy=policy.default).parsebytes(raw)
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
