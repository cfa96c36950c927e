"""Settings → Members, the people part (issue 17): invite by e-mail, change a role, remove someone,
withdraw an invitation, require two-factor; and Settings → Outbox, the mail the company's invitations
sent (what ``make start`` shows instead of delivering). Admins only; every form has its CSRF token."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from core.errors import NotFound, ServiceError, ValidationFailed
from core.outbound import mail
from core.tenancy import invitations, members, twofactor
from dashboard.extensions import db
from dashboard.i18n import N_, errors_text, translate
from dashboard.outbound import link_to, mail_config, translated
from dashboard.viewer import admin_required
from dashboard.web import paginated, tenant_id, tenant_required

bp = Blueprint("people", __name__)
# The outbox's states, shown through the |tr filter.
SHOWN_STATES = (N_("kept"), N_("sent"))


def _back() -> Response:
    return redirect(url_for("members.index", _anchor="people"))


def _refused(exc: ServiceError) -> Response:
    db.session.rollback()
    flash(errors_text(exc.errors) if isinstance(exc, ValidationFailed) else translate(str(exc)), "error")
    return _back()


@bp.post("/settings/members/invite")
@tenant_required
def invite() -> Response:
    admin_required()
    try:
        sent = invitations.invite(db.session, tenant_id(), current_user.user, request.form.get("email", "")[:320],
                                  request.form.get("role", ""), link_for=link_to("account.accept_invitation"),
                                  config=mail_config(), tr=translated, ip=request.remote_addr)
    except NotFound:
        raise
    except ServiceError as exc:
        return _refused(exc)
    db.session.commit()
    email = sent.invitation.email
    if sent.outbox.state == mail.FAILED:
        flash(_("The invitation to %(email)s is ready but the mail relay refused it; see the outbox.", email=email),
              "error")
    elif sent.outbox.state == mail.KEPT:
        flash(_("Invitation created for %(email)s. No mail relay is configured: the message is in the outbox.",
                email=email), "success")
    else:
        flash(_("Invitation sent to %(email)s.", email=email), "success")
    return _back()


@bp.post("/settings/members/<int:user_id>/role")
@tenant_required
def change_role(user_id: int) -> Response:
    admin_required()
    try:
        member = members.change_role(db.session, tenant_id(), user_id, request.form.get("role", ""),
                                     current_user.user, ip=request.remote_addr)
    except NotFound:
        raise
    except ServiceError as exc:
        return _refused(exc)
    email = member.user.email
    db.session.commit()
    flash(_("%(email)s is now %(role)s.", email=email, role=translate(member.role)), "success")
    return _back()


@bp.post("/settings/members/<int:user_id>/remove")
@tenant_required
def remove(user_id: int) -> Response:
    admin_required()
    try:
        email = members.remove(db.session, tenant_id(), user_id, current_user.user, ip=request.remote_addr)
    except NotFound:
        raise
    except ServiceError as exc:
        return _refused(exc)
    db.session.commit()
    flash(_("%(email)s no longer has access to this company.", email=email), "success")
    return _back()


@bp.post("/settings/members/invitations/<int:invitation_id>/revoke")
@tenant_required
def revoke_invitation(invitation_id: int) -> Response:
    admin_required()
    try:
        invitation = invitations.revoke(db.session, tenant_id(), invitation_id, current_user.user,
                                        ip=request.remote_addr)
    except NotFound:
        raise
    except ServiceError as exc:
        return _refused(exc)
    email = invitation.email
    db.session.commit()
    flash(_("The invitation to %(email)s is withdrawn: its link no longer works.", email=email), "success")
    return _back()


@bp.post("/settings/members/require-2fa")
@tenant_required
def require_2fa() -> Response:
    admin_required()
    required = request.form.get("required") == "1"
    try:
        twofactor.set_required(db.session, tenant_id(), required, current_user.user, ip=request.remote_addr)
    except ServiceError as exc:
        return _refused(exc)
    db.session.commit()
    flash(_("Every member now needs two-factor authentication.") if required
          else _("Two-factor authentication is now optional."), "success")
    return _back()


@bp.get("/settings/outbox")
@tenant_required
def outbox() -> str:
    admin_required()
    page = paginated(mail.outbox_query(tenant_id()))
    return render_template("settings/outbox.html", active_nav="settings", page=page)
