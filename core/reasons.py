"""Reasons as data: why a message or document stopped, stored as a catalogue code plus parameters.

A ``Reason`` is the ``N_("... {name} ...")`` template itself (the msgid, stored as ``reason_code``) and the
values of its placeholders (``reason_params``); ``.text`` is the English sentence, still stored in
``reason`` for the API, logs and older readers. The dashboard renders code + parameters in the reader's
language (``dashboard.i18n.reason_text``) instead of recognising the English sentence by regex.

``Reason`` is a ``str`` (its English text), so producers can return one wherever a sentence was returned
before (tuples, ``a or b``, comparisons in tests) and nothing downstream changes; ``set_reason`` is the one
place that writes a message's or document's reason, and keeps the code when it is given one.

A composed reason (a summary with notes, "some files were left out: ...") is a template whose parameter
is itself a ``Reason``, or a list of them: it is stored as ``{"code": ..., "params": ...}`` (a list as a
list of those) and ``render`` translates each part, joining a list with "; ".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol


class Reason(str):
    """A reason's English text that remembers its template and parameters."""

    template: str
    params: dict[str, Any]

    def __new__(cls, template: str, params: Mapping[str, object] | None = None) -> Reason:
        values = {key: _stored(value) for key, value in (params or {}).items()}
        # The English text is the rendering without a catalogue (a constant is never .format-ed).
        self = super().__new__(cls, render(template, values, _as_written))
        self.template, self.params = template, values
        return self

    @property
    def text(self) -> str:
        return str.__str__(self)


def _as_written(text: str) -> str:
    return text


def _stored(value: object) -> Any:
    """A parameter as stored in ``reason_params`` (JSON): text, a nested reason, or a list of them."""
    if isinstance(value, list | tuple):
        return [_nested(item) for item in value]
    if isinstance(value, Reason):
        return _nested(value)
    return str(value)


def _nested(value: object) -> dict[str, Any]:
    found = value if isinstance(value, Reason) else Reason(str(value))  # plain text: its own code
    return {"code": found.template, "params": found.params}


def render(code: str, params: Mapping[str, Any] | None, translate: Callable[[str], str]) -> str:
    """The reason ``code`` filled with ``params``, each code (nested ones too) passed through ``translate``
    (``gettext`` for a reader's language; the identity gives the English text). Stored values are shown
    as they are. Raises KeyError/IndexError/ValueError when a translation does not fit its parameters."""
    values = {key: _rendered(value, translate) for key, value in (params or {}).items()}
    found = translate(code)
    return found.format(**values) if values else found


def _rendered(value: Any, translate: Callable[[str], str]) -> str:
    if isinstance(value, list):
        return "; ".join(_rendered(item, translate) for item in value)
    if isinstance(value, dict) and "code" in value:
        return render(str(value["code"]), value.get("params"), translate)
    return str(value)


def reason(template: str, **params: object) -> Reason:
    """``reason(N_("Files of type {type} ..."), type=t)``: the template filled in, its values kept."""
    return Reason(template, params)


class HasReason(Protocol):
    reason: str | None
    reason_code: str | None
    reason_params: dict[str, Any] | None


def set_reason(row: HasReason, value: str | None, **params: object) -> None:
    """Write ``row``'s reason (a message or document): the English text, the code and the parameters.

    ``value`` is a ``Reason``, or a template to fill with ``params``, or a constant ``N_`` text (its own
    code); None clears all three. Text that is not in the catalogue (e.g. a person's note) is stored as
    its own code too: the dashboard shows it as written.
    """
    if value is None:
        row.reason, row.reason_code, row.reason_params = None, None, None
        return
    found = value if isinstance(value, Reason) and not params else Reason(getattr(value, "template", value), params)
    row.reason, row.reason_code = found.text, found.template
    row.reason_params = dict(found.params) or None
