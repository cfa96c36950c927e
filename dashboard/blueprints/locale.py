"""The language switcher: a small POST form (with its CSRF token) in the layout and on the login page.

POST rather than a GET link: a link could be triggered from another site (an <img> would do) and would
change a logged-in person's stored preference behind their back.
"""

from __future__ import annotations

from flask import Blueprint, abort, request, session, url_for
from flask_login import current_user
from werkzeug.wrappers import Response

from dashboard.extensions import db
from dashboard.i18n import LOCALE_KEY, forget_locale, valid_locale
from dashboard.web import local_redirect

bp = Blueprint("locale", __name__)


@bp.route("/locale", methods=["POST"])
def switch() -> Response:
    chosen = valid_locale(request.form.get("locale"))
    if chosen is None:
        abort(400)
    # Kept in the session too: it survives logging out and stands until the next login.
    session[LOCALE_KEY] = chosen
    if current_user.is_authenticated:
        current_user.user.locale = chosen
        db.session.commit()
    forget_locale()
    fallback = url_for("review.pending") if current_user.is_authenticated else url_for("auth.login")
    return local_redirect(request.form.get("next"), fallback)
