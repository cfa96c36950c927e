"""``/api/v1/addresses``: the token's tenant's inbound addresses, and their rotation (admins only).

- ``GET /addresses``: every role; the current address, the retiring ones with their end, the latest retired;
- ``POST /addresses/rotate`` with an optional ``{"grace_days": 30}`` (0 to 365): a new address, the old ones
  retire after the grace period. Audited like the dashboard's button.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from core.inbound import addresses as addr
from core.models import Role, User
from core.tenancy import accounts
from dashboard.api.auth import caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.params import json_object
from dashboard.api.spec import operation, ref
from dashboard.context import settings


def _listing(tenant_id: int) -> dict[str, object]:
    views = addr.tenant_addresses(dbs(), tenant_id, settings().inbound_domain)
    current = next((v.address for v in views if v.state == addr.AddressState.CURRENT), None)
    return {"current": current, "items": [v.json() for v in views]}


@bp.get("/addresses")
@operation("Company", "The company's inbound addresses: current, retiring, latest retired",
           ok={200: ref("Addresses")})
def list_addresses() -> Response:
    return jsonify(_listing(caller().tenant_id))


@bp.post("/addresses/rotate")
@operation("Company", "Issue a new inbound address; the old ones retire after the grace period",
           description="Admins only. Audited like the dashboard's button.",
           body={"type": "object", "properties": {"grace_days": {
               "type": ["integer", "string", "null"], "minimum": 0, "maximum": addr.GRACE_DAYS_MAX,
               "description": f"Days the old addresses still accept mail (default {addr.GRACE_DAYS_DEFAULT})."}}},
           ok={201: ref("Addresses")}, errors=(400, 403, 415, 422))
def rotate_address() -> Response:
    who = caller()
    if who.role != Role.ADMIN:
        raise ApiError(403, "only the company's admins can issue a new inbound address")
    body = json_object()
    grace_days = addr.parse_grace_days(body.get("grace_days"))
    session = dbs()
    actor = session.get(User, who.user_id)
    rotation = addr.rotate(session, who.tenant_id, grace_days=grace_days, actor=actor, ip=request.remote_addr)
    session.commit()
    answer = _listing(who.tenant_id)
    answer["new"] = accounts.address_of(rotation.new, settings().inbound_domain)
    response = jsonify(answer)
    response.status_code = 201
    return response
