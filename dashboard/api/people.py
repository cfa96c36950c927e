"""``/api/v1/users``, ``/api/v1/invitations`` and ``/api/v1/companies`` (issue 17, items 1, 2 and 4).

- users and invitations: the token's company only, admins only (like Settings → Members);
- companies: those the token's user belongs to, with what waits in each; ``POST`` creates one (the user is
  its admin, it has its inbound address at once). A token stays valid in its own company only: to work on
  the new one, create a token there.
"""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request
from sqlalchemy import select

from core.errors import NotFound
from core.models import Membership, Role, User
from core.tenancy import accounts, companies, invitations, members
from core.tenancy.people_models import Invitation, SecondFactor
from dashboard.api.auth import caller
from dashboard.api.base import ApiError, bp, dbs
from dashboard.api.params import json_object
from dashboard.api.serializers import iso
from dashboard.api.spec import PAGE_QUERY, items_of, operation, page_of, ref
from dashboard.api.views import ID, paginated
from dashboard.context import settings
from dashboard.outbound import link_to, mail_config
from dashboard.viewer import today

ROLE_BODY = {"type": "object", "required": ["role"], "additionalProperties": False,
             "properties": {"role": {"type": "string", "enum": list(members.ASSIGNABLE_ROLES)}}}
INVITE_BODY = {"type": "object", "required": ["email"], "additionalProperties": False, "properties": {
    "email": {"type": "string", "format": "email", "maxLength": 254},
    "role": {"type": "string", "enum": list(invitations.INVITABLE_ROLES), "default": "member"}}}
COMPANY_BODY = {"type": "object", "required": ["name"], "additionalProperties": False,
                "properties": {"name": {"type": "string", "maxLength": companies.MAX_NAME}}}


def _admin() -> User:
    who = caller()
    if who.role != Role.ADMIN:
        raise ApiError(403, "only the company's admins manage its people")
    user = dbs().get(User, who.user_id)
    assert user is not None
    return user


def _text(body: dict[str, Any], name: str, default: str | None = None) -> str:
    value = body.get(name, default)
    if not isinstance(value, str):
        raise ApiError(422, "validation failed", {name: "a string is required"})
    return value


def _only(body: dict[str, Any], *names: str) -> None:
    unknown = sorted(set(body) - set(names))
    if unknown:
        raise ApiError(422, "validation failed", {name: "unknown field" for name in unknown})


def member_json(member: Membership, with_2fa: set[int]) -> dict[str, Any]:
    return {"id": member.user_id, "email": member.user.email, "role": member.role,
            "two_factor": member.user_id in with_2fa}


def _with_2fa(user_ids: list[int]) -> set[int]:
    return set(dbs().scalars(select(SecondFactor.user_id).where(SecondFactor.user_id.in_(user_ids))))


def invitation_json(row: Invitation, mail_state: str | None = None) -> dict[str, Any]:
    return {"id": row.id, "email": row.email, "role": row.role, "state": invitations.state_of(row),
            "invited_by": row.invited_by.email if row.invited_by else None, "created_at": iso(row.created_at),
            "expires_at": iso(row.expires_at), "mail": mail_state}


@bp.get("/users")
@operation("People", "The company's members and their roles (admins only)", ok={200: items_of(ref("Member"))},
           errors=(403,))
def list_users() -> Response:
    _admin()
    rows = dbs().scalars(members.members_query(caller().tenant_id)).all()
    with_2fa = _with_2fa([row.user_id for row in rows])
    return jsonify(items=[member_json(row, with_2fa) for row in rows])


@bp.patch(f"/users/<{ID}:user_id>")
@operation("People", "Change a member's role (admins only; never the last admin)", body=ROLE_BODY,
           body_required=True, ok={200: ref("Member")}, errors=(400, 403, 409, 415, 422))
def change_user_role(user_id: int) -> Response:
    actor = _admin()
    body = json_object()
    _only(body, "role")
    session = dbs()
    role = body.get("role")  # checked by the service, after the member (another company's id: 404, not 422)
    member = members.change_role(session, caller().tenant_id, user_id, role if isinstance(role, str) else "", actor,
                                 ip=request.remote_addr)
    session.commit()
    return jsonify(member_json(member, _with_2fa([user_id])))


@bp.delete(f"/users/<{ID}:user_id>")
@operation("People", "Remove a member from the company (admins only; never the last admin)",
           description="Their client assignments and API tokens of this company end; their account stays.",
           ok={204: None}, errors=(403, 409))
def remove_user(user_id: int) -> Response:
    actor = _admin()
    session = dbs()
    members.remove(session, caller().tenant_id, user_id, actor, ip=request.remote_addr)
    session.commit()
    return Response(status=204)


@bp.get("/invitations")
@operation("People", "The company's invitations, newest first (admins only)", query=PAGE_QUERY,
           ok={200: page_of("Invitation")}, errors=(400, 403))
def list_invitations() -> Response:
    _admin()
    return paginated(invitations.invitations_query(caller().tenant_id), invitation_json)


@bp.post("/invitations")
@operation("People", "Invite a person by e-mail (admins only)",
           description="The link (single use, valid 7 days) goes by mail through MAIL_RELAY_URL, or is kept in "
                       "the company's outbox when no relay is configured. An earlier pending invitation of the "
                       "same address is withdrawn. 422 when the address is already a member.",
           body=INVITE_BODY, body_required=True, ok={201: ref("Invitation")}, errors=(400, 403, 415, 422))
def create_invitation() -> Response:
    actor = _admin()
    body = json_object()
    _only(body, "email", "role")
    session = dbs()
    sent = invitations.invite(session, caller().tenant_id, actor, _text(body, "email")[:320],
                              _text(body, "role", "member"), link_for=link_to("account.accept_invitation"),
                              config=mail_config(), ip=request.remote_addr)
    session.commit()
    response = jsonify(invitation_json(sent.invitation, sent.outbox.state))
    response.status_code = 201
    return response


@bp.delete(f"/invitations/<{ID}:invitation_id>")
@operation("People", "Withdraw a pending invitation (admins only): its link stops working",
           ok={200: ref("Invitation")}, errors=(403, 409))
def revoke_invitation(invitation_id: int) -> Response:
    actor = _admin()
    session = dbs()
    row = invitations.revoke(session, caller().tenant_id, invitation_id, actor, ip=request.remote_addr)
    session.commit()
    return jsonify(invitation_json(row))


def company_json(row: companies.CompanyCounts, address: str | None) -> dict[str, Any]:
    return {"id": row.tenant_id, "name": row.name, "role": row.role, "inbound_address": address,
            "pending_documents": row.pending_documents, "overdue_invoices": row.overdue_invoices,
            "unmatched_transactions": row.unmatched_transactions}


def _address(tenant_id: int) -> str | None:
    try:
        return accounts.address_of(accounts.primary_address(dbs(), tenant_id), settings().inbound_domain)
    except NotFound:
        return None


@bp.get("/companies")
@operation("Companies", "The companies the token's user belongs to, with what waits in each",
           ok={200: items_of(ref("Company"))})
def list_companies() -> Response:
    rows = companies.overview(dbs(), caller().user_id, today())
    return jsonify(items=[company_json(row, _address(row.tenant_id)) for row in rows])


@bp.post("/companies")
@operation("Companies", "Create a company: the token's user is its admin; it has its inbound address at once",
           description="422 when the name is empty or another company has it. The token stays valid in its own "
                       "company only.",
           body=COMPANY_BODY, body_required=True, ok={201: ref("Company")}, errors=(400, 403, 415, 422))
def create_company() -> Response:
    body = json_object()
    _only(body, "name")
    session = dbs()
    user = session.get(User, caller().user_id)
    assert user is not None
    tenant, address = companies.create_company(session, user, _text(body, "name"), ip=request.remote_addr)
    session.commit()
    row = companies.CompanyCounts(tenant.id, tenant.name, Role.ADMIN.value, 0, 0, 0)
    response = jsonify(company_json(row, accounts.address_of(address, settings().inbound_domain)))
    response.status_code = 201
    return response
