"""Substring search as every list does it (``core.listing``, the clients and suppliers lists, the entries):
accents and case folded, ``LIKE '%...%'`` with LIKE's own wildcards taken literally, so that "ecole" finds
"École SARL" and "É" finds "é" on both databases.

The fold is one definition written twice: ``fold`` below (Python, registered on every SQLite connection as
the SQL function ``inbox_fold``, see ``core.db``) and the PostgreSQL function ``inbox_fold`` of the migration
``search_fold``, the same steps in the same order: lower case, canonical decomposition (NFD), the combining
marks removed, then a few letters that carry no separable accent spelt in ASCII (ß, æ, œ, ø, ł...). A test
(tests/test_search_fold.py) compares the two over the Latin, Greek and Cyrillic letters. Both the column and
the typed text go through the database's own ``inbox_fold``, so a search never depends on the two agreeing
byte for byte. On PostgreSQL the searched ``inbox_fold(column)`` expressions have trigram GIN indexes."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy import ColumnElement, func

MAX_SEARCH_CHARS = 100  # longer patterns are refused: a search box, not a document
FOLD_FUNCTION = "inbox_fold"
# Combining Diacritical Marks and their supplements (the accents NFD separates from Latin, Greek, Cyrillic).
COMBINING_MARKS = "\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f"
# Letters with no accent to strip, read as people type them; applied after the marks are gone (so "ǿ" is "o").
# "ς" (the final sigma Python's lower() writes, PostgreSQL's does not) is "σ" on both.
LETTERS = (("ß", "ss"), ("æ", "ae"), ("œ", "oe"), ("þ", "th"), ("ø", "o"), ("ł", "l"), ("đ", "d"), ("ð", "d"),
           ("ı", "i"), ("ς", "σ"))
_MARKS = re.compile(f"[{COMBINING_MARKS}]")


def fold(text: str | None) -> str | None:
    """``text`` as the search compares it: lower case, no accents. ASCII text is only lowered (the common case,
    and the shortcut the PostgreSQL function takes too)."""
    if text is None:
        return None
    if text.isascii():
        return text.lower()
    folded = _MARKS.sub("", unicodedata.normalize("NFD", text.lower()))
    for letter, spelt in LETTERS:
        folded = folded.replace(letter, spelt)
    return folded


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's own wildcards (and the escape character) taken literally. The fold leaves
    ``%``, ``_`` and ``\\`` alone, so the database folds the pattern as it is."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def folded(column: Any) -> ColumnElement[str]:
    """``inbox_fold(column)``: the expression the trigram indexes are built on (PostgreSQL)."""
    return getattr(func, FOLD_FUNCTION)(column)


def contains(column: Any, pattern: str) -> ColumnElement[bool]:
    """``column`` holds ``pattern`` (from ``like_pattern``), whatever the case and the accents."""
    return folded(column).like(folded(pattern), escape="\\")
