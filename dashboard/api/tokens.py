"""``GET /api/v1/tokens`` and ``DELETE /api/v1/tokens/<id>`` (issue 14, finding 9).

A caller lists and revokes their own tokens in the token's tenant; an admin, every token of the tenant.
Another's token (or another tenant's) is 404. Tokens are created by the dashboard's settings page or the
``inbox token create`` command, where the value is shown once.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify

from core.models import ApiToken
from core.tenancy import accounts
from dashboard.api.auth import caller
from dashboard.api.base import bp, dbs
from dashboard.api.serializers import iso
from dashboard.api.spec import PAGE_QUERY, operation, page_of, ref
from dashboard.api.views import ID, paginated


def token_json(row: ApiToken) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "label": row.label,
        "user": row.user.email,
        "state": accounts.token_state(row),
        "created_at": iso(row.created_at),
        "last_used_at": iso(row.last_used_at),
        "expires_at": iso(row.expires_at),
        "revoked_at": iso(row.revoked_at),
    }


def _owner_filter() -> int | None:
    """None (every token of the tenant) for admins; the caller's own id otherwise."""
    who = caller()
    return accounts.token_owner_filter(who.role, who.user_id)


@bp.get("/tokens")
@operation("Tokens", "API tokens: the caller's own, or every one of the company for an admin",
           query=PAGE_QUERY, ok={200: page_of("Token")}, errors=(400,))
def list_tokens() -> Response:
    return paginated(accounts.tokens_query(caller().tenant_id, _owner_filter()), token_json)


@bp.delete(f"/tokens/<{ID}:token_id>")
@operation("Tokens", "Revoke a token (the caller's own; any of the company for an admin)",
           ok={200: ref("Token")})
def revoke_token(token_id: int) -> Response:
    session = dbs()
    row = accounts.revoke_token(session, caller().tenant_id, token_id, _owner_filter())
    session.commit()
    return jsonify(token_json(row))
