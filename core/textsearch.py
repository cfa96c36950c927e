"""Substring search as every list does it (``core.listing``, the clients list): lowered, ``LIKE '%...%'``
with LIKE's own wildcards taken literally. On PostgreSQL the searched ``lower(column)`` expressions have
trigram GIN indexes (migration ``list_search_trgm``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, func

MAX_SEARCH_CHARS = 100  # longer patterns are refused: a search box, not a document


def like_pattern(text: str) -> str:
    """``%text%`` lowered, with LIKE's own wildcards (and the escape character) taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(column: Any, pattern: str) -> ColumnElement[bool]:
    """``column`` holds ``pattern`` (from ``like_pattern``), whatever the case."""
    return func.lower(column).like(pattern, escape="\\")
