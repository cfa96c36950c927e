"""Query-string and body parsing: anything malformed becomes a 400 (or 422) that says what to send."""

from __future__ import annotations

import enum
import re
from typing import Any

from flask import request

from core.fields import FIELDS
from core.paging import MAX_PER_PAGE
from dashboard.api.base import ApiError

DEFAULT_PER_PAGE = 50
# At most nine digits: keeps the SQL offset far inside 64 bits on every backend.
_NUMBER_RE = re.compile(r"[0-9]{1,9}")
# The API names the document type "type"; the other fields keep the model's names.
INPUT_FIELDS: dict[str, str] = {("type" if name == "doc_type" else name): name for name in FIELDS}
# Issue 18: a validation (or a draft) may say whether the document is a sale or a purchase.
INPUT_FIELDS["direction"] = "direction"


def _int_param(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    # re.fullmatch rather than int(): int() also takes "1_0", " 1" and non-ASCII digits.
    if not _NUMBER_RE.fullmatch(raw) or not low <= int(raw) <= high:
        raise ApiError(400, f"{name} must be an integer from {low} to {high}")
    return int(raw)


def page_params() -> tuple[int, int]:
    page = _int_param("page", 1, 1, 10**9 - 1)
    per_page = _int_param("per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)
    return page, per_page


def enum_param(name: str, choices: type[enum.StrEnum]) -> str | None:
    """The filter's value, or None when absent or empty (``?status=`` means "no filter")."""
    raw = request.args.get(name, "")
    if not raw:
        return None
    allowed = [member.value for member in choices]
    if raw not in allowed:
        raise ApiError(400, f"{name} must be one of {', '.join(allowed)}")
    return raw


def json_object() -> dict[str, Any]:
    """The body as a JSON object; an empty body is ``{}`` (every field optional, or reported missing)."""
    if not request.get_data(cache=True):
        return {}
    body = request.get_json()  # raises 415 (not JSON) or 400 (malformed), answered as JSON errors
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def field_input(body: dict[str, Any]) -> dict[str, Any]:
    """The fields of a validation body, keyed by model name; unknown keys and non-scalar values are
    refused rather than ignored, so that a typo never validates an invoice without the intended change."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {}
    for key, value in body.items():
        name = INPUT_FIELDS.get(key)
        if name is None:
            errors[key] = "unknown field"
        elif value is not None and (isinstance(value, bool) or not isinstance(value, str | int | float)):
            errors[key] = "must be a string, a number or null"
        else:
            data[name] = value
    if errors:
        raise ApiError(422, "validation failed", errors)
    return data
