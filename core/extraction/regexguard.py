"""Template regexes under a hard time limit (issue #14, finding 3).

Every regex invoice2data runs (the fields, ``options.replace``, the lines and tables plugins) goes through
``invoice2data.extract._regex``; ``install()`` puts an engine there that compiles with the ``regex``
package and passes every match a ``timeout`` taken from the caller's ``deadline()``. So a template
written by a tenant can cost at most its deadline, whatever its pattern: the match raises
``TimeoutError``, which the callers report as the template's failure. ``concurrent=True`` lets the
``regex`` package release the GIL while it matches, so the other threads of a web worker keep answering.

The ``regex`` package is re-compatible in its default (V0) mode; patterns are validated with the stdlib
parser beforehand (``core.documents.templates.regex_problem``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import regex

CALL_SECONDS = 1.0  # one pattern on one text; the package checks its clock now and then, so it may overrun
MAX_TEXT_CHARS = 200_000  # the text a template is matched against (a 40-page invoice is about 100,000)

_state = threading.local()


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every guarded match in this thread, inside the block, ends by ``seconds`` from now (or sooner)."""
    before = getattr(_state, "deadline", None)
    mine = time.monotonic() + seconds
    _state.deadline = mine if before is None else min(before, mine)
    try:
        yield
    finally:
        _state.deadline = before


def expired() -> bool:
    """True when this thread is inside a ``deadline()`` block whose time is up."""
    end = getattr(_state, "deadline", None)
    return end is not None and time.monotonic() >= end


def _timeout() -> float | None:
    """The timeout of the next match: the rest of the deadline, at most ``CALL_SECONDS``; None outside one."""
    end = getattr(_state, "deadline", None)
    if end is None:
        return CALL_SECONDS
    left = end - time.monotonic()
    if left <= 0:
        raise TimeoutError("regex time limit reached")
    return min(CALL_SECONDS, left)


class GuardedPattern:
    """A compiled ``regex`` pattern whose every match has a timeout and releases the GIL."""

    def __init__(self, compiled: Any) -> None:
        self._compiled = compiled

    def __getattr__(self, name: str) -> Any:  # pattern, flags, groups, groupindex
        return getattr(self._compiled, name)

    def search(self, string: str, *args: Any) -> Any:
        return self._compiled.search(string, *args, concurrent=True, timeout=_timeout())

    def match(self, string: str, *args: Any) -> Any:
        return self._compiled.match(string, *args, concurrent=True, timeout=_timeout())

    def fullmatch(self, string: str, *args: Any) -> Any:
        return self._compiled.fullmatch(string, *args, concurrent=True, timeout=_timeout())

    def findall(self, string: str, *args: Any) -> Any:
        return self._compiled.findall(string, *args, concurrent=True, timeout=_timeout())

    def finditer(self, string: str, *args: Any) -> Any:
        return self._compiled.finditer(string, *args, concurrent=True, timeout=_timeout())

    def split(self, string: str, maxsplit: int = 0) -> Any:
        return self._compiled.split(string, maxsplit, concurrent=True, timeout=_timeout())

    def sub(self, repl: Any, string: str, count: int = 0) -> Any:
        return self._compiled.sub(repl, string, count, concurrent=True, timeout=_timeout())


class GuardedEngine:
    """What ``invoice2data.extract._regex`` expects of ``re``: ``compile`` (its functions call only that)."""

    __name__ = "regex-guarded"

    def compile(self, pattern: str, flags: int = 0) -> GuardedPattern:
        return GuardedPattern(regex.compile(pattern, flags))

    def __getattr__(self, name: str) -> Any:
        return getattr(regex, name)


_installed = threading.Lock()


def install() -> None:
    """Route invoice2data's regexes through ``GuardedEngine`` (idempotent; called before any template runs)."""
    from invoice2data.extract import _regex

    with _installed:
        if isinstance(_regex._engine, GuardedEngine):
            return
        _regex._engine = GuardedEngine()
        _regex.ENGINE = GuardedEngine.__name__
        _regex.compile.cache_clear()  # patterns compiled by the stdlib before this would not be guarded
