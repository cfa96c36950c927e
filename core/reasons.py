"""Reasons as data: why a message or document stopped, stored as a catalogue code plus parameters.

A ``Reason`` is the ``N_("... {name} ...")`` template itself (the msgid, stored as ``reason_code``) and the
values of its placeholders (``reason_params``); ``.text`` is the English sentence, still stored in
``reason`` for the API, logs and older readers. The dashboard renders code + parameters in the reader's
language (``dashboard.i18n.reason_text``) instead of recognising the English sentence by regex.

``Reason`` is a ``str`` (its English text), so producers can return one wherever a sentence was returned
before (tuples, ``a or b``, comparisons in tests) and nothing downstream changes; ``set_reason`` is the one
place that writes a message's or document's reason, and keeps the code when it is given one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Reason(str):
    """A reason's English text that remembers its template and parameters."""

    template: str
    params: dict[str, str]

    def __new__(cls, template: str, params: Mapping[str, object] | None = None) -> Reason:
        values = {key: str(value) for key, value in (params or {}).items()}
        # .format only when there are values: a constant may contain braces meant literally.
        self = super().__new__(cls, template.format(**values) if values else template)
        self.template, self.params = template, values
        return self

    @property
    def text(self) -> str:
        return str.__str__(self)


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
