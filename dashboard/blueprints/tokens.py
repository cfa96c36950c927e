"""Settings → API tokens: create (shown once), list and revoke bearer tokens (issue 14, finding 9).

Everyone manages their own tokens of the current company; admins see and revoke every token of it. A
token works in this company only. Support staff only read (``tenant_required`` refuses their POSTs).
"""

from __future__ import annotations

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from core.errors import ServiceError, ValidationFailed
from core.tenancy import accounts, audit
from dashboard.extensions import db
from dashboard.i18n import errors_text, translate
from dashboard.viewer import current_viewer
from dashboard.web import paginated, tenant_id, tenant_required

bp = Blueprint("tokens", __name__)


def _owner_filter() -> int | None:
    """None (every token of the company) for admins; the person's own id otherwise."""
    viewer = current_viewer()
    return accounts.token_owner_filter(viewer.role, viewer.user_id)


def _render(new_token: str | None = None) -> str:
    page = paginated(accounts.tokens_query(tenant_id(), _owner_filter()))
    return render_template("settings/tokens.html", page=page, new_token=new_token, state=accounts.token_state,
                           max_days=accounts.MAX_TOKEN_DAYS, active_nav="settings")


@bp.get("/settings/tokens")
@tenant_required
def index() -> str:
    return _render()


@bp.post("/settings/tokens")
@tenant_required
def create() -> str | Response:
    """The new token is rendered in this response only (never flashed: the session cookie is not secret)."""
    try:
        days = accounts.parse_expiry_days(request.form.get("expires_in_days"))
        value = accounts.create_token(db.session, current_user.user, g.tenant, label=request.form.get("label", ""),
                                      expires_in_days=days)
    except ValidationFailed as exc:
        db.session.rollback()
        flash(errors_text(exc.errors), "error")
        return redirect(url_for(".index"))
    except ServiceError as exc:  # the company requires two-factor authentication and this person has none
        db.session.rollback()
        flash(translate(str(exc)), "error")
        return redirect(url_for(".index"))
    audit.record(db.session, tenant_id(), "token.create", actor=current_user.user, ip=request.remote_addr,
                 detail={"prefix": value[:8], "expires_in_days": days})
    db.session.commit()
    return _render(new_token=value)


@bp.post("/settings/tokens/<int:token_id>/revoke")
@tenant_required
def revoke(token_id: int) -> Response:
    row = accounts.revoke_token(db.session, tenant_id(), token_id, _owner_filter())
    audit.record(db.session, tenant_id(), "token.revoke", actor=current_user.user, target=f"token:{row.id}",
                 ip=request.remote_addr, detail={"prefix": row.prefix})
    db.session.commit()
    flash(_("Token %(prefix)s… revoked: it no longer opens the API.", prefix=row.prefix), "success")
    return redirect(url_for(".index"))
