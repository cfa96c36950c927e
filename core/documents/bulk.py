"""Bulk actions on documents under review (issue 17 item 6): validate, assign to a client, discard.

Each selected document is handled in its own savepoint, so one that fails (a flagged field, a number
already used, a document someone else validated meanwhile) is reported with its reason and the others go
through. Validation is the one of the review page (``review.confirm_document``): nothing is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from core.documents import review
from core.errors import NotFound, ServiceError, ValidationFailed
from core.extraction.result import needs_check
from core.fields import FIELDS
from core.i18n import N_
from core.models import Document, DocumentStatus, Invoice
from core.tenancy import access
from core.tenancy.access import Viewer

MAX_SELECTED = 200  # one page of the list at its largest
ACTIONS = ("validate", "assign", "discard")
MAX_CLIENT_CHARS = 300

FLAGGED = N_("Not validated: check these fields first: {fields}.")
INCOMPLETE = N_("Not validated: {fields}.")
DUPLICATE = N_("Not validated: the number is already used; choose link, replace or discard on its page.")
NOT_FOUND = N_("No such document.")
VALIDATED = N_("Validated as {number}.")
ASSIGNED = N_("Client set to {client}.")
DISCARDED = N_("Deleted.")
NOT_WAITING = N_("Not changed: this document is not waiting for verification.")
NO_CLIENT = N_("Choose a client.")
TOO_MANY = N_("Select at most {max} documents at once.")
NOTHING = N_("Select at least one document.")


@dataclass(frozen=True)
class ItemResult:
    document_id: int
    ok: bool
    message: str  # an N_ template already formatted (the dashboard translates it with its values)
    invoice_id: int | None = None


def flagged_fields(doc: Document) -> list[str]:
    """Fields the extractor was unsure of (a confidence below the check threshold)."""
    flagged = []
    for name in FIELDS:
        info = (doc.field_info or {}).get(name)
        if isinstance(info, dict) and "confidence" in info and needs_check(info.get("confidence")):
            flagged.append(name)
    return flagged


def check_selection(ids: list[int]) -> None:
    if not ids:
        raise ServiceError(NOTHING)
    if len(ids) > MAX_SELECTED:
        raise ServiceError(TOO_MANY.format(max=MAX_SELECTED))


def _visible(session: Session, viewer: Viewer, document_id: int) -> Document:
    return access.check_document(session, viewer, review.get_document(session, viewer.tenant_id, document_id))


def _validate_one(session: Session, viewer: Viewer, doc: Document) -> ItemResult:
    if doc.status not in (DocumentStatus.PENDING.value, DocumentStatus.FAILED.value):
        return ItemResult(doc.id, False, NOT_WAITING)
    flagged = flagged_fields(doc)
    if flagged:
        return ItemResult(doc.id, False, FLAGGED.format(fields=", ".join(flagged)))
    try:
        result = review.confirm_document(session, viewer, doc.id, {})
    except ValidationFailed as exc:
        described = "; ".join(f"{name}: {reason}" for name, reason in sorted(exc.errors.items()))
        return ItemResult(doc.id, False, INCOMPLETE.format(fields=described))
    if isinstance(result, Invoice):
        return ItemResult(doc.id, True, VALIDATED.format(number=result.number), invoice_id=result.id)
    return ItemResult(doc.id, False, DUPLICATE)  # kept in the duplicate choice, as on its own page


def _assign_one(session: Session, viewer: Viewer, doc: Document, client: str) -> ItemResult:
    if doc.status not in (DocumentStatus.PENDING.value, DocumentStatus.FAILED.value):
        return ItemResult(doc.id, False, NOT_WAITING)
    review.update_fields(session, viewer.tenant_id, doc.id, {"client": client})
    return ItemResult(doc.id, True, ASSIGNED.format(client=client))


def _discard_one(session: Session, viewer: Viewer, doc: Document) -> ItemResult:
    if doc.status not in review.REVIEW_STATUSES + (DocumentStatus.FAILED.value,):
        return ItemResult(doc.id, False, NOT_WAITING)
    review.discard_document(session, viewer.tenant_id, doc.id)
    return ItemResult(doc.id, True, DISCARDED)


def apply(session: Session, viewer: Viewer, action: str, ids: list[int], client: str = "") -> list[ItemResult]:
    """Run ``action`` on each document of ``ids`` (deduplicated, order kept); the caller commits.

    ServiceError (before anything changes) for an unknown action, an empty or too large selection, or
    "assign" without a client.
    """
    if action not in ACTIONS:
        raise ServiceError(f"action must be one of {', '.join(ACTIONS)}")
    ids = list(dict.fromkeys(ids))
    check_selection(ids)
    client = " ".join(client.split())[:MAX_CLIENT_CHARS]
    if action == "assign" and not client:
        raise ServiceError(NO_CLIENT)
    results: list[ItemResult] = []
    for document_id in ids:
        savepoint = session.begin_nested()
        try:
            doc = _visible(session, viewer, document_id)
            result = _run(session, viewer, action, doc, client)
        except NotFound:
            result = ItemResult(document_id, False, NOT_FOUND)
        except ServiceError as exc:  # e.g. changed by someone else meanwhile: say why, go on
            result = ItemResult(document_id, False, str(exc))
        if result.ok or result.message == DUPLICATE:  # a duplicate now waits for the reviewer's choice
            savepoint.commit()
        else:
            savepoint.rollback()
        results.append(result)
    return results


def _run(session: Session, viewer: Viewer, action: str, doc: Document, client: str) -> ItemResult:
    handlers: dict[str, Any] = {
        "validate": lambda: _validate_one(session, viewer, doc),
        "assign": lambda: _assign_one(session, viewer, doc, client),
        "discard": lambda: _discard_one(session, viewer, doc),
    }
    return handlers[action]()  # type: ignore[no-any-return]
