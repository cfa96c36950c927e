"""Settings → Members (admins only): the tenant's members and roles, the *restrict access* switch, and
which clients each member is assigned to."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.wrappers import Response

from core.errors import NotFound, ServiceError
from core.models import Client, ClientAssignment, Membership
from core.tenancy import access as policy
from core.tenancy import audit, invitations, twofactor
from core.tenancy.members import ASSIGNABLE_ROLES
from core.tenancy.people_models import SecondFactor
from dashboard.extensions import db
from dashboard.i18n import translate
from dashboard.viewer import admin_required
from dashboard.web import tenant_id, tenant_required

bp = Blueprint("members", __name__)

MAX_CLIENTS_IN_PICKER = 1000


@bp.get("/settings/members")
@tenant_required
def index() -> str:
    admin_required()
    members = db.session.scalars(
        select(Membership).where(Membership.tenant_id == tenant_id())
        .options(selectinload(Membership.user)).order_by(Membership.id)
    ).all()
    assignments: dict[int, list[Client]] = {}
    rows = db.session.scalars(
        select(ClientAssignment).where(ClientAssignment.tenant_id == tenant_id())
        .options(selectinload(ClientAssignment.client)).order_by(ClientAssignment.id)
    )
    for row in rows:
        assignments.setdefault(row.user_id, []).append(row.client)
    clients = db.session.scalars(
        select(Client).where(Client.tenant_id == tenant_id()).order_by(Client.normalized_name)
        .limit(MAX_CLIENTS_IN_PICKER)
    ).all()
    pending = [row for row in db.session.scalars(invitations.invitations_query(tenant_id()).limit(50))
               if invitations.state_of(row) == "pending"]
    with_2fa = set(db.session.scalars(select(SecondFactor.user_id).where(
        SecondFactor.user_id.in_([m.user_id for m in members]))))
    return render_template("settings/members.html", active_nav="settings", members=members,
                           assignments=assignments, clients=clients, invitations=pending, with_2fa=with_2fa,
                           roles=ASSIGNABLE_ROLES, me=current_user.id,
                           i_have_2fa=twofactor.enabled(db.session, current_user.id))


def _audit(action: str, target: str, detail: dict[str, object]) -> None:
    audit.record(db.session, tenant_id(), action, actor=current_user.user, target=target, detail=detail,
                 ip=request.remote_addr)


@bp.post("/settings/members/restrict")
@tenant_required
def restrict() -> Response:
    viewer = admin_required()
    enabled = request.form.get("restrict_access") == "1"
    policy.set_restrict_access(db.session, viewer, enabled)
    _audit("settings.restrict_access", f"tenant:{viewer.tenant_id}", {"enabled": enabled})
    db.session.commit()
    flash(_("Access is now restricted to assigned clients for members.") if enabled
          else _("Members now see every client."), "success")
    return redirect(url_for(".index"))


def _ids(*names: str) -> list[int]:
    raw = [request.form.get(name, "") for name in names]
    return [int(value) if value.isdigit() and len(value) < 10 else 0 for value in raw]


@bp.post("/settings/members/<int:user_id>/clients")
@tenant_required
def assign(user_id: int) -> Response:
    viewer = admin_required()
    (client_id,) = _ids("client_id")
    try:
        row = policy.assign_client(db.session, viewer, user_id, client_id)
    except NotFound:
        raise  # not this tenant's member or client: the 404 page
    except ServiceError as exc:
        db.session.rollback()
        flash(translate(str(exc)), "error")
        return redirect(url_for(".index"))
    _audit("members.assign_client", f"user:{user_id}", {"client_id": row.client_id})
    db.session.commit()
    flash(_("Client assigned."), "success")
    return redirect(url_for(".index"))


@bp.post("/settings/members/<int:user_id>/clients/<int:client_id>/remove")
@tenant_required
def unassign(user_id: int, client_id: int) -> Response:
    viewer = admin_required()
    policy.unassign_client(db.session, viewer, user_id, client_id)
    _audit("members.unassign_client", f"user:{user_id}", {"client_id": client_id})
    db.session.commit()
    flash(_("Assignment removed."), "success")
    return redirect(url_for(".index"))
