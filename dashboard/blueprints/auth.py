"""Logging in and out, the tenant switcher, and the Flask-Login wiring."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask.blueprints import BlueprintSetupState
from flask_babel import gettext as _
from flask_login import UserMixin, current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from core.models import User
from core.services import accounts
from dashboard.extensions import db, login_manager
from dashboard.i18n import LOCALE_KEY, N_, valid_locale
from dashboard.web import init_web, is_local_url, select_tenant

bp = Blueprint("auth", __name__)


@bp.record_once
def _wire(state: BlueprintSetupState) -> None:
    init_web(state.app)  # security headers, filters and error pages for the whole HTML side


# Flask-Login ---------------------------------------------------------------------------------


class WebUser(UserMixin):
    """The logged-in person as Flask-Login sees them; ``user`` is the ORM row of this request."""

    def __init__(self, user: User) -> None:
        self.user = user
        self.id = user.id
        self.email = user.email

    @property
    def is_active(self) -> bool:
        return bool(self.user.is_active)


@login_manager.user_loader
def load_user(user_id: str) -> WebUser | None:
    if not user_id.isdigit():
        return None
    user = db.session.get(User, int(user_id))
    return WebUser(user) if user is not None and user.is_active else None


login_manager.login_view = "auth.login"
login_manager.login_message = N_("Please log in to see this page.")
login_manager.localize_callback = _  # flashed in the language of the request
login_manager.login_message_category = "info"


# Throttling ----------------------------------------------------------------------------------


class LoginThrottle:
    """Failed logins counted per (email, client address) and per client address, in a sliding window.

    Deliberately basic: counters live in this process's memory, so each web worker counts on its own
    and a restart forgets them. That is enough to make guessing one person's password slow; a shared
    Redis counter can replace it without changing the callers.
    """

    def __init__(self, per_account: int = 5, per_address: int = 50, window: float = 900.0) -> None:
        self.per_account, self.per_address, self.window = per_account, per_address, window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _keys(self, email: str, address: str) -> list[tuple[str, int]]:
        return [(f"acct:{email.strip().lower()}|{address}", self.per_account), (f"addr:{address}", self.per_address)]

    def _recent(self, key: str, now: float) -> deque[float]:
        stamps = self._failures.get(key, deque())
        while stamps and stamps[0] <= now - self.window:
            stamps.popleft()
        return stamps

    def blocked(self, email: str, address: str) -> bool:
        now = time.monotonic()
        with self._lock:
            return any(len(self._recent(key, now)) >= limit for key, limit in self._keys(email, address))

    def failed(self, email: str, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._failures) > 10_000:  # bound the memory an attacker can make us use
                self._failures = {k: v for k, v in self._failures.items() if v and v[-1] > now - self.window}
            for key, _limit in self._keys(email, address):
                self._failures[key] = self._recent(key, now)
                self._failures[key].append(now)

    def succeeded(self, email: str, address: str) -> None:
        with self._lock:
            self._failures.pop(self._keys(email, address)[0][0], None)


def throttle() -> LoginThrottle:
    found = current_app.extensions.get("inbox.login_throttle")
    if found is None:
        config = current_app.config
        found = LoginThrottle(
            per_account=config.get("LOGIN_MAX_FAILURES", 5),
            per_address=config.get("LOGIN_MAX_FAILURES_PER_ADDRESS", 50),
            window=config.get("LOGIN_WINDOW_SECONDS", 900),
        )
        current_app.extensions["inbox.login_throttle"] = found
    return found


# Views ---------------------------------------------------------------------------------------


def _after_login_url(target: str | None) -> str:
    return target if target and is_local_url(target) else url_for("review.pending")


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    target = request.values.get("next")
    if current_user.is_authenticated:
        return redirect(_after_login_url(target))
    if request.method == "GET":
        return render_template("login.html", email="", next=target if is_local_url(target) else None)

    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "unknown"
    context: dict[str, Any] = {"email": email, "next": target if is_local_url(target) else None}
    if throttle().blocked(email, address):
        return render_template("login.html", error=_("Too many failed attempts. Try again in a few minutes."),
                               **context), 429
    user = accounts.authenticate(db.session, email, password) if email and password else None
    if user is None or not user.memberships:
        throttle().failed(email, address)
        db.session.rollback()
        return render_template("login.html", error=_("Wrong email or password."), **context)
    throttle().succeeded(email, address)
    chosen = valid_locale(session.get(LOCALE_KEY))
    if chosen and user.locale is None:
        user.locale = chosen  # the language picked on the login page becomes the person's own
    db.session.commit()  # authenticate() may have upgraded the password hash
    _clear_session()  # nothing from before the login survives it (but the language)
    login_user(WebUser(user))
    select_tenant(user.memberships[0].tenant_id)
    return redirect(_after_login_url(target))


def _clear_session() -> None:
    """Empty the session but for the language chosen (harmless): the login page stays in it."""
    chosen = valid_locale(session.get(LOCALE_KEY))
    session.clear()
    if chosen:
        session[LOCALE_KEY] = chosen


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    logout_user()
    _clear_session()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/tenant", methods=["POST"])
@login_required
def switch_tenant() -> Response:
    raw = request.form.get("tenant_id", "")
    member = accounts.membership(db.session, current_user.id, int(raw)) if raw.isdigit() else None
    if member is None:
        abort(404)
    select_tenant(member.tenant_id)
    flash(_("You are now working on %(name)s.", name=member.tenant.name), "info")
    return redirect(url_for("review.pending"))
