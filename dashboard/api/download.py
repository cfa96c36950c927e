"""A stored file as an HTTP download that a browser will neither render nor sniff."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from urllib.parse import quote

from flask import Response
from sqlalchemy.orm import Session

# type/subtype (with optional parameters) made of header-safe characters; anything else is served as bytes.
_CONTENT_TYPE_RE = re.compile(r"[A-Za-z0-9][\w.+-]*/[\w.+-]+(\s*;\s*[\w.+-]+=[\w.+\"-]+)*")
FALLBACK_TYPE = "application/octet-stream"


def safe_filename(name: str) -> str:
    """The sender's name without directories, control or invisible format characters (e.g. bidi
    overrides that disguise an extension)."""
    base = re.split(r"[/\\]", name)[-1]
    cleaned = "".join(c for c in base if unicodedata.category(c) not in ("Cc", "Cf")).strip()
    return cleaned if cleaned.strip(".") else "document"


def content_disposition(name: str) -> str:
    """RFC 6266: an ASCII fallback for old clients, and the exact name as RFC 5987 UTF-8."""
    name = safe_filename(name)
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r'["\\;]', "_", ascii_name).strip() or "document"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def attachment(data: bytes, content_type: str, filename: str) -> Response:
    if not _CONTENT_TYPE_RE.fullmatch(content_type or ""):
        content_type = FALLBACK_TYPE
    response = Response(data, content_type=content_type)
    response.headers["Content-Disposition"] = content_disposition(filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Should the file be opened in place anyway, it may run nothing and load nothing.
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response


def streamed_attachment(produce: Callable[[Session], Iterator[bytes]], content_type: str, filename: str) -> Response:
    """A download written as it is produced (exports of a whole year: memory stays flat).

    The chunks are read through a session of their own, opened when the body starts and closed when it
    ends: the request's session and context are gone by then (no ``stream_with_context``, which would keep
    the request open for as long as the client reads).
    """
    from dashboard.extensions import db

    engine = db.engine

    def body() -> Iterator[bytes]:
        with Session(bind=engine) as session:
            yield from produce(session)

    response = Response(body(), content_type=content_type)
    response.headers["Content-Disposition"] = content_disposition(filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
