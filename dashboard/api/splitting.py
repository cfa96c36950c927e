"""Several invoices in one PDF on the API (issue 4): ``GET``/``PUT /sources/<id>/groups``.

``PUT`` takes ``{"groups": [[0, 1], [2], [3, 4]]}`` (0-based page indexes, every page exactly once);
groups already validated must be given unchanged. It answers 202 with the new groups: the documents
of the groups that changed are read again by the worker.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from core.documents import splitting
from dashboard.api.auth import caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.spec import operation, ref

ID = "int(min=1, max=2147483647)"


def _groups_body(source_id: int) -> dict[str, object]:
    source = splitting.get_source(dbs(), caller().tenant_id, source_id)  # 404 for another tenant's source
    return splitting.groups_json(source, splitting.groups_of(dbs(), source))


@bp.get(f"/sources/<{ID}:source_id>/groups")
@operation("Documents", "How a PDF holding several invoices was cut into documents",
           ok={200: ref("SourceGroups")})
def source_groups(source_id: int) -> Response:
    return jsonify(_groups_body(source_id))


@bp.put(f"/sources/<{ID}:source_id>/groups")
@operation("Documents", "Cut a PDF again: page groups (0-based), every page once",
           description="Groups already validated must be given unchanged; changed groups are read again.",
           body={"type": "object", "required": ["groups"], "properties": {"groups": {
               "type": "array", "items": {"type": "array", "items": {"type": "integer", "minimum": 0}}}}},
           body_required=True, ok={202: ref("SourceGroups")}, errors=(400, 409, 422))
def regroup_source(source_id: int) -> tuple[Response, int]:
    from dashboard.context import storage
    from dashboard.handoff import queue_reading

    who = caller()
    splitting.get_source(dbs(), who.tenant_id, source_id)  # 404 before the body is looked at
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or "groups" not in body:
        raise ApiError(400, 'send JSON: {"groups": [[0, 1], [2], ...]}')
    to_read = splitting.regroup(dbs(), storage(), who.tenant_id, source_id, body["groups"], who.user_id)
    dbs().commit()
    queue_reading(to_read)
    return jsonify(_groups_body(source_id) | {"reading": to_read}), 202
