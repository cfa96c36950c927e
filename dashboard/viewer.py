"""The access policy of the person behind the current request (see ``core.tenancy.access``)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import abort, current_app, g
from flask_babel import gettext as _
from flask_login import current_user

from core.tenancy import access
from core.tenancy.access import Viewer
from dashboard.extensions import db
from dashboard.web import tenant_id


def current_viewer() -> Viewer:
    """Computed once per request, after ``tenant_required`` has checked the membership."""
    found = g.get("viewer")
    if found is None:
        found = access.viewer_for(db.session, tenant_id(), int(current_user.id))
        g.viewer = found
    return found


def shown_subject(subject: str | None) -> str:
    """Template filter ``subject``: an email subject with confirmation codes hidden from members."""
    return access.shown_subject(current_viewer(), subject)


def admin_required() -> Viewer:
    viewer = current_viewer()
    if not viewer.is_admin:
        abort(403, _("Only an admin of this company can do this."))
    return viewer


def books_required() -> Viewer:
    """Posting, reversing, exports and the chart of accounts: admins and accountants (``access.can_keep_books``)."""
    viewer = current_viewer()
    if not access.can_keep_books(viewer):
        abort(403, _("Only an admin or an accountant of this company can do this."))
    return viewer


def today() -> date:
    """The day balances are computed for, in the display time zone; tests pin it with the
    ``INBOX_TODAY`` setting (an ISO date) instead of patching the clock."""
    pinned = current_app.config.get("INBOX_TODAY")
    if pinned:
        return date.fromisoformat(str(pinned))
    try:
        zone = ZoneInfo(current_app.config.get("DISPLAY_TIMEZONE", "Europe/Paris"))
    except ZoneInfoNotFoundError:
        zone = ZoneInfo("UTC")
    return datetime.now(zone).date()
