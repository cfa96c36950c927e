"""Dead letters on the API: ``GET /failed`` lists them, ``POST /failed/retry`` retries them all."""

from __future__ import annotations

from flask import Response, jsonify

from core.inbound import deadletter
from core.tenancy import access
from dashboard.api.auth import api_viewer, caller
from dashboard.api.base import bp, dbs
from dashboard.api.spec import items_of, operation, ref
from dashboard.i18n import shown_reason


def _json(item: deadletter.DeadLetter) -> dict[str, object]:
    label = access.shown_subject(api_viewer(), item.label)  # a message's label is its subject
    return {"kind": item.kind, "id": item.id, "message_id": item.message_id, "label": label,
            "reason": shown_reason(item), "reason_code": item.reason_code, "reason_params": item.reason_params,
            "failed_at": item.failed_at.isoformat(), "attempts": item.attempts}


@bp.get("/failed")
@operation("Failed imports", "What failed after its automatic retries, with the reason",
           ok={200: items_of(ref("DeadLetter"))})
def list_failed() -> Response:
    return jsonify(items=[_json(item) for item in deadletter.dead_letters(dbs(), caller().tenant_id)])


@bp.post("/failed/retry")
@operation("Failed imports", "Retry every failed message and document", ok={202: ref("Retried")})
def retry_failed() -> tuple[Response, int]:
    from dashboard.handoff import enqueue_retried

    session = dbs()
    message_ids, document_ids = deadletter.retry_all(session, caller().tenant_id)
    session.commit()
    queued = enqueue_retried(message_ids, document_ids)
    return jsonify(messages=message_ids, documents=document_ids, queued=queued), 202
