"""``GET /api/v1/mailboxes``: the token's tenant's IMAP mailboxes and their state, for its admins.

Secrets are never part of the answer: only whether one is stored (``has_secret``).
"""

from __future__ import annotations

from flask import Response, jsonify

from core.inbound import mailboxes as svc
from core.models import Role
from dashboard.api.auth import caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.spec import items_of, operation, ref


@bp.get("/mailboxes")
@operation("Mailboxes", "The company's IMAP mailboxes and their state (admins only)",
           ok={200: items_of(ref("Mailbox"))}, errors=(403,))
def list_mailboxes() -> Response:
    who = caller()
    if who.role != Role.ADMIN:
        raise ApiError(403, "only the company's admins can read its mailboxes")
    rows = dbs().scalars(svc.mailboxes_query(who.tenant_id))
    return jsonify(items=[svc.public_view(mailbox) for mailbox in rows])
